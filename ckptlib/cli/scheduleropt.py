"""The --scheduler option of the run-wide commands (trend, health, eval-history) and the engine it names."""

from __future__ import annotations

import argparse

from ckptlib.engine.choose import ENV_SCHEDULER, cluster_for
from ckptlib.engine.types import Engine


def add_scheduler_option(cmd: argparse.ArgumentParser) -> None:
    """--scheduler: run the per-checkpoint or per-variable work on a Dask cluster."""
    cmd.add_argument("--scheduler", metavar="tcp://HOST:PORT", default=None,
                     help=f"run the work on this Dask scheduler's workers (default: ${ENV_SCHEDULER}, else this "
                          "machine's processes)")


def cluster(args) -> Engine | None:
    """The Dask engine --scheduler or $CKPTLIB_DASK_SCHEDULER names, else None (this machine, cached results)."""
    return cluster_for(getattr(args, "scheduler", None))
