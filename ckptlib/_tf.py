"""The one place TensorFlow is imported (lazily) and its exceptions are mapped to CkptError."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

from google.protobuf.message import DecodeError

from ckptlib import errors


def tf():
    """Import TensorFlow on first use; listing and reading checkpoints never need it."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    # TF 2.21 logs oneDNN/CUDA banners through absl before any log level applies (TF_CPP_MIN_LOG_LEVEL
    # is ignored for them), straight to file descriptor 2: silence that descriptor for the import only.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with silenced_stderr():
        import tensorflow
    return tensorflow


def constants_converter():
    """TensorFlow's variables-to-constants rewrite (tensorflow/python/framework/convert_to_constants.py), the
    engine of convert_variables_to_constants; freezing hands it values read without running the graph."""
    tf()
    from tensorflow.python.framework import convert_to_constants

    missing = [n for n in ("_ConverterData", "_TensorData", "_replace_variables_by_constants")
               if not hasattr(convert_to_constants, n)]
    if missing:
        raise errors.UnsupportedFormat(f"Cannot freeze with TensorFlow {tf().__version__}: its converter lacks "
                                       f"{', '.join(missing)} (ckptlib was built against TensorFlow 2.21).")
    return convert_to_constants


@contextlib.contextmanager
def silenced_stderr() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null meanwhile: TF's C++ side (cuInit on a GPU-less machine,
    oneDNN banners) writes there directly, past Python's logging."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def quiet_tf_logs() -> Iterator[None]:
    """Silence TensorFlow's Python-side INFO/deprecation messages meanwhile (the level is restored)."""
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def map_tf_errors(path: str, action: str = "read checkpoint") -> Iterator[None]:
    """Turn TensorFlow's exceptions into CkptError subclasses naming `path`.

    TF 2.21 raises OpError subclasses for most problems, a protobuf DecodeError for garbled
    protos, and a plain IndexError("Read less bytes than requested") for a truncated data shard.
    """
    tensorflow = tf()
    try:
        yield
    except tensorflow.errors.NotFoundError as exc:
        raise errors.NotFound(f"Cannot {action} '{path}': {_first_line(exc)}") from exc
    except tensorflow.errors.DataLossError as exc:
        raise errors.CorruptCheckpoint(f"Cannot {action} '{path}': {_first_line(exc)}") from exc
    except tensorflow.errors.OpError as exc:
        # TF 2.21 raises a bare OpError (code UNKNOWN) for a checksum mismatch or a missing data
        # shard when reading a tensor; its message is the only way to tell them apart.
        message = _first_line(exc)
        lowered = message.lower()
        if "checksum" in lowered or "corrupt" in lowered:
            raise errors.CorruptCheckpoint(f"Cannot {action} '{path}': {message}") from exc
        if "no such file" in lowered or "failed to open" in lowered or (".data-" in lowered and "not found" in lowered):
            raise errors.IncompleteCheckpoint(f"Cannot {action} '{path}': {message}") from exc
        raise errors.CkptError(f"Cannot {action} '{path}': {message}") from exc
    except IndexError as exc:
        raise errors.IncompleteCheckpoint(
            f"Cannot {action} '{path}': a data shard is shorter than its index says ({exc})"
        ) from exc
    except DecodeError as exc:
        raise errors.CorruptCheckpoint(f"Cannot {action} '{path}': {exc}") from exc


def _first_line(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return message.strip().splitlines()[0] if message.strip() else type(exc).__name__


def v1_checkpoint_reader(path: str):
    """TensorFlow's reader of a V1 checkpoint file (tf.train.load_checkpoint falls back to TensorSliceReader
    when no PATH.index exists); ckptlib lists V1 files itself but reads their values through this.
    UnsupportedFormat naming `path` when TensorFlow is not installed."""
    try:
        tensorflow = tf()
    except ImportError:
        raise errors.UnsupportedFormat(
            f"Cannot read checkpoint '{path}': it is a V1 checkpoint (TensorFlow 0.11 or older), whose values "
            "ckptlib reads through TensorFlow's reader; install TensorFlow (pip install tensorflow) to read it."
        ) from None
    with map_tf_errors(path):
        return tensorflow.train.load_checkpoint(path)
