"""``python -m hetskel.benchmark``: any skeleton dataset -> SSL pretraining, linear probe, 1-NN,
random-init and supervised baselines, over seeds (``hetskel.benchmark.core``)."""
