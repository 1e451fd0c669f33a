"""Graph picture: loading (TensorFlow's parsing as reference), scopes, box cap, side ops, path, layout."""

from __future__ import annotations

import itertools
import math
import os
import time
from collections import defaultdict
from pathlib import Path

import pytest

from ckptlib.errors import CkptError, CorruptCheckpoint, NotFound
from ckptlib.graph.layout import layered_layout
from ckptlib.graph.load import load_graph
from ckptlib.graph.scopetree import inference_path, scope_children, scope_picture, side_ops, worst_status

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
SIDE_PREFIXES = ("gradients", "save", "Adam", "init", "beta1_power", "beta2_power", "global_step", "loss_summary")


@pytest.fixture(scope="module")
def tf():
    from ckptlib._tf import tf as import_tf

    return import_tf()


@pytest.fixture(scope="module")
def trained(tf, tmp_path_factory):
    """A TF1 run: x, labels, keep_prob (dropout), 'hidden' and 'out' scopes, a loss with a summary, Adam,
    global_step and a Saver; saved once (a .meta and a checkpoint), plus its frozen .pb."""
    v1 = tf.compat.v1
    folder = tmp_path_factory.mktemp("picture")
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 784], name="x")
        labels = v1.placeholder(tf.int64, [None], name="labels")
        keep_prob = v1.placeholder(tf.float32, [], name="keep_prob")
        with v1.variable_scope("hidden"):
            w = v1.get_variable("w", [784, 32], initializer=v1.zeros_initializer())
            h = tf.nn.relu(tf.matmul(v1.nn.dropout(x, keep_prob), w) + v1.get_variable("b", [32]))
        with v1.variable_scope("out"):
            logits = tf.add(tf.matmul(h, v1.get_variable("w", [32, 10])), v1.get_variable("b", [10]), name="logits")
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits),
                              name="xent")
        v1.summary.scalar("loss_summary", loss)
        v1.train.AdamOptimizer(1e-3).minimize(loss, global_step=v1.train.get_or_create_global_step())
        saver = v1.train.Saver()
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            prefix = saver.save(sess, str(folder / "run" / "model.ckpt"), global_step=1)
            frozen = v1.graph_util.convert_variables_to_constants(sess, graph.as_graph_def(), ["out/logits"])
    pb = folder / "model.pb"
    pb.write_bytes(frozen.SerializeToString())
    return {"meta": prefix + ".meta", "prefix": prefix, "pb": str(pb), "folder": folder}


@pytest.fixture(scope="module")
def saved_model(tf, tmp_path_factory):
    """A TF2 SavedModel of a tf.Module: its graph calls a function (StatefulPartitionedCall)."""
    class Linear(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(tf.zeros([784, 10]), name="w")
            self.b = tf.Variable(tf.zeros([10]), name="b")

        @tf.function(input_signature=[tf.TensorSpec([None, 784], tf.float32, name="x")])
        def __call__(self, x):
            return {"logits": tf.matmul(x, self.w) + self.b}

    model = Linear()
    path = str(tmp_path_factory.mktemp("saved") / "export")
    tf.saved_model.save(model, path, signatures=model.__call__)
    return path


def test_a_meta_loads_as_tensorflow_reads_it(tf, trained):
    graph = load_graph(trained["meta"])
    reference = tf.Graph()
    with reference.as_default():
        tf.compat.v1.train.import_meta_graph(trained["meta"])
    assert graph.kind == "meta" and graph.path == trained["meta"]
    assert [(n.name, n.op) for n in graph.nodes] == [(op.name, op.type) for op in reference.get_operations()]
    assert graph.suggested_inputs[0] == "x" and graph.suggested_outputs[0] == "out/logits"
    # A checkpoint prefix and its run folder mean the same .meta.
    assert load_graph(trained["prefix"]).path == trained["meta"]
    assert load_graph(os.path.dirname(trained["prefix"])).path == trained["meta"]


def test_a_frozen_pb_loads_as_tensorflow_reads_it(tf, trained):
    graph = load_graph(trained["pb"])
    reference = tf.compat.v1.GraphDef()
    with open(trained["pb"], "rb") as handle:
        reference.ParseFromString(handle.read())
    assert graph.kind == "frozen"
    assert [(n.name, n.op, dict(n.attr)) for n in graph.nodes] == [(n.name, n.op, dict(n.attr)) for n in reference.node]
    assert graph.suggested_outputs[0] == "out/logits" and "x" in graph.suggested_inputs


def test_a_saved_model_loads_its_serve_graph_and_functions(tf, saved_model):
    graph = load_graph(saved_model)
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], saved_model)
    assert graph.kind == "saved_model" and graph.tags == ("serve",)
    assert [(n.name, n.op) for n in graph.nodes] == [(n.name, n.op) for n in meta.graph_def.node]
    assert set(graph.function_names) == {f.signature.name for f in meta.graph_def.library.function}
    assert graph.suggested_inputs == ("serving_default_x",) and graph.suggested_outputs == ("StatefulPartitionedCall",)
    assert load_graph(os.path.join(saved_model, "saved_model.pb")).num_ops == graph.num_ops
    picture = scope_picture(graph)
    drawn = {b.id for b in picture.boxes}
    assert {"serving_default_x", "StatefulPartitionedCall"} <= drawn and "saver_filename" not in drawn
    assert {b.id for b in picture.boxes if b.on_path} == {"serving_default_x", "StatefulPartitionedCall"}


def test_loading_errors_name_the_file(tf, trained, saved_model, tmp_path):
    data = Path(trained["meta"]).read_bytes()
    (tmp_path / "cut.meta").write_bytes(data[: len(data) // 3])
    (tmp_path / "words.pb").write_text("hello, this is not a GraphDef\n")
    broken = tmp_path / "broken_export"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes((Path(saved_model) / "saved_model.pb").read_bytes()[:200])
    with pytest.raises(NotFound, match="missing.pb"):
        load_graph(str(tmp_path / "missing.pb"))
    for bad in ("cut.meta", "words.pb", "broken_export"):
        with pytest.raises(CkptError, match=bad) as caught:
            load_graph(str(tmp_path / bad))
        assert "\n" not in str(caught.value)
    with pytest.raises(CorruptCheckpoint):
        load_graph(str(broken))


def test_devices_can_be_cleared(tf, tmp_path):
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default(), tf.device("/device:GPU:0"):
        tf.identity(v1.placeholder(tf.float32, [None, 4], name="x"), name="y")
    (tmp_path / "pinned.pb").write_bytes(graph.as_graph_def().SerializeToString())
    assert {n.device for n in load_graph(str(tmp_path / "pinned.pb")).nodes} == {"/device:GPU:0"}
    assert {n.device for n in load_graph(str(tmp_path / "pinned.pb"), clear_devices=True).nodes} == {""}


def _drawn_ops(picture) -> int:
    return sum(b.op_count for b in picture.boxes)


def test_side_ops_are_hidden_and_counted(trained):
    graph = load_graph(trained["meta"])
    picture = scope_picture(graph)
    top = {b.id.rstrip("/") for b in picture.boxes}
    assert top == {"x", "labels", "keep_prob", "hidden", "out", "SparseSoftmaxCrossEntropyWithLogits", "xent"}
    assert picture.hidden_ops == len(side_ops(graph)) > 0
    assert _drawn_ops(picture) + picture.hidden_ops == graph.num_ops
    hidden = side_ops(graph)
    assert all(n.name in hidden for n in graph.nodes if n.name.startswith(SIDE_PREFIXES))
    assert not {"x", "out/logits", "hidden/w", "xent"} & hidden  # the model, and the loss computed from it
    everything = scope_picture(graph, show_side_ops=True)
    assert everything.hidden_ops == 0 and _drawn_ops(everything) == graph.num_ops
    assert {"gradients/", "save/", "Adam/"} <= {b.id for b in everything.boxes}


def test_expanding_a_scope_shows_its_children(trained):
    graph = load_graph(trained["meta"])
    children = dict(scope_children(graph, "hidden"))
    assert "hidden/dropout" in children and all(n > 0 for n in children.values())
    assert [s for s, _ in scope_children(graph, "")] == sorted(["hidden", "out", "SparseSoftmaxCrossEntropyWithLogits"])
    closed = scope_picture(graph)
    opened = scope_picture(graph, expanded={"hidden"})
    assert "hidden/" in {b.id for b in closed.boxes} and "hidden/" not in {b.id for b in opened.boxes}
    inside = [b for b in opened.boxes if b.scope == "hidden" or b.scope.startswith("hidden/")]
    assert sum(b.op_count for b in inside) == closed.box("hidden/").op_count
    assert {f"{s}/" for s, n in children.items() if n > 1} <= {b.id for b in inside}
    assert opened.expanded == ("", "hidden") and opened.capped_note is None
    # A deep scope opens with its parents; a box id (trailing '/') is accepted like the scope's path.
    deep = scope_picture(graph, expanded={"hidden/dropout/"})
    assert {"", "hidden", "hidden/dropout"} <= set(deep.expanded)


def test_the_inference_path_is_marked(trained):
    graph = load_graph(trained["meta"])
    path = inference_path(graph)
    assert {"x", "keep_prob", "hidden/Relu", "out/logits"} <= path and any("dropout" in n for n in path)
    assert not {"labels", "xent", "hidden/w"} & path
    picture = scope_picture(graph)
    assert {b.id for b in picture.boxes if b.on_path} == {"x", "keep_prob", "hidden/", "out/"}
    marked = {(e.src, e.dst) for e in picture.edges if e.on_path}
    assert {("x", "hidden/"), ("hidden/", "out/")} <= marked and ("out/", "SparseSoftmaxCrossEntropyWithLogits/") not in marked
    other = scope_picture(graph, inputs=["labels"], outputs=["xent"])
    assert {b.id for b in other.boxes if b.on_path} == {"labels", "SparseSoftmaxCrossEntropyWithLogits/", "xent"}


def test_statuses_colour_boxes_with_the_worst_inside(trained):
    graph = load_graph(trained["meta"])
    statuses = {n.name: "unchanged" for n in graph.nodes}
    statuses["out/logits"] = "changed"
    statuses.update({n.name: "added" for n in graph.nodes if n.name.startswith("hidden/")})
    picture = scope_picture(graph, statuses=statuses)
    assert picture.box("hidden/").status == "added" and picture.box("out/").status == "changed"
    assert picture.box("x").status == "unchanged" and scope_picture(graph).box("x").status is None
    assert worst_status(["unchanged", "added"]) == "changed" and worst_status([None]) is None


def _check_layout(picture):
    by_layer = defaultdict(list)
    for box in picture.boxes:
        assert math.isfinite(box.x) and math.isfinite(box.y)
        by_layer[box.x].append(box.y)
    for ys in by_layer.values():
        ys.sort()
        assert all(b - a >= 1.0 - 1e-9 for a, b in itertools.pairwise(ys)), ys  # no two boxes overlap in a layer


def test_layout_is_finite_layered_and_without_overlaps(trained):
    graph = load_graph(trained["meta"])
    for picture in (scope_picture(graph), scope_picture(graph, expanded={"hidden", "out"}),
                    scope_picture(graph, show_side_ops=True, expanded={"gradients"})):
        _check_layout(picture)
    picture = scope_picture(graph, expanded={"hidden", "out"})
    where = {b.id: b.x for b in picture.boxes}
    assert all(where[e.src] < where[e.dst] for e in picture.edges)  # this picture has no cycle
    positions = layered_layout(["a", "b", "c", "d"], [("a", "b"), ("b", "c"), ("c", "a"), ("a", "d"), ("d", "c")])
    assert positions["a"][0] < positions["b"][0] < positions["c"][0]  # the cycle's closing edge is ignored
    assert len(set(positions.values())) == 4


def test_a_loop_draws_despite_its_cycle(tf, tmp_path):
    # v1 control flow: Merge reads NextIteration, which reads what Merge fed, a cycle in the GraphDef.
    graph_def = tf.compat.v1.GraphDef()
    for name, op, inputs in (("x", "Placeholder", []), ("loop/Enter", "Enter", ["x"]),
                             ("loop/Merge", "Merge", ["loop/Enter", "loop/NextIteration"]),
                             ("loop/body/add", "AddV2", ["loop/Merge", "loop/Merge"]),
                             ("loop/NextIteration", "NextIteration", ["loop/body/add"]),
                             ("loop/Exit", "Exit", ["loop/Merge"]), ("y", "Identity", ["loop/Exit"])):
        graph_def.node.add(name=name, op=op, input=inputs)
    (tmp_path / "loop.pb").write_bytes(graph_def.SerializeToString())
    graph = load_graph(str(tmp_path / "loop.pb"))
    for expanded in (set(), {"loop"}, {"loop/body"}):
        picture = scope_picture(graph, expanded=expanded, outputs=["y"])
        _check_layout(picture)
        assert _drawn_ops(picture) == 7 and all(b.on_path for b in picture.boxes)
    assert ("loop/body/add", "loop/NextIteration") in {(e.src, e.dst) for e in picture.edges}


def _generated(tf, path, blocks: int, per_block: int, flat: bool = False) -> str:
    """A GraphDef of NodeDef protos (no session): blocks of `per_block` ops in sub-scopes, chained, with
    training ops beside them; `flat` puts every op at the top level instead."""
    graph_def = tf.compat.v1.GraphDef()

    def add(name, op, *inputs):
        node = graph_def.node.add(name=name if not flat else name.replace("/", "_"), op=op)
        node.input.extend(i if not flat else i.replace("/", "_") for i in inputs)
        return node.name

    prev = add("input", "Placeholder")
    for b in range(blocks):
        scope = f"model/block{b}"
        weights = add(f"{scope}/w", "VariableV2")
        add(f"{scope}/w/Assign", "Assign", weights, add(f"{scope}/w/Initializer/zeros", "Const"))
        cur = add(f"{scope}/conv", "MatMul", prev, add(f"{scope}/w/read", "Identity", weights))
        for k in range(per_block - 6):
            cur = add(f"{scope}/unit{k % 10}/op{k}", "Relu", cur)
        prev = add(f"{scope}/out", "Identity", cur)
        add(f"gradients/{scope}/grad", "ReluGrad", prev, prev)
    add("logits", "Identity", prev)
    with open(path, "wb") as handle:
        handle.write(graph_def.SerializeToString())
    return str(path)


def test_ten_thousand_ops_stay_under_the_cap_and_fast(tf, tmp_path):
    path = _generated(tf, tmp_path / "big.pb", blocks=50, per_block=200)
    started = time.perf_counter()
    graph = load_graph(path)
    loaded = time.perf_counter()
    first = scope_picture(graph)
    drawn = time.perf_counter()
    assert graph.num_ops == 10_052 and graph.suggested_outputs[0] == "logits"
    assert len(first.boxes) <= 300 and first.hidden_ops == 150  # Assign, its initializer, the gradient
    blocks = {f"model/block{b}" for b in range(50)}
    everything = scope_picture(graph, expanded=blocks | {f"{s}/unit{u}" for s in blocks for u in range(10)})
    expanded = time.perf_counter()
    assert len(everything.boxes) <= 300 and "kept collapsed" in everything.capped_note
    opened = set(everything.expanded) & blocks
    assert opened and opened != blocks
    assert _drawn_ops(everything) + everything.hidden_ops == graph.num_ops
    _check_layout(everything)
    assert loaded - started < 5 and drawn - loaded < 3 and expanded - drawn < 3, (loaded - started, drawn - loaded,
                                                                                  expanded - drawn)
    small = scope_picture(graph, expanded=blocks, max_boxes=40)
    assert len(small.boxes) <= 40 and _drawn_ops(small) + small.hidden_ops == graph.num_ops


def test_the_biggest_requested_scopes_stay_collapsed(tf, tmp_path):
    graph_def = tf.compat.v1.GraphDef()
    sizes = {"small": 5, "medium": 12, "large": 30}
    for scope, size in sizes.items():
        for k in range(size):
            graph_def.node.add(name=f"{scope}/op{k}", op="Const")
    (tmp_path / "three.pb").write_bytes(graph_def.SerializeToString())
    graph = load_graph(str(tmp_path / "three.pb"))
    picture = scope_picture(graph, expanded=set(sizes), max_boxes=20)
    assert set(picture.expanded) == {"", "small", "medium"} and len(picture.boxes) <= 20
    assert "'large' (30 ops)" in picture.capped_note and picture.box("large/").op_count == 30


def test_a_flat_graph_gets_an_overflow_box(tf, tmp_path):
    graph = load_graph(_generated(tf, tmp_path / "flat.pb", blocks=50, per_block=200, flat=True))
    started = time.perf_counter()
    picture = scope_picture(graph)
    assert time.perf_counter() - started < 3
    assert len(picture.boxes) == 300 and "the top level" in picture.capped_note
    overflow = picture.box("…")
    assert overflow.kind == "scope" and overflow.label.startswith("… ")
    assert _drawn_ops(picture) + picture.hidden_ops == graph.num_ops
    assert {"input", "logits"} <= {b.id for b in picture.boxes if b.on_path}  # the path is kept in sight
    _check_layout(picture)


def test_bad_cap_is_refused(trained):
    with pytest.raises(ValueError, match="max_boxes"):
        scope_picture(load_graph(trained["meta"]), max_boxes=1)
