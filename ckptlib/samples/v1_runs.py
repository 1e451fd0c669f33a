"""The graph-mode sample runs: `linear/` and the MNIST CNNs, trained, saved by the v1 Saver and frozen."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .clock import check_kept, expected_v1_kept, record_save_times, simulated_clock, stamp
from .data import Mnist, minibatches
from .progress import progress
from .specs import (CNN_HIDDEN, LINEAR_LR, LINEAR_SAVE_EVERY, LINEAR_SEED, LINEAR_STEPS, LINEAR_TRUE_B, LINEAR_TRUE_W,
                    MINUTE, OUTPUT_NODES, CnnSpec)

# linear: y = W.x + b by gradient descent


def make_linear(tf, run_dir: Path, start: float) -> dict:
    rng = np.random.RandomState(LINEAR_SEED)
    x_data = rng.uniform(-1.0, 1.0, size=(256, 3)).astype(np.float32)
    noise = rng.normal(0.0, 0.01, size=(256, 1)).astype(np.float32)
    y_data = x_data @ np.array(LINEAR_TRUE_W, np.float32).reshape(3, 1) + LINEAR_TRUE_B + noise
    graph = tf.Graph()
    with graph.as_default(), simulated_clock(start) as clock:
        tf.compat.v1.set_random_seed(LINEAR_SEED)
        x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
        y = tf.compat.v1.placeholder(tf.float32, [None, 1], name="y")
        with tf.compat.v1.variable_scope("linear"):
            weights = tf.compat.v1.get_variable(
                "weights", [3, 1], initializer=tf.compat.v1.random_normal_initializer(stddev=0.1))
            bias = tf.compat.v1.get_variable("bias", [1], initializer=tf.compat.v1.zeros_initializer())
            prediction = tf.add(tf.matmul(x, weights), bias, name="prediction")
        loss = tf.reduce_mean(tf.square(prediction - y), name="loss")
        global_step = tf.compat.v1.train.get_or_create_global_step()
        train_op = tf.compat.v1.train.GradientDescentOptimizer(LINEAR_LR).minimize(
            loss, global_step=global_step, name="train")
        saver = tf.compat.v1.train.Saver(save_relative_paths=True)
        saved_at = {}
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for step in range(1, LINEAR_STEPS + 1):
                _, loss_value = sess.run([train_op, loss], {x: x_data, y: y_data})
                if step % LINEAR_SAVE_EVERY == 0:
                    clock.now = start + step * 0.1  # a tenth of a second per step
                    prefix = saver.save(sess, str(run_dir / "model.ckpt"), global_step=step)
                    stamp(Path(prefix), clock.now)
                    saved_at[Path(prefix).name] = clock.now
            w_value, b_value = sess.run([weights, bias])
    record_save_times(run_dir, saved_at)
    check_kept(run_dir, "model.ckpt", list(range(100, LINEAR_STEPS + 1, LINEAR_SAVE_EVERY)))
    progress(f"linear: {LINEAR_STEPS} steps, loss {loss_value:.6f}")
    return {"loss": float(loss_value), "w": w_value.ravel().tolist(), "b": float(b_value[0])}


# the graph-mode CNN (mnist_cnn/ and from_cluster/)


class CnnGraph(NamedTuple):
    images: object
    labels: object
    keep_prob: object
    logits: object
    probabilities: object
    loss: object
    accuracy: object
    train_op: object


def _conv_block(tf, scope: str, inputs, channels_in: int, channels_out: int):
    with tf.compat.v1.variable_scope(scope):
        weights = tf.compat.v1.get_variable(
            "weights", [3, 3, channels_in, channels_out],
            initializer=tf.compat.v1.truncated_normal_initializer(stddev=0.1))
        biases = tf.compat.v1.get_variable(
            "biases", [channels_out], initializer=tf.compat.v1.constant_initializer(0.1))
        conv = tf.nn.conv2d(inputs, weights, strides=1, padding="SAME", name="conv")
        relu = tf.nn.relu(conv + biases, name="relu")
        return tf.nn.max_pool2d(relu, ksize=2, strides=2, padding="SAME", name="pool")


def _dense(tf, scope: str, inputs, units_in: int, units_out: int):
    weights = tf.compat.v1.get_variable(
        "weights", [units_in, units_out],
        initializer=tf.compat.v1.truncated_normal_initializer(stddev=0.1))
    biases = tf.compat.v1.get_variable(
        "biases", [units_out], initializer=tf.compat.v1.constant_initializer(0.1))
    return tf.add(tf.matmul(inputs, weights), biases, name=scope)


def build_cnn(tf, spec: CnnSpec) -> CnnGraph:
    """The tutorial-style MNIST CNN in the current default graph."""
    tf.compat.v1.set_random_seed(spec.seed)
    images = tf.compat.v1.placeholder(tf.float32, [None, 784], name="input")
    keep_prob = tf.compat.v1.placeholder(tf.float32, [], name="keep_prob")
    labels = tf.compat.v1.placeholder(tf.int64, [None], name="labels")
    hidden = tf.reshape(images, [-1, 28, 28, 1], name="reshape")
    hidden = _conv_block(tf, "conv1", hidden, 1, 8)
    hidden = _conv_block(tf, "conv2", hidden, 8, 16)
    hidden = tf.reshape(hidden, [-1, 7 * 7 * 16], name="flatten")
    with tf.compat.v1.variable_scope("fc1"):
        hidden = tf.nn.relu(_dense(tf, "dense", hidden, 7 * 7 * 16, CNN_HIDDEN), name="relu")
        hidden = tf.nn.dropout(hidden, rate=1.0 - keep_prob, name="dropout")
    with tf.compat.v1.variable_scope("logits"):
        logits = _dense(tf, "logits", hidden, CNN_HIDDEN, 10)
    with tf.name_scope("prediction"):
        probabilities = tf.nn.softmax(logits, name="probabilities")
    with tf.name_scope("loss"):
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits),
            name="cross_entropy")
    with tf.name_scope("accuracy"):
        correct = tf.equal(tf.argmax(logits, 1), labels, name="correct")
        accuracy = tf.reduce_mean(tf.cast(correct, tf.float32), name="accuracy")
    global_step = tf.compat.v1.train.get_or_create_global_step()
    train_op = tf.compat.v1.train.AdamOptimizer(spec.learning_rate).minimize(
        loss, global_step=global_step, name="train")
    tf.compat.v1.add_to_collection("inputs", images)
    tf.compat.v1.add_to_collection("outputs", logits)
    tf.compat.v1.add_to_collection("probabilities", probabilities)
    return CnnGraph(images, labels, keep_prob, logits, probabilities, loss, accuracy, train_op)


def train_cnn(tf, spec: CnnSpec, run_dir: Path, data: Mnist, start: float, label: str,
              relative_paths: bool = True):
    """Train `spec`, saving every `save_every` steps; returns (session-free) frozen GraphDef."""
    graph = tf.Graph()
    with graph.as_default(), simulated_clock(start) as clock:
        net = build_cnn(tf, spec)
        saver = tf.compat.v1.train.Saver(
            max_to_keep=spec.max_to_keep, keep_checkpoint_every_n_hours=spec.keep_every_n_hours,
            save_relative_paths=relative_paths)
        rng = np.random.RandomState(spec.seed)
        batches = minibatches(rng, len(data.train_y), spec.batch_size)
        began = time.monotonic()
        saved_at = {}
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for step in range(1, spec.steps + 1):
                index = next(batches)
                _, loss_value = sess.run(
                    [net.train_op, net.loss],
                    {net.images: data.train_x[index], net.labels: data.train_y[index],
                     net.keep_prob: spec.keep_prob})
                if step % spec.save_every == 0:
                    clock.now = start + step / spec.save_every * spec.minutes_per_save * MINUTE
                    prefix = saver.save(sess, str(run_dir / "model.ckpt"), global_step=step)
                    stamp(Path(prefix), clock.now)
                    saved_at[Path(prefix).name] = clock.now
                    progress(f"{label}: step {step}/{spec.steps}, batch loss {loss_value:.4f}, "
                             f"{time.monotonic() - began:.1f} s")
            frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
                sess, graph.as_graph_def(), list(OUTPUT_NODES))
    record_save_times(run_dir, saved_at)
    protected = list(OUTPUT_NODES) + ["input", "keep_prob"]
    return tf.compat.v1.graph_util.remove_training_nodes(frozen, protected_nodes=protected)


def evaluate_frozen(tf, pb_path: Path, images: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of a frozen CNN GraphDef, run directly in a tf.compat.v1.Session."""
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(pb_path.read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    correct = 0
    with tf.compat.v1.Session(graph=graph) as sess:
        for start in range(0, len(labels), 1000):
            probabilities = sess.run("prediction/probabilities:0", {
                "input:0": images[start:start + 1000], "keep_prob:0": 1.0})
            correct += int(np.sum(np.argmax(probabilities, axis=1) == labels[start:start + 1000]))
    return correct / len(labels)


def make_cnn(tf, spec: CnnSpec, run_dir: Path, data: Mnist, start: float) -> dict:
    run_dir.mkdir(parents=True)
    frozen = train_cnn(tf, spec, run_dir, data, start, f"mnist_cnn/{spec.name}")
    pb_path = run_dir / "frozen.pb"
    pb_path.write_bytes(frozen.SerializeToString(deterministic=True))
    final = start + spec.steps / spec.save_every * spec.minutes_per_save * MINUTE
    os.utime(pb_path, (final, final))
    kept = expected_v1_kept(spec)
    check_kept(run_dir, "model.ckpt", kept)
    accuracy = evaluate_frozen(tf, pb_path, data.test_x, data.test_y)
    progress(f"mnist_cnn/{spec.name}: frozen.pb test accuracy {accuracy:.4f}")
    return {"kept": kept, "accuracy": accuracy, "frozen_nodes": len(frozen.node)}
