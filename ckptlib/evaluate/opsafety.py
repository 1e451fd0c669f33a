"""Refuse graphs holding ops beyond pure computation, before TensorFlow runs any of them."""

# A frozen .pb from elsewhere is code: ReadFile/WriteFile/MatchingFiles, Save/Restore, PyFunc,
# PrintV2 to a file, readers, queues and datasets would all run with the user's rights. So
# evaluation allows a list of compute ops and nothing else; an op that is not listed is refused,
# not guessed about. Everything that can run is checked: every function of the graph's library
# (Grappler's implementation selector may swap a call for any function that declares the same
# `api_implements`, so reachability is no guarantee; it is also turned off, see batches.py), and
# every function named anywhere in an attribute, at any depth: `func` attrs, lists of them, and the
# NameAttrList values nested inside those (a function handed to another through its attributes
# runs when the callee refers to it). A name that is not in the library is refused: TensorFlow can
# also instantiate a bare op name as a function, which would bypass the list.
#
# What is listed, and why (every name is a registered op of TensorFlow 2.21; tests check it):
# - math, nn, array, image-resize and comparison ops: tensors in, tensors out.
# - gradient kernels (ReluGrad, MaxPoolGrad, Conv2DBackpropFilter, DynamicStitch...): the same kind
#   of arithmetic, present in every TF1 training graph; they matter when a gradient is frozen.
# - control flow v1 (Switch/Merge for tf.cond, Enter/Exit/NextIteration/LoopCond for tf.while_loop,
#   and their Ref* twins for reference variables) and v2 (If, While, Case and the Optional* ops that
#   tf.cond v2 puts in its branches once gradients are built): routing of in-memory values.
# - TensorArray*V3 and TensorList* (the buffers of while loops and dynamic_rnn): per-run memory.
# - StopGradient, PreventGradient, CheckNumerics, EnsureShape, Assert: identity or a check that
#   fails the run with an error message; none does I/O.
# - Print (v1) only logs to stderr. PrintV2 is allowed only when its output_stream is a standard
#   stream or TensorFlow's log: 'file://...' would append to a file, so it is refused (see
#   _attr_problem).
# - string ops (AsString, StringToNumber, StringJoin, StringFormat, regexes...) and the image
#   decoders (DecodeJpeg, DecodePng...): they transform bytes already in a tensor. Only reading a
#   file (ReadFile, readers, datasets) would bring a file's bytes in, and those stay refused.
# - random ops: stateful only in their seed generator, in memory.
# Never listed: file and checkpoint ops (ReadFile, WriteFile, MatchingFiles, Save*, Restore*,
# MergeV2Checkpoints), Python callbacks (PyFunc, PyFuncStateless, EagerPyFunc), readers, queues
# (a dequeue with no producer blocks forever), datasets and iterators, summary writers, Empty
# (uninitialised memory), collective and send/recv ops, and every op ckptlib does not know.

from __future__ import annotations

import hashlib

from ckptlib.errors import ForbiddenOps

COMPUTE_OPS = frozenset("""
Abs Acos Acosh Add AddN AddV2 All Any ArgMax ArgMin Asin Asinh Atan Atan2 Atanh AvgPool AvgPool3D
BatchMatMul BatchMatMulV2 BatchMatMulV3 BatchToSpaceND BiasAdd BiasAddV1 Bitcast BroadcastArgs
BroadcastGradientArgs BroadcastTo Cast Ceil CheckNumerics CheckNumericsV2 ClipByValue Concat ConcatOffset
ConcatV2 Const Conv2D Conv2DBackpropInput Conv3D Cos Cosh Cumprod Cumsum DepthToSpace
DepthwiseConv2dNative Diag DiagPart Div DivNoNan Einsum Elu Equal Erf Erfc EuclideanNorm Exp ExpandDims
Expm1 Fill Floor FloorDiv FloorMod FusedBatchNorm FusedBatchNormV2 FusedBatchNormV3 Gather GatherNd
GatherV2 Greater GreaterEqual Identity IdentityN InTopK InTopKV2 Inv InvertPermutation IsFinite IsInf
IsNan L2Loss LRN LeakyRelu Less LessEqual LinSpace Log Log1p LogSoftmax LogicalAnd LogicalNot LogicalOr
MatMul MatrixBandPart MatrixDiag MatrixDiagPart MatrixDiagV3 Max MaxPool MaxPool3D MaxPoolV2
MaxPoolWithArgmax Maximum Mean Min Minimum MirrorPad Mod Mul MulNoNan Neg NoOp NotEqual OneHot OnesLike
Pack Pad PadV2 Placeholder PlaceholderV2 PlaceholderWithDefault Pow Prod Range Rank RealDiv Reciprocal
Relu Relu6 Reshape ResizeBilinear ResizeNearestNeighbor Reverse ReverseV2 Rint Round Rsqrt ScatterNd
SegmentSum Select SelectV2 Selu Shape ShapeN Sigmoid Sign Sin Sinh Size Slice Snapshot Softmax
SoftmaxCrossEntropyWithLogits Softplus Softsign SpaceToBatchND SpaceToDepth
SparseSoftmaxCrossEntropyWithLogits SparseToDense Split SplitV Sqrt Square SquaredDifference Squeeze
StridedSlice Sub Sum Tan Tanh TensorScatterAdd TensorScatterUpdate Tile TopKV2 Transpose TruncateDiv
Unique UnsortedSegmentSum Unpack Where Xdivy Xlogy ZerosLike
RandomShuffle RandomStandardNormal RandomUniform RandomUniformInt Multinomial TruncatedNormal
StatelessRandomNormal StatelessRandomUniform StatelessTruncatedNormal StatelessRandomNormalV2
StatelessRandomUniformV2 StatelessTruncatedNormalV2 StatelessRandomUniformIntV2 StatelessRandomUniformFullIntV2
StatelessRandomGetKeyCounter StatelessRandomGetAlg StatelessRandomGetKeyCounterAlg
AvgPoolGrad AvgPool3DGrad BiasAddGrad Conv2DBackpropFilter Conv3DBackpropFilterV2 Conv3DBackpropInputV2
DepthwiseConv2dNativeBackpropFilter DepthwiseConv2dNativeBackpropInput DynamicPartition DynamicStitch EluGrad
FusedBatchNormGrad FusedBatchNormGradV2 FusedBatchNormGradV3 InvGrad LRNGrad LeakyReluGrad MaxPool3DGrad
MaxPoolGrad MaxPoolGradGrad MaxPoolGradGradV2 MaxPoolGradV2 MaxPoolGradWithArgmax MirrorPadGrad
ParallelDynamicStitch ReciprocalGrad Relu6Grad ReluGrad ResizeBilinearGrad ResizeNearestNeighborGrad
RsqrtGrad SeluGrad SigmoidGrad SoftplusGrad SoftsignGrad SqrtGrad StridedSliceGrad TanhGrad TileGrad
EnsureShape PreventGradient StopGradient Assert Print PrintV2 ControlTrigger
Enter Exit LoopCond Merge NextIteration Switch RefEnter RefExit RefIdentity RefMerge RefNextIteration RefSwitch
If StatelessIf While StatelessWhile Case StatelessCase PartitionedCall StatefulPartitionedCall
OptionalFromValue OptionalGetValue OptionalHasValue OptionalNone
TensorArrayV3 TensorArrayReadV3 TensorArrayWriteV3 TensorArrayGatherV3 TensorArrayScatterV3
TensorArraySizeV3 TensorArrayCloseV3 TensorArraySplitV3 TensorArrayConcatV3 TensorArrayGradV3
TensorArrayGradWithShape EmptyTensorList TensorListConcatV2 TensorListElementShape TensorListFromTensor
TensorListGather TensorListGetItem TensorListLength TensorListPopBack TensorListPushBack TensorListReserve
TensorListResize TensorListScatterIntoExistingList TensorListSetItem TensorListSplit TensorListStack
AsString ReduceJoin RegexFullMatch RegexReplace StaticRegexFullMatch StaticRegexReplace StringFormat
StringJoin StringLength StringLower StringSplitV2 StringStrip StringToNumber StringUpper Substr
DecodeBmp DecodeGif DecodeImage DecodeJpeg DecodePng DecodeRaw
""".split())
# What freezing replaces by constants read from the checkpoint with ckptlib's reader: these never run
# (the meta graph's saver and initialisers are not run either, so they need no vetting).
VARIABLE_OPS = frozenset("VariableV2 Variable VarHandleOp ReadVariableOp ResourceGather ResourceGatherNd".split())
# PrintV2's destinations that are not files (tensorflow/core/kernels/logging_ops.cc).
_PRINT_STREAMS = frozenset({"stderr", "stdout", "log(info)", "log(warning)", "log(error)"})


def _attr_problem(node) -> str | None:
    """Why a listed op is refused all the same, when its attributes make it touch files."""
    if node.op == "PrintV2" and "output_stream" in node.attr:  # absent: the default, stderr
        stream = node.attr["output_stream"].s.decode("utf-8", "replace")
        if stream not in _PRINT_STREAMS:
            return f"prints to '{stream}'"
    return None


def forbidden_ops(graph_def, allowed: frozenset[str] = COMPUTE_OPS, nodes=None) -> list[str]:
    """'name (Op)' for every node outside `allowed`: among `nodes` (default: the whole graph), in every
    function they name (directly or through other functions, at any attribute depth) and in every function
    that declares it implements an API; with the whole graph, in every function of its library."""
    library = {f.signature.name: f for f in graph_def.library.function}
    bad: list[str] = []
    seen: set[str] = set()
    todo = [name for name, f in library.items() if nodes is None or _implements(f)]

    def call(func: str, label: str) -> None:
        if func not in library:
            bad.append(f"{label} calls '{func}', which is not a function of the graph")
        elif func not in seen and func not in todo:
            todo.append(func)

    def check(items, where: str) -> None:
        for node in items:
            label = where + (node.name if node.name == node.op else f"{node.name} ({node.op})")
            if node.op not in library and node.op not in allowed:
                bad.append(label)
            elif node.op not in library and (problem := _attr_problem(node)):
                bad.append(f"{label} {problem}")
            for func in ([node.op] if node.op in library else []) + attr_functions(node.attr):
                call(func, label)

    check(graph_def.node if nodes is None else nodes, "")
    while todo:
        name = todo.pop()
        seen.add(name)
        function = library[name]
        for func in attr_functions(function.attr):  # a function's own attributes may name others
            call(func, f"function {name}")
        check(function.node_def, f"function {name}: ")
    return bad


def attr_functions(attrs) -> list[str]:
    """Every function named in an attribute map: `func` values, lists of them, and the NameAttrLists nested
    in their own attributes, at any depth."""
    names: list[str] = []
    todo = list(attrs.values())
    while todo:
        value = todo.pop()
        kind = value.WhichOneof("value")
        funcs = [value.func] if kind == "func" else list(value.list.func) if kind == "list" else []
        for func in funcs:
            names.append(func.name)
            todo.extend(func.attr.values())
    return names


def _implements(function) -> bool:
    """Whether a library function says it implements an API (`api_implements`, `_implements`...): the
    optimizer may put it in place of a call to another function."""
    return any("implements" in key for key in function.attr)


def check_graph(graph_def, source: str, allowed: frozenset[str] = COMPUTE_OPS, nodes=None, limit: int = 12,
                action: str = "run") -> None:
    """Raise ForbiddenOps listing the offending ops, or return when every op that would run is allowed."""
    bad = forbidden_ops(graph_def, allowed, nodes)
    if bad:
        shown = ", ".join(bad[:limit]) + (f" and {len(bad) - limit} more" if len(bad) > limit else "")
        raise ForbiddenOps(
            f"Refusing to {action} '{source}': it holds ops that can read or write files, the network or "
            f"processes, or that ckptlib does not know to be pure computation: {shown}.")


def policy() -> str:
    """A digest of what this allowlist accepts: results cached under another policy are not reused."""
    text = " ".join(sorted(COMPUTE_OPS)) + "|" + " ".join(sorted(_PRINT_STREAMS)) + "|nested-v2"
    return hashlib.sha256(text.encode()).hexdigest()[:16]
