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
