"""The optimisation loop and what it needs: configs, run state and checkpoints, processes (1..N), torchrun launch.

Generic: it trains any ``nn.Module`` objective on any device-resident dataset and knows nothing of skeletons.
"""
