"""Cut an input queue off a graph: each dequeue output the model reads becomes a placeholder to feed.

    >>> graph_def, cut = cut_queues(graph_def)   # an Estimator graph fed by numpy_input_fn
    >>> cut
    {'fifo_queue_DequeueUpTo:1': 'fifo_queue_DequeueUpTo/component_1'}
"""

# Estimator graphs (numpy_input_fn, tf.train.batch) read their examples from a FIFO queue filled by
# queue runners: run as they are, the dequeue waits forever, and queues are refused by opsafety
# anyway. Feeding the tensor after the queue is what people did by hand (feed_dict on
# 'fifo_queue_DequeueUpTo:1'); a tensor fed this way still leaves the queue ops in the graph, so
# they are replaced here by placeholders of the same dtype and shape, and the queue itself is
# dropped once nothing reads it. Nothing is added but placeholders. Shapes come from the dequeue's
# `_output_shapes`, else from the queue's `shapes` attr (with a batch dimension for DequeueMany/UpTo).

from __future__ import annotations

from ckptlib.graph import scan as graphscan

_DEQUEUE = {"QueueDequeueV2": False, "QueueDequeue": False, "QueueDequeueManyV2": True, "QueueDequeueMany": True,
            "QueueDequeueUpToV2": True, "QueueDequeueUpTo": True}  # op -> adds a batch dimension
QUEUE_OPS = frozenset({"FIFOQueueV2", "FIFOQueue", "PaddingFIFOQueueV2", "PaddingFIFOQueue", "RandomShuffleQueueV2",
                       "RandomShuffleQueue", "PriorityQueueV2", "PriorityQueue"})


def component_name(dequeue: str, index: int) -> str:
    """The placeholder that stands for output `index` of dequeue op `dequeue`."""
    return f"{dequeue}/component_{index}"


def cut_queues(graph_def, only: set[str] | None = None):
    """(a copy of `graph_def` with each dequeue op among `only` (default: all) replaced by placeholders, and
    {'dequeue:i': placeholder name}); the graph itself when there is no dequeue."""
    index = graphscan.GraphIndex(graph_def.node)
    dequeues = {n.name: n for n in graph_def.node if n.op in _DEQUEUE and (only is None or n.name in only)}
    if not dequeues:
        return graph_def, {}
    used = _used_outputs(graph_def.node, dequeues)
    out = type(graph_def)()
    out.CopyFrom(graph_def)
    del out.node[:]
    cut = {}
    for node in graph_def.node:
        if node.name in dequeues:
            for i in sorted(used[node.name]):
                out.node.append(_placeholder(node, i, index))
                cut[f"{node.name}:{i}"] = component_name(node.name, i)
            continue
        copy = out.node.add()
        copy.CopyFrom(node)
        inputs = [_rewired(ref, dequeues) for ref in node.input]
        del copy.input[:]
        copy.input.extend(ref for ref in inputs if ref is not None)
    return _drop_unread_queues(out), cut


def _used_outputs(nodes, dequeues: dict) -> dict[str, set[int]]:
    used = {name: set() for name in dequeues}
    for node in nodes:
        for ref in node.input:
            name = graphscan.node_name(ref)
            if name in used and not ref.startswith("^"):
                used[name].add(int(ref.split(":")[1]) if ":" in ref else 0)
    return used


def _rewired(ref: str, dequeues: dict) -> str | None:
    name = graphscan.node_name(ref)
    if name not in dequeues:
        return ref
    if ref.startswith("^"):
        return None  # waiting for a dequeue that no longer happens
    return component_name(name, int(ref.split(":")[1]) if ":" in ref else 0)


def _placeholder(dequeue, i: int, index: graphscan.GraphIndex):
    node = type(dequeue)()
    node.name = component_name(dequeue.name, i)
    node.op = "Placeholder"
    node.attr["dtype"].type = dequeue.attr["component_types"].list.type[i]
    shape = _shape(dequeue, i, index)
    if shape is not None:
        node.attr["shape"].shape.CopyFrom(shape)
    else:
        node.attr["shape"].shape.unknown_rank = True
    return node


def _shape(dequeue, i: int, index: graphscan.GraphIndex):
    """The component's TensorShapeProto, or None when neither the dequeue nor its queue says."""
    declared = dequeue.attr["_output_shapes"].list.shape if "_output_shapes" in dequeue.attr else []
    if i < len(declared) and not declared[i].unknown_rank:
        return declared[i]
    queue = index.nodes.get(graphscan.node_name(dequeue.input[0])) if dequeue.input else None
    shapes = queue.attr["shapes"].list.shape if queue is not None and "shapes" in queue.attr else []
    if i >= len(shapes) or shapes[i].unknown_rank:
        return None
    shape = type(shapes[i])()
    if _DEQUEUE[dequeue.op]:
        shape.dim.add().size = -1
    shape.dim.extend(shapes[i].dim)
    return shape


def _drop_unread_queues(graph_def):
    """The queues nothing reads any more go (an enqueue or close op still reading one keeps it)."""
    read = {graphscan.node_name(ref) for n in graph_def.node for ref in n.input}
    unread = [i for i, n in enumerate(graph_def.node) if n.op in QUEUE_OPS and n.name not in read]
    for i in reversed(unread):
        del graph_def.node[i]
    return graph_def
