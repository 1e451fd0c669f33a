"""Frozen dataclasses of a graph: ops, collections, saver, signatures, suggested inputs and outputs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GraphOp:
    """One node of a graph."""

    name: str
    type: str
    device: str  # '' when not pinned (or when devices were cleared)
    inputs: tuple[str, ...]  # 'name', 'name:1' (second output), '^name' (control dependency)


@dataclass(frozen=True)
class CollectionInfo:
    """One collection of a meta graph, its items decoded to readable names or values."""

    key: str
    kind: str  # node_list | bytes_list | int64_list | float_list | any_list | empty
    items: tuple[str, ...]  # tensor/op/variable names; numbers and strings as text


@dataclass(frozen=True)
class PlaceholderInfo:
    """A placeholder: a value the graph expects to be fed."""

    name: str
    dtype: str
    shape: tuple[int | None, ...] | None  # None: unknown rank; None inside: unknown dimension
    has_default: bool  # PlaceholderWithDefault: runs without being fed
    role: str  # input | labels | keep_prob | dropout_rate | training_flag | other (a guess)


@dataclass(frozen=True)
class OutputCandidate:
    """An op that looks like the end of the inference subgraph, with why."""

    name: str
    type: str
    reason: str


@dataclass(frozen=True)
class SaverInfo:
    """The meta graph's SaverDef."""

    filename_tensor: str
    save_tensor: str
    restore_op: str
    max_to_keep: int
    keep_checkpoint_every_n_hours: float
    sharded: bool
    version: str  # V1 | V2


@dataclass(frozen=True)
class SignatureTensor:
    """One input or output of a SignatureDef."""

    key: str
    name: str
    dtype: str
    shape: tuple[int | None, ...] | None


@dataclass(frozen=True)
class SignatureInfo:
    """One SignatureDef of a meta graph."""

    key: str
    method_name: str
    inputs: tuple[SignatureTensor, ...]
    outputs: tuple[SignatureTensor, ...]


@dataclass(frozen=True)
class MetaGraphInfo:
    """What a `.meta` file holds, as `graph` reports it."""

    path: str
    tensorflow_version: str
    tags: tuple[str, ...]
    ops: tuple[GraphOp, ...]  # in graph order
    collections: tuple[CollectionInfo, ...]  # sorted by key
    op_type_counts: tuple[tuple[str, int], ...]  # most frequent first
    devices: tuple[str, ...]  # distinct device pins still in `ops`
    cleared_devices: tuple[str, ...]  # pins removed because clear_devices was asked for
    saver: SaverInfo | None
    signatures: tuple[SignatureInfo, ...]
    suggested_inputs: tuple[PlaceholderInfo, ...]
    suggested_outputs: tuple[OutputCandidate, ...]
    num_functions: int = 0  # functions in the graph's library (their ops are not listed)
    functions: tuple[str, ...] = ()  # their names, sorted
    meta_graphs: tuple[tuple[str, ...], ...] = ()  # a SavedModel's meta graphs by tag set (this one is the first)

    @property
    def num_ops(self) -> int:
        return len(self.ops)


@dataclass(frozen=True)
class NodeDefInfo:
    """One node_def with its attributes made readable."""

    name: str
    type: str
    device: str
    inputs: tuple[str, ...]
    consumers: tuple[str, ...]  # nodes that take one of its outputs or depend on it
    attrs: tuple[tuple[str, object], ...]  # (key, JSON-safe value: str, number, bool, list or dict)
