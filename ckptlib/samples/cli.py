"""Regenerate the bundled sample runs (`sample_checkpoints/`) from the MNIST training set."""

# The docstring's first line is the --help description.

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ckptlib.errors import CkptError

from .build import generate
from .progress import progress
from .specs import CNN_RUNS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ckptlib.samples", description=__doc__.split("\n")[0])
    parser.add_argument("--mnist", required=True, type=Path,
                        help="folder holding the four MNIST IDX files (gz or raw)")
    parser.add_argument("--out", default=Path("sample_checkpoints"), type=Path,
                        help="output folder, replaced as a whole (default: sample_checkpoints)")
    args = parser.parse_args(argv)
    began = time.monotonic()
    try:
        results = generate(args.mnist, args.out)
    except CkptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    accuracies = ", ".join(f"{s.name} {results[s.name]['accuracy']:.2%}" for s in CNN_RUNS)
    progress(f"wrote '{args.out}' in {time.monotonic() - began:.0f} s; test accuracy {accuracies}, "
             f"mnist_tf2 {results['mnist_tf2']['accuracy']:.2%}")
    return 0
