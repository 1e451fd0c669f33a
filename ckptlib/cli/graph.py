"""Subcommands `graph`, `freeze`, `eval`, `eval-history`: their arguments, and text for people.

cli.py wires them in: `cli_graph.add_subcommands(sub)` and `HANDLERS.update(cli_graph.HANDLERS)`;
each handler returns (json_document, text) or raises CkptError, like cli.py's own. Building the parser
imports nothing heavy: what needs numpy (feeds, limits, reports, run histories) is imported by the handlers.
"""

from __future__ import annotations

import json
import sys

from ckptlib import errors
from ckptlib.cli.cacheopt import add_cache_option, result_cache
from ckptlib.cli.scheduleropt import add_scheduler_option
from ckptlib.cli.textfmt import human_bytes, table
from ckptlib.evaluate.types import DEFAULT_MEMORY_MB, DEFAULT_TIME_S

_EVAL_OPTIONS = (
    (("--input",), {"metavar": "T", "help": "input placeholder (default: the one float placeholder of 784 values)"}),
    (("--output",), {"metavar": "T", "help": "output tensor: [N,10] logits/probabilities or [N] class ids"}),
    (("--mnist",), {"metavar": "DIR", "help": "MNIST test set: folder of IDX files or a Keras mnist.npz "
                                              "(default: $CKPTLIB_MNIST_DIR, the shipped copy, Keras' cache)"}),
    (("--download",), {"action": "store_true", "help": "allow downloading mnist.npz as Keras does, if not found"}),
    (("--limit",), {"type": int, "metavar": "N", "help": "evaluate the first N test images only"}),
    (("--device",), {"choices": ("auto", "cpu", "gpu"), "default": "auto", "help": "auto: first GPU, else CPU"}),
    (("--feed",), {"action": "append", "default": [], "metavar": "NAME=VALUE",
                   "help": "value for an extra placeholder (repeatable); keep_prob-like get 1.0, flags False"}),
    (("--labels",), {"metavar": "T", "help": "placeholder to feed the labels to (ids or one-hot, per its shape)"}),
    (("--metric",), {"metavar": "T", "help": "tensor to read per batch; reports its mean weighted by batch size"}),
    (("--raw-pixels",), {"action": "store_true", "help": "feed pixels as 0-255 instead of scaling to [0, 1]"}),
    (("--batch-size",), {"type": int, "default": 1000, "metavar": "N", "help": "images per batch (default 1000)"}),
)
# Everything that runs a graph does so in a child process bounded by these (ckptlib/evaluate/sandbox.py).
_LIMIT_OPTIONS = (
    (("--time-limit",), {"type": float, "default": DEFAULT_TIME_S, "metavar": "S",
                         "help": f"stop the graph after S seconds (default {DEFAULT_TIME_S}; eval-history: each "
                                 "checkpoint)"}),
    (("--memory-limit",), {"type": int, "default": DEFAULT_MEMORY_MB, "metavar": "MB",
                           "help": f"memory the graph may use, in MB (default {DEFAULT_MEMORY_MB})"}),
)


def add_subcommands(sub) -> None:
    """Register graph, freeze, eval and eval-history on cli.py's subparsers object."""
    def command(name: str, help_text: str):
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.add_argument("--json", action="store_true", help="print one JSON document instead of text")
        return cmd

    graph = command("graph", "what a .meta file or a SavedModel holds: signatures, ops, collections, devices, "
                             "suggested inputs/outputs")
    graph.add_argument("meta", metavar="META", help="a .meta file, a checkpoint prefix, a run folder (latest), or a "
                                                    "SavedModel folder")
    graph.add_argument("--clear-devices", action="store_true", help="report ops without their device pins")
    graph.add_argument("--node", metavar="NAME", help="show this op's node_def with readable attributes")
    graph.add_argument("--all-ops", action="store_true", help="list every op in the text output")
    freeze = command("freeze", "freeze a checkpoint and its .meta into a GraphDef .pb")
    freeze.add_argument("ckpt", metavar="CKPT", help="checkpoint prefix, one of its files, or a run folder (latest)")
    freeze.add_argument("--outputs", required=True, metavar="N1,N2", help="output op names, comma-separated")
    freeze.add_argument("--out", required=True, metavar="FILE.pb", help="where to write (not a checkpoint folder)")
    for flags, kwargs in _LIMIT_OPTIONS:
        freeze.add_argument(*flags, **kwargs)
    evaluate = command("eval", "accuracy of a frozen .pb or a SavedModel's signature on the MNIST test set")
    evaluate.add_argument("model", metavar="MODEL.pb", help="a frozen GraphDef .pb, or a SavedModel folder")
    evaluate.add_argument("--signature", metavar="NAME", help="SavedModel only: the signature to run (default "
                                                              "serving_default); --input/--output name its keys")
    history = command("eval-history", "accuracy of every checkpoint of a run (frozen in memory)")
    history.add_argument("run", metavar="RUN_DIR")
    history.add_argument("--outputs", required=True, metavar="N", help="output op name(s) to freeze")
    add_scheduler_option(history)
    for cmd in (evaluate, history):
        for flags, kwargs in _EVAL_OPTIONS + _LIMIT_OPTIONS:
            cmd.add_argument(*flags, **kwargs)
        add_cache_option(cmd)


def _progress(label: str, when_piped: bool = False):
    """A progress line on stderr: rewritten in place on a terminal; when stderr is a file or pipe, one
    line per step only if `when_piped` (eval-history's checkpoints, not eval's batches)."""
    tty = sys.stderr.isatty()
    if not tty and not when_piped:
        return None

    def show(done: int, total: int, message: str) -> None:
        if tty:
            end = "\n" if done >= total else ""
            print(f"\r{label}: {message} ({done}/{total})\033[K", end=end, file=sys.stderr, flush=True)
        else:
            print(f"{label}: {message} ({done}/{total})", file=sys.stderr, flush=True)

    return show


def _eval_options(args) -> dict:
    from ckptlib.evaluate.feeds import parse_feeds

    limits = _limits(args)
    return {"input_tensor": args.input, "limit": args.limit, "device": args.device, "feeds": parse_feeds(args.feed),
            "labels": args.labels, "metric": args.metric, "raw_pixels": args.raw_pixels,
            "batch_size": args.batch_size, "time_limit": limits.time_s, "memory_limit": limits.memory_mb}


def _limits(args):
    from ckptlib.evaluate.limits import make_limits

    return make_limits(args.time_limit, args.memory_limit)


def _with_limits(doc: dict, args) -> dict:
    """The document with the limits the graph ran under: {"limits": {"time_s", "memory_mb"}}."""
    return {**doc, "limits": _limits(args).doc}


def _shape_text(shape) -> str:
    return "?" if shape is None else "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _tensors_text(tensors) -> str:
    return ", ".join(f"{t.key}={t.name} {t.dtype}{_shape_text(t.shape)}" for t in tensors) or "-"


def _graph(args):
    from ckptlib.cli import graph_docs
    from ckptlib.graph.savedmodel_info import describe_graph_node as describe_node
    from ckptlib.graph.savedmodel_info import read_graph_info as read_meta_graph

    if args.node:
        node = describe_node(args.meta, args.node, clear_devices=args.clear_devices)
        doc = graph_docs.node_doc(args.meta, node)
        lines = [f"op:        {node.name}", f"type:      {node.type}", f"device:    {node.device or '-'}",
                 f"inputs:    {', '.join(node.inputs) or '-'}", f"consumers: {', '.join(node.consumers) or '-'}",
                 "attrs:"] + [f"  {key}: {json.dumps(value)}" for key, value in node.attrs]
        return doc, "\n".join(lines)
    info = read_meta_graph(args.meta, clear_devices=args.clear_devices)
    counts = ", ".join(f"{op} {n}" for op, n in info.op_type_counts[:12])
    more = f", … ({len(info.op_type_counts)} types)" if len(info.op_type_counts) > 12 else ""
    lines = [f"meta:     {info.path}",
             f"written by TensorFlow {info.tensorflow_version or '?'}; tags: {', '.join(info.tags) or '-'}",
             f"ops:      {info.num_ops} ({counts}{more})",
             f"devices:  {', '.join(info.devices) or 'none pinned'}"
             + (f" (cleared: {', '.join(info.cleared_devices)})" if info.cleared_devices else "")]
    if info.saver:
        lines.append(f"saver:    restore op {info.saver.restore_op}, format {info.saver.version}, "
                     f"max_to_keep {info.saver.max_to_keep}")
    lines.append("collections:")
    for c in info.collections:
        shown = ", ".join(c.items[:6]) + (f", … ({len(c.items)})" if len(c.items) > 6 else "")
        lines.append(f"  {c.key} ({c.kind}): {shown or '-'}")
    if len(info.meta_graphs) > 1:
        lines.append("meta graphs: " + "; ".join(", ".join(tags) or "(no tags)" for tags in info.meta_graphs))
    for s in info.signatures:
        if s.key.startswith("__"):  # the loader's own (__saved_model_init_op), not the model's
            continue
        lines.append(f"signature {s.key} ({s.method_name}): inputs {_tensors_text(s.inputs)}; "
                     f"outputs {_tensors_text(s.outputs)}")
    if info.functions:
        shown = ", ".join(info.functions[:8]) + (f", … ({len(info.functions)})" if len(info.functions) > 8 else "")
        lines.append(f"functions: {shown}")
    lines.append("suggested inputs:")
    lines.append(table(["placeholder", "dtype", "shape", "role"],
                       [[p.name, p.dtype, _shape_text(p.shape), p.role + (" (has default)" if p.has_default else "")]
                        for p in info.suggested_inputs]) if info.suggested_inputs else "  none")
    lines.append("suggested outputs (best first):")
    lines.append(table(["op", "type", "why"], [[o.name, o.type, o.reason] for o in info.suggested_outputs])
                 if info.suggested_outputs else "  none found")
    if args.all_ops:
        lines.append(table(["op", "type", "device", "inputs"],
                           [[o.name, o.type, o.device or "-", ", ".join(o.inputs)] for o in info.ops]))
    return graph_docs.graph_doc(info), "\n".join(lines)


def _freeze(args):
    from ckptlib.cli import report
    from ckptlib.evaluate.freeze import freeze

    limits = _limits(args)
    result = freeze(args.ckpt, args.outputs, args.out, time_limit=limits.time_s, memory_limit=limits.memory_mb)
    text = (f"froze {result.checkpoint}\n  -> {result.output}: {result.num_nodes} nodes, {human_bytes(result.bytes)}, "
            f"{result.num_variables} variables as constants, outputs {', '.join(result.outputs)}")
    if result.cleared_devices:
        text += f"\n  device pins cleared: {', '.join(result.cleared_devices)}"
    return _with_limits(report.freeze_doc(result), args), text


def _eval(args):
    from ckptlib.cache.evaluations import cached_evaluate  # imports TensorFlow only on a miss
    from ckptlib.cli import report
    from ckptlib.evaluate.savedmodel_eval import DEFAULT_SIGNATURE, require_folder, saved_model_folder
    from ckptlib.storage import absolute, isdir

    model, signature, options = args.model, None, _eval_options(args)
    if saved_model_folder(args.model) is not None or isdir(absolute(args.model)):
        # --input/--output name the signature's keys; the cache keys the folder by saved_model.pb and its variables.
        model, signature = require_folder(args.model), args.signature or DEFAULT_SIGNATURE
        options["signature"] = signature
    elif args.signature:
        raise errors.UnsupportedFormat(f"Cannot evaluate '{absolute(args.model)}': --signature applies to a "
                                       "SavedModel folder, and this is a file.")
    result = cached_evaluate(result_cache(args), model, output_tensor=args.output, mnist=args.mnist,
                             allow_download=args.download, progress=_progress("eval"), **options)
    feeds = ", ".join(f"{k}={v}" for k, v in result.feeds) or "-"
    padded = f" (digits padded by {result.padding} pixels to 32x32)" if result.padding else ""
    lines = [f"model:     {result.model}" + (f" (signature {signature})" if signature else ""),
             f"dataset:   {result.dataset_source}, {result.num_examples} images",
             f"input:     {result.input}{padded}", f"output:    {result.output} ({result.output_kind})",
             f"feeds:     {feeds}", f"device:    {result.device}, {result.images_per_second:,.0f} images/s",
             f"accuracy:  {result.accuracy:.2%} ({result.num_correct}/{result.num_examples})"]
    if result.metric:
        lines.append(f"metric:    {result.metric.name} = {result.metric.value:.6g}")
    per_class = [f"{d}: {'-' if a is None else f'{a:.1%}'}" for d, a in enumerate(result.per_class_accuracy)]
    lines.append("per class: " + "  ".join(per_class))
    lines.append("confusion (rows: true digit, columns: predicted):")
    lines += _matrix(result.confusion)
    doc = _with_limits(report.eval_doc(result), args)
    return {**doc, "padding": result.padding, **({"signature": signature} if signature else {})}, "\n".join(lines)


def _matrix(rows) -> list[str]:
    """Right-aligned counts, so that columns of digits line up."""
    width = max(len(str(v)) for row in rows for v in row)
    lines = ["   " + " ".join(f"{d:>{width}}" for d in range(len(rows)))]
    lines += [f"{t:>2} " + " ".join(f"{v:>{width}}" for v in row) for t, row in enumerate(rows)]
    return lines


def _eval_history(args):
    from ckptlib.cache.evaluations import cached_eval_history
    from ckptlib.cli import report
    from ckptlib.cli.scheduleropt import cluster
    from ckptlib.runs.history import load_history

    history = cached_eval_history(result_cache(args), load_history(args.run), args.outputs,
                                  output_tensor=args.output, mnist=args.mnist, allow_download=args.download,
                                  progress=_progress("eval-history", when_piped=True), engine=cluster(args),
                                  **_eval_options(args))
    if not history.points:
        reasons = "; ".join(f"{s.prefix.rsplit('/', 1)[-1]}: {s.reason}" for s in history.skipped[:2])
        raise errors.NothingToDo(f"Nothing evaluated in '{history.run}': "
                                 + (f"every checkpoint was skipped ({reasons})." if reasons else "it holds no checkpoint."))
    with_metric = args.metric is not None
    rows = [["-" if p.step is None else str(p.step), f"{p.accuracy:.2%}", str(p.num_examples)]
            + ([f"{p.metric:.4g}" if p.metric is not None else "-"] if with_metric else []) + [p.prefix]
            for p in history.points]
    headers = ["step", "accuracy", "images"] + ([args.metric] if with_metric else []) + ["checkpoint"]
    lines = [f"run:     {history.run}", f"dataset: {history.dataset_source}; device: {history.device or '-'}",
             table(headers, rows) if rows else "no checkpoint evaluated"]
    if history.best:
        lines.append(f"best: step {history.best.step} ({history.best.accuracy:.2%}) {history.best.prefix}")
    lines += [f"skipped {s.prefix}: {s.reason}" for s in history.skipped]
    return _with_limits(report.eval_history_doc(history), args), "\n".join(lines)


HANDLERS = {"graph": _graph, "freeze": _freeze, "eval": _eval, "eval-history": _eval_history}
