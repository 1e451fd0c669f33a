"""Tasks on a Dask distributed cluster: submitted with retries, gathered as they finish, failures reported."""

# Dask does the scheduling, the transport and the recovery: a worker that dies mid-task has its task
# rescheduled on another (up to distributed.scheduler.allowed-failures deaths, then KilledWorker), and a
# task that raises is retried `retries` times. Only what still fails after that becomes a failed Outcome.

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from ckptlib.engine.types import EngineUnavailable, Outcome, Progress, Task
from ckptlib.errors import CkptError

RETRIES = 2  # a task that raises (a storage hiccup) runs up to three times
WORKER_WAIT_S = 60  # how long a cluster may take to have its first worker before the command gives up


@dataclass(frozen=True)
class DaskEngine:
    """The Dask scheduler at `address` (tcp://HOST:PORT); its workers must be able to import ckptlib and read
    the run's paths (a shared folder, or an fsspec URL such as s3://…)."""

    address: str
    retries: int = RETRIES

    def run(self, tasks: Sequence[Task], progress: Progress | None = None, fork_safe: bool = True) -> list[Outcome]:
        from distributed import as_completed

        client = self.connect()
        try:
            futures = {client.submit(task.fn, *task.args, retries=self.retries, pure=False): index
                       for index, task in enumerate(tasks)}
            outcomes: list[Outcome | None] = [None] * len(tasks)
            for done, future in enumerate(as_completed(futures, loop=client.loop)):
                index = futures[future]
                if progress is not None:
                    progress(done, len(tasks), tasks[index].label)
                outcomes[index] = _outcome(tasks[index], future, self.address)
        finally:
            client.close()
        return outcomes

    def connect(self):
        """A distributed.Client of the scheduler with at least one worker, or EngineUnavailable naming it."""
        import dask
        from dask.utils import parse_timedelta
        from distributed import Client

        timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"))
        # Probe first: a Client whose constructor failed would wait on its stopped loop at exit to close.
        try:
            asyncio.run(_probe(self.address, timeout))
        except (OSError, ValueError, TypeError) as exc:  # refused or timed out; not an address
            raise EngineUnavailable(f"Cannot reach the Dask scheduler at '{self.address}': {_line(exc)}.") from None
        try:
            client = Client(self.address, timeout=timeout, set_as_default=False)
        except OSError as exc:  # it went away since the probe
            raise EngineUnavailable(f"Cannot reach the Dask scheduler at '{self.address}': {_line(exc)}.") from None
        try:
            client.wait_for_workers(1, timeout=WORKER_WAIT_S)
        except TimeoutError:
            client.close()
            raise EngineUnavailable(f"The Dask scheduler at '{self.address}' has no workers (waited "
                                    f"{WORKER_WAIT_S} s).") from None
        return client


async def _probe(address: str, timeout: float) -> None:
    from distributed.comm import connect
    from distributed.security import Security

    # The same TLS settings a Client would use (dask's config), so tls:// clusters probe as they connect.
    comm = await connect(address, timeout=timeout, **Security().get_connection_args("client"))
    await comm.close()


def _outcome(task: Task, future, address: str) -> Outcome:
    from distributed import KilledWorker

    try:
        return Outcome(task.label, future.result())
    except (CkptError, OSError, MemoryError, KilledWorker) as exc:  # a bug (anything else) stops the run
        return Outcome(task.label, error=f"{type(exc).__name__}: {_line(exc)}")
    except (ImportError, RuntimeError) as exc:
        # The scheduler or a worker could not unpickle the task: no task of this run can work there.
        missing = exc if isinstance(exc, ImportError) else exc.__cause__
        if not isinstance(missing, ImportError):
            raise
        raise EngineUnavailable(f"The Dask cluster at '{address}' cannot run ckptlib's tasks ({_line(missing)}): "
                                "install ckptlib where its scheduler and workers run.") from None


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
