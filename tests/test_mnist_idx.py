"""ckptlib.evaluate.mnist_idx on small IDX files generated in tmp_path (gz and raw), valid and corrupt."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from ckptlib.errors import CkptError, NotFound
from ckptlib.evaluate.mnist_idx import IMAGES_MAGIC, LABELS_MAGIC, find_split, load_idx_pair, read_idx

REPO = Path(__file__).resolve().parent.parent


def idx_bytes(magic: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    return struct.pack(f">I{len(dims)}I", magic, *dims) + payload


def sample_arrays(n: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(0)
    return (rng.randint(0, 256, size=(n, 28, 28)).astype(np.uint8),
            rng.randint(0, 10, size=n).astype(np.uint8))


def write(path: Path, content: bytes, compress: bool = False) -> Path:
    path.write_bytes(gzip.compress(content, mtime=0) if compress else content)
    return path


def write_pair(folder: Path, split: str = "t10k", compress: bool = True, dotted: bool = False):
    images, labels = sample_arrays()
    suffix = ".gz" if compress else ""
    sep = "." if dotted else "-"
    images_path = write(folder / f"{split}-images{sep}idx3-ubyte{suffix}",
                        idx_bytes(IMAGES_MAGIC, images.shape, images.tobytes()), compress)
    labels_path = write(folder / f"{split}-labels{sep}idx1-ubyte{suffix}",
                        idx_bytes(LABELS_MAGIC, labels.shape, labels.tobytes()), compress)
    return images_path, labels_path, images, labels


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "raw"])
def test_round_trip(tmp_path, compress):
    images_path, labels_path, images, labels = write_pair(tmp_path, compress=compress)
    got_images, got_labels = load_idx_pair(images_path, labels_path)
    assert got_images.dtype == np.uint8 and got_images.shape == (5, 28, 28)
    assert got_labels.dtype == np.uint8 and got_labels.shape == (5,)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_gzip_is_detected_by_content_not_name(tmp_path):
    images, _ = sample_arrays()
    path = write(tmp_path / "images-without-gz-suffix",
                 idx_bytes(IMAGES_MAGIC, images.shape, images.tobytes()), compress=True)
    np.testing.assert_array_equal(read_idx(path, IMAGES_MAGIC), images)


def test_empty_set_is_valid(tmp_path):
    images_path = write(tmp_path / "i", idx_bytes(IMAGES_MAGIC, (0, 28, 28), b""))
    labels_path = write(tmp_path / "l", idx_bytes(LABELS_MAGIC, (0,), b""))
    images, labels = load_idx_pair(images_path, labels_path)
    assert images.shape == (0, 28, 28) and labels.shape == (0,)


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize("dotted", [False, True], ids=["canonical", "dotted"])
def test_find_split_name_variants(tmp_path, compress, dotted):
    images_path, labels_path, _, _ = write_pair(tmp_path, "train", compress, dotted)
    assert find_split(tmp_path, "train") == (images_path, labels_path)


def test_find_split_prefers_raw_when_both_exist(tmp_path):
    write_pair(tmp_path, compress=True)
    images_path, labels_path, _, _ = write_pair(tmp_path, compress=False)
    assert find_split(tmp_path, "t10k") == (images_path, labels_path)


def test_find_split_missing_labels(tmp_path):
    images_path, labels_path, _, _ = write_pair(tmp_path)
    labels_path.unlink()
    with pytest.raises(NotFound, match="t10k labels") as info:
        find_split(tmp_path, "t10k")
    assert str(tmp_path) in str(info.value)


def test_find_split_other_split_absent(tmp_path):
    write_pair(tmp_path, "t10k")
    with pytest.raises(NotFound, match="train images"):
        find_split(tmp_path, "train")


def test_find_split_missing_folder(tmp_path):
    with pytest.raises(NotFound, match="does not exist"):
        find_split(tmp_path / "nope", "t10k")


def test_find_split_rejects_unknown_split(tmp_path):
    with pytest.raises(ValueError):
        find_split(tmp_path, "test")


def test_missing_file_is_not_found(tmp_path):
    with pytest.raises(NotFound, match="does not exist"):
        read_idx(tmp_path / "absent.gz", IMAGES_MAGIC)


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "raw"])
def test_bad_magic(tmp_path, compress):
    images, _ = sample_arrays()
    path = write(tmp_path / "bad", idx_bytes(2050, images.shape, images.tobytes()), compress)
    with pytest.raises(CkptError, match=r"magic number 2050 .*expected 2051") as info:
        read_idx(path, IMAGES_MAGIC)
    assert str(path) in str(info.value)


def test_swapped_images_and_labels(tmp_path):
    images_path, labels_path, _, _ = write_pair(tmp_path)
    with pytest.raises(CkptError, match="magic number 2049"):
        load_idx_pair(labels_path, images_path)


def test_foreign_file(tmp_path):
    path = write(tmp_path / "t10k-images-idx3-ubyte", b"<html>404 Not Found</html>")
    with pytest.raises(CkptError, match="magic number"):
        read_idx(path, IMAGES_MAGIC)


@pytest.mark.parametrize("content", [b"", b"\x00\x00"], ids=["empty", "two-bytes"])
def test_too_short_for_magic(tmp_path, content):
    with pytest.raises(CkptError, match="too short"):
        read_idx(write(tmp_path / "short", content), IMAGES_MAGIC)


def test_truncated_header(tmp_path):
    path = write(tmp_path / "hdr", struct.pack(">II", IMAGES_MAGIC, 5))
    with pytest.raises(CkptError, match="header alone needs 16 bytes"):
        read_idx(path, IMAGES_MAGIC)


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "raw"])
def test_truncated_data(tmp_path, compress):
    images, _ = sample_arrays()
    content = idx_bytes(IMAGES_MAGIC, images.shape, images.tobytes())[:-100]
    path = write(tmp_path / "trunc", content, compress)
    with pytest.raises(CkptError, match=r"is truncated: 3836 bytes .*5x28x28 needs 3936 bytes"):
        read_idx(path, IMAGES_MAGIC)


def test_trailing_bytes(tmp_path):
    _, labels = sample_arrays()
    path = write(tmp_path / "long", idx_bytes(LABELS_MAGIC, labels.shape, labels.tobytes() + b"\0"))
    with pytest.raises(CkptError, match="longer than its header says"):
        read_idx(path, LABELS_MAGIC)


def test_header_claims_more_images_than_present(tmp_path):
    images, _ = sample_arrays()
    path = write(tmp_path / "lie", idx_bytes(IMAGES_MAGIC, (60000, 28, 28), images.tobytes()), True)
    with pytest.raises(CkptError, match="truncated"):
        read_idx(path, IMAGES_MAGIC)


def test_truncated_gzip_stream(tmp_path):
    images, _ = sample_arrays()
    compressed = gzip.compress(idx_bytes(IMAGES_MAGIC, images.shape, images.tobytes()))
    path = write(tmp_path / "cut.gz", compressed[: len(compressed) // 2])
    with pytest.raises(CkptError, match="gzip stream is truncated"):
        read_idx(path, IMAGES_MAGIC)


def test_garbled_gzip(tmp_path):
    path = write(tmp_path / "garbled.gz", b"\x1f\x8b\x08\x00" + b"\xff" * 40)
    with pytest.raises(CkptError, match="corrupt gzip data"):
        read_idx(path, IMAGES_MAGIC)


def test_wrong_image_size(tmp_path):
    images = np.zeros((2, 27, 28), np.uint8)
    labels = np.zeros(2, np.uint8)
    images_path = write(tmp_path / "i", idx_bytes(IMAGES_MAGIC, images.shape, images.tobytes()))
    labels_path = write(tmp_path / "l", idx_bytes(LABELS_MAGIC, labels.shape, labels.tobytes()))
    with pytest.raises(CkptError, match="27x28 images, expected 28x28"):
        load_idx_pair(images_path, labels_path)


def test_count_mismatch(tmp_path):
    images, labels = sample_arrays()
    images_path = write(tmp_path / "i", idx_bytes(IMAGES_MAGIC, images.shape, images.tobytes()))
    labels_path = write(tmp_path / "l", idx_bytes(LABELS_MAGIC, (4,), labels[:4].tobytes()))
    with pytest.raises(CkptError, match="5 images but 4 labels"):
        load_idx_pair(images_path, labels_path)


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(CkptError, match="is a directory"):
        read_idx(tmp_path, IMAGES_MAGIC)


@pytest.mark.skipif(not (REPO / "sample_checkpoints" / "mnist_test").is_dir(),
                    reason="sample_checkpoints/mnist_test not generated")
def test_bundled_test_set():
    images, labels = load_idx_pair(*find_split(REPO / "sample_checkpoints" / "mnist_test", "t10k"))
    assert images.shape == (10000, 28, 28)
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
