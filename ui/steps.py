"""Which step the pages draw: the optimizer's stored step where a run's checkpoint numbers count saves (TF2
managers number ckpt-1, ckpt-2, …; Keras ModelCheckpoint numbers epochs), else the number in the name."""

from __future__ import annotations

from ckptlib.runs.keras_run import is_keras_file
from ckptlib.runs.types import RunHistory


def counts_saves(history: RunHistory | None) -> bool:
    """Whether some checkpoint's number is not its training step (a save counter or an epoch)."""
    return history is not None and any(e.stored_step is not None and e.stored_step != e.step
                                       for e in history.checkpoints)


def keras_files(names: list[str]) -> bool:
    """Whether every one of `names` is a Keras file (ModelCheckpoint's: numbered by epoch, no state file)."""
    return all(is_keras_file(name) for name in names)


def number_label(history: RunHistory | None) -> str:
    """What the number in a checkpoint's name counts: a Keras file's epoch, a TF2 manager's saves, else the step."""
    if not counts_saves(history):
        return "step"
    if keras_files([e.name for e in history.checkpoints]):
        return "epoch"
    return "save"


def axis_title(history: RunHistory | None) -> str:
    return "training step (optimizer)" if counts_saves(history) else "step"


def training_steps(history: RunHistory | None) -> dict[str, int | None]:
    """{checkpoint prefix: the step to draw it at} (empty without a history)."""
    return {} if history is None else {e.prefix: e.training_step for e in history.checkpoints}


def shown(step: int | None, prefix: str, steps: dict[str, int | None]) -> int | None:
    """The step to draw a point of `prefix` at: its training step where known, else its own `step`."""
    trained = steps.get(prefix)
    return step if trained is None else trained
