"""Comparisons: diff of two checkpoints with name mapping, trends over a run, health flags."""
