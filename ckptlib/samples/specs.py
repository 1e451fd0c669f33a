"""Fixed settings of every sample run: hyperparameters, seeds, save schedules, simulated calendar."""

from __future__ import annotations

from dataclasses import dataclass

# 2024-03-01T09:00:00Z: the simulated clock's origin; each run starts one simulated day later.
CLOCK_ORIGIN = 1709283600.0
DAY = 86400.0
MINUTE = 60.0
OTHER_MACHINE = "/mnt/cluster/alice/run7"


@dataclass(frozen=True)
class CnnSpec:
    """Hyperparameters of one graph-mode CNN run."""

    name: str
    learning_rate: float
    batch_size: int
    keep_prob: float
    steps: int
    save_every: int
    seed: int
    max_to_keep: int = 5
    keep_every_n_hours: float = 0.25
    minutes_per_save: float = 8.0  # simulated; 0.25 h = 1.875 save intervals


CNN_RUNS = (
    CnnSpec("lr3e-3_bs100", learning_rate=3e-3, batch_size=100, keep_prob=0.75, steps=1000,
            save_every=100, seed=1),
    CnnSpec("lr5e-3_bs50", learning_rate=5e-3, batch_size=50, keep_prob=0.9, steps=1000,
            save_every=100, seed=2),
)
CLUSTER_RUN = CnnSpec("from_cluster", learning_rate=1e-3, batch_size=100, keep_prob=0.75, steps=700,
                      save_every=100, seed=7, keep_every_n_hours=0.2)  # 0.2 h = 1.5 intervals
CNN_HIDDEN = 32  # 64 costs twice the disk; 32 still reaches ~98% with these runs
TF2_STEPS, TF2_SAVE_EVERY, TF2_HIDDEN, TF2_SEED, TF2_LR, TF2_BATCH = 400, 50, 32, 3, 3e-3, 100
TF2_KEEP_HOURS, TF2_MINUTES_PER_SAVE = 0.2, 8.0
LINEAR_STEPS, LINEAR_SAVE_EVERY, LINEAR_SEED, LINEAR_LR = 500, 100, 0, 0.1
LINEAR_TRUE_W, LINEAR_TRUE_B = (2.0, -3.4, 1.7), 4.2
OUTPUT_NODES = ("logits/logits", "prediction/probabilities")
# mnist_keras: a keras.Sequential MLP trained by model.fit on the first KERAS_TRAIN images of a fixed permutation
KERAS_TRAIN, KERAS_EPOCHS, KERAS_BATCH, KERAS_HIDDEN, KERAS_SEED, KERAS_LR = 12000, 5, 100, 32, 4, 2e-3
KERAS_MAX_TO_KEEP, KERAS_MINUTES_PER_EPOCH = 3, 2.0
