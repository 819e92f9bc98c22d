"""Benchmarks: speed, FLOPs and memory targets, the NTU reader, real-data accuracy tables. Never imported by the library."""
