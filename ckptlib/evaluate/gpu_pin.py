"""One GPU per evaluation on a machine that has several: the child process sees only the GPU it holds."""

# A Dask worker (or any process) that starts evaluation children on a multi-GPU host gives each child
# CUDA_VISIBLE_DEVICES=<one GPU>. Which one: the first free one, "free" meaning no other evaluation on this
# host holds its lock file (flock, released by the kernel even when the holder is killed), so workers that
# share a host spread over its GPUs without knowing of each other. TensorFlow would otherwise put every
# child on GPU 0. The GPUs are counted without importing TensorFlow: CUDA_VISIBLE_DEVICES when set (as
# dask-cuda sets it per worker), else the NVIDIA driver's /proc entries.

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
from collections.abc import Iterator, Mapping

NVIDIA_PROC = "/proc/driver/nvidia/gpus"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def visible_gpus(environ: Mapping[str, str] | None = None, proc: str = NVIDIA_PROC) -> list[str]:
    """The GPU ids this process may use, as CUDA_VISIBLE_DEVICES spells them ([] for none).

    >>> visible_gpus({"CUDA_VISIBLE_DEVICES": "2,3"})
    ['2', '3']
    >>> visible_gpus({"CUDA_VISIBLE_DEVICES": "-1"}), visible_gpus({}, proc="/nonexistent")
    ([], [])
    """
    environ = os.environ if environ is None else environ
    listed = environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        ids = [part.strip() for part in listed.split(",")]
        # CUDA stops at the first invalid entry; "-1" or "" is the usual way to hide every GPU.
        kept = []
        for gpu in ids:
            if not gpu or gpu.startswith("-"):
                break
            kept.append(gpu)
        return kept
    try:
        return [str(i) for i in range(len(os.listdir(proc)))]
    except OSError:  # no NVIDIA driver
        return []


@contextlib.contextmanager
def pinned_gpu(device: str = "auto", environ: Mapping[str, str] | None = None, proc: str = NVIDIA_PROC,
               lock_dir: str | None = None) -> Iterator[tuple[dict[str, str], str | None]]:
    """(environment for the child, GPU id) while the block runs: one GPU of several, held by a lock file;
    ({}, None) when the device is the CPU or there is at most one GPU (nothing to choose)."""
    gpus = visible_gpus(environ, proc) if device in ("auto", "gpu") else []
    if len(gpus) < 2:
        yield {}, None
        return
    folder = lock_dir or os.path.join(tempfile.gettempdir(), "ckptlib-gpu-locks")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        folder = None
    start = os.getpid() % len(gpus)  # where this process starts looking: concurrent workers start apart
    order = gpus[start:] + gpus[:start]
    handle, chosen = _first_free(folder, order) if folder else (None, None)
    if chosen is None:
        chosen = order[0]
        handle = _lock(folder, chosen, block=True) if folder else None  # all busy: wait for this one
    try:
        yield {"CUDA_VISIBLE_DEVICES": chosen}, chosen
    finally:
        if handle is not None:
            handle.close()  # closing the descriptor releases the lock


def _first_free(folder: str, order: list[str]):
    for gpu in order:
        handle = _lock(folder, gpu, block=False)
        if handle is not None:
            return handle, gpu
    return None, None


def _lock(folder: str, gpu: str, block: bool):
    """An open file holding the lock of `gpu`, or None when another process holds it (or locks fail here)."""
    try:
        handle = open(os.path.join(folder, f"gpu-{_SAFE.sub('_', gpu)}.lock"), "a")
    except OSError:
        return None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
    except OSError:
        handle.close()
        return None
    return handle
