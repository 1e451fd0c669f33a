"""The limits of the process that runs a graph: checked options, declared sizes refused before running, rlimits."""

# Cheap checks first: a Const whose shape says 10^11 floats (one value, broadcast by the kernel), a
# Fill, BroadcastTo or random op whose shape input is a constant: their sizes are written in the
# graph, so a bomb is refused before TensorFlow allocates anything. What cannot be told from the
# graph is bounded by RLIMIT_AS in the child (apply_memory_limit) and the parent's clock.

from __future__ import annotations

import math
import resource

import numpy as np

from ckptlib import _tf, errors
from ckptlib.errors import MemoryLimitExceeded
from ckptlib.evaluate.types import DEFAULT_MEMORY_MB, DEFAULT_TIME_S, Limits

# op -> index of its shape input (tensorflow/core/ops/array_ops.cc, random_ops.cc, stateless_random_ops*.cc).
_SHAPE_INPUT = {"Fill": 0, "BroadcastTo": 1, "RandomUniform": 0, "RandomStandardNormal": 0, "TruncatedNormal": 0,
                "RandomUniformInt": 0, "StatelessRandomNormal": 0, "StatelessRandomUniform": 0,
                "StatelessTruncatedNormal": 0, "StatelessRandomNormalV2": 0, "StatelessRandomUniformV2": 0,
                "StatelessTruncatedNormalV2": 0, "StatelessRandomUniformIntV2": 0,
                "StatelessRandomUniformFullIntV2": 0, "TensorListReserve": 0, "EmptyTensorList": 0}
# The attribute holding the dtype of what each op makes (Fill and BroadcastTo: "T").
_DTYPE_ATTRS = ("dtype", "T", "element_dtype")


def make_limits(time_limit: float | None = None, memory_limit: int | None = None) -> Limits:
    """Limits from the options (None: the defaults); a value that is not positive is a clear error."""
    time_s = DEFAULT_TIME_S if time_limit is None else time_limit
    memory_mb = DEFAULT_MEMORY_MB if memory_limit is None else memory_limit
    if not (isinstance(time_s, (int, float)) and math.isfinite(time_s) and time_s > 0):
        raise errors.CkptError(f"--time-limit must be a positive number of seconds, not {time_limit!r}.")
    if not (isinstance(memory_mb, int) and memory_mb > 0):
        raise errors.CkptError(f"--memory-limit must be a positive number of megabytes, not {memory_limit!r}.")
    return Limits(float(time_s) if not float(time_s).is_integer() else int(time_s), memory_mb)


def memory_error(action: str, source: str, limits: Limits, detail: str = "") -> MemoryLimitExceeded:
    """The one-line error for a graph that needs more memory than it may have."""
    return MemoryLimitExceeded(f"Cannot {action} '{source}': it ran out of its {limits.memory_mb} MB memory limit "
                               f"(--memory-limit){': ' + detail if detail else ''}.")


def check_allocations(graph_def, source: str, limits: Limits) -> None:
    """Refuse a graph whose declared sizes (constants, constant shapes) exceed the memory limit on their own."""
    budget = limits.memory_mb << 20
    tf = _tf.tf()
    bodies = [(graph_def.node, "")] + [(f.node_def, f"function {f.signature.name}: ")
                                       for f in graph_def.library.function]
    constants = 0
    for nodes, where in bodies:
        by_name = {n.name: n for n in nodes}
        for node in nodes:
            size = _declared_bytes(tf, node, by_name)
            if node.op == "Const" and size:
                constants += size
            if size > budget or constants > budget:
                what = "its constants come to" if size <= budget else f"{where}{node.name} ({node.op}) would make"
                raise MemoryLimitExceeded(
                    f"Refusing to run '{source}': {what} {_human(max(size, constants))}, more than its "
                    f"{limits.memory_mb} MB memory limit (--memory-limit).")


def _declared_bytes(tf, node, by_name: dict) -> int:
    """Bytes the node's output takes according to the graph alone; 0 when the graph does not say."""
    if node.op == "Const" and "value" in node.attr:
        dims = [d.size for d in node.attr["value"].tensor.tensor_shape.dim]
        dtype = node.attr["value"].tensor.dtype
    elif node.op in _SHAPE_INPUT and len(node.input) > _SHAPE_INPUT[node.op]:
        dims = _constant_ints(tf, by_name, node.input[_SHAPE_INPUT[node.op]])
        dtype = next((node.attr[a].type for a in _DTYPE_ATTRS if a in node.attr and node.attr[a].type), 1)
    else:
        return 0
    if dims is None or any(d < 0 for d in dims):
        return 0
    try:
        itemsize = tf.dtypes.as_dtype(dtype).size
    except TypeError:  # a dtype enum TensorFlow does not know (garbled): nothing to say about its size
        return 0
    return math.prod(int(d) for d in dims) * max(itemsize, 1)


def _constant_ints(tf, by_name: dict, ref: str, depth: int = 0) -> list[int] | None:
    """The int values of a Const (through Identity) feeding a shape input, or None when not constant."""
    node = by_name.get(ref.lstrip("^").split(":")[0])
    if node is None or depth > 8:
        return None
    if node.op == "Identity" and node.input:
        return _constant_ints(tf, by_name, node.input[0], depth + 1)
    if node.op != "Const" or "value" not in node.attr:
        return None
    try:
        values = tf.make_ndarray(node.attr["value"].tensor)
    except (TypeError, ValueError):
        return None
    if values.ndim > 1 or values.dtype.kind not in "iu":
        return None
    return [int(v) for v in np.atleast_1d(values)]


def _human(size: int) -> str:
    return f"{size / 2**30:.1f} GB" if size >= 2**30 else f"{size / 2**20:.1f} MB"


def apply_memory_limit(memory_mb: int) -> None:
    """Bound this process's address space to what it maps now plus `memory_mb` (called in the child once
    TensorFlow and the device are set up: their own footprint is not the graph's to pay)."""
    base = _mapped_bytes()
    limit = base + (memory_mb << 20)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _mapped_bytes() -> int:
    """VmSize of this process (Linux), 0 where /proc does not say."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
