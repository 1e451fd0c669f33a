"""The generator of the bundled sample runs: `generate()` builds them, `main()` is `python -m ckptlib.samples`."""

# Usage: python -m ckptlib.samples --mnist /path/to/mnist --out sample_checkpoints

from .build import generate
from .cli import main
from .cluster import make_from_cluster
from .data import Mnist
from .mnist_test import make_mnist_test
from .readme import README_MARKER
from .specs import CLUSTER_RUN, CNN_RUNS, CnnSpec
from .tf2_run import make_tf2
from .v1_runs import CnnGraph, build_cnn, evaluate_frozen, make_cnn, make_linear

__all__ = ["CLUSTER_RUN", "CNN_RUNS", "CnnGraph", "CnnSpec", "Mnist", "README_MARKER", "build_cnn", "evaluate_frozen",
           "generate", "main", "make_cnn", "make_from_cluster", "make_linear", "make_mnist_test", "make_tf2"]
