"""UmURL-style encoder and the objective that wraps it."""
