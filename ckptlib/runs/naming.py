"""The step in a checkpoint's name: the '-N' that Saver and CheckpointManager append ('model.ckpt-1000', 'ckpt-8')."""

from __future__ import annotations

import re

_STEP = re.compile(r"-(\d+)$")


def step_from_name(name: str) -> int | None:
    """The trailing '-N' of a checkpoint prefix's name, else None.

    >>> step_from_name("model.ckpt-1000"), step_from_name("ckpt-8"), step_from_name("model.ckpt")
    (1000, 8, None)
    """
    match = _STEP.search(name)
    return int(match.group(1)) if match else None
