"""ckptlib: review TensorFlow training runs through their checkpoints."""

__version__ = "0.1.0"
