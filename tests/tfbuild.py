"""Build small, real TensorFlow checkpoints for the tests (no mocks: TensorFlow writes every byte).

Graph-mode runs use tf.compat.v1.get_variable + tf.compat.v1.train.Saver (tf.compat.v1.layers is
unusable with Keras 3); object-based runs use tf.train.Checkpoint + tf.train.CheckpointManager.
Every helper writes only under the folder it is given and returns what it built.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

v1 = tf.compat.v1
PREFIX = "model.ckpt"


def _session(graph: tf.Graph, num_cpus: int = 1) -> v1.Session:
    config = v1.ConfigProto(device_count={"CPU": num_cpus}, allow_soft_placement=False,
                            inter_op_parallelism_threads=1, intra_op_parallelism_threads=1)
    return v1.Session(graph=graph, config=config)


def _adam_model(hidden: int = 3):
    """A linear layer trained with Adam, so that the checkpoint has slots, beta powers, global_step."""
    global_step = v1.train.get_or_create_global_step()
    x = tf.constant(np.linspace(-1.0, 1.0, 8, dtype=np.float32).reshape(2, 4))
    y = tf.constant(np.arange(2 * hidden, dtype=np.float32).reshape(2, hidden))
    with v1.variable_scope("dense"):
        kernel = v1.get_variable("kernel", [4, hidden], initializer=v1.random_normal_initializer(seed=1))
        bias = v1.get_variable("bias", [hidden], initializer=v1.zeros_initializer())
    loss = tf.reduce_mean(tf.square(tf.matmul(x, kernel) + bias - y))
    train = v1.train.AdamOptimizer(0.1).minimize(loss, global_step=global_step)
    return global_step, train


def saver_run(run_dir: str, num_saves: int = 6, max_to_keep: int | None = 3, *, steps_per_save: int = 1,
              save_relative_paths: bool = False, with_step_suffix: bool = True, write_meta: bool = True,
              name: str = PREFIX, hidden: int = 3, train_steps_before: int = 0,
              keep_checkpoint_every_n_hours: float = 10000.0) -> list[str]:
    """A v1 Saver run: train `steps_per_save` Adam steps, save, repeat. Returns the saved prefixes.

    `train_steps_before` lets a second call in the same folder continue the step count, the way a
    restarted job would (its new Saver does not know the old checkpoints).
    """
    os.makedirs(run_dir, exist_ok=True)
    graph = tf.Graph()
    with graph.as_default():
        global_step, train = _adam_model(hidden)
        saver = v1.train.Saver(max_to_keep=max_to_keep, save_relative_paths=save_relative_paths,
                               keep_checkpoint_every_n_hours=keep_checkpoint_every_n_hours)
        saved = []
        with _session(graph) as sess:
            sess.run(v1.global_variables_initializer())
            for _ in range(train_steps_before):
                sess.run(train)
            for i in range(num_saves):
                for _ in range(steps_per_save):
                    sess.run(train)
                meta = write_meta and (i == 0 or i == num_saves - 1)
                step = global_step if with_step_suffix else None
                saved.append(saver.save(sess, os.path.join(run_dir, name), global_step=step, write_meta_graph=meta))
    return saved


def tiny_saver_run(run_dir: str, num_saves: int) -> list[str]:
    """Many checkpoints of a one-variable model, every one kept, relative paths in the state file."""
    os.makedirs(run_dir, exist_ok=True)
    graph = tf.Graph()
    with graph.as_default():
        global_step = v1.train.get_or_create_global_step()
        w = v1.get_variable("w", [2], initializer=v1.zeros_initializer())
        train = tf.group(w.assign_add([1.0, -1.0]), global_step.assign_add(1))
        saver = v1.train.Saver(max_to_keep=num_saves + 1, save_relative_paths=True)
        saved = []
        with _session(graph) as sess:
            sess.run(v1.global_variables_initializer())
            for _ in range(num_saves):
                sess.run(train)
                saved.append(saver.save(sess, os.path.join(run_dir, PREFIX), global_step=global_step,
                                        write_meta_graph=False))
    return saved


class _Net(tf.Module):
    def __init__(self):
        super().__init__()
        self.w = tf.Variable(np.arange(6, dtype=np.float32).reshape(2, 3), name="w")
        self.b = tf.Variable(np.zeros(3, np.float32), name="b")


def manager_run(run_dir: str, num_saves: int = 5, max_to_keep: int = 2,
                keep_checkpoint_every_n_hours: float | None = None, with_optimizer: bool | str = False) -> list[str]:
    """A TF2 run: tf.train.Checkpoint(step, net[, optimizer]) saved by a CheckpointManager.

    with_optimizer: False, True / "keras" (Keras 3 Adam: 'optimizer/_variables/N'), or "v1"
    (tf.compat.v1.train.AdamOptimizer in eager mode: '<var>/.OPTIMIZER_SLOT/optimizer/m').
    """
    net = _Net()
    step = tf.Variable(0, dtype=tf.int64)
    objects = {"step": step, "net": net}
    optimizer = None
    if with_optimizer:
        optimizer = v1.train.AdamOptimizer(0.1) if with_optimizer == "v1" else tf.keras.optimizers.Adam(0.1)
        objects["optimizer"] = optimizer
    ckpt = tf.train.Checkpoint(**objects)
    manager = tf.train.CheckpointManager(ckpt, run_dir, max_to_keep=max_to_keep,
                                         keep_checkpoint_every_n_hours=keep_checkpoint_every_n_hours)
    saved = []
    for _ in range(num_saves):
        if optimizer is not None:
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.square(net.w)) + tf.reduce_sum(net.b)
            grads = tape.gradient(loss, [net.w, net.b])
            optimizer.apply_gradients(zip(grads, [net.w, net.b]))
        else:
            net.w.assign_add(tf.ones_like(net.w))
        step.assign_add(10)
        saved.append(manager.save(checkpoint_number=int(step.numpy())))
    return saved


# Every dtype a checkpoint can hold that numpy (with ml_dtypes) can represent, as exact test values.
def dtype_zoo() -> dict[str, np.ndarray]:
    """name -> value; names double as checkpoint keys (under 'zoo/')."""
    import ml_dtypes

    rng = np.random.default_rng(7)
    floats = rng.standard_normal((3, 5))
    values = {
        "float16": floats.astype(np.float16),
        "bfloat16": floats.astype(ml_dtypes.bfloat16),
        "float32": floats.astype(np.float32),
        "float64": np.array([[np.nan, np.inf, -np.inf, 0.0, -0.0], [1e-300, 1e300, 1.5, -2.5, 3.0]]),
        "complex64": (floats[0] + 1j * floats[1]).astype(np.complex64),
        "complex128": (floats[:, :2] - 3j * floats[:, 2:4]).astype(np.complex128),
        "bool": np.array([[True, False, True], [False, False, True]]),
        "int8": np.array([-128, -1, 0, 1, 127], np.int8),
        "uint8": np.array([0, 1, 200, 255], np.uint8),
        "int16": np.array([-32768, 0, 32767], np.int16),
        "uint16": np.array([0, 65535, 12345], np.uint16),
        "int32": np.array([[-(2**31), 0], [2**31 - 1, 5]], np.int32),
        "uint32": np.array([0, 2**32 - 1, 77], np.uint32),
        "int64": np.array([-(2**63), 0, 2**63 - 1], np.int64),
        "uint64": np.array([0, 2**64 - 1, 2**40], np.uint64),
        "string_1d": np.array([b"", b"a", b"hello world", "caf\u00e9".encode(), b"\x00\xff" * 70], dtype=object),
        "string_2d": np.array([[b"ab", b"c"], [b"", b"long " * 50]], dtype=object),
        "string_scalar": np.array(b"just one", dtype=object),
        "scalar_float32": np.array(2.5, np.float32),
        "scalar_int64": np.array(-7, np.int64),
        "empty_float32": np.zeros((0, 4), np.float32),
        "empty_int32": np.zeros((3, 0), np.int32),
        "empty_string": np.zeros((0,), dtype=object),
    }
    return values


def raw_bundle(prefix: str, tensors: dict[str, np.ndarray]) -> str:
    """Write `tensors` with TensorFlow's own SaveV2 op (what every Saver and Checkpoint runs)."""
    names = sorted(tensors)
    values = []
    for name in names:
        value = tensors[name]
        if value.dtype == object:
            values.append(tf.constant(value.tolist() if value.ndim else value.item(), dtype=tf.string,
                                      shape=value.shape))
        else:
            values.append(tf.constant(value))
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names), tensors=values)
    return prefix


def sharded_partitioned_run(run_dir: str, num_devices: int = 3) -> tuple[str, dict[str, np.ndarray]]:
    """A sharded v1 save (one data file per device) holding a partitioned variable.

    Returns the prefix and the expected value of every variable (read back from the session).
    """
    os.makedirs(run_dir, exist_ok=True)
    graph = tf.Graph()
    with graph.as_default():
        v1.train.get_or_create_global_step()
        created = []
        for d in range(num_devices):
            with tf.device(f"/cpu:{d}"), v1.variable_scope(f"tower{d}"):
                created.append(v1.get_variable("w", [d + 2, 3], initializer=v1.random_normal_initializer(seed=d)))
        with tf.device("/cpu:1"):
            part = v1.get_variable("embedding", [10, 4], partitioner=v1.fixed_size_partitioner(3),
                                   initializer=v1.random_uniform_initializer(-1.0, 1.0, seed=3))
        saver = v1.train.Saver(sharded=True, max_to_keep=2)
        with _session(graph, num_devices) as sess:
            sess.run(v1.global_variables_initializer())
            values = {v.op.name: sess.run(v) for v in created}
            values["embedding"] = sess.run(part.as_tensor())
            values["global_step"] = sess.run(v1.train.get_global_step())
            prefix = saver.save(sess, os.path.join(run_dir, PREFIX), global_step=0, write_meta_graph=False)
    return prefix, values
