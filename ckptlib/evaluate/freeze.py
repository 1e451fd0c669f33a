"""Freeze a checkpoint into a GraphDef `.pb`: variables become constants, only what the outputs need stays.

    >>> result = freeze("run/model.ckpt-1000", ["logits/logits"], "/tmp/model.pb")
    >>> result.num_nodes, result.num_variables, result.cleared_devices
    (41, 6, ('/device:GPU:0',))

The checkpoint folder is only read: the `.pb` goes to `out` and nowhere else, and an `out` inside the
checkpoint's folder (or any folder holding checkpoint files) is refused.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ckptlib import _tf, errors
from ckptlib.errors import GraphTooLarge, NodeNotFound, UnsafeDestination
from ckptlib.evaluate import opsafety
from ckptlib.evaluate.types import FreezeResult
from ckptlib.formats import bundle
from ckptlib.graph import scan as graphscan, metagraph
from ckptlib.runs.resolve import open_checkpoint, resolve_prefix

PROTOBUF_LIMIT = 2**31 - 1  # protobuf refuses to serialize a message of 2 GB or more
_VARIABLE_OPS = frozenset({"VariableV2", "Variable", "VarHandleOp"})
_PARTITION = re.compile(r"/part_\d+$")
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


def freeze(checkpoint: str, outputs, out: str, *, meta: str | None = None) -> FreezeResult:
    """Freeze `checkpoint` (prefix, one of its files, or run folder) with its `.meta` into `out`."""
    prefix = resolve_prefix(checkpoint)
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
    """Freeze in memory: restore `prefix` into its meta graph and turn the variables into constants."""
    names = output_names(outputs)
    meta_path = os.path.abspath(os.path.expanduser(meta)) if meta else prefix + ".meta"
    if not os.path.isfile(meta_path):
        others = sorted(n for n in os.listdir(os.path.dirname(prefix)) if n.endswith(".meta"))
        hint = f" Other graphs in that folder: {', '.join(others[:3])}." if others else ""
        raise errors.NotFound(
            f"Cannot freeze checkpoint '{prefix}': {os.path.basename(meta_path)} is missing, and freezing needs the "
            f"graph (TF2 object-based checkpoints have none).{hint}")
    _check_files(prefix)
    meta_def = metagraph.load_meta_graph_def(meta_path)
    index = graphscan.GraphIndex(meta_def.graph_def.node)
    for name in names:
        if name not in index.nodes:
            raise NodeNotFound(f"Meta graph '{meta_path}' has no op named '{name}'."
                               + graphscan.close_matches(name, index.nodes))
    kept = index.ancestors(names)  # what the .pb will hold
    needed = set(kept)  # what freezing runs
    if meta_def.HasField("saver_def"):
        needed |= index.ancestors([graphscan.node_name(meta_def.saver_def.restore_op_name)])
    _check_safe(meta_def, needed, meta_path)
    variables = sorted(n for n in kept if index.nodes[n].op in _VARIABLE_OPS)
    _check_size(prefix, variables, sum(index.nodes[n].ByteSize() for n in kept))
    # Pins on the saver's own ops (TF puts RestoreV2 on /device:CPU:0) do not reach the .pb: not reported.
    pins = tuple(sorted({index.nodes[n].device for n in kept if index.nodes[n].device}))
    graph_def = _restore_and_convert(prefix, meta_def, names, bool(variables))
    if graph_def.ByteSize() > PROTOBUF_LIMIT:
        raise GraphTooLarge(f"Cannot freeze checkpoint '{prefix}': the frozen graph would be "
                            f"{graph_def.ByteSize()} bytes, over protobuf's 2 GB limit.")
    return FrozenGraph(graph_def, prefix, meta_path, names, pins, len(variables))


def _check_files(prefix: str) -> None:
    """Name a missing or truncated data shard up front: TF's restore error hides it in a long message."""
    problems = bundle.read_index(prefix).shard_problems()
    if problems:
        raise errors.IncompleteCheckpoint(f"Cannot freeze checkpoint '{prefix}': {' '.join(problems)}")


def _check_safe(meta_def, needed: set[str], meta_path: str) -> None:
    """Freezing runs the outputs' variables and the saver's restore op: vet exactly those ops."""
    nodes = [n for n in meta_def.graph_def.node if n.name in needed]
    opsafety.check_graph(meta_def.graph_def, meta_path, opsafety.COMPUTE_OPS | opsafety.RESTORE_OPS, nodes)


def _check_size(prefix: str, variables: list[str], graph_bytes: int) -> None:
    stored = {v.name: v.nbytes for v in open_checkpoint(prefix).variables}
    keys = {_PARTITION.sub("", v) for v in variables}
    estimate = graph_bytes + sum(stored.get(k, 0) for k in keys)
    if estimate > PROTOBUF_LIMIT:
        raise GraphTooLarge(
            f"Cannot freeze checkpoint '{prefix}': its variables and graph come to about {estimate / 2**30:.2f} GB, "
            "over protobuf's 2 GB limit for one GraphDef; freeze fewer outputs or keep the checkpoint.")


def _restore_and_convert(prefix: str, meta_def, names: tuple[str, ...], has_variables: bool):
    tf = _tf.tf()
    v1 = tf.compat.v1
    graph = tf.Graph()
    config = v1.ConfigProto(device_count={"GPU": 0}, allow_soft_placement=True)
    with _tf.quiet_tf_logs(), _tf.map_tf_errors(prefix, "freeze checkpoint"), graph.as_default():
        try:
            # The .meta may pin ops to devices this machine lacks (/GPU:0, /job:worker): clear them all.
            saver = v1.train.import_meta_graph(meta_def, clear_devices=True)
        except (KeyError, ValueError) as exc:  # a collection or input naming what the graph lacks
            raise errors.CorruptCheckpoint(
                f"Cannot freeze checkpoint '{prefix}': its meta graph does not import: {exc}") from exc
        with v1.Session(graph=graph, config=config) as sess:
            if has_variables:
                if saver is None:  # a meta graph without saver_def: save/restore by variable names
                    if not graph.get_collection("variables"):
                        raise errors.UnsupportedFormat(
                            f"Cannot freeze checkpoint '{prefix}': its graph has variables but neither a saver "
                            "nor a 'variables' collection, so they cannot be restored.")
                    saver = v1.train.Saver(var_list=graph.get_collection("variables"))
                saver.restore(sess, prefix)
            graph_def = v1.graph_util.convert_variables_to_constants(sess, graph.as_graph_def(), list(names))
        return v1.graph_util.extract_sub_graph(graph_def, list(names))
