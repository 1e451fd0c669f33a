"""Load the MNIST test set from IDX files, a Keras `mnist.npz`, the shipped copy or Keras' cache.

    >>> data = load_mnist_test("/data/mnist_data")      # t10k-images-idx3-ubyte[.gz] + labels
    >>> data.images.shape, data.labels.shape, data.source
    ((10000, 28, 28), (10000,), "IDX files in /data/mnist_data (t10k-images-idx3-ubyte.gz, ...)")

Where it looks, first hit wins: the `source` given (folder or .npz file); else $CKPTLIB_MNIST_DIR;
else `sample_checkpoints/mnist_test/` beside the package; else Keras' cache `~/.keras/datasets/mnist.npz`
($KERAS_HOME respected); last, only with allow_download=True, Keras' own download URL (the only
network use in ckptlib), saved where Keras would save it.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ckptlib.errors import CkptError
from ckptlib.errors import DatasetError
from ckptlib.evaluate.mnist_idx import IMAGE_SIDE, find_split, load_idx_pair
from ckptlib.evaluate.types import MnistTestSet

ENV_VAR = "CKPTLIB_MNIST_DIR"
SHIPPED_DIR = Path(__file__).resolve().parents[2] / "sample_checkpoints" / "mnist_test"
# keras/src/datasets/mnist.py: the file keras.datasets.mnist.load_data() downloads, and its checksum.
KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
_ZIP_MAGIC = b"PK"


def keras_cache_path() -> Path:
    """Where Keras caches mnist.npz: $KERAS_HOME/datasets, else ~/.keras/datasets."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets" / "mnist.npz"


def load_mnist_test(source: str | os.PathLike | None = None, *, allow_download: bool = False) -> MnistTestSet:
    """The 10,000 MNIST test images (uint8 [N, 28, 28]) and labels (uint8 [N]), from the first place found."""
    if source is not None and str(source) != "":
        return _load_path(Path(os.path.expanduser(str(source))), "")
    env = os.environ.get(ENV_VAR)
    if env:
        return _load_path(Path(os.path.expanduser(env)), f" (from ${ENV_VAR})")
    if SHIPPED_DIR.is_dir():
        return _load_path(SHIPPED_DIR, " (shipped with ckptlib)")
    cache = keras_cache_path()
    if cache.is_file():
        return _load_path(cache, " (Keras cache)")
    if not allow_download:
        raise DatasetError(
            f"No MNIST test set found: give a folder of IDX files or a Keras mnist.npz (--mnist, or the dashboard's "
            f"MNIST box), set ${ENV_VAR} where ckptlib runs, or allow Keras' download into {cache} (--download; "
            "allow_download=True).")
    _download(cache)
    return _load_path(cache, f" (downloaded from {KERAS_URL})")


def _load_path(path: Path, note: str) -> MnistTestSet:
    if path.is_dir():
        try:
            images_path, labels_path = find_split(path, "t10k")
        except CkptError as exc:
            if (path / "mnist.npz").is_file():
                return _load_path(path / "mnist.npz", note)
            raise DatasetError(f"No MNIST test set in '{path}': {exc}") from exc
        images, labels = load_idx_pair(images_path, labels_path)
        source = f"IDX files in {path} ({images_path.name}, {labels_path.name}){note}"
    elif path.is_file():
        images, labels = read_npz(path)
        source = f"Keras mnist.npz at {path}{note}"
    else:
        raise DatasetError(f"MNIST test set '{path}'{note} does not exist.")
    _check_labels(path, labels)
    return MnistTestSet(images, labels, source)


def read_npz(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """x_test and y_test of a Keras-style mnist.npz (no pickles), checked for shape and dtype."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            magic = handle.read(2)
    except OSError as exc:
        raise DatasetError(f"Cannot read MNIST file '{path}': {exc.strerror or exc}.") from exc
    if magic != _ZIP_MAGIC:
        raise DatasetError(f"MNIST file '{path}' is neither a folder of IDX files nor a Keras mnist.npz "
                           "(no zip header).")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in ("x_test", "y_test") if k not in archive.files]
            if missing:
                raise DatasetError(f"MNIST file '{path}' has no {' or '.join(missing)} array (it holds "
                                   f"{', '.join(archive.files) or 'nothing'}).")
            images, labels = archive["x_test"], archive["y_test"]
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as exc:
        raise DatasetError(f"Cannot read MNIST file '{path}': truncated or corrupt ({exc}).") from exc
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DatasetError(f"MNIST file '{path}': x_test is {images.dtype} {list(images.shape)}, "
                           f"expected uint8 [N, {IMAGE_SIDE}, {IMAGE_SIDE}].")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0] or labels.dtype.kind not in "ui":
        raise DatasetError(f"MNIST file '{path}': y_test is {labels.dtype} {list(labels.shape)}, "
                           f"expected {images.shape[0]} integer labels.")
    return images, labels.astype(np.uint8)


def _check_labels(path: Path, labels: np.ndarray) -> None:
    if labels.size and int(labels.max()) > 9:
        raise DatasetError(f"MNIST test set '{path}' has label {int(labels.max())}; digits are 0-9.")


def _download(cache: Path) -> None:
    """Fetch Keras' mnist.npz, check its SHA-256, and save it where Keras caches it."""
    try:
        with urllib.request.urlopen(KERAS_URL, timeout=60) as response:
            data = response.read()
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DatasetError(f"Cannot download the MNIST test set from {KERAS_URL}: {reason} (offline?). "
                           f"Give a local copy with --mnist or ${ENV_VAR}.") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != KERAS_SHA256:
        raise DatasetError(f"Downloaded {KERAS_URL} but its SHA-256 is {digest}, expected {KERAS_SHA256}; not saved.")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(cache.name + ".part")
        partial.write_bytes(data)
        os.replace(partial, cache)
    except OSError as exc:
        raise DatasetError(f"Cannot save the MNIST download to '{cache}': {exc.strerror or exc}.") from exc
