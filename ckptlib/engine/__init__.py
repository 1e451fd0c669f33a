"""Fan-out of independent tasks: in this process, over forked processes (local.py) or on a Dask cluster (dask.py)."""
