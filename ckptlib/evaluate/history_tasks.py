"""eval-history as one engine task per checkpoint (a Dask cluster): each evaluated by its worker, in its own
bounded child process, on a GPU of its own where the worker's machine has several."""

from __future__ import annotations

import socket

from ckptlib.engine.types import Engine, Outcome, Progress, Task
from ckptlib.evaluate import sandbox, wire
from ckptlib.evaluate.gpu_pin import pinned_gpu
from ckptlib.evaluate.history_plan import PlannedCheckpoint, plan_history
from ckptlib.evaluate.types import EvalHistory, Limits
from ckptlib.runs.types import RunHistory, SkippedCheckpoint

_STOP = "stop"  # a task's answer that must end the whole run (the request itself is wrong), not skip a checkpoint


def eval_history_on(engine: Engine, history: RunHistory, names: tuple[str, ...], *, output_tensor: str | None,
                    mnist, allow_download: bool, limits: Limits, options: dict,
                    progress: Progress | None = None) -> EvalHistory:
    """The EvalHistory the serial path gives, with the checkpoints evaluated as `engine`'s tasks. A task that
    fails (a checkpoint that cannot be read, a worker lost more often than Dask retries) is skipped with its
    reason; an error about the request (an unknown node, a hostile graph, a limit) stops the run, as serially."""
    planned = plan_history(history)
    todo = [item for item in planned if item.skipped is None]
    tasks = [Task(f"checkpoint {item.entry.name}", evaluate_task,
                  (item, names, output_tensor, mnist, allow_download, limits, options)) for item in todo]
    outcomes = dict(zip((item.entry.prefix for item in todo), engine.run(tasks, progress, fork_safe=False)))
    points, skipped, devices, source = [], [], [], ""
    for item in planned:
        if item.skipped is not None:
            skipped.append(item.skipped)
            continue
        outcome = outcomes[item.entry.prefix]
        answer = _answer(item, outcome, skipped)
        if answer is None:
            continue
        point, device, source = answer
        points.append(point)
        devices.append(device)
    if progress:
        progress(len(tasks), len(tasks), "done")
    return EvalHistory(history.path, tuple(points), tuple(skipped), source, ", ".join(dict.fromkeys(devices)))


def _answer(item: PlannedCheckpoint, outcome: Outcome, skipped: list):
    """The task's (point, device, dataset source), or None once its failure is listed in `skipped`."""
    if outcome.error is not None:
        skipped.append(SkippedCheckpoint(item.entry.prefix, item.entry.step, outcome.error, error=True))
        return None
    if outcome.value[0] == _STOP:
        raise wire.rebuild_error(outcome.value[1])
    return outcome.value[1:]


def evaluate_task(item: PlannedCheckpoint, names, output_tensor, mnist, allow_download: bool, limits: Limits,
                  options: dict):
    """On a worker: ('point', EvalPoint, device, dataset source) of one checkpoint, or ('stop', [error, text])."""
    from ckptlib.evaluate.running import REQUEST_ERRORS  # numpy, on the worker only

    with pinned_gpu(options.get("device", "auto")) as (env, gpu):
        try:
            point, device, source = sandbox.run_job(
                "evaluate_planned", {"item": item, "outputs": names, "output_tensor": output_tensor, "mnist": mnist,
                                     "allow_download": allow_download, "options": options},
                limits=limits, source=item.entry.prefix, action="evaluate", env=env)
        except REQUEST_ERRORS as exc:  # returned, not raised: the engine would list it as one skipped checkpoint
            return _STOP, [type(exc).__name__, str(exc)]
    if gpu is not None:  # the child saw only this GPU, as its GPU:0
        device = f"{device} = CUDA device {gpu} of {socket.gethostname()}"
    return "point", point, device, source
