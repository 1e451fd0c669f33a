"""Real checkpoints for the diff/trend/health tests, written by TensorFlow (no mocks), plus numpy references.

Graph-mode checkpoints come from tf.compat.v1.get_variable + tf.compat.v1.train.Saver; object-based
ones from tf.train.Checkpoint. Every helper writes only under the folder it is given.
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

v1 = tf.compat.v1


def _constant(value: np.ndarray):
    if value.dtype == object:
        return tf.constant(value.tolist() if value.ndim else value.item(), dtype=tf.string, shape=value.shape)
    return tf.constant(value)


def _slicing_initializer(full: np.ndarray):
    """An initializer that hands each partition of a partitioned variable its slice of `full`."""

    def init(shape, dtype=None, partition_info=None):
        offset = partition_info.var_offset if partition_info is not None else [0] * full.ndim
        index = tuple(slice(o, o + n) for o, n in zip(offset, shape))
        return tf.constant(full[index])

    return init


def save_v1(prefix: str, values: dict[str, np.ndarray], partitions: dict[str, int] | None = None,
            step: int | None = None) -> str:
    """One v1 Saver checkpoint holding exactly `values` (names as keys); some variables partitioned."""
    partitions = partitions or {}
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    graph = tf.Graph()
    with graph.as_default():
        for name, value in values.items():
            if name in partitions:
                v1.get_variable(name, value.shape, dtype=tf.as_dtype(value.dtype),
                                partitioner=v1.fixed_size_partitioner(partitions[name]),
                                initializer=_slicing_initializer(value))
            else:
                v1.get_variable(name, initializer=_constant(value))
        saver = v1.train.Saver(save_relative_paths=True)
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            return saver.save(sess, prefix, global_step=step, write_meta_graph=False)


def save_tf2(prefix: str, tree: dict) -> str:
    """tf.train.Checkpoint(**tree).write(prefix); nested dicts become tf.Module objects."""

    def build(node):
        if isinstance(node, dict):
            module = tf.Module()
            for key, child in node.items():
                setattr(module, key, build(child))
            return module
        return tf.Variable(_constant(node))

    objects = {key: build(child) for key, child in tree.items()}
    return tf.train.Checkpoint(**objects).write(prefix)


def read_all(prefix: str) -> dict[str, np.ndarray]:
    """Every tensor as TensorFlow's own reader returns it: the reference for every statistic."""
    reader = tf.train.load_checkpoint(prefix)
    return {name: np.asarray(reader.get_tensor(name)) for name in reader.get_variable_to_shape_map()}


def components(array: np.ndarray) -> np.ndarray:
    """Flat values, complex split into (re, im) pairs; floats widened to float64 (exact)."""
    flat = np.asarray(array).reshape(-1)
    if flat.dtype.kind == "c":
        flat = np.stack([flat.real, flat.imag], axis=1).reshape(-1)
    if flat.dtype == object or flat.dtype == np.bool_:
        return flat
    return flat if flat.dtype.kind in "iu" else flat.astype(np.float64)


def reference_diff(a: np.ndarray, b: np.ndarray, atol: float = 0.0) -> dict:
    """The diff statistics by the DESIGN.md definitions, straight numpy over whole arrays."""
    ca, cb = components(a), components(b)
    if ca.dtype == object or ca.dtype == np.bool_:
        changed = int(np.count_nonzero(ca != cb))
        return {"num_changed": changed, "frac_changed": changed / ca.size if ca.size else None,
                "l2_diff": None, "rel_change": None, "max_abs_diff": None, "mean_abs_diff": None, "cosine": None}
    if ca.dtype.kind in "iu" and atol == 0:
        differs = ca != cb
    else:
        fa, fb = ca.astype(np.float64), cb.astype(np.float64)
        with np.errstate(invalid="ignore"):
            differs = ~((fa == fb) | (np.isnan(fa) & np.isnan(fb))) & ~(np.abs(fb - fa) <= atol)
    fa, fb = ca.astype(np.float64), cb.astype(np.float64)
    finite = np.isfinite(fa) & np.isfinite(fb)
    fa, fb = fa[finite], fb[finite]
    d = fb - fa
    na, nb, nd = np.linalg.norm(fa), np.linalg.norm(fb), np.linalg.norm(d)
    out = {"num_changed": int(differs.sum()), "frac_changed": float(differs.mean()) if differs.size else None,
           "nonfinite": int((~finite).sum())}
    if not fa.size:
        return out | {"l2_diff": None, "rel_change": None, "max_abs_diff": None, "mean_abs_diff": None,
                      "cosine": None}
    return out | {
        "l2_diff": float(nd),
        "rel_change": float(nd / na) if na > 0 else None,
        "max_abs_diff": float(np.abs(d).max()),
        "mean_abs_diff": float(np.abs(d).mean()),
        "cosine": float(np.dot(fa, fb) / (na * nb)) if na > 0 and nb > 0 else None,
    }


def close(value, expected, rel: float = 1e-9) -> bool:
    """Both None, or equal within a relative error of `rel` (exactly equal when expected is 0)."""
    if expected is None or value is None:
        return value is None and expected is None
    return math.isclose(value, expected, rel_tol=rel, abs_tol=0.0)


def corrupt(prefix: str, how: str, name: str) -> str:
    """Damage the data shard holding `name` in a copied checkpoint: 'flip' 4 of its bytes, or 'truncate'
    the shard just after its first byte. Returns the shard's file name."""
    from ckptlib.formats import bundle  # only to find where TensorFlow put the tensor

    index = bundle.read_index(prefix)
    entry = index.entries[name]
    path = index.data_path(entry.shard_id)
    with open(path, "r+b") as f:
        if how == "truncate":
            f.truncate(entry.offset + 1)
        else:
            f.seek(entry.offset)
            chunk = f.read(4)
            f.seek(entry.offset)
            f.write(bytes(byte ^ 0xFF for byte in chunk))
    return os.path.basename(path)


def _linear_graph(with_extras: bool):
    """kernel/bias trained with Adam; with_extras adds a frozen weight and two NaN-carrying ones."""
    global_step = v1.train.get_or_create_global_step()
    x = tf.constant(np.linspace(-1.0, 1.0, 8, dtype=np.float32).reshape(2, 4))
    y = tf.constant(np.arange(6, dtype=np.float32).reshape(2, 3))
    with v1.variable_scope("dense"):
        kernel = v1.get_variable("kernel", [4, 3], initializer=v1.random_normal_initializer(seed=1))
        bias = v1.get_variable("bias", [3], initializer=v1.zeros_initializer())
    prediction = tf.matmul(x, kernel) + bias
    extras = {}
    if with_extras:
        # Trainable and used by the loss, but left out of the optimizer's var_list: it never moves.
        extras["frozen"] = v1.get_variable("frozen/w", initializer=tf.constant([0.5, -0.5, 1.0]))
        extras["nanvar"] = v1.get_variable("nanvar", initializer=tf.constant([1.0, 2.0]))
        extras["nanconst"] = v1.get_variable("nanconst", initializer=tf.constant([np.nan, 1.0], tf.float32))
        prediction += tf.reduce_sum(extras["frozen"])
    loss = tf.reduce_mean(tf.square(prediction - y))
    optimizer = v1.train.AdamOptimizer(0.05)
    train = optimizer.minimize(loss, var_list=[kernel, bias], global_step=global_step)
    return global_step, kernel, bias, optimizer, train, extras


def trend_run(run_dir: str, num_saves: int = 6) -> list[str]:
    """One Adam step per save; the last save leaves dense/bias (and its slots) out."""
    graph = tf.Graph()
    with graph.as_default():
        global_step, _, _, _, train, _ = _linear_graph(with_extras=False)
        everything = v1.train.Saver(max_to_keep=None, save_relative_paths=True)
        some = v1.train.Saver([v for v in v1.global_variables() if "bias" not in v.op.name], max_to_keep=None,
                              save_relative_paths=True)
        saved = []
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            for i in range(num_saves):
                sess.run(train)
                saver = some if i == num_saves - 1 else everything
                saved.append(saver.save(sess, os.path.join(run_dir, "model.ckpt"), global_step=global_step,
                                        write_meta_graph=False))
    return saved


def health_run(run_dir: str) -> list[str]:
    """Six saves: NaN put in `nanvar` before save 4; kernel x100 and bias zeroed before save 5;
    Adam's m slot of the kernel set to NaN before save 6; `frozen/w` and `nanconst` never change."""
    graph = tf.Graph()
    with graph.as_default():
        global_step, kernel, bias, optimizer, train, extras = _linear_graph(with_extras=True)
        injections = {
            3: [extras["nanvar"].assign([np.nan, 2.0])],
            4: [kernel.assign(kernel * 100.0), bias.assign(tf.zeros_like(bias))],
            5: [optimizer.get_slot(kernel, "m").assign(tf.fill([4, 3], np.nan))],
        }
        saver = v1.train.Saver(max_to_keep=None, save_relative_paths=True)
        saved = []
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            for i in range(6):
                sess.run(train)
                for op in injections.get(i, []):
                    sess.run(op)
                saved.append(saver.save(sess, os.path.join(run_dir, "model.ckpt"), global_step=global_step,
                                        write_meta_graph=False))
    return saved
