"""Refuse graphs holding ops beyond pure computation, before TensorFlow runs any of them."""

# A frozen .pb from elsewhere is code: ReadFile/WriteFile/MatchingFiles, Save/Restore, PyFunc,
# PrintV2 (whose output_stream may be a file), readers, queues and datasets would all run with the
# user's rights. So evaluation allows a list of stateless compute ops and nothing else; an op that
# is not listed is refused, not guessed about. Function calls (PartitionedCall, If, While) are
# allowed only when every function they name is in the graph's library and passes the same check:
# TensorFlow can also instantiate a bare op name as a function, which would bypass the list.

from __future__ import annotations

from ckptlib.errors import ForbiddenOps

COMPUTE_OPS = frozenset("""
Abs Acos Acosh Add AddN AddV2 All Any ArgMax ArgMin Asin Asinh Atan Atan2 Atanh AvgPool AvgPool3D
BatchMatMul BatchMatMulV2 BatchMatMulV3 BatchToSpaceND BiasAdd BiasAddV1 Bitcast BroadcastArgs
BroadcastGradientArgs BroadcastTo Cast Ceil CheckNumerics CheckNumericsV2 ClipByValue Concat ConcatOffset
ConcatV2 Const Conv2D Conv2DBackpropInput Conv3D Cos Cosh Cumprod Cumsum DepthToSpace
DepthwiseConv2dNative Diag DiagPart Div DivNoNan Einsum Elu Equal Erf Erfc Exp ExpandDims Expm1 Fill Floor
FloorDiv FloorMod FusedBatchNorm FusedBatchNormV2 FusedBatchNormV3 Gather GatherNd GatherV2 Gelu Greater
GreaterEqual Identity IdentityN InTopK InTopKV2 Inv InvertPermutation IsFinite IsInf IsNan L2Loss LRN
LeakyRelu Less LessEqual LinSpace Log Log1p LogSoftmax LogicalAnd LogicalNot LogicalOr MatMul
MatrixBandPart MatrixDiag MatrixDiagPart MatrixDiagV3 Max MaxPool MaxPool3D MaxPoolV2 MaxPoolWithArgmax
Maximum Mean Min Minimum MirrorPad Mod Mul MulNoNan Neg NoOp NotEqual OneHot OnesLike Pack Pad PadV2
Placeholder PlaceholderV2 PlaceholderWithDefault Pow PreventGradient Prod RandomStandardNormal
RandomUniform RandomUniformInt Range Rank RealDiv Reciprocal Relu Relu6 Reshape ResizeBilinear
ResizeNearestNeighbor Reverse ReverseV2 Rint Round Rsqrt Select SelectV2 Selu Shape ShapeN Sigmoid Sign
Sin Sinh Size Slice Snapshot Softmax SoftmaxCrossEntropyWithLogits Softplus Softsign SpaceToBatchND
SpaceToDepth SparseSoftmaxCrossEntropyWithLogits Split SplitV Sqrt Square SquaredDifference Squeeze
StatelessRandomNormal StatelessRandomUniform StatelessTruncatedNormal StopGradient StridedSlice Sub Sum
Tan Tanh Tile TopKV2 Transpose TruncateDiv TruncatedNormal Unpack Where Xdivy Xlogy ZerosLike
EnsureShape Enter Exit LoopCond Merge NextIteration Switch
If StatelessIf While StatelessWhile PartitionedCall StatefulPartitionedCall
""".split())
# Freezing additionally runs restore and reads variables (the meta graph's own saver, checked too).
RESTORE_OPS = frozenset("""
RestoreV2 Restore RestoreSlice Assign AssignVariableOp VariableV2 Variable VarHandleOp ReadVariableOp
VarIsInitializedOp IsVariableInitialized StringJoin ShardedFilename
""".split())


def forbidden_ops(graph_def, allowed: frozenset[str] = COMPUTE_OPS, nodes=None) -> list[str]:
    """'name (Op)' for every node outside `allowed`: among `nodes` (default: the whole graph) and in
    every library function they call, directly or through other functions."""
    library = {f.signature.name: f for f in graph_def.library.function}
    bad: list[str] = []
    todo: list[str] = []
    seen: set[str] = set()

    def check(items, where: str) -> None:
        for node in items:
            label = where + (node.name if node.name == node.op else f"{node.name} ({node.op})")
            if node.op not in allowed and node.op not in library:
                bad.append(label)
            calls = _functions(node) + ([node.op] if node.op in library else [])
            for func in calls:
                if func not in library:
                    bad.append(f"{label} calls '{func}', which is not a function of the graph")
                elif func not in seen:
                    seen.add(func)
                    todo.append(func)

    check(graph_def.node if nodes is None else nodes, "")
    while todo:
        name = todo.pop()
        check(library[name].node_def, f"function {name}: ")
    return bad


def _functions(node) -> list[str]:
    names = []
    for value in node.attr.values():
        if value.WhichOneof("value") == "func":
            names.append(value.func.name)
        elif value.WhichOneof("value") == "list":
            names.extend(f.name for f in value.list.func)
    return names


def check_graph(graph_def, source: str, allowed: frozenset[str] = COMPUTE_OPS, nodes=None, limit: int = 12) -> None:
    """Raise ForbiddenOps listing the offending ops, or return when every op that would run is allowed."""
    bad = forbidden_ops(graph_def, allowed, nodes)
    if bad:
        shown = ", ".join(bad[:limit]) + (f" and {len(bad) - limit} more" if len(bad) > limit else "")
        raise ForbiddenOps(
            f"Refusing to run '{source}': it holds ops that can read or write files, the network or "
            f"processes, or that ckptlib does not know to be pure computation: {shown}.")
