"""Map checkpoint A's variable names onto B's, and guess renames from shapes, dtypes and names."""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from ckptlib.compare.types import SuggestedPair
from ckptlib.errors import BadMappingRule
from ckptlib.formats.types import VariableInfo

# The first '=' not escaped by a backslash separates REGEX from REPL, so a regex may match '=' as '\='.
_SEPARATOR = re.compile(r"(?<!\\)=")
BACKSLASH = "\\"



@dataclass(frozen=True)
class NameMapping:
    """How A's names become B's: strip a prefix, add a prefix, then every rule in order (re.sub).

    With strip_prefix_a set, add_prefix_a goes only in front of the names that had it (a prefix swap);
    alone, add_prefix_a goes in front of every name.

    >>> NameMapping(rules=((r"^resnet/", "model/backbone/"),)).apply("resnet/conv1/w")
    'model/backbone/conv1/w'
    """

    rules: tuple[tuple[str, str], ...] = ()
    strip_prefix_a: str = ""
    add_prefix_a: str = ""

    def __post_init__(self):
        self._compiled  # noqa: B018 - compile now so a bad regex fails at construction

    @cached_property
    def _compiled(self) -> tuple[tuple[re.Pattern, str, str], ...]:
        compiled = []
        for pattern, repl in self.rules:
            try:
                compiled.append((re.compile(pattern), repl, f"{pattern}={repl}"))
            except re.error as exc:
                raise BadMappingRule(f"Bad mapping rule '{pattern}={repl}': invalid regex ({exc}).") from None
        return tuple(compiled)

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
        for pattern, repl, text in self._compiled:
            try:
                name = pattern.sub(repl, name)
            except (re.error, IndexError) as exc:  # a bad group reference only shows on the first match
                raise BadMappingRule(f"Bad mapping rule '{text}': {exc}.") from None
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
    """'REGEX=REPL' -> (REGEX, REPL); the regex is compiled here so a typo fails early."""
    parts = _SEPARATOR.split(text, maxsplit=1)
    if len(parts) != 2 or not parts[0]:
        raise BadMappingRule(f"Bad mapping rule '{text}': expected REGEX=REPL, e.g. '^resnet/=model/backbone/'.")
    NameMapping(rules=(tuple(parts),))  # compiles, or raises BadMappingRule naming the rule
    return parts[0], parts[1]


def suggest_pairs(removed: Iterable[VariableInfo], added: Iterable[VariableInfo]) -> tuple[SuggestedPair, ...]:
    """Pair removed with added variables of equal shape and dtype, most similar names first, one-to-one."""
    by_signature: dict[tuple, list[VariableInfo]] = {}
    for info in added:
        by_signature.setdefault((info.shape, info.dtype), []).append(info)
    candidates = []
    for old in removed:
        for new in by_signature.get((old.shape, old.dtype), ()):
            # Compare display names: TF2's shared '/.ATTRIBUTES/VARIABLE_VALUE' tail says nothing.
            ratio = difflib.SequenceMatcher(None, old.display_name, new.display_name, autojunk=False).ratio()
            # Same kind first (a slot renamed like its weight), then name similarity, then names for stability.
            candidates.append((old.kind != new.kind, -ratio, old.name, new.name, old, ratio))
    candidates.sort(key=lambda c: c[:4])
    used_old, used_new, pairs = set(), set(), []
    for _, _, old_name, new_name, old, ratio in candidates:
        if old_name in used_old or new_name in used_new:
            continue
        used_old.add(old_name)
        used_new.add(new_name)
        pairs.append(SuggestedPair(old_name, new_name, old.shape, old.dtype, round(ratio, 4)))
    return tuple(pairs)


def suggest_rules(pairs: Iterable[SuggestedPair]) -> tuple[str, ...]:
    """REGEX=REPL rules rewriting the differing leading scopes of suggested pairs, best supported first."""
    heads: Counter[tuple[str, str]] = Counter()
    for pair in pairs:
        old, new = pair.removed.split("/"), pair.added.split("/")
        common = 0
        while common < min(len(old), len(new)) and old[-1 - common] == new[-1 - common]:
            common += 1
        if common == 0:
            continue  # nothing in common at the end: a rule would only restate the pair
        heads[(_scope(old[: len(old) - common]), _scope(new[: len(new) - common]))] += 1
    ranked = sorted(heads.items(), key=lambda item: (-item[1], item[0]))
    return tuple(f"^{re.escape(old).replace('=', BACKSLASH + '=')}={new.replace(BACKSLASH, BACKSLASH * 2)}"
                 for (old, new), _ in ranked)


def _scope(parts: list[str]) -> str:
    return "/".join(parts) + "/" if parts else ""
