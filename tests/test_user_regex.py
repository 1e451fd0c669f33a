r"""User-supplied regexes run on RE2 (issue 10, item 4): re.sub's results in linear time, a catastrophic rule from the
CLI or a page URL answers at once, and what RE2 cannot do is refused in one line saying why."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest
from page_links import assert_rendered, open_page

from ckptlib.cli.main import main
from ckptlib.compare.mapping import NameMapping, parse_rule, rule_effect
from ckptlib.compare.userregex import MAX_NAME_CHARS, MAX_RULES, compile_rule
from ckptlib.errors import BadMappingRule

CATASTROPHIC = "(.|.|.)*!=x"  # Python's re tries 3**len(name) ways to fail on every name without a '!'
LONG_NAMES = ("encoder/layer_0/attention/self/query/kernel", "encoder/layer_0/attention/self/query/bias",
              "encoder/layer_0/attention/output/dense/kernel")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Runs a/ and b/ (one checkpoint each) whose variables have long names; b's kernels moved."""
    import cmpbuild

    folder = tmp_path_factory.mktemp("user_regex")
    rng = np.random.default_rng(0)
    values = {name: rng.standard_normal((4, 4) if name.endswith("kernel") else (4,)).astype(np.float32)
              for name in LONG_NAMES}
    a = cmpbuild.save_v1(str(folder / "a" / "model.ckpt"), values, step=1)
    moved = {k: v + 1 if k.endswith("kernel") else v for k, v in values.items()}
    b = cmpbuild.save_v1(str(folder / "b" / "model.ckpt"), moved, step=2)
    return str(folder), a, b


@pytest.mark.parametrize("pattern, repl, name", [
    (r"^(conv1|conv2)/", r"model/backbone/\1/", "conv2/w"), (r"^resnet/(\w+)/", r"model/backbone/\1/", "resnet/c/w"),
    ("^", "model/", "x/y"), ("$", "/ema", "x/y"), ("x*", "-", "abxd"), ("", "-", "ab"), ("a|", "-", "baac"),
    ("(a)", "é\\1", "xa"), (r"(?P<n>a)", r"\g<n>\g<0>", "ba"), ("(a)(b)?", r"[\2]", "ac"), ("/", r"\t\\", "a/b"),
    ("é", "e", "aéb"), ("x?", "-", "éé"),
    (r"^(.+)/\.ATTRIBUTES/VARIABLE_VALUE$", r"\1", "w/.ATTRIBUTES/VARIABLE_VALUE"),
])  # fmt: skip
def test_rules_give_what_re_sub_gives(pattern, repl, name):
    assert compile_rule(pattern, repl).sub(name) == re.sub(pattern, repl, name)


def test_the_catastrophic_rule_maps_every_name_at_once():
    names = [f"{name}_{i}" * 3 for i, name in enumerate(LONG_NAMES * 100)]  # 300 names of ~130 characters
    start = time.monotonic()
    mapped = NameMapping(rules=(parse_rule(CATASTROPHIC),)).apply_all(names)
    assert time.monotonic() - start < 1.0 and mapped == {n: n for n in names}
    assert str(rule_effect([CATASTROPHIC], names, names)) == "pairs 0, unpairs 0; afterwards 0 of A and 0 of B unpaired"


@pytest.mark.parametrize("rule, why", [
    (r"(a)\1=x", "has no back-references"), ("(?<=a)b=x", "has no look-behind"), ("a(?!b)=x", "has no look-ahead"),
    (r"a\Z=x", r"writes \Z as \z"), ("a{2000}=x", "up to 1000"), ("(unclosed=x", "invalid regex"),
    (r"a=\2", "invalid group reference 2"), (r"a=\g<nope>", "unknown group name"), (r"a=\q", "bad escape"),
    (r"\pL{1000}" * 9 + "=x", "too costly"),
])  # fmt: skip
def test_what_re2_cannot_do_is_refused_in_one_line_saying_why(rule, why):
    with pytest.raises(BadMappingRule) as refused:
        parse_rule(rule)
    message = str(refused.value)
    assert why in message and "\n" not in message and message.startswith("Bad mapping rule '")


def test_evaluation_is_bounded():
    with pytest.raises(BadMappingRule, match=f"longer than {MAX_NAME_CHARS}"):
        NameMapping(rules=((r"(.*)", r"\1\1"),) * 30).apply("x" * 10)
    with pytest.raises(BadMappingRule, match=f"at most {MAX_RULES}"):
        NameMapping(rules=(("a", "b"),) * (MAX_RULES + 1))


def test_the_cli_answers_the_catastrophic_rule_within_a_second(root, capsys):
    _, a, b = root
    assert main(["diff", a, b, "--json", "--no-cache"]) == 0  # warm: imports and the page cache of the files
    plain = json.loads(capsys.readouterr().out)
    start = time.monotonic()
    assert main(["diff", a, b, "--json", "--no-cache", "--map", CATASTROPHIC]) == 0
    assert time.monotonic() - start < 1.0
    assert json.loads(capsys.readouterr().out)["summary"] == plain["summary"] == {
        "changed": 2, "unchanged": 1, "added": 0, "removed": 0, "shape_changed": 0, "dtype_changed": 0}
    assert main(["diff", a, b, "--map", r"(a)\1=x"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "back-references" in err


def _page(folder: str, **params):
    return open_page("diff", folder, dict(run="b", a_run="a", a_ckpt="model.ckpt-1", **params), timeout=30)


def test_the_catastrophic_rule_in_a_page_url_answers_at_once(root):
    folder = root[0]
    start = time.monotonic()
    plain = assert_rendered(_page(folder))
    baseline = time.monotonic() - start
    start = time.monotonic()
    at = assert_rendered(_page(folder, map=CATASTROPHIC))
    assert time.monotonic() - start < baseline + 1.0
    assert {m.label: m.value for m in at.metric} == {m.label: m.value for m in plain.metric}
    refused = _page(folder, map=r"(a)\1=x")
    assert [e.value for e in refused.error] and "back-references" in refused.error[0].value
