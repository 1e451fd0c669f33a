"""Which engine a command runs on: Dask where --scheduler (or CKPTLIB_DASK_SCHEDULER) names a cluster, else local."""

from __future__ import annotations

import os
from collections.abc import Mapping

from ckptlib.engine.local import LocalEngine
from ckptlib.engine.types import Engine

ENV_SCHEDULER = "CKPTLIB_DASK_SCHEDULER"


def engine_for(scheduler: str | None = None, workers: int | None = None,
               environ: Mapping[str, str] | None = None) -> Engine:
    """DaskEngine(scheduler or $CKPTLIB_DASK_SCHEDULER), else LocalEngine(workers).

    >>> engine_for(None, environ={})
    LocalEngine(workers=None)
    >>> engine_for("tcp://10.0.0.5:8786")
    DaskEngine(address='tcp://10.0.0.5:8786', retries=2)
    """
    environ = os.environ if environ is None else environ
    address = (scheduler or environ.get(ENV_SCHEDULER, "")).strip()
    if not address:
        return LocalEngine(workers)
    from ckptlib.engine.dask import DaskEngine  # dask is imported only when a cluster is asked for

    return DaskEngine(address)


def cluster_for(scheduler: str | None = None, environ: Mapping[str, str] | None = None) -> Engine | None:
    """The Dask engine `scheduler` or $CKPTLIB_DASK_SCHEDULER names, else None (this machine: callers keep their
    own local path, e.g. one evaluation child for a whole run).

    >>> cluster_for(None, environ={}) is None
    True
    """
    engine = engine_for(scheduler, environ=environ)
    return None if isinstance(engine, LocalEngine) else engine
