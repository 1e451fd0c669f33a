"""Run a graph job in a child process bounded by time and memory; its crash or hang is a one-line CkptError.

    >>> run_job("freeze", {"prefix": p, "outputs": ("logits",), "out": "/tmp/m.pb", "meta": None},
    ...         limits=Limits(120, 4096), source=p, action="freeze checkpoint")
    FreezeResult(output='/tmp/m.pb', ...)

The child is a fresh interpreter running ckptlib.evaluate.worker (no fork of a threaded parent), in
its own session so that the whole group can be killed. The request goes in on stdin (pickle: the
parent trusts itself); the child answers with JSON lines (wire.py) on its stdout, whose descriptor it
keeps for that alone: whatever the graph prints goes to its stderr, which the parent reads and keeps
to itself (TensorFlow's E0000 lines never reach the caller's terminal), quoting a line of it only when
the child dies. The time limit runs from when the child says it is ready (TensorFlow imported, device
set up) and restarts at each new graph (each checkpoint of eval-history); the memory limit is set by
the child on itself (limits.apply_memory_limit).
"""

from __future__ import annotations

import os
import pickle
import selectors
import signal
import subprocess
import sys
import threading
import time

from ckptlib import errors
from ckptlib.errors import GraphCrashed, TimeLimitExceeded
from ckptlib.evaluate import wire
from ckptlib.evaluate.limits import memory_error
from ckptlib.evaluate.types import Limits

STARTUP_S = 180  # importing TensorFlow on a loaded machine; not the graph's time
_STDERR_KEPT = 64 << 10
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# This ckptlib first, whatever the caller's folder holds (the child keeps the caller's working directory).
_BOOT = f"import sys; sys.path.insert(0, {_PACKAGE_ROOT!r}); from ckptlib.evaluate.worker import main; main()"
_MEMORY_WORDS = ("bad_alloc", "cannot allocate memory", "out of memory", "resource_exhausted", "oom when")
_NOISE = ("I0", "W0", "WARNING: All log messages", "To enable the following instructions")  # TF's start-up chatter
_SIGNALS = {signal.SIGABRT: "TensorFlow aborted (signal 6)", signal.SIGSEGV: "it crashed (signal 11, a segfault)",
            signal.SIGBUS: "it crashed (signal 7, a bus error)", signal.SIGFPE: "it crashed (signal 8)",
            signal.SIGILL: "it crashed (signal 4, an illegal instruction)"}


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([_PACKAGE_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                                                          if p])
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"  # the child's stderr is the parent's to read, but keep it short
    env["MALLOC_ARENA_MAX"] = "2"  # glibc reserves 64 MB of address space per thread arena; RLIMIT_AS counts it
    env.pop("PYTHONSTARTUP", None)
    return env


def run_job(job: str, kwargs: dict, *, limits: Limits, source: str, action: str, progress=None,
            env: dict[str, str] | None = None):
    """The result of `jobs.JOBS[job](**kwargs)` run in a child process (with `env` added to its environment, e.g.
    the GPU it may use), or the CkptError it ended with."""
    request = pickle.dumps({"job": job, "kwargs": kwargs, "limits": limits}, protocol=pickle.HIGHEST_PROTOCOL)
    child = subprocess.Popen([sys.executable, "-c", _BOOT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env={**child_env(), **(env or {})}, start_new_session=True)
    writer = threading.Thread(target=_feed, args=(child.stdin, request), daemon=True)
    writer.start()
    try:
        outcome, stderr, step = _listen(child, limits, progress)
    finally:
        _stop(child)
        writer.join(timeout=5)
    source = step or source  # eval-history: the checkpoint it was on
    if outcome is None:
        raise _death(child.returncode, stderr, limits, source, action)
    kind, value = outcome
    if kind == "timeout":
        raise TimeLimitExceeded(f"Cannot {action} '{source}': it was stopped after {_seconds(limits.time_s)} s "
                                "(--time-limit).")
    if kind == "error":
        raise wire.rebuild_error(value)
    return value


def _feed(pipe, request: bytes) -> None:
    try:
        pipe.write(request)
        pipe.close()
    except (BrokenPipeError, OSError):  # the child died before reading it all: its exit says why
        pass


def _listen(child, limits: Limits, progress) -> tuple[tuple[str, object] | None, bytes, str | None]:
    """((kind, value) of the child's answer, or ('timeout', None), or None when it died first; its stderr;
    the graph it said it was running last)."""
    selector = selectors.DefaultSelector()
    selector.register(child.stdout, selectors.EVENT_READ, "out")
    selector.register(child.stderr, selectors.EVENT_READ, "err")
    pending, stderr, outcome, step = b"", bytearray(), None, None
    deadline = time.monotonic() + STARTUP_S
    open_streams = 2
    while open_streams:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return ("timeout", None), bytes(stderr), step
        for key, _ in selector.select(timeout=min(remaining, 1.0)):
            chunk = os.read(key.fileobj.fileno(), 1 << 16)
            if not chunk:
                selector.unregister(key.fileobj)
                open_streams -= 1
            elif key.data == "err":
                stderr.extend(chunk)
                del stderr[:-_STDERR_KEPT]
            else:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    kind, value = _message(line)
                    if kind in ("ready", "step"):
                        deadline = time.monotonic() + limits.time_s
                        step = str(value) if kind == "step" else step
                    elif kind == "progress" and progress is not None:
                        progress(*value)
                    elif kind in ("result", "error"):
                        outcome = (kind, value)
    selector.close()
    child.wait()
    return outcome, bytes(stderr), step


def _message(line: bytes) -> tuple[str, object]:
    try:
        return wire.parse(line)
    except (ValueError, KeyError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
        return "error", ["GraphCrashed", f"The evaluation process sent a message ckptlib cannot read ({exc})."]


def _stop(child) -> None:
    """Kill the child's whole process group if it is still there, and reap it."""
    if child.poll() is None:
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            child.kill()
        child.wait()
    for pipe in (child.stdout, child.stderr):
        pipe.close()


def _death(code: int | None, stderr: bytes, limits: Limits, source: str, action: str) -> errors.CkptError:
    """What a child that died without answering tells: a signal, an exit status, and its last words."""
    last = _last_words(stderr)
    if any(word in stderr.decode("utf-8", "replace").lower() for word in _MEMORY_WORDS):
        return memory_error(action, source, limits, last)
    if code is not None and code < 0:
        number = -code
        what = _SIGNALS.get(number, f"it was killed (signal {number}"
                                    + ("; the system may have run out of memory" if number == signal.SIGKILL else "")
                                    + ")")
    else:
        what = f"the evaluation process exited with status {code} without a result"
    return GraphCrashed(f"Cannot {action} '{source}': {what}{': ' + last if last else ''}.")


def _last_words(stderr: bytes) -> str:
    """The most telling line of the child's stderr: a fatal TensorFlow check first, else the last line."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    fatal = [line for line in lines if line.startswith("F0") or "Check failed" in line or "what():" in line]
    lines = [line for line in lines if not line.startswith(_NOISE)]
    chosen = (fatal or lines or [""])[-1]
    return chosen[:300].rstrip(".")


def _seconds(value: float) -> str:
    return f"{value:g}"
