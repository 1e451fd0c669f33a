"""The `graph-diff` subcommand: two graphs (.meta, frozen .pb, SavedModel) compared op by op."""

from __future__ import annotations

from ckptlib.cli.textfmt import table

SHOWN = 25  # ops listed per section of the text output before "… N more"
SCOPES_SHOWN = 15


def add_subcommands(sub) -> None:
    """Register graph-diff on the `add_subparsers()` object of `python -m ckptlib`."""
    cmd = sub.add_parser("graph-diff", help="compare two graphs op by op (.meta, frozen .pb or SavedModel)",
                         description="compare two graphs op by op (.meta, frozen .pb or SavedModel)")
    cmd.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    cmd.add_argument("a", metavar="A", help="a .meta, a frozen .pb, a SavedModel folder, or a run folder (latest)")
    cmd.add_argument("b", metavar="B", help="the graph compared against A")
    cmd.add_argument("--map", dest="map_rules", action="append", default=[], metavar="REGEX=REPL",
                     help="rename A's ops before matching: an RE2 regex, a re.sub replacement (repeatable, in order)")
    cmd.add_argument("--strip-prefix", default="", metavar="P", help="remove P from the start of A's op names")
    cmd.add_argument("--add-prefix", default="", metavar="P",
                     help="put P in front of A's op names (with --strip-prefix: of those that had it)")
    cmd.add_argument("--clear-devices", action="store_true", help="ignore device pins on both sides")
    cmd.add_argument("--function", metavar="NAME",
                     help="compare the body of library function NAME (a TF2 SavedModel's real ops), or of the "
                          "function behind signature NAME (serving_default); default: the top-level graphs")
    cmd.add_argument("--function-b", metavar="NAME",
                     help="B's function, when it is named otherwise (default: the same as --function)")
    cmd.add_argument("--all", action="store_true", help="list every differing op in the text (JSON lists all)")


def _graph_diff(args):
    from ckptlib.compare.mapping import NameMapping, parse_rule
    from ckptlib.graph.graphdiff import diff_graphs, graph_diff_doc
    from ckptlib.graph.load import load_graph

    # The rules are checked before either graph is read: a typo fails in milliseconds, not after TensorFlow.
    mapping = NameMapping(rules=tuple(parse_rule(text) for text in args.map_rules),
                          strip_prefix_a=args.strip_prefix, add_prefix_a=args.add_prefix)
    function_b = args.function_b if args.function_b is not None else args.function
    a = load_graph(args.a, clear_devices=args.clear_devices, function=args.function or None)
    b = load_graph(args.b, clear_devices=args.clear_devices, function=function_b or None)
    diff = diff_graphs(a, b, mapping)
    doc = graph_diff_doc(diff)
    if a.function or b.function:  # the functions' own names, a signature key resolved
        doc.update(function_a=a.function, function_b=b.function)
    return doc, diff_text(diff, None if args.all else SHOWN, a.function, b.function)


def _more(count: int, shown: int) -> list[str]:
    return [f"  … {count - shown} more"] if count > shown else []


def diff_text(diff, limit: int | None = SHOWN, function_a: str | None = None, function_b: str | None = None) -> str:
    """Counts, then changed ops with their changes, then added and removed ops, then scopes; `limit` ops
    per section (None: all); the functions compared, when bodies were, named beside their files."""
    summary = diff.summary
    ops_a = summary["removed"] + summary["changed"] + summary["unchanged"]
    ops_b = summary["added"] + summary["changed"] + summary["unchanged"]
    where_a = f", function {function_a}" if function_a else ""
    where_b = f", function {function_b}" if function_b else ""
    lines = [f"a: {diff.a} ({diff.kind_a}{where_a}, {ops_a} ops)", f"b: {diff.b} ({diff.kind_b}{where_b}, {ops_b} ops)",
             "ops: " + ", ".join(f"{count} {status}" for status, count in summary.items())]
    if diff.identical:
        lines.append("the graphs are the same op for op")
        return "\n".join(lines)
    cap = limit if limit is not None else len(diff.ops)
    for status in ("changed", "added", "removed"):
        rows = [op for op in diff.ops if op.status == status]
        if not rows:
            continue
        lines.append(f"{status} ({len(rows)}):")
        for op in rows[:cap]:
            renamed = f" (A: {op.name_a})" if op.name_a not in (None, op.name) else ""
            kind = op.type_b if status != "removed" else op.type_a
            lines.append(f"  {op.name}{renamed}  [{kind}]")
            lines += [f"      {change}" for change in op.changes]
        lines += _more(len(rows), cap)
    differing = [s for s in diff.scopes if s.added + s.removed + s.changed]
    if differing:
        lines.append("scopes with differences:")
        shown = differing[: SCOPES_SHOWN if limit is not None else len(differing)]
        lines.append(table(["scope", "added", "removed", "changed", "unchanged"],
                           [[s.scope, str(s.added), str(s.removed), str(s.changed), str(s.unchanged)]
                            for s in shown]))
        lines += _more(len(differing), len(shown))
    return "\n".join(lines)


HANDLERS = {"graph-diff": _graph_diff}
