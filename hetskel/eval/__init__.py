"""Evaluation protocols (linear probe, k-NN retrieval, semi-supervised fine-tuning, transfer).

They take the networks they compare as arguments (the pretrained one and, for the baseline, an untrained one).
"""
