r"""Compiles and applies the regexes users type (mapping rules from --map, the Diff and Graph pages, URLs).

Python's `re` backtracks: '(.|.|.)*!' on a 40-character name takes 3**40 steps, and one such rule in a
shared link would hold a dashboard worker for good. Rules compile here with RE2 (google-re2), which
matches in time linear in the name and refuses, at compile time, what it cannot do that way:
back-references and look-arounds in the pattern, repetition counts over 1000, patterns over its memory
budget. Replacements are read exactly as re.sub reads them (\1, \g<name>, \g<0>, \n, \\), by Python's own
template parser. Evaluation is bounded too: at most MAX_RULES rules, no mapped name over MAX_NAME_CHARS.
RE2 syntax: https://github.com/google/re2/wiki/Syntax (\d, \w, \b are ASCII-only there; \Z is \z).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

import re2

from ckptlib.errors import BadMappingRule

MAX_RULES = 64  # rules x names x name length bounds a mapping's cost; a hand-written list is a few lines
MAX_NAME_CHARS = 10_000  # '(.*)=\1\1' written 30 times would double a name 30 times
MAX_MEM = 8 << 20  # RE2's budget for one compiled pattern (its default): past it the pattern is refused

# RE2's error words for what it does not support, and what to tell the person who wrote the rule.
_UNSUPPORTED = (
    ("invalid escape sequence: \\Z", "RE2 writes \\Z as \\z"),
    ("invalid escape sequence: \\", "RE2 (linear-time matching) has no back-references"),
    ("invalid perl operator: (?<", "RE2 (linear-time matching) has no look-behind"),
    ("invalid perl operator: (?=", "RE2 (linear-time matching) has no look-ahead"),
    ("invalid perl operator: (?!", "RE2 (linear-time matching) has no look-ahead"),
    ("invalid repetition size", "RE2 allows repetition counts (nested ones multiplied) up to 1000"),
    ("pattern too large", f"too costly to match within RE2's {MAX_MEM >> 20} MiB budget"),
)
# Stand-ins for the groups while Python's parser reads a replacement: characters no variable name holds.
_WHOLE, _OPEN, _CLOSE = "\x03", "\x01", "\x02"
_PIECE = re.compile(f"{_WHOLE}|{_OPEN}(\\d+){_CLOSE}")


def _options() -> re2.Options:
    options = re2.Options()
    options.max_mem = MAX_MEM
    options.log_errors = False  # RE2 would also print each refusal to stderr: the CLI's stderr is one line
    return options


@dataclass(frozen=True, eq=False)
class UserRule:
    """One REGEX=REPL rule compiled with RE2; `sub` is re.sub(REGEX, REPL, name) in linear time."""

    text: str  # 'REGEX=REPL', for messages
    regex: re2._Regexp
    pieces: tuple[bytes | int, ...]  # the replacement: UTF-8 literal text and group numbers, in order

    def sub(self, name: str) -> str:
        """Every match in `name` replaced, scanning left to right as re.sub does.

        RE2 matches UTF-8 bytes, so the name is encoded once and spans are byte offsets. After an empty
        match, the next may not be empty at the same place (as in re.sub); where re.sub would then try a
        non-empty match at that place (patterns preferring empty, like '|a' or 'a*?'), RE2 moves on one
        character instead: the one place where this scan differs from re.sub's.
        """
        text = name.encode("utf-8")
        out: list[bytes] = []
        size = copied = pos = 0  # size: bytes of `out`
        no_empty_at = -1
        while pos <= len(text):
            match = self.regex.search(text, pos)
            if match is None:
                break
            start, end = match.span()
            if start == end == no_empty_at:
                pos = _next_char(text, pos)
                continue
            chunk = [text[copied:start], *(p if isinstance(p, bytes) else (match.group(p) or b"") for p in self.pieces)]
            out += chunk
            size += sum(map(len, chunk))
            if size > 4 * MAX_NAME_CHARS:  # checked as it grows: never build a huge name first (UTF-8: <= 4 bytes)
                self._too_long()
            copied = pos = end
            no_empty_at = end if start == end else -1
        out.append(text[copied:])
        result = b"".join(out).decode("utf-8")
        if len(result) > MAX_NAME_CHARS:
            self._too_long()
        return result

    def _too_long(self):
        raise BadMappingRule(f"Bad mapping rule '{_line(self.text)}': it makes a name longer than {MAX_NAME_CHARS} "
                             "characters.")


def _next_char(text: bytes, pos: int) -> int:
    """The byte offset of the character after the one at `pos` (past UTF-8 continuation bytes)."""
    pos += 1
    while pos < len(text) and text[pos] & 0xC0 == 0x80:
        pos += 1
    return pos


@functools.lru_cache(maxsize=1024)  # suggestions re-test the same few rules over and over
def compile_rule(pattern: str, repl: str) -> UserRule:
    """(REGEX, REPL) compiled, or BadMappingRule saying in one line why RE2 refuses it."""
    text = f"{pattern}={repl}"
    try:
        regex = re2.compile(pattern, _options())
    except re2.error as exc:
        raise BadMappingRule(f"Bad mapping rule '{_line(text)}': invalid regex ({_reason(exc)}.") from None
    return UserRule(text, regex, _template(text, repl, regex.groups, regex.groupindex))


def compile_rules(rules: Iterable[tuple[str, str]]) -> tuple[UserRule, ...]:
    """Every (REGEX, REPL) compiled, in order; more than MAX_RULES is refused (their cost grows with each)."""
    rules = tuple(rules)
    if len(rules) > MAX_RULES:
        raise BadMappingRule(f"Too many mapping rules: {len(rules)}, at most {MAX_RULES}.")
    return tuple(compile_rule(pattern, repl) for pattern, repl in rules)


def _reason(exc: re2.error) -> str:
    raw = exc.args[0] if exc.args else ""
    message = (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)).strip()
    hint = next((why for words, why in _UNSUPPORTED if words in message), None)
    return _line(f"{message}): {hint}" if hint else f"{message})")


def _line(text: str) -> str:
    """One line, whatever the rule held: messages are single lines (a pasted rule may carry newlines)."""
    return " ".join(text.split("\n"))


def _template(text: str, repl: str, groups: int, names: dict[str, int]) -> tuple[bytes | int, ...]:
    """`repl` split into literal text and group numbers, read by Python's own template parser.

    A stand-in match whose group i holds the mark \\x01i\\x02 is expanded with `repl` (Match.expand parses
    it exactly as re.sub does, errors included); the marks in the result are the group references.
    """
    marks = [f"{_OPEN}{i}{_CLOSE}" for i in range(1, groups + 1)]
    by_index = {index: name for name, index in names.items()}
    stand_in = _WHOLE + "".join(
        f"(?P<{by_index[i]}>{re.escape(m)})" if i in by_index else f"({re.escape(m)})" for i, m in enumerate(marks, 1))
    subject = _WHOLE + "".join(marks)
    try:
        expanded = re.compile(stand_in).fullmatch(subject).expand(repl)
    except (re.error, IndexError) as exc:  # IndexError: an unknown group name
        raise BadMappingRule(f"Bad mapping rule '{_line(text)}': {_line(str(exc))}.") from None
    expanded = expanded.replace(subject, _WHOLE)  # \g<0>: the whole match
    pieces: list[bytes | int] = []
    copied = 0
    for found in _PIECE.finditer(expanded):
        pieces += [expanded[copied:found.start()].encode("utf-8")] if found.start() > copied else []
        pieces.append(int(found.group(1)) if found.group(1) else 0)
        copied = found.end()
    pieces += [expanded[copied:].encode("utf-8")] if copied < len(expanded) else []
    if any(isinstance(p, bytes) and any(c in p for c in b"\x01\x02\x03") for p in pieces):
        raise BadMappingRule(f"Bad mapping rule '{_line(text)}': the replacement holds control characters.")
    return tuple(pieces)
