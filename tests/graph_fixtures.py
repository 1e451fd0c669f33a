"""Fixtures shared by the graph/freeze/mnist/evaluate tests; import them into a test module by name.

The trained run and its frozen graph are built once per session (cached here, since each module that
imports a fixture gets its own copy of it) and must never be modified by a test.
"""

from __future__ import annotations

import os

import pytest

MNIST_DIR = os.environ.get("CKPTLIB_MNIST_DIR") or "/work/shared/data/mnist"
_CACHE: dict[str, object] = {}


def _needs_mnist():
    from ckptlib.errors import CkptError
    from ckptlib.evaluate.mnist_idx import find_split

    try:
        find_split(MNIST_DIR, "train")
        find_split(MNIST_DIR, "t10k")
    except (CkptError, OSError) as exc:
        pytest.skip(f"MNIST not available at {MNIST_DIR} (set CKPTLIB_MNIST_DIR): {exc}")


def _cached(key: str, build):
    if key not in _CACHE:
        _CACHE[key] = build()
    return _CACHE[key]


@pytest.fixture
def gb():
    """The graphbuild helpers (imports TensorFlow)."""
    import graphbuild

    return graphbuild


@pytest.fixture
def mnist_data():
    """The MNIST test set as ckptlib loads it from MNIST_DIR."""
    _needs_mnist()
    from ckptlib.evaluate.mnist import load_mnist_test

    return _cached("mnist", lambda: load_mnist_test(MNIST_DIR))


@pytest.fixture
def softmax(tmp_path_factory, gb):
    """The trained tutorial-style run: {'run', 'prefixes', 'weights', 'biases'}."""
    _needs_mnist()
    return _cached("softmax", lambda: gb.softmax_run(str(tmp_path_factory.mktemp("softmax") / "run")))


@pytest.fixture
def frozen_softmax(tmp_path_factory, softmax, gb):
    """softmax's last checkpoint frozen to a .pb (outputs: logits and the accuracy metric)."""
    from ckptlib.evaluate.freeze import freeze

    def build():
        out = tmp_path_factory.mktemp("frozen") / "softmax.pb"
        return freeze(softmax["prefixes"][-1], [gb.LOGITS, "accuracy"], str(out))

    return _cached("frozen_softmax", build)


@pytest.fixture
def reference(softmax, mnist_data, gb):
    """The last checkpoint's accuracy on the whole test set, from a direct session run."""
    return _cached("reference", lambda: gb.reference_accuracy(softmax["weights"], softmax["biases"],
                                                               mnist_data.images, mnist_data.labels))


@pytest.fixture
def tb():
    """The tutorialbuild helpers (TF1 tutorial graphs; imports TensorFlow)."""
    import tutorialbuild

    return tutorialbuild


def _tutorial_fixture(key: str, build_name: str, **options):
    @pytest.fixture
    def fixture(tmp_path_factory, tb):
        _needs_mnist()

        def build():
            run = str(tmp_path_factory.mktemp(key) / "run")
            return tb.train_and_save(run, lambda: getattr(tb, build_name)(**options))

        return _cached(key, build)

    return fixture


# Trained once per session: {'prefix', 'names' (op names of x, labels, out, accuracy...), 'ops', 'function_ops'}.
beginners_run = _tutorial_fixture("beginners_run", "beginners")  # y = softmax(xW + b), every op unnamed
beginners_logits_run = _tutorial_fixture("beginners_logits_run", "beginners", head="logits")
cond_v2_run = _tutorial_fixture("cond_v2_run", "batch_norm_cond_v2")  # If over resource variables
