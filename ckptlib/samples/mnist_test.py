"""The `mnist_test/` sample folder: the MNIST t10k files, copied unmodified, with their README."""

from __future__ import annotations

import gzip
import hashlib
import shutil
from pathlib import Path

from ckptlib.errors import CkptError
from ckptlib.evaluate.mnist_idx import find_split


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_mnist_test(mnist_dir: Path, out_dir: Path) -> list[tuple[str, str]]:
    out_dir.mkdir()
    copied = []
    for source in find_split(mnist_dir, "t10k"):
        if source.suffix != ".gz":
            raise CkptError(f"MNIST folder '{mnist_dir}' has no gzip-compressed t10k file "
                            f"('{source.name}' found); the sample set ships the .gz files.")
        shutil.copyfile(source, out_dir / source.name)
        copied.append((source.name, _sha256(out_dir / source.name)))
    sums = "".join(f"{digest}  {name}\n" for name, digest in copied)
    raw_images = hashlib.sha256(gzip.decompress((out_dir / copied[0][0]).read_bytes())).hexdigest()
    (out_dir / "README.md").write_text(f"""# MNIST test set (t10k), the project's offline default

The MNIST database of handwritten digits (Yann LeCun, Corinna Cortes, Christopher J. C. Burges),
licensed CC BY-SA 3.0. These are the two original, unmodified test-set IDX files, gzip-compressed,
with the file names of the classic `mnist_data/` folder that TensorFlow 1.x tutorials used.

| file | content |
|---|---|
| t10k-images-idx3-ubyte.gz | 10,000 test images, 28x28 uint8 (IDX magic 2051) |
| t10k-labels-idx1-ubyte.gz | 10,000 test labels (IDX magic 2049); per-class counts 980 1135 1032 1010 982 892 958 1028 974 1009 |

SHA-256 of the files:

```
{sums}```

The uncompressed images file hashes to
{raw_images} (the canonical file: 0fa7898d...494ce7).
Copied by `python -m ckptlib.samples`; read them with `ckptlib.evaluate.mnist_idx.load_idx_pair`.
""")
    return copied
