"""Rename suggestions on real TensorFlow checkpoints: rules found scope by scope, never renaming a variable that
already pairs by name, counted before they are applied (issue 15, item 2)."""

from __future__ import annotations

import numpy as np
import pytest

from ckptlib.compare.diff import diff_checkpoints
from ckptlib.compare.mapping import (
    NameMapping,
    diff_names,
    parse_rule,
    prefix_rules,
    rule_effect,
    suggest_rules,
    suggestion_effects,
)
from ckptlib.compare.types import SuggestedPair
from ckptlib.runs.resolve import open_checkpoint

BACKBONE_RULE = r"^(conv1|conv2)/=model/backbone/\1/"


@pytest.fixture(scope="module")
def cb():
    import cmpbuild

    return cmpbuild


def backbone_values(seed: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = {"conv1/weights": (3, 3, 1, 4), "conv1/biases": (4,), "conv2/weights": (3, 3, 4, 4),
              "conv2/biases": (4,), "conv1/weights/Adam": (3, 3, 1, 4)}  # biases of one shape: pairing by scope
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}


def head_values(shift: float, step: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(4)
    return {"logits/weights": rng.standard_normal((4, 2)).astype(np.float32) + shift,
            "logits/biases": np.array([0.5, -0.5], np.float32) + shift, "global_step": np.array(step, np.int64)}


def finetune_pair(cb, folder) -> tuple[str, str]:
    """Pretrained conv1/…, conv2/…; fine-tuned the same backbone under model/backbone/, head and step moved."""
    backbone = backbone_values()
    a = cb.save_v1(str(folder / "pretrained" / "model.ckpt"), backbone | head_values(0.0, 100), step=100)
    b = cb.save_v1(str(folder / "finetuned" / "model.ckpt"),
                   {f"model/backbone/{k}": v for k, v in backbone.items()} | head_values(0.25, 200), step=200)
    return a, b


@pytest.fixture(scope="module")
def finetune(tmp_path_factory, cb):
    return finetune_pair(cb, tmp_path_factory.mktemp("finetune"))


def _diff(pair, *rules: str, **options):
    mapping = NameMapping(rules=tuple(parse_rule(r) for r in rules), **options)
    return diff_checkpoints(open_checkpoint(pair[0]), open_checkpoint(pair[1]), mapping=mapping)


def test_finetune_suggests_a_rule_for_the_moved_scopes_only(finetune):
    diff = _diff(finetune)
    assert {p.removed: p.added for p in diff.suggestions} == {k: f"model/backbone/{k}" for k in backbone_values()}
    assert diff.suggested_rules == (BACKBONE_RULE,)
    # Applied, it pairs every backbone variable and leaves the head and global_step alone: nothing more to suggest.
    mapped = _diff(finetune, *diff.suggested_rules)
    status = {r.name: r.status for r in mapped.variables}
    assert {status[f"model/backbone/{k}"] for k in backbone_values()} == {"unchanged"}
    assert status["logits/weights"] == status["logits/biases"] == status["global_step"] == "changed"
    assert mapped.summary["added"] == mapped.summary["removed"] == 0
    assert mapped.suggestions == () and mapped.suggested_rules == ()


def test_each_suggestion_says_how_many_pairs_it_makes_before_it_is_applied(finetune):
    diff = _diff(finetune)
    (effect,) = suggestion_effects(diff)
    assert (effect.rules, effect.pairs, effect.unpairs, effect.unpaired_a, effect.unpaired_b) == (
        (BACKBONE_RULE,), 5, 0, 0, 0)
    # The old one-click rule renamed the head and global_step too: it would split 3 pairs and make none there.
    wide = rule_effect(["^=model/backbone/"], *diff_names(diff))
    assert (wide.pairs, wide.unpairs, wide.unpaired_a, wide.unpaired_b) == (5, 3, 3, 3)


def test_after_a_too_wide_rule_the_suggestion_repairs_only_what_it_broke(finetune):
    diff = _diff(finetune, "^=model/backbone/")
    assert diff.summary["removed"] == diff.summary["added"] == 3  # logits/* and global_step
    assert "^model/backbone/=" not in diff.suggested_rules  # the inverse rule would unpair the backbone
    assert all(e.unpairs == 0 for e in suggestion_effects(diff))
    repaired = _diff(finetune, "^=model/backbone/", *diff.suggested_rules)
    assert repaired.summary["added"] == repaired.summary["removed"] == 0
    assert repaired.summary["unchanged"] == 5


def test_a_rule_with_a_back_reference_and_a_prefix_swap_pair_the_backbone(finetune):
    for diff in (_diff(finetune, BACKBONE_RULE),
                 diff_checkpoints(open_checkpoint(finetune[0]), open_checkpoint(finetune[1]),
                                  mapping=NameMapping(rules=prefix_rules("conv", "model/backbone/conv")))):
        rows = {r.name: r for r in diff.variables}
        assert rows["model/backbone/conv2/weights"].name_a == "conv2/weights"
        assert rows["model/backbone/conv2/weights"].status == "unchanged"
        assert diff.summary["added"] == diff.summary["removed"] == 0


@pytest.mark.parametrize(("strip", "add"), [("", "model/"), ("tower_0/", ""), ("tower_0/", "model/")])
def test_prefix_rules_do_what_strip_and_add_prefix_do(strip, add):
    names = ["tower_0/conv1/w", "conv2/w", "tower_0/global_step", "_CHECKPOINTABLE_OBJECT_GRAPH"]
    as_options = NameMapping(strip_prefix_a=strip, add_prefix_a=add)
    as_rules = NameMapping(rules=prefix_rules(strip, add))
    assert [as_rules.apply(n) for n in names[:3]] == [as_options.apply(n) for n in names[:3]]
    assert as_rules.apply(names[3]) == names[3]  # rules never move the format's own keys


def test_every_name_changed_tf1_keys_against_tf2_keys_still_gets_a_rule(tmp_path, cb):
    backbone = backbone_values()
    del backbone["conv1/weights/Adam"]
    a = cb.save_v1(str(tmp_path / "v1" / "model.ckpt"), backbone)
    tree: dict = {}
    for name, value in backbone.items():
        scope, leaf = name.split("/")
        tree.setdefault(scope, {})[leaf] = value
    b = cb.save_tf2(str(tmp_path / "v2" / "ckpt-1"), {"net": tree})
    diff = _diff((a, b))
    assert diff.summary["removed"] == 4 and diff.suggested_rules  # nothing in common at the end of the names
    effect = rule_effect(diff.suggested_rules, *diff_names(diff))
    assert (effect.pairs, effect.unpairs, effect.unpaired_a) == (4, 0, 0)
    mapped = _diff((a, b), *diff.suggested_rules)
    status = {r.name: r.status for r in mapped.variables if r.kind == "model"}
    assert status == {f"net/{k}/.ATTRIBUTES/VARIABLE_VALUE": "unchanged" for k in backbone}


def test_every_name_changed_leaf_renames_get_one_rule_per_leaf(tmp_path, cb):
    backbone = backbone_values()
    del backbone["conv1/weights/Adam"]
    renamed = {"model/" + k.replace("weights", "kernel").replace("biases", "bias"): v for k, v in backbone.items()}
    a = cb.save_v1(str(tmp_path / "a" / "model.ckpt"), backbone)
    b = cb.save_v1(str(tmp_path / "b" / "model.ckpt"), renamed)
    diff = _diff((a, b))
    assert set(diff.suggested_rules) == {r"^(.+)/biases$=model/\1/bias", r"^(.+)/weights$=model/\1/kernel"}
    assert [e.pairs for e in suggestion_effects(diff)] == [2, 2]
    mapped = _diff((a, b), *diff.suggested_rules)
    assert mapped.summary["unchanged"] == 4 and mapped.summary["added"] == 0


def test_a_rule_confined_to_one_scope_may_carry_unpaired_names_along(tmp_path, cb):
    # The fine-tuned run has no Adam slot for the frozen backbone and a new 3-class head.
    backbone = backbone_values()
    a = cb.save_v1(str(tmp_path / "a" / "model.ckpt"), backbone | head_values(0.0, 1))
    frozen = {f"model/backbone/{k}": v for k, v in backbone.items() if not k.endswith("/Adam")}
    b = cb.save_v1(str(tmp_path / "b" / "model.ckpt"),
                   frozen | {"model/head/w": np.ones((4, 3), np.float32), "global_step": np.array(9, np.int64)})
    diff = _diff((a, b))
    assert diff.suggested_rules == (BACKBONE_RULE,)
    (effect,) = suggestion_effects(diff)
    assert (effect.pairs, effect.unpairs, effect.unpaired_a, effect.unpaired_b) == (4, 0, 3, 1)


def test_suggest_rules_never_renames_a_name_that_pairs():
    pairs = [SuggestedPair("dense/kernel", "m/dense/kernel", (2,), "float32", 0.8),
             SuggestedPair("dense/bias", "m/dense/bias", (2,), "float32", 0.8)]
    alone = suggest_rules(pairs)  # only the pairs' own names known: the widest rule
    assert alone == ("^=m/",)
    names_a = ["dense/kernel", "dense/bias", "dense_1/kernel", "global_step"]
    names_b = ["m/dense/kernel", "m/dense/bias", "dense_1/kernel", "global_step"]
    assert suggest_rules(pairs, names_a, names_b) == ("^dense/=m/dense/",)
    # dense/ and dense_1/ share no scope, but dense/kernel alone must not take dense_1 along.
    names_b[2] = "m/dense_1/kernel"
    pairs.append(SuggestedPair("dense_1/kernel", "m/dense_1/kernel", (2,), "float32", 0.8))
    assert suggest_rules(pairs, names_a, names_b) == (r"^(dense|dense_1)/=m/\1/",)
