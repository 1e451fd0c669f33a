"""Frozen dataclasses of freezing and evaluation: limits, results, the test set, accuracy over a run."""

from __future__ import annotations

from dataclasses import dataclass

from ckptlib.runs.types import SkippedCheckpoint


DEFAULT_TIME_S = 120
DEFAULT_MEMORY_MB = 4096


@dataclass(frozen=True)
class Limits:
    """What the child process that runs a graph may use: seconds per graph and megabytes of memory."""

    time_s: float = DEFAULT_TIME_S
    memory_mb: int = DEFAULT_MEMORY_MB

    @property
    def doc(self) -> dict:
        """{"time_s", "memory_mb"} for JSON documents."""
        return {"time_s": self.time_s, "memory_mb": self.memory_mb}


@dataclass(frozen=True)
class FreezeResult:
    """A frozen GraphDef written by `freeze`."""

    output: str  # the .pb path written
    checkpoint: str  # the checkpoint prefix whose values were frozen
    num_nodes: int
    bytes: int
    outputs: tuple[str, ...]  # output node names
    cleared_devices: tuple[str, ...]  # pins the frozen ops had in the meta graph, cleared
    num_variables: int = 0  # variables turned into constants


@dataclass(frozen=True)
class MnistTestSet:
    """The MNIST test set: uint8 images [N, 28, 28] and uint8 labels [N]."""

    images: object  # numpy uint8 array [N, 28, 28]
    labels: object  # numpy uint8 array [N]
    source: str  # where it was read from, for people

    @property
    def num_examples(self) -> int:
        return int(len(self.labels))


@dataclass(frozen=True)
class EvalMetric:
    """A metric tensor read while evaluating: its batch values' mean weighted by batch size."""

    name: str
    value: float


@dataclass(frozen=True)
class EvalResult:
    """Accuracy of a frozen graph on the MNIST test set."""

    model: str  # the .pb (or checkpoint prefix) evaluated
    accuracy: float
    num_examples: int
    per_class_accuracy: tuple[float | None, ...]  # 10 entries; None for a class with no examples
    confusion: tuple[tuple[int, ...], ...]  # 10x10: rows true class, columns predicted class
    images_per_second: float
    device: str  # e.g. 'CPU' or 'GPU:0 (NVIDIA A100-SXM4-40GB)'
    input: str  # tensor names ('x:0')
    output: str
    output_kind: str  # logits | probabilities | class_ids
    feeds: tuple[tuple[str, object], ...]  # placeholder -> value fed (defaults and --feed), sorted
    metric: EvalMetric | None
    dataset_source: str
    batch_size: int
    raw_pixels: bool = False
    misclassified: tuple[tuple[int, int, int], ...] = ()  # (test index, true, predicted), the first ones
    padding: int = 0  # zero pixels added on each side of the 28x28 digits (2 for a 32x32 LeNet input)

    @property
    def num_correct(self) -> int:
        return int(sum(row[i] for i, row in enumerate(self.confusion)))


@dataclass(frozen=True)
class EvalPoint:
    """Accuracy of one checkpoint of a run."""

    step: int | None
    prefix: str
    accuracy: float
    num_examples: int
    meta: str = ""  # the .meta whose graph was frozen (another checkpoint's when this one has none)
    metric: float | None = None  # the graph's own metric tensor (--metric), when asked for


@dataclass(frozen=True)
class EvalHistory:
    """Accuracy over a run's checkpoints."""

    run: str
    points: tuple[EvalPoint, ...]  # sorted by step
    skipped: tuple[SkippedCheckpoint, ...]  # reason says why; variable is None
    dataset_source: str = ""
    device: str = ""

    @property
    def best(self) -> EvalPoint | None:
        return max(self.points, key=lambda p: p.accuracy) if self.points else None
