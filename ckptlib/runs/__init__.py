"""Runs: finding them under a root, a run's checkpoints (state file reconciled with the disk), retention."""
