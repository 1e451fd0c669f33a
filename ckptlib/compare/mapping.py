"""Map checkpoint A's variable names onto B's; count what more rules would pair (guesses: renames.py)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from ckptlib.compare.renames import (
    BACKSLASH,
    Names,
    Rule,
    literal_repl,
    reserved,
    rule_text,
    suggest_pairs,
    suggest_rules,
)
from ckptlib.compare.types import CheckpointDiff
from ckptlib.compare.userregex import UserRule, compile_rules
from ckptlib.errors import BadMappingRule

__all__ = ["BACKSLASH", "NameMapping", "RuleEffect", "diff_names", "parse_rule", "prefix_rules", "rule_effect",
           "rule_text", "suggest_pairs", "suggest_rules", "suggestion_effects"]

# The first '=' not escaped by a backslash separates REGEX from REPL, so a regex may match '=' as '\='.
SEPARATOR = re.compile(r"(?<!\\)=")


@dataclass(frozen=True)
class NameMapping:
    """How A's names become B's: strip a prefix, add a prefix, then every rule in order (re.sub's meaning, RE2's
    linear-time matching: compare/userregex.py).

    With strip_prefix_a set, add_prefix_a goes only in front of the names that had it (a prefix swap);
    alone, add_prefix_a goes in front of every name. Rules never rename a key of the format itself (TF2's
    _CHECKPOINTABLE_OBJECT_GRAPH, which both checkpoints hold under that name), so '^=model/' leaves it paired.

    >>> NameMapping(rules=((r"^resnet/", "model/backbone/"),)).apply("resnet/conv1/w")
    'model/backbone/conv1/w'
    """

    rules: tuple[tuple[str, str], ...] = ()
    strip_prefix_a: str = ""
    add_prefix_a: str = ""

    def __post_init__(self):
        self._compiled  # noqa: B018 - compile now so a bad regex fails at construction

    @cached_property
    def _compiled(self) -> tuple[UserRule, ...]:
        return compile_rules(self.rules)

    @property
    def is_identity(self) -> bool:
        return not (self.rules or self.strip_prefix_a or self.add_prefix_a)

    def apply(self, name: str) -> str:
        """A's raw name -> the name it is expected to have in B."""
        if not self.strip_prefix_a:
            name = self.add_prefix_a + name
        elif name.startswith(self.strip_prefix_a):
            # Strip and add together replace one prefix: names without it keep theirs.
            name = self.add_prefix_a + name[len(self.strip_prefix_a) :]
        if reserved(name):
            return name
        for rule in self._compiled:
            name = rule.sub(name)
        return name

    def apply_all(self, names: Iterable[str]) -> dict[str, str]:
        """A's raw name -> mapped name; two names mapped onto one is an error (the diff would be ambiguous)."""
        mapped: dict[str, str] = {}
        seen: dict[str, str] = {}
        for name in names:
            target = self.apply(name)
            if target in seen:
                raise BadMappingRule(
                    f"The name mapping sends both '{seen[target]}' and '{name}' of checkpoint A to '{target}'."
                )
            seen[target] = name
            mapped[name] = target
        return mapped


def parse_rule(text: str) -> tuple[str, str]:
    """'REGEX=REPL' -> (REGEX, REPL); compiled here (RE2) so a typo or an unsupported pattern fails early."""
    parts = SEPARATOR.split(text, maxsplit=1)
    if len(parts) != 2 or not parts[0]:
        raise BadMappingRule(f"Bad mapping rule '{text}': expected REGEX=REPL, e.g. '^resnet/=model/backbone/'.")
    NameMapping(rules=(tuple(parts),))  # compiles, or raises BadMappingRule naming the rule
    return parts[0], parts[1]


def prefix_rules(strip: str = "", add: str = "") -> tuple[Rule, ...]:
    """NameMapping's strip_prefix_a/add_prefix_a as rules: strip and add swap a prefix, add alone prefixes all."""
    if not (strip or add):
        return ()
    return (("^" + re.escape(strip), literal_repl(add)),)


@dataclass(frozen=True)
class RuleEffect:
    """What REGEX=REPL rules, added after a diff's mapping, would do to its rows (counted by name)."""

    rules: tuple[str, ...]
    pairs: int  # removed and added rows they would turn into one row each
    unpairs: int  # rows paired now that they would split
    unpaired_a: int  # A's variables still without a same-named B variable afterwards
    unpaired_b: int  # B's variables still without an A variable afterwards

    def __str__(self) -> str:
        return (f"pairs {self.pairs}, unpairs {self.unpairs}; afterwards {self.unpaired_a} of A and "
                f"{self.unpaired_b} of B unpaired")


def rule_effect(rules: Iterable[str], names_a: Iterable[str], names_b: Iterable[str]) -> RuleEffect:
    r"""What `rules` (REGEX=REPL texts, applied in order) do to A's names (as mapped so far) against B's names.

    >>> str(rule_effect([r"^(conv1)/=m/\1/"], ["conv1/w", "head/w"], ["m/conv1/w", "head/w"]))
    'pairs 1, unpairs 0; afterwards 0 of A and 0 of B unpaired'
    """
    rules = tuple(rules)
    names = Names(names_a, names_b)
    outcome = names.outcome([parse_rule(text) for text in rules])
    final = {outcome.moved.get(n, n) for n in names.a}
    return RuleEffect(rules, outcome.pairs, outcome.broken, len(final - names.b), len(names.b - final))


def diff_names(diff: CheckpointDiff) -> tuple[list[str], list[str]]:
    """A's names as the diff mapped them, and B's names, read back from its rows (the names pairs were made by)."""
    return ([r.display_name or r.name for r in diff.variables if r.name_a is not None],
            [r.display_name or r.name for r in diff.variables if r.status != "removed"])


def suggestion_effects(diff: CheckpointDiff) -> tuple[RuleEffect, ...]:
    """One RuleEffect per suggested rule of `diff`, each rule alone after the diff's own mapping."""
    names_a, names_b = diff_names(diff)
    return tuple(rule_effect([rule], names_a, names_b) for rule in diff.suggested_rules)
