"""Graphs without running them: meta graphs, collections, ops, node attributes, suggested inputs and outputs."""
