"""Build the graphs the graph/freeze/evaluate tests need: a tutorial-style softmax regression trained on
a slice of MNIST, frozen variants with other input layouts, and hostile graphs. TensorFlow writes every
byte; every helper writes only under the folder it is given.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from ckptlib._tf import tf as _import_tf  # noqa: E402  (banners silenced like the library does)
from ckptlib.evaluate.mnist_idx import find_split, load_idx_pair  # noqa: E402

tf = _import_tf()
v1 = tf.compat.v1
MNIST_DIR = os.environ.get("CKPTLIB_MNIST_DIR") or "/work/shared/data/mnist"
LOGITS = "softmax_linear/add"
STEPS = (100, 200, 300)  # saves; the one at 200 is written without its .meta


def mnist_train(count: int = 6000) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` training images as float32 [N, 784] in [0, 1] and int64 labels."""
    images, labels = load_idx_pair(*find_split(MNIST_DIR, "train"))
    return images[:count].reshape(count, 784).astype(np.float32) / 255.0, labels[:count].astype(np.int64)


def mnist_test() -> tuple[np.ndarray, np.ndarray]:
    images, labels = load_idx_pair(*find_split(MNIST_DIR, "t10k"))
    return images, labels


def _session(graph, soft: bool = False):
    config = v1.ConfigProto(allow_soft_placement=soft, inter_op_parallelism_threads=1,
                            intra_op_parallelism_threads=2)
    return v1.Session(graph=graph, config=config)


def softmax_run(run_dir: str, device: str | None = None) -> dict:
    """A tutorial-style run (TF's old mnist.py): x, labels, an unnamed keep_prob placeholder (dropout),
    logits 'softmax_linear/add' consumed by the loss and by in_top_k, summaries, GradientDescent,
    global_step; saved at STEPS. Returns prefixes and the final weights."""
    os.makedirs(run_dir, exist_ok=True)
    train_x, train_y = mnist_train()
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(1)
        x = v1.placeholder(tf.float32, [None, 784], name="x")
        labels = v1.placeholder(tf.int64, [None], name="labels")
        keep_prob = v1.placeholder(tf.float32)  # unnamed and shapeless, as in the tutorials
        with tf.device(device) if device else _nothing(), v1.variable_scope("softmax_linear"):
            weights = v1.get_variable("weights", [784, 10], initializer=v1.zeros_initializer())
            biases = v1.get_variable("biases", [10], initializer=v1.zeros_initializer())
            logits = tf.matmul(v1.nn.dropout(x, keep_prob), weights) + biases
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits),
                              name="xent")
        v1.summary.scalar("loss", loss)
        correct = v1.nn.in_top_k(logits, labels, 1)
        tf.reduce_mean(tf.cast(correct, tf.float32), name="accuracy")
        global_step = v1.train.get_or_create_global_step()
        train = v1.train.GradientDescentOptimizer(0.5).minimize(loss, global_step=global_step)
        v1.add_to_collection("my_numbers", 7)
        v1.add_to_collection("my_floats", 0.5)
        v1.add_to_collection("my_strings", "hello")
        v1.add_to_collection("my_tensors", logits)
        saver = v1.train.Saver(max_to_keep=5, save_relative_paths=True)
        rng = np.random.RandomState(0)
        prefixes = []
        with _session(graph, soft=bool(device)) as sess:
            sess.run(v1.global_variables_initializer())
            for step in range(1, STEPS[-1] + 1):
                batch = rng.randint(0, len(train_y), 100)
                sess.run(train, {x: train_x[batch], labels: train_y[batch], keep_prob: 0.9})
                if step in STEPS:
                    prefixes.append(saver.save(sess, os.path.join(run_dir, "model.ckpt"), global_step=step,
                                               write_meta_graph=step != 200))
            w, b = sess.run([weights, biases])
    return {"run": run_dir, "prefixes": prefixes, "weights": w, "biases": b}


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def reference_accuracy(weights: np.ndarray, biases: np.ndarray, images: np.ndarray, labels: np.ndarray,
                       scale: float = 255.0) -> float:
    """Accuracy of x.W + b computed by a direct tf.compat.v1.Session run (the cross-check)."""
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 784])
        logits = tf.matmul(x, tf.constant(weights)) + tf.constant(biases)
        with _session(graph) as sess:
            out = sess.run(logits, {x: images.reshape(len(images), 784).astype(np.float32) / scale})
    return float(np.mean(np.argmax(out, axis=1) == labels))


def write_graph(path: str, build) -> str:
    """Run `build()` in a fresh graph and write that graph's GraphDef to `path`."""
    graph = tf.Graph()
    with graph.as_default():
        build()
    with open(path, "wb") as handle:
        handle.write(graph.as_graph_def().SerializeToString())
    return path


def linear_pb(path: str, weights, biases, *, shape=(None, 784), labels: str | None = None,
              metric: bool = False, extra: str | None = None, head: str = "logits", divide: bool = False) -> str:
    """A frozen x.W + b graph with the input layout `shape`, optional labels ('ids' or 'one_hot') and an
    'accuracy' metric, an extra placeholder ('keep_prob', 'is_training', 'mask') and a head: 'logits',
    'probabilities' (softmax) or 'class_ids' (argmax). `divide` scales raw 0-255 pixels inside the graph."""
    def build():
        x = v1.placeholder(tf.float32, list(shape), name="images")
        flat = tf.reshape(x, [-1, 784])
        if divide:
            flat = flat / 255.0
        if extra == "keep_prob":
            flat = v1.nn.dropout(flat, v1.placeholder(tf.float32, [], name="keep_prob"))
        elif extra == "is_training":
            flat = tf.cond(v1.placeholder(tf.bool, [], name="is_training"), lambda: flat * 0.0, lambda: flat)
        scores = tf.matmul(flat, tf.constant(weights))
        if extra == "mask":  # a per-class mask: [N, 10], not image-shaped
            scores = scores * v1.placeholder(tf.float32, [None, 10], name="mask")
        logits = tf.add(scores, tf.constant(biases), name="logits")
        if head == "probabilities":
            tf.nn.softmax(logits, name="probabilities")
        elif head == "class_ids":
            tf.argmax(logits, 1, name="class_ids")
        if labels:
            y = v1.placeholder(tf.int64 if labels == "ids" else tf.float32,
                               [None] if labels == "ids" else [None, 10], name="labels")
            ids = y if labels == "ids" else tf.argmax(y, 1)
            tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), ids), tf.float32), name="accuracy")
    return write_graph(path, build)


def hostile_pb(path: str, op: str, target: str) -> str:
    """A frozen-looking graph whose output depends on ReadFile or WriteFile of `target`."""
    def build():
        x = v1.placeholder(tf.float32, [None, 784], name="images")
        if op == "WriteFile":
            side = tf.io.write_file(target, "pwned")
            with tf.control_dependencies([side]):
                x = tf.identity(x)
        else:
            x = x + tf.cast(tf.strings.length(tf.io.read_file(target)), tf.float32)
        tf.matmul(x, tf.zeros([784, 10]), name="logits")
    return write_graph(path, build)
