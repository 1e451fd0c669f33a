"""The child process that runs one graph job for sandbox.py (`python -m ckptlib.evaluate.worker`), answering in JSON."""

from __future__ import annotations

import os
import pickle
import sys

from ckptlib import errors
from ckptlib.evaluate import wire


class Channel:
    """The child's side of the conversation: one JSON line per message, on a descriptor of its own."""

    def __init__(self, fd: int):
        self._fd = fd

    def send(self, kind: str, value=None) -> None:
        data = wire.message(kind, value)
        while data:
            data = data[os.write(self._fd, data):]

    def ready(self) -> None:
        """TensorFlow is imported and the device set up: the time limit starts now."""
        self.send("ready")

    def step(self, label: str) -> None:
        """A new graph starts (a checkpoint of eval-history): the time limit starts again."""
        self.send("step", label)

    def progress(self, done: int, total: int, message: str) -> None:
        self.send("progress", [done, total, message])


def main() -> None:
    answers = os.dup(1)
    os.dup2(2, 1)  # what the graph prints (tf.print to stdout) must not mix with the answers
    channel = Channel(answers)
    request: dict = {}
    try:
        request = pickle.load(sys.stdin.buffer)
        from ckptlib.evaluate import jobs

        job = jobs.find(request["job"])
        channel.send("result", job(channel, request["limits"], **request["kwargs"]))
    except errors.CkptError as exc:
        channel.send("error", [type(exc).__name__, str(exc)])
    except MemoryError:
        channel.send("error", ["MemoryLimitExceeded", _memory_message(request)])
    except Exception as exc:  # noqa: BLE001 - the process boundary: any failure becomes one line for the parent
        first = (str(exc).strip().splitlines() or [""])[0]
        channel.send("error", ["CkptError", f"The evaluation process failed: {type(exc).__name__}: {first}"])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # no interpreter teardown: TensorFlow's threads have nothing left to do


def _memory_message(request: dict) -> str:
    kwargs = request.get("kwargs", {})
    source = kwargs.get("source") or kwargs.get("model") or kwargs.get("prefix") or "the graph"
    megabytes = getattr(request.get("limits"), "memory_mb", "?")
    return f"Cannot run '{source}': it ran out of its {megabytes} MB memory limit (--memory-limit)."


if __name__ == "__main__":
    main()
