"""ckptlib: review TensorFlow training runs through their checkpoints.

    >>> import ckptlib
    >>> ckpt = ckptlib.open_checkpoint("sample_checkpoints/linear")
    >>> ckptlib.read_tensor(ckpt, "linear/bias").dtype
    dtype('float32')

The verbs below are imported on first use, so `import ckptlib` costs neither numpy nor TensorFlow.
Every failure is a `ckptlib.CkptError` whose message names the file and the problem.
"""

from ckptlib.errors import CkptError

__version__ = "0.1.0"

_VERBS = ("find_runs", "open_run", "open_checkpoint", "read_tensor", "stream_tensor", "diff", "trends")
__all__ = ["CkptError", *_VERBS]


def __getattr__(name: str):
    if name in _VERBS:
        from ckptlib import api

        return getattr(api, name)
    raise AttributeError(f"module 'ckptlib' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_VERBS])
