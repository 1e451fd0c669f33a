"""The MNIST arrays the sample runs train and test on, and their minibatches."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from ckptlib.evaluate.mnist_idx import find_split, load_idx_pair


class Mnist(NamedTuple):
    train_x: np.ndarray  # float32 [N, 784] in [0, 1]
    train_y: np.ndarray  # int64 [N]
    test_x: np.ndarray
    test_y: np.ndarray


def load_mnist(folder: Path) -> Mnist:
    train_images, train_labels = load_idx_pair(*find_split(folder, "train"))
    test_images, test_labels = load_idx_pair(*find_split(folder, "t10k"))

    def flat(images):
        return images.reshape(len(images), 784).astype(np.float32) / 255.0

    return Mnist(flat(train_images), train_labels.astype(np.int64),
                 flat(test_images), test_labels.astype(np.int64))


def minibatches(rng: np.random.RandomState, n: int, batch_size: int):
    """Endless minibatch index arrays, reshuffled every epoch."""
    while True:
        order = rng.permutation(n)
        for start in range(0, n - batch_size + 1, batch_size):
            yield order[start:start + batch_size]
