"""Freeze a checkpoint into a GraphDef `.pb`: variables become constants, only what the outputs need stays.

    >>> result = freeze("run/model.ckpt-1000", ["logits/logits"], "/tmp/model.pb")
    >>> result.num_nodes, result.num_variables, result.cleared_devices
    (41, 6, ('/device:GPU:0',))

Nothing of the checkpoint's graph runs: the ops the outputs need are checked against opsafety's
allowlist before anything else, each variable's value is read from the checkpoint named (and no
other: a .meta whose restore op reads a fixed path is not obeyed) by ckptlib's own reader, and the
variable ops are replaced by constants holding them (constfreeze.py). The work happens in a child
process bounded by the limits (sandbox.py), like every graph ckptlib runs.

The checkpoint folder is only read: the `.pb` goes to `out` and nowhere else, and an `out` inside the
checkpoint's folder (or any folder holding checkpoint files) is refused.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ckptlib import errors
from ckptlib.errors import GraphTooLarge, NodeNotFound, UnsafeDestination
from ckptlib.evaluate import constfreeze, opsafety, queues, sandbox, varkeys
from ckptlib.evaluate.limits import make_limits
from ckptlib.evaluate.types import FreezeResult
from ckptlib.formats import bundle, open_checkpoint
from ckptlib.graph import scan as graphscan, metagraph
from ckptlib.runs.resolve import resolve_prefix

PROTOBUF_LIMIT = 2**31 - 1  # protobuf refuses to serialize a message of 2 GB or more
_VARIABLE_OPS = frozenset({"VariableV2", "Variable", "VarHandleOp"})
_CHECKPOINT_FILE = re.compile(r"(^checkpoint$|\.index$|\.meta$|\.data-\d{5}-of-\d{5}$)")


@dataclass(frozen=True)
class FrozenGraph:
    """A frozen GraphDef in memory (what `freeze` writes), with what freezing found."""

    graph_def: object  # tf.compat.v1.GraphDef
    prefix: str
    meta: str
    outputs: tuple[str, ...]
    cleared_devices: tuple[str, ...]
    num_variables: int


def output_names(outputs) -> tuple[str, ...]:
    """'a,b:0' or ['a', 'b:0'] -> ('a', 'b'): node names, order kept, duplicates dropped."""
    items = outputs.split(",") if isinstance(outputs, str) else list(outputs)
    names = tuple(dict.fromkeys(graphscan.node_name(str(i).strip()) for i in items if str(i).strip()))
    if not names:
        raise NodeNotFound("No output node given: name at least one op to freeze (see `graph` for suggestions).")
    return names


def freeze(checkpoint: str, outputs, out: str, *, meta: str | None = None, time_limit: float | None = None,
           memory_limit: int | None = None) -> FreezeResult:
    """Freeze `checkpoint` (prefix, one of its files, or run folder) with its `.meta` into `out`, in a child
    process bounded by `time_limit` seconds and `memory_limit` MB (defaults: 120 s, 4096 MB)."""
    prefix = resolve_prefix(checkpoint)
    out = check_destination(out, prefix)
    names = output_names(outputs)
    limits = make_limits(time_limit, memory_limit)
    meta = os.path.abspath(os.path.expanduser(meta)) if meta else None
    return sandbox.run_job("freeze", {"prefix": prefix, "outputs": names, "out": out, "meta": meta}, limits=limits,
                           source=prefix, action="freeze checkpoint")


def write_frozen(prefix: str, outputs, out: str, meta: str | None = None) -> FreezeResult:
    """Freeze here, in this process, and write the `.pb` (what the child does for `freeze`)."""
    out = check_destination(out, prefix)
    frozen = freeze_graph_def(prefix, outputs, meta=meta)
    data = frozen.graph_def.SerializeToString(deterministic=True)
    try:
        with open(out, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        raise errors.CkptError(f"Cannot write frozen graph '{out}': {exc.strerror or exc}.") from exc
    return FreezeResult(out, prefix, len(frozen.graph_def.node), len(data), frozen.outputs,
                        frozen.cleared_devices, frozen.num_variables)


def check_destination(out: str, prefix: str) -> str:
    """The absolute `out` path, or UnsafeDestination when writing there could touch a checkpoint folder."""
    out = os.path.abspath(os.path.expanduser(str(out)))
    real_out, ckpt_dir = os.path.realpath(out), os.path.realpath(os.path.dirname(prefix))
    if os.path.commonpath([real_out, ckpt_dir]) == ckpt_dir:
        raise UnsafeDestination(
            f"Refusing to write '{out}': it is inside the checkpoint folder '{ckpt_dir}', which ckptlib never "
            "modifies. Choose a path in another folder.")
    parent = os.path.dirname(real_out)
    if not os.path.isdir(parent):
        raise errors.NotFound(f"Cannot write frozen graph '{out}': folder '{parent}' does not exist.")
    if os.path.isdir(real_out):
        raise errors.CkptError(f"Cannot write frozen graph '{out}': it is a folder; give a file name (model.pb).")
    if _CHECKPOINT_FILE.search(os.path.basename(out)):
        raise UnsafeDestination(f"Refusing to write '{out}': the name is a checkpoint file's; use a .pb name.")
    found = sorted(n for n in os.listdir(parent) if _CHECKPOINT_FILE.search(n))
    if found:
        shown = ", ".join(found[:3]) + (", …" if len(found) > 3 else "")
        raise UnsafeDestination(f"Refusing to write '{out}': folder '{parent}' holds checkpoint files ({shown}); "
                                "ckptlib never writes beside checkpoints.")
    return out


def freeze_graph_def(prefix: str, outputs, *, meta: str | None = None) -> FrozenGraph:
    """Freeze in memory: the outputs' subgraph of the meta graph with its variables as constants read from
    `prefix` (see the module docstring); nothing of the graph runs."""
    names = output_names(outputs)
    meta_path = os.path.abspath(os.path.expanduser(meta)) if meta else prefix + ".meta"
    if not os.path.isfile(meta_path):
        others = sorted(n for n in os.listdir(os.path.dirname(prefix)) if n.endswith(".meta"))
        hint = f" Other graphs in that folder: {', '.join(others[:3])}." if others else ""
        raise errors.NotFound(
            f"Cannot freeze checkpoint '{prefix}': {os.path.basename(meta_path)} is missing, and freezing needs the "
            f"graph (TF2 object-based checkpoints have none).{hint}")
    _check_files(prefix)
    meta_def = metagraph.load_meta_graph_def(meta_path)  # parsed, never imported into a graph or run
    index = graphscan.GraphIndex(meta_def.graph_def.node)
    for name in names:
        if name not in index.nodes:
            raise NodeNotFound(f"Meta graph '{meta_path}' has no op named '{name}'."
                               + graphscan.close_matches(name, index.nodes))
    # An input queue (Estimator's numpy_input_fn) becomes placeholders: the tensor after it is what gets fed.
    graph_def, cut = queues.cut_queues(meta_def.graph_def, only=index.ancestors(names))
    if cut:
        index = graphscan.GraphIndex(graph_def.node)
    kept = index.ancestors(names)  # what the .pb will hold
    opsafety.check_graph(graph_def, meta_path, opsafety.COMPUTE_OPS | opsafety.VARIABLE_OPS,
                         [index.nodes[n] for n in sorted(kept)], action="freeze")
    variables = sorted(n for n in kept if index.nodes[n].op in _VARIABLE_OPS)
    keys = varkeys.checkpoint_keys(meta_def, variables)
    _check_size(prefix, keys, sum(index.nodes[n].ByteSize() for n in kept))
    pins = tuple(sorted({index.nodes[n].device for n in kept if index.nodes[n].device}))
    values = constfreeze.read_values(prefix, index, variables, keys)
    frozen = constfreeze.to_constants(graph_def, names, values, index)
    for node in frozen.node:  # pins to /GPU:0 or /job:worker need not exist where the .pb runs
        node.device = ""
    if frozen.ByteSize() > PROTOBUF_LIMIT:
        raise GraphTooLarge(f"Cannot freeze checkpoint '{prefix}': the frozen graph would be "
                            f"{frozen.ByteSize()} bytes, over protobuf's 2 GB limit.")
    return FrozenGraph(frozen, prefix, meta_path, names, pins, len(variables))


def _check_files(prefix: str) -> None:
    """Name a missing or truncated data shard up front, before any tensor is read."""
    problems = bundle.read_index(prefix).shard_problems()
    if problems:
        raise errors.IncompleteCheckpoint(f"Cannot freeze checkpoint '{prefix}': {' '.join(problems)}")


def _check_size(prefix: str, keys: dict[str, varkeys.VariableKey], graph_bytes: int) -> None:
    stored = {v.name: v.nbytes for v in open_checkpoint(prefix).variables}
    estimate = graph_bytes + sum(stored.get(k, 0) for k in {key.key for key in keys.values()})
    if estimate > PROTOBUF_LIMIT:
        raise GraphTooLarge(
            f"Cannot freeze checkpoint '{prefix}': its variables and graph come to about {estimate / 2**30:.2f} GB, "
            "over protobuf's 2 GB limit for one GraphDef; freeze fewer outputs or keep the checkpoint.")
