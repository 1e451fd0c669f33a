"""The `watch` subcommand: follow a training run, one line (or JSON object) per new complete checkpoint."""

# Unlike the other subcommands, watch prints as it goes instead of returning one document to main():
# each line is flushed when its checkpoint is reported, and the handler ends the process itself with
# SystemExit (0 on --timeout or Ctrl-C, 1 right after the first event carrying a --fail-on flag), so that
# main() prints nothing after the stream. Errors before the first poll (no such RUN) still go through
# main(): one `error:` line, exit 2.

from __future__ import annotations

import argparse
import json
import math
import os
import sys

from ckptlib.cli.textfmt import human_time, number
from ckptlib.compare.types import DEFAULT_COLLAPSE, DEFAULT_JUMP, FLAGS
from ckptlib.live.types import WatchEvent
from ckptlib.runs.types import SkippedCheckpoint


def _seconds(text: str, allow_zero: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, not '{text}'") from None
    if not (math.isfinite(value) and (value >= 0 if allow_zero else value > 0)):
        raise argparse.ArgumentTypeError(f"must be a finite number {'>=' if allow_zero else '>'} 0, not {text}")
    return value


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not '{text}'") from None
    if not (value > 1 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number > 1, not {text}")
    return value


def add_subcommands(sub) -> None:
    """Register `watch` on the `add_subparsers()` object of `python -m ckptlib`."""
    help_text = "follow a training run: report each new complete checkpoint as it appears"
    cmd = sub.add_parser("watch", help=help_text, description=help_text + " (Ctrl-C stops, exit 0)")
    cmd.add_argument("run", metavar="RUN", help="the run folder (local path or URL); it may hold no checkpoint yet")
    cmd.add_argument("--json", action="store_true", help="one JSON object per line and checkpoint instead of text")
    cmd.add_argument("--interval", type=lambda t: _seconds(t, False), default=2.0, metavar="S",
                     help="seconds between two looks at the folder (default 2; URLs back off to 8x when quiet)")
    cmd.add_argument("--timeout", type=lambda t: _seconds(t, True), default=None, metavar="S",
                     help="stop after S seconds, exit 0 (default: until Ctrl-C)")
    cmd.add_argument("--fail-on", action="append", default=[], choices=(*FLAGS, "any"), metavar="FLAG",
                     help=f"exit 1 right after the first checkpoint flagged so ({', '.join(FLAGS)} or any; "
                          "repeatable). frozen needs the whole run and never fires here: use `health` at the end")
    cmd.add_argument("--jump", type=_ratio, default=DEFAULT_JUMP, metavar="X",
                     help=f"norm_jump: a norm growing more than X times since the last checkpoint "
                          f"(default {DEFAULT_JUMP:g})")
    cmd.add_argument("--collapse", type=_ratio, default=DEFAULT_COLLAPSE, metavar="X",
                     help=f"norm_collapse: a norm shrinking more than X times (default {DEFAULT_COLLAPSE:g})")


def event_doc(event: WatchEvent) -> dict:
    """The JSON object of one event (DESIGN.md, `watch`)."""
    change = None
    if event.change is not None:
        change = {"from": event.change.from_prefix, "max_rel_change": _number(event.change.max_rel_change),
                  "top": [{"name": name, "rel_change": _number(rel)} for name, rel in event.change.top]}
        if event.change.problem:
            change["problem"] = event.change.problem
    return {
        "event": "checkpoint",
        "prefix": event.prefix,
        "step": event.step,
        "time": event.time,
        "health": [{"variable": f.variable, "flag": f.flag, "detail": f.detail} for f in event.health],
        "change": change,
    }


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def event_text(event: WatchEvent) -> str:
    """One line: step, name, time, how far the weights moved since the last one, flags."""
    parts = [f"step {number(event.step)}", event.name, human_time(event.time)]
    change = event.change
    if change is None:
        parts.append("first checkpoint")
    elif change.max_rel_change is None:
        parts.append(f"vs {os.path.basename(change.from_prefix)}: " + (change.problem or "no rel_change defined"))
    else:
        parts.append(f"max rel_change {number(change.max_rel_change)} ({change.top[0][0]}) "
                     f"vs {os.path.basename(change.from_prefix)}")
    if event.health:
        parts.append("flags: " + ", ".join(f"{f.flag} {f.variable}" for f in event.health))
    return "  ".join(parts)


def _warn(skipped: SkippedCheckpoint) -> None:
    print(f"warning: skipped {os.path.basename(skipped.prefix)}: {skipped.reason}", file=sys.stderr, flush=True)


def _watch(args):
    from ckptlib.live.watcher import watch_run  # reading and comparing: loaded when watching starts

    events = watch_run(args.run, args.interval, args.timeout, jump_ratio=args.jump, collapse_ratio=args.collapse,
                       on_skip=_warn)  # a missing RUN raises here: main() prints the error line, exit 2
    failing = set(FLAGS) if "any" in args.fail_on else set(args.fail_on)
    if sys.stderr.isatty():
        until = f" for {args.timeout:g} s" if args.timeout is not None else ""
        print(f"watching {args.run} every {args.interval:g} s{until}; Ctrl-C stops", file=sys.stderr, flush=True)
    status = 0
    try:
        for event in events:
            print(json.dumps(event_doc(event)) if args.json else event_text(event), flush=True)
            if event.flags & failing:
                status = 1
                break
    except KeyboardInterrupt:  # Ctrl-C is how a watch without --timeout normally ends
        pass
    except BrokenPipeError:  # `… | head -1` closed the pipe: stop quietly, like main() does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    raise SystemExit(status)


HANDLERS = {"watch": _watch}
