"""mnist.py on small generated IDX and npz files (no TensorFlow, no network)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from graph_fixtures import MNIST_DIR

from ckptlib import errors
from ckptlib.errors import DatasetError
from ckptlib.evaluate import mnist
from ckptlib.evaluate.mnist import ENV_VAR, load_mnist_test, read_npz

RNG = np.random.default_rng(3)
IMAGES = RNG.integers(0, 256, (7, 28, 28), dtype=np.uint8)
LABELS = np.array([3, 1, 4, 1, 5, 9, 2], np.uint8)


def _idx(magic: int, array: np.ndarray) -> bytes:
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape) + array.tobytes()


def write_idx_folder(folder: Path, *, gz: bool, dotted: bool = False, images=IMAGES, labels=LABELS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sep = "." if dotted else "-"
    for kind, dims, magic, array in (("images", 3, 2051, images), ("labels", 1, 2049, labels)):
        data = _idx(magic, array)
        name = f"t10k-{kind}{sep}idx{dims}-ubyte" + (".gz" if gz else "")
        (folder / name).write_bytes(gzip.compress(data) if gz else data)
    return folder


def write_npz(path: Path, **arrays) -> Path:
    arrays = arrays or {"x_test": IMAGES, "y_test": LABELS, "x_train": IMAGES[:2], "y_train": LABELS[:2]}
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No environment variable, no shipped copy, an empty Keras home: only what a test sets up."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(mnist, "SHIPPED_DIR", tmp_path / "not_shipped")


@pytest.mark.parametrize("gz,dotted", [(True, False), (False, False), (True, True)])
def test_idx_folder(tmp_path, gz, dotted):
    folder = write_idx_folder(tmp_path / "mnist_data", gz=gz, dotted=dotted)
    data = load_mnist_test(folder)
    np.testing.assert_array_equal(data.images, IMAGES)
    np.testing.assert_array_equal(data.labels, LABELS)
    assert data.num_examples == 7 and data.images.dtype == np.uint8 and str(folder) in data.source


def test_npz_file_and_folder_holding_one(tmp_path):
    path = write_npz(tmp_path / "mnist.npz")
    data = load_mnist_test(str(path))
    np.testing.assert_array_equal(data.images, IMAGES)
    assert data.labels.dtype == np.uint8 and "mnist.npz" in data.source
    assert load_mnist_test(str(tmp_path)).num_examples == 7  # a folder with only mnist.npz


def test_search_order(tmp_path, monkeypatch):
    with pytest.raises(DatasetError, match="No MNIST test set found.*MNIST box.*allow Keras. download"):
        load_mnist_test()
    cache = tmp_path / "keras_home" / "datasets"
    cache.mkdir(parents=True)
    write_npz(cache / "mnist.npz")
    assert "Keras cache" in load_mnist_test().source
    shipped = write_idx_folder(tmp_path / "shipped", gz=True, labels=LABELS[::-1].copy())
    monkeypatch.setattr(mnist, "SHIPPED_DIR", shipped)
    assert "shipped" in load_mnist_test().source
    env = write_idx_folder(tmp_path / "env", gz=False)
    monkeypatch.setenv(ENV_VAR, str(env))
    assert f"${ENV_VAR}" in load_mnist_test().source
    explicit = write_npz(tmp_path / "explicit.npz")
    assert str(explicit) in load_mnist_test(explicit).source
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match="does not exist"):  # a broken setting is not silently skipped
        load_mnist_test()


def test_real_test_set_if_present():
    if not Path(MNIST_DIR).is_dir():
        pytest.skip(f"MNIST not available at {MNIST_DIR}")
    data = load_mnist_test(MNIST_DIR)
    assert data.images.shape == (10000, 28, 28)
    assert np.bincount(data.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _corrupt_cases(tmp_path: Path):
    good = _idx(2051, IMAGES)
    return {
        "bad magic": ("folder", _idx(2049, IMAGES), "magic number"),
        "truncated idx": ("folder", good[:-10], "truncated"),
        "truncated gz": ("folder_gz", gzip.compress(good)[:-20], "gzip"),
        "not zip": ("npz", b"hello, not a zip", "no zip header"),
        "truncated npz": ("npz", None, "truncated or corrupt"),
    }


@pytest.mark.parametrize("case", ["bad magic", "truncated idx", "truncated gz", "not zip", "truncated npz"])
def test_corrupt_files_name_the_file(tmp_path, case):
    where, content, words = _corrupt_cases(tmp_path)[case]
    if where.startswith("folder"):
        folder = write_idx_folder(tmp_path / "m", gz=where == "folder_gz")
        target = next(folder.glob("t10k-images*"))
        target.write_bytes(content)
    else:
        target = tmp_path / "mnist.npz"
        if content is None:
            full = write_npz(target).read_bytes()
            content = full[: len(full) // 2]
        target.write_bytes(content)
    with pytest.raises(errors.CkptError, match=words) as info:
        load_mnist_test(target if where == "npz" else target.parent)
    assert str(target) in str(info.value)


def test_npz_wrong_arrays(tmp_path):
    with pytest.raises(DatasetError, match="no y_test"):
        read_npz(write_npz(tmp_path / "a.npz", x_test=IMAGES))
    with pytest.raises(DatasetError, match="expected uint8"):
        read_npz(write_npz(tmp_path / "b.npz", x_test=IMAGES.astype(np.float32), y_test=LABELS))
    with pytest.raises(DatasetError, match="label 19"):
        load_mnist_test(write_npz(tmp_path / "c.npz", x_test=IMAGES, y_test=LABELS + 10))


def test_empty_folder_names_what_it_looked_for(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte"):
        load_mnist_test(tmp_path / "empty")
