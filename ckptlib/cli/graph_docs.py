"""JSON documents of `graph`: a meta graph's or SavedModel's ops, collections, signatures, one node_def."""

from __future__ import annotations

from ckptlib.graph.types import MetaGraphInfo, NodeDefInfo, PlaceholderInfo


def _shape(shape):
    return None if shape is None else list(shape)


def _placeholder_doc(p: PlaceholderInfo) -> dict:
    return {"name": p.name, "dtype": p.dtype, "shape": _shape(p.shape), "has_default": p.has_default, "role": p.role}


def graph_doc(info: MetaGraphInfo) -> dict:
    """The `graph META` document."""
    saver = info.saver
    return {
        "meta": info.path,
        "tensorflow_version": info.tensorflow_version or None,
        "tags": list(info.tags),
        "num_ops": info.num_ops,
        "num_functions": info.num_functions,
        "op_type_counts": dict(info.op_type_counts),
        "devices": list(info.devices),
        "cleared_devices": list(info.cleared_devices),
        "collections": {c.key: list(c.items) for c in info.collections},
        "collection_kinds": {c.key: c.kind for c in info.collections},
        "ops": [{"name": o.name, "type": o.type, "device": o.device, "inputs": list(o.inputs)} for o in info.ops],
        "saver": None if saver is None else {
            "filename_tensor": saver.filename_tensor, "save_tensor": saver.save_tensor,
            "restore_op": saver.restore_op, "max_to_keep": saver.max_to_keep,
            "keep_checkpoint_every_n_hours": saver.keep_checkpoint_every_n_hours, "sharded": saver.sharded,
            "version": saver.version,
        },
        "meta_graphs": [{"tags": list(tags)} for tags in info.meta_graphs],
        "functions": list(info.functions),
        "signatures": [
            {
                "name": s.key,
                "method_name": s.method_name,
                "inputs": [_signature_tensor(t) for t in s.inputs],
                "outputs": [_signature_tensor(t) for t in s.outputs],
            }
            for s in info.signatures
        ],
        "suggested_inputs": [_placeholder_doc(p) for p in info.suggested_inputs],
        "suggested_outputs": [{"name": o.name, "type": o.type, "reason": o.reason} for o in info.suggested_outputs],
    }


def _signature_tensor(tensor) -> dict:
    """A signature's input or output: its key, the graph tensor it maps to, dtype and shape."""
    return {"name": tensor.key, "tensor": tensor.name, "dtype": tensor.dtype, "shape": _shape(tensor.shape)}


def node_doc(meta: str, node: NodeDefInfo) -> dict:
    """`graph META --node NAME`: one node_def with readable attributes."""
    return {"meta": meta, "name": node.name, "type": node.type, "device": node.device, "inputs": list(node.inputs),
            "consumers": list(node.consumers), "attrs": dict(node.attrs)}
