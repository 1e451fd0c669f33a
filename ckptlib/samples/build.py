"""Build every sample run into a staging folder and swap it in place of the output folder."""

# Every run is a real TensorFlow checkpoint written by TensorFlow's own savers; `from_cluster/` is then
# damaged on purpose. Seeds are fixed and op determinism is on, so regenerating on the same machine and
# TensorFlow version gives bit-identical tensors.

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ckptlib import _tf as _tf_module

from .cluster import make_from_cluster
from .data import load_mnist
from .keras_run import make_keras
from .mnist_test import make_mnist_test
from .output import check_replaceable
from .readme import render_readme
from .specs import CLOCK_ORIGIN, CNN_RUNS, DAY
from .tf2_run import make_tf2
from .v1_runs import make_cnn, make_linear


def _tf():
    """TensorFlow through ckptlib's one import point, with its Python-side logs quieted."""
    tf = _tf_module.tf()
    tf.get_logger().setLevel("ERROR")
    return tf


def generate(mnist_dir: Path, out: Path) -> dict:
    """Build every sample run into a temporary sibling of `out`, then swap it into place."""
    check_replaceable(out)
    data = load_mnist(mnist_dir)  # fail on a bad MNIST folder before TensorFlow starts
    tf = _tf()
    tf.config.experimental.enable_op_determinism()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the result is meant to be shared
    try:
        (staging / "linear").mkdir()
        results = {}
        results["linear"] = make_linear(tf, staging / "linear", CLOCK_ORIGIN)
        for day, spec in enumerate(CNN_RUNS, start=1):
            results[spec.name] = make_cnn(tf, spec, staging / "mnist_cnn" / spec.name, data,
                                          CLOCK_ORIGIN + day * DAY)
        (staging / "mnist_tf2").mkdir()
        results["mnist_tf2"] = make_tf2(tf, staging / "mnist_tf2", data, CLOCK_ORIGIN + 3 * DAY)
        results["from_cluster"] = make_from_cluster(tf, staging / "from_cluster", data, CLOCK_ORIGIN + 4 * DAY,
                                                    staging / "mnist_cnn" / CNN_RUNS[0].name)
        results["mnist_keras"] = make_keras(tf, staging / "mnist_keras", data, CLOCK_ORIGIN + 5 * DAY)
        results["mnist_test"] = make_mnist_test(mnist_dir, staging / "mnist_test")
        (staging / "README.md").write_text(render_readme(results, tf.__version__))
        check_replaceable(out)  # again: something may have appeared while we trained
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return results
