"""Graphs laid out like the classic TF1 MNIST tutorials, built for real and trained on a slice of MNIST:
"MNIST for ML beginners" (every op unnamed), its logits variant, and a batch-norm model whose tf.cond is
control flow v2 over resource variables. Every helper writes only under the folder it is given.
"""

from __future__ import annotations

import os

import numpy as np
from graphbuild import _session, mnist_train, tf, v1

BATCH = 100


def one_hot(labels: np.ndarray) -> np.ndarray:
    out = np.zeros((len(labels), 10), np.float32)
    out[np.arange(len(labels)), labels] = 1.0
    return out


def beginners(head: str = "softmax", log_eps: bool = False, accuracy: bool = True) -> dict:
    """The beginners' tutorial in the default graph: x = Placeholder, y_ = Placeholder_1 (one-hot), both
    unnamed. head 'softmax': y = softmax(xW + b) and cross_entropy = mean(-sum(y_ * log(y))) (log(y + 1e-10)
    with `log_eps`); head 'logits': softmax_cross_entropy_with_logits on xW + b. The accuracy is
    mean(cast(equal(argmax(y), argmax(y_)))). GradientDescent trains it."""
    x = v1.placeholder(tf.float32, [None, 784])
    W = tf.Variable(tf.zeros([784, 10]))
    b = tf.Variable(tf.zeros([10]))
    logits = tf.matmul(x, W) + b
    y_ = v1.placeholder(tf.float32, [None, 10])
    if head == "softmax":
        y = tf.nn.softmax(logits)
        cross_entropy = tf.reduce_mean(-tf.reduce_sum(y_ * tf.math.log(y + 1e-10 if log_eps else y), axis=[1]))
    else:
        y = logits
        cross_entropy = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y_, logits=logits))
    train = v1.train.GradientDescentOptimizer(0.5).minimize(cross_entropy)
    acc = None
    if accuracy:
        correct = tf.equal(tf.argmax(y, 1), tf.argmax(y_, 1))
        acc = tf.reduce_mean(tf.cast(correct, tf.float32))
    return {"x": x, "labels": y_, "out": y, "loss": cross_entropy, "accuracy": acc, "train": train,
            "train_feeds": {}, "eval_feeds": {}}


def batch_norm_cond_v2() -> dict:
    """A hidden layer with hand-written batch norm whose statistics come from tf.cond(is_training, batch
    moments, moving averages), then tf.cond(is_training, dropout, identity): in a TF2-behaviour graph each
    cond is an If op over resource variables, and building the gradients rewrites the dropout's branches
    to return their intermediates wrapped in OptionalFromValue / OptionalNone."""
    x = v1.placeholder(tf.float32, [None, 784], name="x")
    y_ = v1.placeholder(tf.float32, [None, 10], name="y")
    is_training = v1.placeholder(tf.bool, [], name="is_training")
    init = v1.truncated_normal_initializer(stddev=0.1, seed=1)
    with v1.variable_scope("fc1"):
        z = tf.matmul(x, v1.get_variable("w", [784, 64], initializer=init, use_resource=True))
        gamma = v1.get_variable("gamma", [64], initializer=v1.ones_initializer(), use_resource=True)
        beta = v1.get_variable("beta", [64], initializer=v1.zeros_initializer(), use_resource=True)
        moving_mean = v1.get_variable("moving_mean", [64], initializer=v1.zeros_initializer(), trainable=False,
                                      use_resource=True)
        moving_var = v1.get_variable("moving_var", [64], initializer=v1.ones_initializer(), trainable=False,
                                     use_resource=True)
        batch_mean, batch_var = tf.nn.moments(z, [0])
        updates = [moving_mean.assign(0.9 * moving_mean + 0.1 * batch_mean),
                   moving_var.assign(0.9 * moving_var + 0.1 * batch_var)]
        mean, var = tf.cond(is_training, lambda: (batch_mean, batch_var),
                            lambda: (tf.identity(moving_mean), tf.identity(moving_var)))
        hidden = tf.nn.relu(tf.nn.batch_normalization(z, mean, var, beta, gamma, 1e-3))
        hidden = tf.cond(is_training, lambda: tf.nn.dropout(hidden, rate=0.3, seed=2), lambda: hidden)
    with v1.variable_scope("out"):
        logits = tf.matmul(hidden, v1.get_variable("w", [64, 10], initializer=init, use_resource=True)) + \
            v1.get_variable("b", [10], initializer=v1.zeros_initializer(), use_resource=True)
    prediction = tf.nn.softmax(logits, name="prediction")
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y_, logits=logits))
    with tf.control_dependencies(updates):
        train = v1.train.AdamOptimizer(1e-3).minimize(loss)
    acc = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(prediction, 1), tf.argmax(y_, 1)), tf.float32))
    return {"x": x, "labels": y_, "out": prediction, "logits": logits, "loss": loss, "accuracy": acc,
            "train": train, "train_feeds": {is_training: True}, "eval_feeds": {is_training: False}}


def train_and_save(run_dir: str, build, steps: int = 150) -> dict:
    """Build `build()` in a fresh graph, train `steps` batches of the first 6000 training images, save once
    with a v1 Saver (+ .meta). Returns the prefix and the op names of the dict's tensors."""
    os.makedirs(run_dir, exist_ok=True)
    train_x, train_y = mnist_train()
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(1)
        model = build()
        saver = v1.train.Saver()
        rng = np.random.RandomState(0)
        with _session(graph) as sess:
            sess.run(v1.global_variables_initializer())
            for _ in range(steps):
                batch = rng.randint(0, len(train_y), BATCH)
                sess.run(model["train"], {model["x"]: train_x[batch], model["labels"]: one_hot(train_y[batch]),
                                          **model["train_feeds"]})
            prefix = saver.save(sess, os.path.join(run_dir, "model.ckpt"), global_step=steps)
    names = {k: v.op.name for k, v in model.items() if hasattr(v, "op")}
    names["eval_feeds"] = {t.op.name: value for t, value in model["eval_feeds"].items()}
    return {"prefix": prefix, "names": names, "ops": {op.type for op in graph.get_operations()},
            "function_ops": {n.op for f in graph.as_graph_def().library.function for n in f.node_def}}


def session_accuracy(prefix: str, output: str, input_name: str, images: np.ndarray, labels: np.ndarray,
                     feeds: dict | None = None) -> float:
    """The checkpoint's accuracy computed directly: import its .meta, restore, run `output` in a
    tf.compat.v1.Session on images scaled to [0, 1] (the cross-check for ckptlib's evaluation)."""
    graph = tf.Graph()
    with graph.as_default():
        saver = v1.train.import_meta_graph(prefix + ".meta", clear_devices=True)
        with _session(graph) as sess:
            saver.restore(sess, prefix)
            fed = {graph.get_tensor_by_name(k + ":0"): v for k, v in (feeds or {}).items()}
            fed[graph.get_tensor_by_name(input_name + ":0")] = \
                images.reshape(len(images), 784).astype(np.float32) / 255.0
            out = sess.run(graph.get_tensor_by_name(output + ":0"), fed)
    return float(np.mean(np.argmax(out, axis=1) == labels))
