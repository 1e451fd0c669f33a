"""`python -m ckptlib SUBCOMMAND`: text by default, one JSON document with --json, exit 2 on bad input."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys

from ckptlib import errors, storage
from ckptlib.cli import compare as cli_compare
from ckptlib.cli import graph as cli_graph
from ckptlib.cli import graphdiff as cli_graphdiff
from ckptlib.cli import report
from ckptlib.cli import review as cli_review
from ckptlib.cli import watch as cli_watch
from ckptlib.cli.cacheopt import READERS, add_cache_option, result_cache
from ckptlib.cli.compare import ProgressLine
from ckptlib.cli.textfmt import human_bytes, human_time, number, table

# Subcommand modules import only argparse-level names at the top; what a command computes with is imported
# by its handler, so a cache hit in a fresh process does not pay for the diff, the trends or TensorFlow.


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's error contract: one `error: …` line on stderr, exit status 2."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    # Subparsers are made with the parent's class, so every subcommand keeps the one-line errors.
    parser = _Parser(prog="python -m ckptlib", description="Review TensorFlow checkpoints.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.add_argument("--json", action="store_true", help="print one JSON document instead of text")
        return cmd

    command("runs", "list the runs (folders holding checkpoints) under ROOT").add_argument("root", metavar="ROOT")
    history = command("history", "a run's checkpoints, reconciled with its state file")
    history.add_argument("run", metavar="RUN_DIR")
    history.add_argument("--verify", action="store_true",
                         help="read every tensor and check its crc32c (finds damaged data shards; reads every byte)")
    for name, help_text in (("vars", "every variable of a checkpoint"), ("show", "one variable's statistics")):
        cmd = command(name, help_text)
        cmd.add_argument("ckpt", metavar="CKPT", help="checkpoint prefix, one of its files, or a run folder (latest)")
        cmd.add_argument("--reader", choices=READERS, default="native", help="native (default) or TensorFlow's")
        if name == "show":
            cmd.add_argument("--var", required=True, metavar="NAME", help="the variable's name as stored")
            add_cache_option(cmd)
    cli_compare.add_subcommands(sub)
    cli_graph.add_subcommands(sub)
    cli_graphdiff.add_subcommands(sub)
    cli_review.add_subcommands(sub)
    cli_watch.add_subcommands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # One command is one storage operation (a URL's listings and small files fetched once), except
    # `watch`, whose polls must see the store as it is now.
    scope = contextlib.nullcontext() if args.command == "watch" else storage.operation()
    try:
        with scope:
            document, text = HANDLERS[args.command](args)
    except errors.CkptError as exc:  # redact: a URL's query string (a signed URL's) or a key never shows
        print(f"error: {storage.redact(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:  # permissions, a vanished file: still one line naming the file
        print(storage.redact(f"error: {exc.filename or ''}: {exc.strerror or exc}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    try:
        print(json.dumps(document, indent=2) if args.json else text)
        sys.stdout.flush()
    except BrokenPipeError:  # `… | head` closed the pipe: not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return getattr(args, "exit_status", 0)  # e.g. 1 when `health --fail-on FLAG` found that flag


def _runs(args):
    from ckptlib.runs.history import find_runs

    root = storage.absolute(args.root)
    runs = find_runs(root)
    rows = [[r.name, str(r.num_checkpoints), number(r.latest_step), r.path] for r in runs]
    text = table(["run", "checkpoints", "latest step", "path"], rows) if runs else f"No checkpoints under {args.root}."
    return report.runs_doc(root, runs), text


def _history(args):
    from ckptlib.runs.history import load_history
    from ckptlib.runs.verify import verify_history

    history = load_history(args.run)
    if args.verify:
        history = verify_history(history, progress=ProgressLine("verify"))
    rows = [
        [e.name, number(e.step), human_time(e.mtime), human_bytes(e.size_bytes), e.status + _checked(e),
         "meta" if e.has_meta else "-", e.problem or ""]
        for e in history.checkpoints
    ]
    lines = [f"run: {history.path}"]
    if history.problem:
        lines.append(f"problem: {history.problem}")
    lines += [f"note: {n}" for n in history.notes]
    if not args.verify:
        lines.append("note: checksums unverified (--verify reads every tensor and checks its crc32c)")
    lines.append(table(["checkpoint", "step", "time", "size", "status", "meta", "problem"], rows))
    return report.history_doc(history), "\n".join(lines)


def _checked(entry) -> str:
    return {"ok": " ✓", "damaged": ""}.get(entry.checksums, "")


def _vars(args):
    from ckptlib.runs.resolve import open_checkpoint

    ckpt = open_checkpoint(args.ckpt, backend=args.reader)
    renamed = any(v.display_name != v.name for v in ckpt.variables)  # keys beside the names only where they differ
    rows = [[v.display_name, str(list(v.shape)), v.dtype, str(v.num_elements), human_bytes(v.nbytes), _kind(v)]
            + ([v.name] if renamed else []) for v in ckpt.variables]
    total = sum(v.nbytes for v in ckpt.variables)
    text = (f"checkpoint: {ckpt.prefix} ({ckpt.format_name})\n"
            + table(["name", "shape", "dtype", "elements", "size", "kind"] + (["key"] if renamed else []), rows)
            + f"\n{len(rows)} variables, {human_bytes(total)}")
    return report.vars_doc(ckpt.prefix, ckpt.variables), text


def _kind(var) -> str:
    if var.copy_of:
        return f"{var.kind} (copy)"
    return f"{var.kind} (slot of {var.slot_of})" if var.slot_of else var.kind


def _show(args):
    from ckptlib.cache.results import cached_summary
    from ckptlib.runs.resolve import open_checkpoint

    ckpt = open_checkpoint(args.ckpt, backend=args.reader)
    info = ckpt.info(args.var)
    summary = cached_summary(result_cache(args), ckpt, args.var, args.reader)  # large tensors streamed
    doc = report.show_doc(summary)
    stats = "\n".join(f"  {key:<14}{number(value)}" for key, value in doc["stats"].items())
    preview = json.dumps(summary.preview)
    if len(preview) > 2000:
        preview = preview[:2000] + " …"
    text = (f"checkpoint: {ckpt.prefix}\nvariable:   {info.display_name}{_key_note(info)}\nshape:      {list(info.shape)}\n"
            f"dtype:      {info.dtype}\nkind:       {info.kind}\nstatistics:\n{stats}\n"
            f"preview{' (first values)' if summary.preview_truncated else ''}: {preview}")
    return doc, text


def _key_note(info) -> str:
    return f" (key {info.name})" if info.display_name != info.name else ""


HANDLERS = {"runs": _runs, "history": _history, "vars": _vars, "show": _show}
HANDLERS.update(cli_compare.HANDLERS)
HANDLERS.update(cli_graph.HANDLERS)
HANDLERS.update(cli_graphdiff.HANDLERS)
HANDLERS.update(cli_review.HANDLERS)
HANDLERS.update(cli_watch.HANDLERS)
