"""graph-diff on real graphs TensorFlow writes in tmp_path; TensorFlow's own parsing is the reference."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from ckptlib.cli.main import main
from ckptlib.compare.mapping import NameMapping
from ckptlib.errors import BadMappingRule, CkptError
from ckptlib.graph.graphdiff import diff_graphs, graph_diff_doc
from ckptlib.graph.load import load_graph
from ckptlib.graph.scopetree import scope_picture

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="module")
def tf():
    from ckptlib._tf import tf as import_tf

    return import_tf()


def build(tf, folder, name="model", *, scope="hidden", extra_layer=False, strides=1, device=None, train=True,
          save=False, saver=True) -> str:
    """A small conv net (x -> conv -> mean -> `scope` dense -> [extra dense] -> out/logits) with ref variables,
    a cross-entropy, GradientDescent and a Saver; writes NAME.meta (and a checkpoint with `save`)."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 8, 8, 1], name="x")
        labels = v1.placeholder(tf.int64, [None], name="labels")

        def variable(name, shape):
            return v1.get_variable(name, shape, initializer=v1.constant_initializer(0.1), use_resource=False)

        with v1.variable_scope("conv"):
            h = tf.nn.relu(tf.nn.conv2d(x, variable("k", [3, 3, 1, 4]), [1, strides, strides, 1], "SAME"))
            h = tf.reduce_mean(h, [1, 2])
        with tf.device(device) if device else graph.as_default(), v1.variable_scope(scope):
            h = tf.nn.relu(tf.matmul(h, variable("w", [4, 16])) + variable("b", [16]))
        if extra_layer:
            with v1.variable_scope("extra"):
                h = tf.nn.relu(tf.matmul(h, variable("w", [16, 16])) + variable("b", [16]))
        with v1.variable_scope("out"):
            logits = tf.add(tf.matmul(h, variable("w", [16, 10])), variable("b", [10]), name="logits")
        if train:
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits),
                                  name="xent")
            v1.train.GradientDescentOptimizer(0.1).minimize(loss)
        saver = v1.train.Saver() if saver else None
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(str(folder), name)
        if save:
            with v1.Session(graph=graph) as sess:
                sess.run(v1.global_variables_initializer())
                return saver.save(sess, path) + ".meta"
        v1.train.export_meta_graph(path + ".meta", saver_def=saver.as_saver_def() if saver else None)
    return path + ".meta"


def tf_op_names(tf, path: str) -> dict[str, str]:
    """What TensorFlow itself finds in a .meta or a frozen .pb: op name -> type."""
    v1 = tf.compat.v1
    if path.endswith(".meta"):
        graph = tf.Graph()
        with graph.as_default():
            v1.train.import_meta_graph(path)
        return {op.name: op.type for op in graph.get_operations()}
    graph_def = v1.GraphDef()
    with open(path, "rb") as handle:
        graph_def.ParseFromString(handle.read())
    return {n.name: n.op for n in graph_def.node}


def by_status(diff, status):
    return {op.name: op for op in diff.ops if op.status == status}


def test_a_graph_diffed_with_itself_is_unchanged(tf, tmp_path):
    meta = build(tf, tmp_path)
    diff = diff_graphs(load_graph(meta), load_graph(meta))
    ops = tf_op_names(tf, meta)
    assert diff.summary == {"added": 0, "removed": 0, "changed": 0, "unchanged": len(ops)}
    assert {op.name: op.type_b for op in diff.ops} == ops
    assert diff.identical and all(s.unchanged and not s.changed for s in diff.scopes)


def test_a_layer_added(tf, tmp_path):
    a, b = build(tf, tmp_path, "a"), build(tf, tmp_path, "b", extra_layer=True)
    diff = diff_graphs(load_graph(a), load_graph(b))
    added = by_status(diff, "added")
    new_in_b = set(tf_op_names(tf, b)) - set(tf_op_names(tf, a))
    assert set(added) == new_in_b and not by_status(diff, "removed")
    assert any(name.startswith("extra/") for name in added)
    assert {name.split("/")[0] for name in added} <= {"extra", "gradients", "GradientDescent", "save"}
    extra = next(s for s in diff.scopes if s.scope == "extra")
    assert extra.added == sum(1 for n in added if n.startswith("extra/")) and extra.unchanged == 0
    # The output layer now reads the new layer: an input change, named by position.
    assert "input 0: hidden/Relu → extra/Relu" in by_status(diff, "changed")["out/MatMul"].changes
    # Painted on B's picture, the new layer's box is 'added' and its readers' boxes changed.
    picture = scope_picture(load_graph(b), statuses=diff.statuses_b())
    assert picture.box("extra/").status == "added" and picture.box("out/").status == "changed"
    assert picture.box("conv/").status == "unchanged"


def test_an_attribute_change_is_named(tf, tmp_path):
    a, b = build(tf, tmp_path, "a", train=False), build(tf, tmp_path, "b", strides=2, train=False)
    diff = diff_graphs(load_graph(a), load_graph(b))
    changed = by_status(diff, "changed")
    assert set(changed) == {"conv/Conv2D"}
    assert changed["conv/Conv2D"].changes == ("attr strides: [1, 1, 1, 1] → [1, 2, 2, 1]",)
    assert diff.summary["unchanged"] == len(tf_op_names(tf, a)) - 1


def test_a_renamed_scope_maps_back(tf, tmp_path):
    a = build(tf, tmp_path, "a", train=False, saver=False)
    b = build(tf, tmp_path, "b", scope="encoder", train=False, saver=False)
    ga, gb = load_graph(a), load_graph(b)
    plain = diff_graphs(ga, gb)
    assert any(n.startswith("hidden/") for n in by_status(plain, "removed"))
    assert any(n.startswith("encoder/") for n in by_status(plain, "added"))
    mapped = diff_graphs(ga, gb, NameMapping(rules=((r"^hidden/", "encoder/"),)))
    assert mapped.identical, [op for op in mapped.ops if op.status != "unchanged"][:3]
    row = next(op for op in mapped.ops if op.name == "encoder/w")
    assert row.name_a == "hidden/w"  # B's name, A's own beside it
    assert mapped.statuses_a()["hidden/w"] == "unchanged" and mapped.statuses_b()["encoder/w"] == "unchanged"
    with pytest.raises(BadMappingRule, match="graph A"):
        diff_graphs(ga, gb, NameMapping(rules=((r"^hidden/.*", "encoder/w"),)))


def test_a_renamed_scope_still_changes_what_the_saver_stores(tf, tmp_path):
    # The saver's constants hold the checkpoint keys as values: renaming ops renames those keys too.
    a, b = build(tf, tmp_path, "a", train=False), build(tf, tmp_path, "b", scope="encoder", train=False)
    mapped = diff_graphs(load_graph(a), load_graph(b), NameMapping(rules=((r"^hidden/", "encoder/"),)))
    changed = by_status(mapped, "changed")
    assert set(changed) == {"save/SaveV2/tensor_names", "save/RestoreV2/tensor_names"}
    line = changed["save/SaveV2/tensor_names"].changes[0]
    assert line.startswith("attr value: [") and "hidden/b" in line and "encoder/b" in line, line


def test_a_device_pin_added(tf, tmp_path):
    # No saver: it pins its own restore ops to the CPU, and splits restore_all by device.
    a = build(tf, tmp_path, "a", train=False, saver=False)
    b = build(tf, tmp_path, "b", device="/device:CPU:0", train=False, saver=False)
    diff = diff_graphs(load_graph(a), load_graph(b))
    changed = by_status(diff, "changed")
    pinned = {n.name for n in load_graph(b).nodes if n.device}
    assert pinned and set(changed) == pinned
    assert all(op.changes == ("device: (none) → /device:CPU:0",) for op in changed.values())
    assert diff_graphs(load_graph(a), load_graph(b, clear_devices=True)).identical


def test_meta_against_its_frozen_graph(tf, tmp_path):
    from ckptlib.evaluate.freeze import freeze

    meta = build(tf, tmp_path / "run", save=True)  # freeze writes nowhere near a checkpoint folder
    frozen = freeze(meta[: -len(".meta")], ["out/logits"], str(tmp_path / "model.pb"))
    diff = diff_graphs(load_graph(meta), load_graph(frozen.output))
    assert diff.kind_a == "meta" and diff.kind_b == "frozen"
    in_a, in_b = tf_op_names(tf, meta), tf_op_names(tf, frozen.output)
    changed, removed = by_status(diff, "changed"), by_status(diff, "removed")
    assert not by_status(diff, "added") and set(removed) == set(in_a) - set(in_b)
    variables = {name for name, kind in in_a.items() if kind == "VariableV2"}
    assert variables == {"conv/k", "hidden/w", "hidden/b", "out/w", "out/b"}
    for name in variables:
        assert changed[name].changes[0] == "op type: VariableV2 → Const"
        assert (changed[name].type_a, changed[name].type_b) == ("VariableV2", "Const")
    assert any(n.startswith("gradients/") for n in removed) and any(n.startswith("save/") for n in removed)
    assert diff.summary["unchanged"] + len(changed) == len(in_b)


def test_cli_json_and_text(tf, tmp_path, capsys):
    a, b = build(tf, tmp_path, "a"), build(tf, tmp_path, "b", extra_layer=True)
    assert main(["graph-diff", a, b, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) >= {"a", "b", "summary", "ops", "scopes"} and doc["a"] == a and doc["b"] == b
    assert set(doc["summary"]) == {"added", "removed", "changed", "unchanged"}
    assert set(doc["ops"][0]) >= {"name", "name_a", "status", "type_a", "type_b", "changes"}
    assert set(doc["scopes"][0]) == {"scope", "added", "removed", "changed", "unchanged"}
    assert doc == json.loads(json.dumps(graph_diff_doc(diff_graphs(load_graph(a), load_graph(b)))))
    assert sum(doc["summary"].values()) == len(doc["ops"])
    assert main(["graph-diff", a, b]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[2].startswith("ops: ") and "added" in lines[2]
    assert text.index("changed (") < text.index("added (") and "input 0: hidden/Relu → extra/Relu" in text
    assert any(re.fullmatch(r"  … \d+ more", line) for line in lines)  # more added ops than the text lists
    assert main(["graph-diff", a, b, "--all"]) == 0
    assert not any(re.fullmatch(r"  … \d+ more", line) for line in capsys.readouterr().out.splitlines())


def test_cli_map_and_prefix_options(tf, tmp_path, capsys):
    a = build(tf, tmp_path, "a", train=False, saver=False)
    b = build(tf, tmp_path, "b", scope="encoder", train=False, saver=False)
    for options in (["--map", "^hidden/=encoder/"], ["--strip-prefix", "hidden/", "--add-prefix", "encoder/"]):
        assert main(["graph-diff", a, b, "--json", *options]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["summary"]["unchanged"] == len(doc["ops"]), options
    assert main(["graph-diff", a, a]) == 0
    assert "the graphs are the same op for op" in capsys.readouterr().out


def test_saved_models_and_meta_diff(tf, tmp_path, capsys):
    meta = build(tf, tmp_path / "run", save=True, train=False)
    export = str(tmp_path / "export")
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default(), v1.Session(graph=graph) as sess:
        v1.train.import_meta_graph(meta).restore(sess, meta[: -len(".meta")])
        v1.saved_model.simple_save(sess, export, {"x": graph.get_tensor_by_name("x:0")},
                                   {"logits": graph.get_tensor_by_name("out/logits:0")})
    saved = load_graph(export)
    assert saved.kind == "saved_model" and saved.suggested_inputs == ("x",) and saved.suggested_outputs == ("out/logits",)
    assert main(["graph-diff", export, os.path.join(export, "saved_model.pb")]) == 0
    assert "the graphs are the same op for op" in capsys.readouterr().out
    diff = diff_graphs(load_graph(meta), saved)
    assert diff.summary["unchanged"] > 0 and by_status(diff, "unchanged").keys() >= {"x", "out/logits", "hidden/w"}


def test_cli_errors_are_one_line(tf, tmp_path, capsys):
    good = build(tf, tmp_path, "good", train=False)
    (tmp_path / "notes.pb").write_text("not a graph at all, just some words\n")
    (tmp_path / "empty.meta").write_bytes(b"")
    data = Path(good).read_bytes()
    (tmp_path / "cut.meta").write_bytes(data[: len(data) // 2])
    cases = [str(tmp_path / "missing.meta"), str(tmp_path / "notes.pb"), str(tmp_path / "empty.meta"),
             str(tmp_path / "cut.meta"), str(tmp_path / "nothing_here")]
    (tmp_path / "nothing_here").mkdir()
    for bad in cases:
        with pytest.raises(CkptError):
            load_graph(bad)
        assert main(["graph-diff", good, bad]) == 2, bad
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert os.path.basename(bad) in err, err
    assert main(["graph-diff", good, good, "--map", "(=x"]) == 2
    assert "Bad mapping rule" in capsys.readouterr().err
