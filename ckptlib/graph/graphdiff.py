"""Compare two graphs op by op: added, removed, changed (type, inputs, device, which attributes), unchanged."""

# Ops are aligned by name after A's names went through the variable diff's NameMapping (compare/mapping.py);
# A's inputs and colocation attributes are mapped the same way, so a renamed scope compares as unchanged.

from __future__ import annotations

import json
from collections import Counter

import numpy as np

from ckptlib import _tf
from ckptlib.compare.mapping import NameMapping
from ckptlib.errors import BadMappingRule
from ckptlib.graph import nodeattrs
from ckptlib.graph.nodeattrs import tensor_value
from ckptlib.graph.picture_types import GraphDiff, LoadedGraph, OpDiff
from ckptlib.graph.scan import node_name

SHORT = 60  # characters of an attribute value shown in a change line
# Shape inference's annotations, which export_meta_graph writes and freezing drops: not what an op does.
IGNORED_ATTRS = frozenset({"_output_shapes"})
_COLOCATE = b"loc:@"  # the `_class` attribute names the ops an op is colocated with


def diff_graphs(a: LoadedGraph, b: LoadedGraph, mapping: NameMapping | None = None) -> GraphDiff:
    """Every op of A and B compared, sorted by (B's) name; `mapping` renames A's ops first.

        >>> diff = diff_graphs(load_graph("run/model.ckpt-1000.meta"), load_graph("model.pb"))
        >>> diff.summary
        {'added': 0, 'removed': 223, 'changed': 8, 'unchanged': 6}
        >>> next(op for op in diff.ops if op.type_b == "Const" and op.status == "changed").changes[0]
        'op type: VarHandleOp → Const'
    """
    mapping = mapping or NameMapping()
    nodes_a = {n.name: n for n in a.nodes}
    try:
        targets = {n: n for n in nodes_a} if mapping.is_identity else mapping.apply_all(nodes_a)
    except BadMappingRule as exc:  # its words are the variable diff's
        raise BadMappingRule(str(exc).replace("of checkpoint A", "of graph A")) from None
    by_target = {target: nodes_a[raw] for raw, target in targets.items()}
    nodes_b = {n.name: n for n in b.nodes}
    rows = []
    for name in sorted(set(by_target) | set(nodes_b)):
        node_a, node_b = by_target.get(name), nodes_b.get(name)
        if node_b is None:
            rows.append(OpDiff(name, node_a.name, "removed", node_a.op, None))
        elif node_a is None:
            rows.append(OpDiff(name, None, "added", None, node_b.op))
        else:
            changes = tuple(node_changes(node_a, node_b, targets))
            rows.append(OpDiff(name, node_a.name, "changed" if changes else "unchanged", node_a.op, node_b.op,
                               changes))
    return GraphDiff(a=a.path, b=b.path, kind_a=a.kind, kind_b=b.kind, ops=tuple(rows))


def node_changes(node_a, node_b, targets: dict[str, str]) -> list[str]:
    """What differs between A's op (its names mapped by `targets`) and B's, one line per difference."""
    changes = []
    if node_a.op != node_b.op:
        changes.append(f"op type: {node_a.op} → {node_b.op}")
    changes += _input_changes([_mapped_ref(r, targets) for r in node_a.input], [_plain_ref(r) for r in node_b.input])
    if node_a.device != node_b.device:
        changes.append(f"device: {node_a.device or '(none)'} → {node_b.device or '(none)'}")
    keys_a, keys_b = set(node_a.attr) - IGNORED_ATTRS, set(node_b.attr) - IGNORED_ATTRS
    for key in sorted(keys_a & keys_b):
        value_a = _mapped_attr(key, node_a.attr[key], targets)
        if value_a != node_b.attr[key] and not _same_tensor(value_a, node_b.attr[key]):
            changes.append(_attr_change(key, value_a, node_b.attr[key]))
    if keys_b - keys_a:
        changes.append("attrs added: " + ", ".join(sorted(keys_b - keys_a)))
    if keys_a - keys_b:
        changes.append("attrs removed: " + ", ".join(sorted(keys_a - keys_b)))
    return changes


def _plain_ref(ref: str) -> str:
    """'a:0' and 'a' are the same tensor."""
    return ref.removesuffix(":0")


def _mapped_ref(ref: str, targets: dict[str, str]) -> str:
    name = node_name(ref)
    mapped = targets.get(name, name)
    port = ref.lstrip("^")[len(name):]
    return _plain_ref(("^" if ref.startswith("^") else "") + mapped + port)


def _input_changes(refs_a: list[str], refs_b: list[str]) -> list[str]:
    data_a = [r for r in refs_a if not r.startswith("^")]
    data_b = [r for r in refs_b if not r.startswith("^")]
    changes = []
    if data_a != data_b:
        gained, lost = Counter(data_b) - Counter(data_a), Counter(data_a) - Counter(data_b)
        if len(data_a) == len(data_b):
            changes += [f"input {i}: {x} → {y}" for i, (x, y) in enumerate(zip(data_a, data_b)) if x != y]
        elif gained or lost:  # a SaveV2 that saves two more variables: name those two
            moved = [f"+{r}" for r in sorted(gained.elements())] + [f"-{r}" for r in sorted(lost.elements())]
            changes.append(f"inputs ({len(data_a)} → {len(data_b)}): " + _short(", ".join(moved)))
    control_a, control_b = {r for r in refs_a if r.startswith("^")}, {r for r in refs_b if r.startswith("^")}
    if control_a != control_b:  # their order means nothing
        moved = [f"+{r}" for r in sorted(control_b - control_a)] + [f"-{r}" for r in sorted(control_a - control_b)]
        changes.append("control inputs: " + _short(", ".join(moved)))
    return changes


def _mapped_attr(key: str, value, targets: dict[str, str]):
    """A's `_class` colocation names go through the mapping like its inputs do."""
    if key != "_class" or not value.list.s:
        return value
    mapped = type(value)()
    mapped.CopyFrom(value)
    del mapped.list.s[:]
    for item in value.list.s:
        if item.startswith(_COLOCATE):
            name = item[len(_COLOCATE):].decode("utf-8", "replace")
            item = _COLOCATE + targets.get(name, name).encode("utf-8")
        mapped.list.s.append(item)
    return mapped


def _same_tensor(value_a, value_b) -> bool:
    """Two tensors holding equal values, however each proto encodes them (tensor_content or float_val)."""
    if value_a.WhichOneof("value") != "tensor" or value_b.WhichOneof("value") != "tensor":
        return False
    ta, tb = value_a.tensor, value_b.tensor
    if ta.dtype != tb.dtype or ta.tensor_shape != tb.tensor_shape:
        return False
    tf = _tf.tf()
    try:
        return bool(np.array_equal(tf.make_ndarray(ta), tf.make_ndarray(tb), equal_nan=ta.dtype in (1, 2, 19)))
    except (TypeError, ValueError):  # a dtype numpy cannot hold: the protos' inequality stands
        return False


def _attr_change(key: str, value_a, value_b) -> str:
    tf = _tf.tf()
    if value_a.WhichOneof("value") == "tensor" and value_b.WhichOneof("value") == "tensor":
        label_a, label_b = _tensor_label(value_a.tensor), _tensor_label(value_b.tensor)
        if label_a != label_b:
            return f"attr {key}: {label_a} → {label_b}"
        # Small tensors (a saver's variable names, a learning rate) are shown; big ones only said to differ.
        shown_a, shown_b = (tensor_value(tf, v.tensor).get("value") for v in (value_a, value_b))
        if shown_a is None or shown_b is None:
            return f"attr {key}: {label_a}, values differ"
    else:
        shown_a, shown_b = nodeattrs.attr_value(tf, value_a), nodeattrs.attr_value(tf, value_b)
    text_a, text_b = (json.dumps(v, ensure_ascii=False) for v in (shown_a, shown_b))
    if max(len(text_a), len(text_b)) > SHORT:  # too long to read whole: repeated items counted, then cut
        text_a, text_b = (_short(_compact(v)) for v in (shown_a, shown_b))
    if text_a == text_b:  # the readable forms agree (or are cut at the same place): say so, not "x → x"
        return f"attr {key}: differs"
    return f"attr {key}: {text_a} → {text_b}"


def _compact(value) -> str:
    """JSON, with a list of one repeated item as '[float32 ×7]' (a saver's dtypes)."""
    if isinstance(value, list) and len(value) > 3 and all(v == value[0] for v in value):
        return f"[{json.dumps(value[0], ensure_ascii=False)} ×{len(value)}]"
    return json.dumps(value, ensure_ascii=False)


def _tensor_label(tensor) -> str:
    shape = nodeattrs.shape_value(tensor.tensor_shape)
    return f"{nodeattrs.dtype_name(tensor.dtype)} {shape if shape is not None else '?'}"


def _short(text: str) -> str:
    return text if len(text) <= SHORT else text[: SHORT - 1] + "…"


def graph_diff_doc(diff: GraphDiff) -> dict:
    """The `graph-diff --json` document (see DESIGN.md)."""
    return {
        "a": diff.a,
        "b": diff.b,
        "kind_a": diff.kind_a,
        "kind_b": diff.kind_b,
        "summary": diff.summary,
        "ops": [{"name": op.name, "name_a": op.name_a, "status": op.status, "type_a": op.type_a,
                 "type_b": op.type_b, "changes": list(op.changes)} for op in diff.ops],
        "scopes": [{"scope": s.scope, "added": s.added, "removed": s.removed, "changed": s.changed,
                    "unchanged": s.unchanged} for s in diff.scopes],
    }
