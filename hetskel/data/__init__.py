"""Readers, writers, transforms and the synthetic dataset. The PYSKL annotation dict is the interchange format."""
