"""Diff page widgets: the name mapping (rules, strip and add prefix, atol), the rename suggestions with what
each would pair before it is applied, and the status filter and variable picker defaults, all kept in the URL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import streamlit as st

from ckptlib.compare.mapping import RuleEffect, diff_names, parse_rule, prefix_rules, rule_effect, suggestion_effects
from ckptlib.compare.types import CheckpointDiff, VariableDiff
from ui.pickers import text_param

MAPPING_KEYS = ("map", "strip", "add", "atol")
SHOWN_RULES = 5


@dataclass(frozen=True)
class MappingFields:
    """What the mapping expander holds, as typed (every field also in the URL)."""

    rules_text: str
    strip: str
    add: str
    atol_text: str

    def mapping(self) -> tuple[tuple[tuple[str, str], ...], str]:
        """(rules, strip_prefix) for ui.data.diff; add-prefix (alone or with strip) becomes the first rule.

        Raises BadMappingRule naming a line that is not REGEX=REPL.
        """
        rules = tuple(parse_rule(line.strip()) for line in self.rules_text.splitlines() if line.strip())
        if self.add:  # NameMapping's strip/add semantics, as a rule applied before the others
            return prefix_rules(self.strip, self.add) + rules, ""
        return rules, self.strip


def mapping_fields() -> MappingFields:
    """The 'Name mapping and tolerance' expander: open when the URL already sets any of it."""
    in_use = _in_use()
    with st.expander("Name mapping and tolerance" + (f" (in use: {in_use})" if in_use else ""), expanded=bool(in_use)):
        rules_text = text_param(st.text_area, "Rules applied to A's names, one REGEX=REPL per line (\\1 refers to "
                                "the first (…) group)", "map", placeholder="^(conv1|conv2)/=model/backbone/\\1/")
        left, right = st.columns(2)
        strip = text_param(left.text_input, "Strip this prefix from A's names", "strip", placeholder="resnet/")
        add = text_param(right.text_input, "Add this prefix to A's names", "add", placeholder="model/backbone/",
                         help="With a prefix to strip: only in front of the names that had it (a prefix swap).")
        atol_text = text_param(st.text_input, "atol: differences up to this count as unchanged", "atol")
    return MappingFields(rules_text, strip, add, atol_text)


def _in_use() -> str:
    """What the mapping fields hold (this run's session values, else the URL's), for the expander's label."""
    parts = []
    for key in MAPPING_KEYS:
        value = str(st.session_state.get(key, st.query_params.get(key, ""))).strip()
        if value:
            lines = [line for line in value.splitlines() if line.strip()]
            parts.append(f"{len(lines)} rule(s)" if key == "map" else f"{key} `{value}`")
    return ", ".join(parts)


def _append_rules(current: str, rules: Sequence[str]) -> None:
    # A callback: the rules' text area already exists in this run, so only a callback may change it.
    st.session_state["map"] = "\n".join(filter(None, [current.rstrip("\n"), *rules]))


def _pairs_text(effect: RuleEffect) -> str:
    left = (f"{effect.unpaired_a} of A and {effect.unpaired_b} of B would stay unpaired"
            if effect.unpaired_a or effect.unpaired_b else "nothing would stay unpaired")
    broken = f", {effect.unpairs} pair(s) now matched would split" if effect.unpairs else ""
    return f"would pair {effect.pairs} variable(s); {left}{broken}"


def suggestions(result: CheckpointDiff, rules_text: str) -> None:
    """The likely renames, and each suggested rule with what it would pair, and buttons to apply them."""
    if not result.suggestions:
        return
    pairs = ", ".join(f"{p.removed} → {p.added}" for p in result.suggestions[:5])
    more = f" and {len(result.suggestions) - 5} more" if len(result.suggestions) > 5 else ""
    st.info(f"Unmatched variables that look renamed (same shape and dtype): {pairs}{more}.")
    effects = suggestion_effects(result)[:SHOWN_RULES]
    for index, effect in enumerate(effects):
        text, button = st.columns([5, 1], vertical_alignment="center")
        text.markdown(f"`{effect.rules[0]}` {_pairs_text(effect)}")
        button.button("Apply", key=f"apply_rule_{index}", help=f"Add {effect.rules[0]} to the rules",
                      on_click=_append_rules, args=(rules_text, effect.rules))
    if len(effects) > 1:
        rules = [e.rules[0] for e in effects]
        together = rule_effect(rules, *diff_names(result))
        st.button(f"Apply all {len(rules)} rules: {_pairs_text(together)}", key="apply_rules",
                  on_click=_append_rules, args=(rules_text, rules))


def forget_on_new_pair(new_pair: bool, *keys: tuple[str, str]) -> None:
    """After the pair of checkpoints (or the rules) changed on this page, forget these (widget key, URL key)
    choices so they start again from their defaults. A choice whose widget is not in the session came with
    the URL (a shared link, a link from Trends): it stays."""
    if not new_pair:
        return
    for widget_key, url_key in keys:
        if widget_key in st.session_state:
            del st.session_state[widget_key]
            st.query_params.pop(url_key, None)


def status_filter(column, summary: dict[str, int]) -> list[str]:
    """The status multiselect, in the URL as ?status=… while it differs from the statuses the diff has (its
    default). Set through the session state (not `default=`) so the browser's chips follow a reset too."""
    present = [s for s, n in summary.items() if n]
    if "diff_status" not in st.session_state:
        wanted = [s for s in st.query_params.get_all("status") if s in summary]
        st.session_state["diff_status"] = wanted or present
    statuses = column.multiselect("Status", list(summary), key="diff_status")
    if list(statuses) == present:
        st.query_params.pop("status", None)
    else:
        st.query_params["status"] = statuses
    return statuses


def largest_change(rows: Sequence[VariableDiff], options: Sequence[str]) -> str | None:
    """The changed variable among `options` that moved most (largest rel_change), else None."""
    allowed = set(options)
    moved = [r for r in rows if r.status == "changed" and r.rel_change is not None and r.name in allowed]
    return max(moved, key=lambda r: r.rel_change).name if moved else None
