r"""Rename suggestions: pair removed with added variables, then find REGEX=REPL rules that explain the pairs.

Rules are found scope by scope. A pair such as conv1/w -> model/backbone/conv1/w first suggests the widest
rule, '^=model/backbone/'; a rule is kept only if it renames no variable that already pairs by name (the
head, global_step), sends no two names to one, and, unless it is confined to a named scope, moves no name
it cannot pair. Otherwise it is narrowed to the scopes that moved ('^(conv1|conv2)/=model/backbone/\1/'),
then to their sub-scopes, down to single names (mapping.rule_effect counts what rules would pair).
"""

from __future__ import annotations

import bisect
import difflib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ckptlib.compare.types import SuggestedPair
from ckptlib.compare.userregex import compile_rules
from ckptlib.formats.types import VariableInfo

BACKSLASH = "\\"
Rule = tuple[str, str]  # (regex, replacement)


def reserved(name: str) -> bool:
    """Keys of the format itself (TF2's _CHECKPOINTABLE_OBJECT_GRAPH): no rule renames them."""
    return name.startswith("_CHECKPOINTABLE")


def rule_text(rule: Rule) -> str:
    """(REGEX, REPL) -> the 'REGEX=REPL' text that mapping.parse_rule reads back."""
    return rule[0].replace("=", BACKSLASH + "=") + "=" + rule[1]


def literal_repl(text: str) -> str:
    """`text` as a re.sub replacement that inserts it as it is."""
    return text.replace(BACKSLASH, BACKSLASH * 2)


def suggest_pairs(removed: Iterable[VariableInfo], added: Iterable[VariableInfo]) -> tuple[SuggestedPair, ...]:
    """Pair removed with added variables of equal shape and dtype, one-to-one, scope by scope: first the pairs
    that follow a rename several pairs share (conv1/… -> model/backbone/conv1/…), then the most similar names."""
    removed = [info for info in removed if info.kind != "metadata"]  # the object graph: not a variable
    added = [info for info in added if info.kind != "metadata"]
    by_name = {info.name: info for info in added}
    taken_old, taken_new, pairs = set(), set(), []
    for move, support in sorted(_likely_moves(removed, added).items(), key=lambda m: (-m[1], repr(m[0]))):
        if support < 2:
            break
        for old in (info for info in removed if info.name not in taken_old):
            new = by_name.get(move.apply(old.name) or "")
            if new and new.name not in taken_new and (old.shape, old.dtype) == (new.shape, new.dtype):
                taken_old.add(old.name)
                taken_new.add(new.name)
                pairs.append(_pair(old, new))
    rest = _greedy([i for i in removed if i.name not in taken_old], [i for i in added if i.name not in taken_new])
    return tuple(sorted(pairs + rest, key=lambda p: (-p.similarity, p.removed)))


def _likely_moves(removed: list[VariableInfo], added: list[VariableInfo]) -> Counter:
    """How often each rename is seen between an added variable and the removed ones (same shape and dtype)
    that share its longest tail of display-name components: linear in the names, unlike comparing all pairs."""
    tails: dict[tuple, list[VariableInfo]] = {}
    for old in removed:
        parts = old.display_name.split("/")
        for i in range(len(parts)):
            tails.setdefault((old.shape, old.dtype, "/".join(parts[i:])), []).append(old)
    moves: Counter = Counter()
    for new in added:
        parts = new.display_name.split("/")
        olds = next((found for i in range(len(parts))
                     if (found := tails.get((new.shape, new.dtype, "/".join(parts[i:]))))), [])
        moves.update(found[0] for old in olds[:3] if (found := _move(old.name, new.name)) is not None)
    return moves


def _pair(old: VariableInfo, new: VariableInfo, matcher: difflib.SequenceMatcher | None = None) -> SuggestedPair:
    # Compare display names: TF2's shared '/.ATTRIBUTES/VARIABLE_VALUE' tail says nothing.
    if matcher is None:
        matcher = difflib.SequenceMatcher(None, "", new.display_name, autojunk=False)
    matcher.set_seq1(old.display_name)
    return SuggestedPair(old.name, new.name, old.shape, old.dtype, round(matcher.ratio(), 4))


def _greedy(removed: list[VariableInfo], added: list[VariableInfo]) -> list[SuggestedPair]:
    by_signature: dict[tuple, list[VariableInfo]] = {}
    for old in removed:
        by_signature.setdefault((old.shape, old.dtype), []).append(old)
    candidates = []
    for new in added:
        matcher = difflib.SequenceMatcher(None, "", new.display_name, autojunk=False)  # seq2's index, built once
        for old in by_signature.get((new.shape, new.dtype), ()):
            pair = _pair(old, new, matcher)
            leaf = old.display_name.rsplit("/", 1)[-1] != new.display_name.rsplit("/", 1)[-1]
            # Same kind first (a slot renamed like its weight), same leaf name, similar names, then names.
            candidates.append((old.kind != new.kind, leaf, -pair.similarity, old.name, new.name, pair))
    candidates.sort(key=lambda c: c[:5])
    used_old, used_new, pairs = set(), set(), []
    for *_, pair in candidates:
        if pair.removed not in used_old and pair.added not in used_new:
            used_old.add(pair.removed)
            used_new.add(pair.added)
            pairs.append(pair)
    return pairs


@dataclass(frozen=True)
class _Move:
    """old = head_a + kept + tail_a and new = head_b + kept + tail_b, `kept` being whole components."""

    head_a: str  # "resnet/" or ""
    head_b: str
    tail_a: str  # "" when a scope moved; "/weights" or "/.ATTRIBUTES/VARIABLE_VALUE" otherwise
    tail_b: str

    @property
    def scoped(self) -> bool:
        return not (self.tail_a or self.tail_b)

    def apply(self, name: str) -> str | None:
        if not name.startswith(self.head_a) or not name.endswith(self.tail_a):
            return None
        kept = name[len(self.head_a) : len(name) - len(self.tail_a)]
        return self.head_b + kept + self.tail_b if kept else None


def _move(old: str, new: str) -> tuple[_Move, tuple[str, ...]] | None:
    """The run of components both names keep (the common tail, else the longest common run), or None."""
    a, b = old.split("/"), new.split("/")
    k = 0
    while k < min(len(a), len(b)) and a[-1 - k] == b[-1 - k]:
        k += 1
    i, j, size = len(a) - k, len(b) - k, k
    if not k:
        i, j, size = difflib.SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
        if not size:
            return None
    head_a, head_b, tail_a, tail_b = a[:i], b[:j], a[i + size :], b[j + size :]
    move = _Move(*("/".join(p) + "/" if p else "" for p in (head_a, head_b)),
                 *("/" + "/".join(p) if p else "" for p in (tail_a, tail_b)))
    return move, tuple(a[i : i + size])


def _rule(move: _Move, scopes: dict[str, set[bool]] | None) -> Rule:
    """The rule doing `move` for names whose kept part starts with one of `scopes` (None: any name).

    `scopes` maps a scope to how it ends: True where it is a whole kept part, False where more follows.
    """
    head_a, head_b = "^" + re.escape(move.head_a), literal_repl(move.head_b)
    if scopes is None:
        if move.scoped:
            return head_a, head_b
        return f"{head_a}(.+){re.escape(move.tail_a)}$", f"{head_b}{BACKSLASH}1{literal_repl(move.tail_b)}"
    if not move.scoped:
        ending = {frozenset({True}): "", frozenset({False}): "/.+"}
        inner = "|".join(re.escape(s) + ending.get(frozenset(e), "(?:/.+)?") for s, e in sorted(scopes.items()))
        return (f"{head_a}((?:{inner})){re.escape(move.tail_a)}$",
                f"{head_b}{BACKSLASH}1{literal_repl(move.tail_b)}")
    ends = set().union(*scopes.values())
    if len(scopes) == 1 and len(ends) == 1:  # one scope: no group needed
        (scope,) = scopes
        end = "/" if ends == {False} else ""
        return (f"{head_a}{re.escape(scope)}{end or '$'}", f"{head_b}{literal_repl(scope)}{end}")
    group = "|".join(map(re.escape, sorted(scopes)))
    if ends == {False}:  # '^(conv1|conv2)/=model/backbone/\1/'
        return f"{head_a}({group})/", f"{head_b}{BACKSLASH}1/"
    ending = {frozenset({True}): "$", frozenset({False}): "/"}
    group = "|".join(re.escape(s) + ending.get(frozenset(e), "(?:/|$)") for s, e in sorted(scopes.items()))
    return f"{head_a}({group})", f"{head_b}{BACKSLASH}1"


@dataclass(frozen=True)
class _Outcome:
    moved: dict[str, str]  # A's name -> its new name, for every name the rule changes
    pairs: int  # moved names that were unpaired and now have a B partner
    broken: int  # moved names that had a B partner
    strays: int  # moved names still without a partner
    clash: bool  # two names sent to one, or a name sent onto one that stays


class Names:
    """A's names after the mapping so far, and B's names; `outcome` looks only at names with a given prefix."""

    def __init__(self, names_a: Iterable[str], names_b: Iterable[str]):
        self.a = sorted(set(names_a))  # sorted: the names with one prefix are one slice
        self.set_a, self.b = set(self.a), set(names_b)

    def starting_with(self, prefix: str) -> list[str]:
        start = bisect.bisect_left(self.a, prefix)
        end = bisect.bisect_left(self.a, prefix + "\U0010ffff") if prefix else len(self.a)
        return self.a[start:end]

    def outcome(self, rules: Sequence[Rule], prefix: str = "") -> _Outcome:
        """What `rules` do to A's names that start with `prefix` (a rule's literal start: others stay)."""
        compiled = compile_rules(rules)  # users' rules (rule_effect) and suggested ones alike: RE2, bounded
        moved = {}
        for name in self.starting_with(prefix):
            if reserved(name):  # as NameMapping.apply: rules leave the format's own keys alone
                continue
            new = name
            for rule in compiled:
                new = rule.sub(new)
            if new != name:
                moved[name] = new
        targets = Counter(moved.values())
        clash = any(n > 1 or (t in self.set_a and t not in moved) for t, n in targets.items())
        pairs = sum(1 for old, new in moved.items() if old not in self.b and new in self.b)
        broken = sum(1 for old in moved if old in self.b)
        return _Outcome(moved, pairs, broken, len(moved) - pairs - broken, clash)

    def move(self, moved: dict[str, str]) -> None:
        """Rename A's names as `moved` says (in place)."""
        for old in moved:
            self.a.pop(bisect.bisect_left(self.a, old))
            self.set_a.discard(old)
        for new in moved.values():
            bisect.insort(self.a, new)
            self.set_a.add(new)


def _fits(outcome: _Outcome, confined: bool) -> bool:
    """Pairs something, unpairs nothing, and moves no unpairable name unless it stays in one named scope."""
    return outcome.pairs > 0 and not outcome.broken and not outcome.clash and (confined or not outcome.strays)


Candidate = tuple[Rule, int, str]  # a rule, the pairs it makes, the prefix of every name it can change


def _rules_for(move: _Move, kept: list[tuple[str, ...]], names: Names, depth: int = 0) -> list[Candidate]:
    """Rules doing `move` for the pairs whose kept parts are `kept`: as wide as fits, narrowed scope by scope."""
    if depth == 0:
        outcome = names.outcome([_rule(move, None)], move.head_a)
        if _fits(outcome, bool(move.head_a)):
            return [(_rule(move, None), outcome.pairs, move.head_a)]
        return _rules_for(move, kept, names, 1)
    members: dict[str, list[tuple[str, ...]]] = {}
    for parts in kept:
        members.setdefault("/".join(parts[:depth]), []).append(parts)
    fitting: dict[str, set[bool]] = {}
    found: list[Candidate] = []
    for scope, parts_list in sorted(members.items()):
        ends = {len(parts) == depth for parts in parts_list}
        for tried in (ends, {True} & ends):  # the scope with what is below it, else the name alone
            if tried and _fits(names.outcome([_rule(move, {scope: tried})], move.head_a + scope), True):
                fitting[scope] = tried
                break
        if False not in fitting.get(scope, ()):
            longer = [parts for parts in parts_list if len(parts) > depth]
            found += _rules_for(move, longer, names, depth + 1) if longer else []
    if fitting:
        together = names.outcome([_rule(move, fitting)], move.head_a)
        if _fits(together, True):
            found.append((_rule(move, fitting), together.pairs, move.head_a))
        else:  # the scopes collide with one another: one rule each
            for scope, ends in fitting.items():
                rule = _rule(move, {scope: ends})
                found.append((rule, names.outcome([rule], move.head_a + scope).pairs, move.head_a + scope))
    return found


def suggest_rules(pairs: Iterable[SuggestedPair], names_a: Iterable[str] | None = None,
                  names_b: Iterable[str] | None = None, limit: int = 20) -> tuple[str, ...]:
    """Up to `limit` REGEX=REPL rules that pair the suggested pairs, most pairs first, to be applied together.

    `names_a` are all of A's names after the current mapping and `names_b` all of B's: with them no rule
    renames a name that already pairs (without them only the pairs' own names are known).
    """
    pairs = list(pairs)
    names = Names(names_a if names_a is not None else (p.removed for p in pairs),
                  names_b if names_b is not None else (p.added for p in pairs))
    groups: dict[_Move, list[tuple[str, ...]]] = {}
    candidates: list[Candidate] = []
    for pair in pairs:
        found = _move(pair.removed, pair.added)
        if found is None:  # nothing in common: a rule can only restate the pair
            candidates.append((("^" + re.escape(pair.removed) + "$", literal_repl(pair.added)), 1, pair.removed))
        else:
            groups.setdefault(found[0], []).append(found[1])
    for move, kept in groups.items():
        candidates += _rules_for(move, kept, names)
    chosen = []
    for rule, _, prefix in sorted(candidates, key=lambda c: (-c[1], rule_text(c[0]))):
        outcome = names.outcome([rule], prefix)
        if _fits(outcome, True):  # still fits after the rules chosen before it
            chosen.append(rule_text(rule))
            names.move(outcome.moved)
            if len(chosen) == limit:
                break
    return tuple(chosen)
