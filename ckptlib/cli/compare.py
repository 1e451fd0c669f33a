"""The `diff`, `trend` and `health` subcommands: their arguments, handlers and plain-text rendering."""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
from typing import TextIO

from ckptlib import errors
from ckptlib.cli import report
from ckptlib.cli.cacheopt import READERS, add_cache_option, result_cache
from ckptlib.cli.scheduleropt import add_scheduler_option, cluster
from ckptlib.cli.textfmt import number, table
from ckptlib.compare.types import DEFAULT_COLLAPSE, DEFAULT_JUMP, FLAGS, CheckpointDiff
from ckptlib.runs.types import SkippedCheckpoint


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not '{text}'") from None


def _non_negative(text: str) -> float:
    value = _number(text)
    if not (value >= 0 and math.isfinite(value)):  # NaN fails both; Inf would not fit in JSON
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, not {text}")
    return value


def _above_one(text: str) -> float:
    value = _number(text)
    if not (value > 1 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number > 1, not {text}")
    return value


def add_subcommands(sub) -> None:
    """Register diff, trend and health on the `add_subparsers()` object of `python -m ckptlib`."""

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.add_argument("--json", action="store_true", help="print one JSON document instead of text")
        cmd.add_argument("--reader", choices=READERS, default="native", help="native (default) or TensorFlow's")
        cmd.add_argument("--verify", action="store_true",
                         help="read every tensor, also those whose stored crc32c says they are unchanged")
        add_cache_option(cmd)
        return cmd

    diff = command("diff", "compare two checkpoints variable by variable")
    diff.add_argument("a", metavar="CKPT_A", help="checkpoint prefix, one of its files, or a run folder (latest)")
    diff.add_argument("b", metavar="CKPT_B", help="the checkpoint compared against CKPT_A")
    diff.add_argument("--map", dest="map_rules", action="append", default=[], metavar="REGEX=REPL",
                      help="rename A's variables before matching: an RE2 regex and a re.sub replacement "
                           "(repeatable, applied in order)")
    diff.add_argument("--strip-prefix", default="", metavar="P", help="remove P from the start of A's names")
    diff.add_argument("--add-prefix", default="", metavar="P",
                      help="put P in front of A's names (with --strip-prefix: of those that had it)")
    diff.add_argument("--atol", type=_non_negative, default=0.0, metavar="X",
                      help="an element counts as changed when |b - a| > X (default 0)")
    diff.add_argument("--all", action="store_true", help="list unchanged variables too (JSON always lists all)")

    trend = command("trend", "one variable's statistics across a run's checkpoints")
    trend.add_argument("run", metavar="RUN_DIR")
    trend.add_argument("--var", required=True, metavar="NAME", help="the variable's name as stored")
    add_scheduler_option(trend)

    health = command("health", "flag NaN/Inf, frozen weights and norm jumps across a run")
    health.add_argument("run", metavar="RUN_DIR")
    health.add_argument("--jump", type=_above_one, default=DEFAULT_JUMP, metavar="X",
                        help=f"flag a norm growing more than X times between checkpoints (default {DEFAULT_JUMP:g})")
    health.add_argument("--fail-on", action="append", default=[], choices=(*FLAGS, "any"), metavar="FLAG",
                        help=f"exit 1 when a flag of this kind is raised ({', '.join(FLAGS)} or any; repeatable)")
    health.add_argument("--collapse", type=_above_one, default=DEFAULT_COLLAPSE, metavar="X",
                        help=f"flag a norm shrinking more than X times (default {DEFAULT_COLLAPSE:g})")
    health.add_argument("--include-optimizer", action="store_true", help="check optimizer slots too")
    add_scheduler_option(health)


class ProgressLine:
    """One stderr line rewritten with \\r while work goes on, erased at the end; silent unless a TTY."""

    def __init__(self, label: str, stream: TextIO | None = None, interval: float = 0.1):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()  # never pollute logs or pipes with \r lines
        self.label = label
        self.interval = interval
        self._last = 0.0

    def __call__(self, done: int, total: int, name: str) -> None:
        if not self.enabled:
            return
        if done >= total:
            self.stream.write("\r\033[K")
            self.stream.flush()
            return
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now
        width = shutil.get_terminal_size((80, 24)).columns - 1
        self.stream.write(f"\r\033[K{f'{self.label} {done + 1}/{total} {name}'[:width]}")
        self.stream.flush()


def _shape(shape) -> str:
    return "-" if shape is None else str(list(shape))


def _pair(before, after) -> str:
    return before if before == after else f"{before} -> {after}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.3g}%"


def _diff_text(diff: CheckpointDiff, show_all: bool) -> str:
    lines = [f"a: {diff.a}", f"b: {diff.b}", f"atol: {diff.atol:g}",
             "summary: " + ", ".join(f"{count} {status}" for status, count in diff.summary.items())]
    rows = []
    for r in diff.variables:
        if r.status == "unchanged" and not show_all:
            continue
        shown = r.display_name or r.name
        renamed = r.name_a not in (None, r.name) and r.display_name in (None, r.name)  # by a rule, not a real name
        name = f"{shown} (A: {r.name_a})" if renamed else shown
        rows.append([name, r.status + (" (crc32c)" if r.by == "checksum" else ""), r.kind,
                     _pair(_shape(r.shape_a), _shape(r.shape_b)),
                     _pair(r.dtype_a or "-", r.dtype_b or "-"), number(r.rel_change), number(r.l2_diff),
                     number(r.max_abs_diff), number(r.cosine), _percent(r.frac_changed), number(r.nonfinite or None)])
    if rows:
        lines.append(table(["name", "status", "kind", "shape", "dtype", "rel_change", "l2_diff", "max_abs_diff",
                            "cosine", "changed", "nan/inf"], rows))
    if any(r.by == "checksum" for r in diff.variables):
        lines.append("(crc32c): equal stored checksums, dtype, shape and size; bytes not read (--verify reads them).")
    if any(r.nonfinite for r in diff.variables):
        lines.append("nan/inf: positions holding NaN or Inf in A or B; they count as changed but are left out "
                     "of rel_change, l2_diff, max_abs_diff and cosine.")
    hidden = diff.summary["unchanged"] if not show_all else 0
    if hidden:
        lines.append(f"({hidden} unchanged variables not listed; --all lists them)")
    if diff.suggestions:
        lines.append("possible renames (removed -> added, same shape and dtype):")
        lines += [f"  {s.removed} -> {s.added}  {list(s.shape)} {s.dtype}, name similarity {s.similarity:.2f}"
                  for s in diff.suggestions]
    if diff.suggested_rules:
        lines.append("try: " + " ".join(f"--map '{rule}'" for rule in diff.suggested_rules[:3]))
    return "\n".join(lines)


def _diff(args):
    from ckptlib.cache.results import cached_diff
    from ckptlib.compare.parity import export_side, parity
    from ckptlib.runs.resolve import open_checkpoint

    mapping = None  # no rules: nothing to compile (a cache hit then loads no mapping code)
    if args.map_rules or args.strip_prefix or args.add_prefix:
        from ckptlib.compare.mapping import NameMapping, parse_rule

        mapping = NameMapping(rules=tuple(parse_rule(text) for text in args.map_rules),
                              strip_prefix_a=args.strip_prefix, add_prefix_a=args.add_prefix)
    a = open_checkpoint(args.a, backend=args.reader)
    b = open_checkpoint(args.b, backend=args.reader)
    diff = cached_diff(result_cache(args), a, b, mapping=mapping, atol=args.atol, progress=ProgressLine("diff"),
                       verify=args.verify, backend=args.reader)
    doc, text = report.diff_doc(diff), _diff_text(diff, args.all)
    doc["formats"] = {"a": a.format_name, "b": b.format_name}
    side = export_side(a.format_name, b.format_name)
    if side is not None:  # "does this export hold the weights of step N?", answered on top
        verdict = parity(diff, side, *((a, b) if side == "a" else (b, a)))
        doc["parity"] = {"export": side, "checkpoint": verdict.checkpoint, "holds": verdict.holds,
                         "identical": verdict.identical, "total": verdict.total, "differ": list(verdict.differ),
                         "missing": list(verdict.missing), "by_content": [list(p) for p in verdict.by_content],
                         "verdict": verdict.sentence}
        text = f"verdict: {verdict.sentence}\n{text}"
    return doc, text


def _skipped_lines(skipped: tuple[SkippedCheckpoint, ...]) -> list[str]:
    return [f"skipped {s.prefix.rsplit('/', 1)[-1]}: {s.reason}" for s in skipped]


def _complete_or_refuse(history, command: str) -> tuple[str, ...]:
    """The run's complete checkpoints; NothingToDo when there is none (an empty folder, a root, all damaged)."""
    complete = tuple(e.prefix for e in history.checkpoints if e.complete)
    if not complete:
        found = f"{len(history.checkpoints)} checkpoint(s), none complete" if history.checkpoints else "no checkpoints"
        raise errors.NothingToDo(f"Nothing to {command} in '{history.path}': it holds {found}.")
    return complete


def _refuse_if_all_skipped(run: str, complete: tuple[str, ...], skipped, command: str) -> None:
    unreadable = {s.prefix: s.reason for s in skipped if s.error and s.prefix in complete}
    if len(unreadable) == len(complete):
        first = next(iter(unreadable.values()))
        raise errors.NothingToDo(f"Nothing to {command} in '{run}': every checkpoint was skipped as unreadable "
                                 f"({len(unreadable)}; first: {first})")


def _trend(args):
    from ckptlib.cache.results import cached_trends
    from ckptlib.runs.history import load_history

    history = load_history(args.run)
    complete = _complete_or_refuse(history, "trend")
    trends = cached_trends(result_cache(args), history, [args.var], progress=ProgressLine("trend"),
                           backend=args.reader, verify=args.verify, engine=cluster(args))
    trend = trends.variables[0]
    if not trend.points:
        _refuse_if_all_skipped(trends.run, complete, trends.skipped + trend.skipped, "trend")
        raise errors.NothingToDo(f"Nothing to trend in '{trends.run}': no complete checkpoint holds a readable "
                                 f"'{args.var}'.")
    rows = [[number(p.step), number(p.l2), number(p.mean), number(p.std), number(p.min), number(p.max),
             number(p.rel_change_prev), number(p.rel_change_first), f"{p.nan}/{p.inf}"] for p in trend.points]
    lines = [f"run: {trends.run}", f"variable: {trend.name} ({trend.kind}, {trend.dtype})"]
    lines.append(table(["step", "l2", "mean", "std", "min", "max", "rel_change_prev", "rel_change_first",
                        "nan/inf"], rows) if rows else "No complete checkpoint holds it.")
    lines += _skipped_lines(trends.skipped + trend.skipped)
    return report.trend_doc(trends, args.var), "\n".join(lines)


def _health(args):
    from ckptlib.cache.results import cached_health
    from ckptlib.runs.history import load_history

    history = load_history(args.run)
    complete = _complete_or_refuse(history, "check")
    options = dict(jump_ratio=args.jump, collapse_ratio=args.collapse, include_optimizer=args.include_optimizer,
                   progress=ProgressLine("health"), backend=args.reader, verify=args.verify)
    health = cached_health(result_cache(args), history, engine=cluster(args), **options)
    _refuse_if_all_skipped(health.run, complete, health.skipped, "check")
    what = "model weights and optimizer slots" if health.include_optimizer else "model weights"
    lines = [f"run: {health.run}",
             f"checked {len(health.checked)} variables ({what}); jump > x{health.jump_ratio:g}, "
             f"collapse < /{health.collapse_ratio:g}"]
    rows = [[f.flag, f.variable, number(f.step), f.detail] for f in health.flags]
    lines.append(table(["flag", "variable", "step", "detail"], rows) if rows else "No flags.")
    lines += _skipped_lines(health.skipped)
    failing = sorted({f.flag for f in health.flags if f.flag in args.fail_on or "any" in args.fail_on})
    if failing:
        lines.append(f"failing: {', '.join(failing)} (--fail-on)")
    args.exit_status = 1 if failing else 0  # the report is printed either way; main() exits with this
    return report.health_doc(health), "\n".join(lines)


HANDLERS = {"diff": _diff, "trend": _trend, "health": _health}
