"""Watching a run live: each new complete checkpoint as it appears, with its health and its change since the last."""
