"""Helpers of one notebook each (data tour, lifter, prompts, semantic encoding, ablations).

They import the library and are never imported by it.
"""
