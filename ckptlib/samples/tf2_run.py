"""The `mnist_tf2/` sample run: a tf.Module MLP saved by tf.train.CheckpointManager."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .clock import check_kept, simulated_clock, stamp
from .data import Mnist, minibatches
from .progress import progress
from .specs import (MINUTE, TF2_BATCH, TF2_HIDDEN, TF2_KEEP_HOURS, TF2_LR, TF2_MINUTES_PER_SAVE, TF2_SAVE_EVERY,
                    TF2_SEED, TF2_STEPS)


def make_tf2(tf, run_dir: Path, data: Mnist, start: float) -> dict:
    import keras  # pylint: disable=import-outside-toplevel

    class Dense(tf.Module):
        def __init__(self, units_in: int, units_out: int, seed: int, name: str):
            super().__init__(name=name)
            scale = np.sqrt(2.0 / units_in)
            self.w = tf.Variable(
                tf.random.stateless_normal([units_in, units_out], seed=[TF2_SEED, seed]) * scale,
                name="w")
            self.b = tf.Variable(tf.zeros([units_out]), name="b")

        def __call__(self, inputs):
            return tf.matmul(inputs, self.w) + self.b

    class Mlp(tf.Module):
        def __init__(self):
            super().__init__(name="mlp")
            self.hidden = Dense(784, TF2_HIDDEN, 1, "hidden")
            self.out = Dense(TF2_HIDDEN, 10, 2, "out")

        @tf.function(input_signature=[tf.TensorSpec([None, 784], tf.float32)])
        def __call__(self, images):
            return self.out(tf.nn.relu(self.hidden(images)))

    tf.random.set_seed(TF2_SEED)
    model = Mlp()
    optimizer = keras.optimizers.Adam(learning_rate=TF2_LR)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)

    @tf.function
    def train_step(images, labels):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=labels, logits=model(images)))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    batches = minibatches(np.random.RandomState(TF2_SEED), len(data.train_y), TF2_BATCH)
    with simulated_clock(start) as clock:
        manager = tf.train.CheckpointManager(
            checkpoint, str(run_dir), max_to_keep=3, keep_checkpoint_every_n_hours=TF2_KEEP_HOURS)
        saves = []
        for step in range(1, TF2_STEPS + 1):
            index = next(batches)
            loss = train_step(tf.constant(data.train_x[index]), tf.constant(data.train_y[index]))
            if step % TF2_SAVE_EVERY == 0:
                clock.now = start + step / TF2_SAVE_EVERY * TF2_MINUTES_PER_SAVE * MINUTE
                prefix = manager.save()
                stamp(Path(prefix), clock.now)
                saves.append((Path(prefix).name, step))
        progress(f"mnist_tf2: {TF2_STEPS} steps, batch loss {float(loss):.4f}")
    logits = model(tf.constant(data.test_x)).numpy()
    accuracy = float(np.mean(np.argmax(logits, axis=1) == data.test_y))
    check_kept(run_dir, "ckpt", [2, 4, 6, 7, 8])
    return {"accuracy": accuracy, "saves": saves}
