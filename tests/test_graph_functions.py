"""A TF2 SavedModel's library functions as pictures and diffs: real Keras and tf.Module exports in tmp_path,
TensorFlow's own loading (tf.saved_model.load) and FunctionDef conversion (function_def_to_graph) as the
reference; the Graph page's Function chooser (?gfn=, ?gfn_b=) and `graph-diff --function`."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from page_links import open_page
from streamlit.testing.v1 import AppTest

from ckptlib.cli.main import main
from ckptlib.errors import NotFound
from ckptlib.graph.functions import functions_of
from ckptlib.graph.graphdiff import diff_graphs
from ckptlib.graph.load import function_body, load_graph
from ckptlib.graph.scopetree import scope_picture

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "dashboard.py")
SAMPLES = os.path.join(os.path.dirname(APP), "sample_checkpoints")
LAYER_OPS = {"MatMul", "BiasAdd", "Relu"}


@pytest.fixture(scope="module")
def tf():
    from ckptlib._tf import tf as import_tf

    return import_tf()


def _export_mlp(tf, folder: str, width: int) -> str:
    """x (8) -> Dense(width, relu) 'hidden' -> Dense(3) 'out', exported with model.export (Keras 3). The
    session is cleared first so that both exports name their ops alike (their functions still differ)."""
    keras = tf.keras
    keras.backend.clear_session()
    model = keras.Sequential([keras.Input((8,), name="x"), keras.layers.Dense(width, activation="relu", name="hidden"),
                              keras.layers.Dense(3, name="out")], name="mlp")
    model.export(folder, verbose=False)
    return folder


@pytest.fixture(scope="module")
def exports(tf, tmp_path_factory):
    """A run folder (a copy of the 'linear' sample) holding two SavedModels: hidden width 16 and 32."""
    root = tmp_path_factory.mktemp("functions")
    run = shutil.copytree(os.path.join(SAMPLES, "linear"), root / "linear")
    return {"root": str(root), "run": str(run), "a": _export_mlp(tf, str(run / "export_a"), 16),
            "b": _export_mlp(tf, str(run / "export_b"), 32)}


@pytest.fixture(scope="module")
def module_export(tf, tmp_path_factory):
    """tf.saved_model.save of a tf.Module whose function pins its ops to the CPU."""
    class Linear(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(tf.zeros([4, 2]), name="w")
            self.b = tf.Variable(tf.zeros([2]), name="b")

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def __call__(self, x):
            with tf.device("/device:CPU:0"):
                return {"logits": tf.matmul(x, self.w) + self.b}

    model = Linear()
    path = str(tmp_path_factory.mktemp("module") / "export")
    tf.saved_model.save(model, path, signatures=model.__call__)
    return path


def _saved_model_proto(tf, path: str):
    from ckptlib.graph.collectiondefs import pb2

    saved = pb2("protobuf.saved_model_pb2").SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as handle:
        saved.ParseFromString(handle.read())
    return saved


def _tf_body(tf, fdef, graph_def) -> dict[str, tuple]:
    """TensorFlow's own reading of a FunctionDef: op name -> (type, data inputs, control inputs)."""
    from tensorflow.python.framework.function_def_to_graph import function_def_to_graph

    with tf.Graph().as_default():
        tf.graph_util.import_graph_def(graph_def, name="")  # the library, for the functions a body calls
        graph = function_def_to_graph(fdef)
    return {op.name: (op.type, [t.name.removesuffix(":0") for t in op.inputs], sorted(c.name for c in op.control_inputs))
            for op in graph.get_operations()}


def _ours(body) -> dict[str, tuple]:
    return {n.name: (n.op, [r.removesuffix(":0") for r in n.input if not r.startswith("^")],
                     sorted(r[1:] for r in n.input if r.startswith("^"))) for n in body.nodes}


def test_the_serving_function_holds_the_layers_tensorflow_loads(tf, exports):
    top = load_graph(exports["a"])
    assert {n.op for n in top.nodes}.isdisjoint(LAYER_OPS)  # the top level only calls functions
    body = load_graph(exports["a"], function="serving_default")
    name = dict(top.signature_functions)["serving_default"]
    assert body.function == name and name in top.function_names and "signature_wrapper" not in name
    assert body.kind == "saved_model" and body.path == top.path
    # TensorFlow's loader: the serving signature's call leads to a function with the same ops (renamed on load).
    signature = tf.saved_model.load(exports["a"]).signatures["serving_default"]
    call = next(op for op in signature.graph.get_operations() if op.type == "StatefulPartitionedCall")
    library = signature.graph.as_graph_def().library
    inner = next(f for f in library.function if f.signature.name == call.get_attr("f").name)
    reference = _tf_body(tf, inner, signature.graph.as_graph_def())
    ours = _ours(body)
    assert {k: v for k, v in ours.items() if v[0] not in ("_Arg", "_Retval")} == \
        {k: v for k, v in reference.items() if v[0] != "Placeholder"}
    assert {k for k, v in ours.items() if v[0] == "_Arg"} == {k for k, v in reference.items() if v[0] == "Placeholder"}
    types = {n.op for n in body.nodes}
    assert LAYER_OPS <= types and {n.name for n in body.nodes if n.op == "MatMul"} == {
        "mlp_1/hidden_1/MatMul", "mlp_1/out_1/MatMul"}
    assert body.suggested_inputs == ("x",)  # the variable handles are arguments, not inputs
    assert body.suggested_outputs == ("identity",) and ours["identity"] == ("_Retval", ["Identity"], [])
    assert load_graph(exports["a"], function=name).num_ops == body.num_ops == len(inner.node_def) + 6


def test_every_function_body_matches_tensorflows_own_conversion(tf, exports):
    graph_def = _saved_model_proto(tf, exports["a"]).meta_graphs[0].graph_def
    top = load_graph(exports["a"])
    assert len(graph_def.library.function) >= 4
    for fdef in graph_def.library.function:
        body = function_body(top, fdef.signature.name)
        reference = _tf_body(tf, fdef, graph_def)
        ours = {k: v for k, v in _ours(body).items() if v[0] != "_Retval"}
        assert {k: (("Placeholder",) + v[1:] if v[0] == "_Arg" else v) for k, v in ours.items()} == reference, \
            fdef.signature.name
    restore = next(f.name for f in functions_of(top) if "restore" in f.name)
    reads = {n.name: list(n.input) for n in load_graph(exports["a"], function=restore).nodes}
    assert reads["Identity_3"] == ["RestoreV2:3"]  # 'RestoreV2:tensors:3': the list output's flat port


def test_functions_are_listed_signatures_first(exports):
    top = load_graph(exports["a"])
    listed = functions_of(top)
    name = dict(top.signature_functions)["serving_default"]
    assert listed[0].name == name and listed[0].label == f"serving_default, serve → {name}"
    assert listed[0].num_nodes == 11 and all(isinstance(f, tuple) and len(f) == 3 for f in listed)
    assert {f.name for f in listed} == set(top.function_names) and len(listed) == len(top.function_names)
    rest = [f.name for f in listed[1:]]
    assert rest == sorted(rest) and any("(5 in → 1 out)" in f.label for f in listed[1:])


def test_the_picture_of_the_serving_function(exports):
    body = load_graph(exports["a"], function="serving_default")
    picture = scope_picture(body)
    on_path = {b.id for b in picture.boxes if b.on_path}
    assert {"x", "mlp_1/", "Identity", "identity"} <= on_path
    assert "mlp_1_hidden_1_cast_readvariableop_resource" in {b.id for b in picture.boxes} - on_path
    opened = scope_picture(body, expanded={"mlp_1/hidden_1/BiasAdd", "mlp_1/out_1"})  # BiasAdd: op and scope
    types = {b.op_type for b in opened.boxes if b.kind == "op"}
    assert LAYER_OPS <= types
    assert {"mlp_1/hidden_1/MatMul", "mlp_1/hidden_1/Relu"} <= {b.id for b in opened.boxes if b.on_path}
    assert all(opened.box(e.src).x < opened.box(e.dst).x for e in opened.edges)


def test_a_function_diff_shows_the_wider_layer(exports):
    a = load_graph(exports["a"], function="serving_default")
    b = load_graph(exports["b"], function="serving_default")
    assert a.function != b.function  # each export numbers its functions anew
    assert diff_graphs(a, a).identical
    diff = diff_graphs(a, b)
    changed = {op.name: op.changes for op in diff.ops if op.status == "changed"}
    assert diff.summary["added"] == diff.summary["removed"] == 0
    assert changed == {
        "mlp_1_hidden_1_cast_readvariableop_resource": ("attr _handle_shapes: [[8, 16]] → [[8, 32]]",),
        "mlp_1_hidden_1_biasadd_readvariableop_resource": ("attr _handle_shapes: [[16]] → [[32]]",),
        "mlp_1_out_1_cast_readvariableop_resource": ("attr _handle_shapes: [[16, 3]] → [[32, 3]]",),
    }  # the hidden layer's kernel and bias, and the kernel reading it; the out layer's bias stays [3]
    picture = scope_picture(b, statuses=diff.statuses_b())
    assert picture.box("mlp_1_hidden_1_cast_readvariableop_resource").status == "changed"
    assert picture.box("x").status == "unchanged"


def test_a_module_export_and_its_devices(module_export):
    body = load_graph(module_export, function="serving_default")
    assert {"MatMul", "AddV2"} <= {n.op for n in body.nodes}
    assert body.suggested_inputs == ("x",) and body.suggested_outputs == ("identity",)
    pinned = {n.name for n in body.nodes if n.device}
    assert "MatMul" in pinned and all(n.device.endswith("CPU:0") for n in body.nodes if n.device)
    cleared = load_graph(module_export, clear_devices=True, function="serving_default")
    assert not any(n.device for n in cleared.nodes)
    assert {n.name for n in load_graph(module_export, function="serving_default").nodes if n.device} == pinned


def test_an_unknown_function_is_one_line_with_close_names(tf, exports, tmp_path):
    top = load_graph(exports["a"])
    name = dict(top.signature_functions)["serving_default"]
    with pytest.raises(NotFound) as caught:
        load_graph(exports["a"], function=name[:-2])
    message = str(caught.value)
    assert "\n" not in message and "saved_model.pb" in message and name[:-2] in message and name in message
    with pytest.raises(NotFound, match="e.g. serving_default"):
        load_graph(exports["a"], function="zzz")
    graph_def = tf.compat.v1.GraphDef()
    graph_def.node.add(name="x", op="Placeholder")
    (tmp_path / "plain.pb").write_bytes(graph_def.SerializeToString())
    with pytest.raises(NotFound, match=r"plain\.pb.*no function library"):
        load_graph(str(tmp_path / "plain.pb"), function="f")


def test_cli_function_options(exports, capsys):
    a, b = exports["a"], exports["b"]
    assert main(["graph-diff", a, b, "--function", "serving_default", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    name_a = dict(load_graph(a).signature_functions)["serving_default"]
    name_b = dict(load_graph(b).signature_functions)["serving_default"]
    assert (doc["function_a"], doc["function_b"]) == (name_a, name_b)
    assert doc["summary"] == {"added": 0, "removed": 0, "changed": 3, "unchanged": 14}
    assert main(["graph-diff", a, b, "--function", name_a, "--function-b", name_b]) == 0
    text = capsys.readouterr().out
    assert f"(saved_model, function {name_a}, 17 ops)" in text.splitlines()[0]
    assert "attr _handle_shapes: [[8, 16]] → [[8, 32]]" in text
    assert main(["graph-diff", a, a, "--json"]) == 0
    assert "function_a" not in json.loads(capsys.readouterr().out)  # the top-level graphs: as before
    assert main(["graph-diff", a, b, "--function", name_a]) == 2  # B has no function of that name
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "export_b" in err and name_b in err


# --- the Graph page -----------------------------------------------------------------------------------


pytestmark = pytest.mark.usefixtures("restored_root")  # CKPTLIB_ROOT as it was, after each test


def _graph_page(root: str, **params) -> AppTest:
    return open_page("graph", root, params, timeout=90)


def _boxes(at: AppTest) -> dict[str, str]:
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    return {box_id: trace["name"] for trace in spec["data"] for box_id in trace.get("customdata") or ()}


def _param(at: AppTest, key: str):
    value = at.query_params.get(key)
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def _clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_the_page_draws_the_serving_function_from_the_url(exports):
    name = dict(load_graph(exports["a"]).signature_functions)["serving_default"]
    at = _graph_page(exports["root"], run="linear", meta="export_a/ (SavedModel)", gfn="serving_default",
                     expand="mlp_1,mlp_1/hidden_1")
    _clean(at)
    assert at.selectbox(key="gfn").value == name and _param(at, "gfn") == name  # the signature key resolved
    assert at.selectbox(key="gfn").options[1].startswith("serving_default, serve → ")
    boxes = _boxes(at)
    expected = scope_picture(load_graph(exports["a"], function=name), expanded={"mlp_1", "mlp_1/hidden_1"})
    assert set(boxes) == {b.id for b in expected.boxes}
    assert {"x", "identity", "mlp_1/hidden_1/MatMul", "mlp_1/hidden_1/Relu"} <= set(boxes)
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Operations"]) == 17 and metrics["Kind"] == "saved model"
    assert any(f"Body of function {name}" in c.value for c in at.caption)
    # Back to the top-level graph: the URL forgets the function.
    at.selectbox(key="gfn").set_value("(top-level graph)").run()
    _clean(at)
    assert _param(at, "gfn") is None and "StatefulPartitionedCall_1" in _boxes(at)


def test_the_page_reports_an_unknown_function_and_shows_the_top_level(exports):
    at = _graph_page(exports["root"], run="linear", meta="export_a/ (SavedModel)", gfn="__inference_nope")
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == 1 and "__inference_nope" in at.error[0].value and "saved_model.pb" in at.error[0].value
    assert at.selectbox(key="gfn").value == "(top-level graph)" and "StatefulPartitionedCall_1" in _boxes(at)


def test_compare_mode_diffs_two_functions(exports):
    at = _graph_page(exports["root"], run="linear", meta="export_a/ (SavedModel)", gmode="Compare",
                     gb_graph="export_b/ (SavedModel)", gfn="serving_default")
    _clean(at)
    name_b = dict(load_graph(exports["b"]).signature_functions)["serving_default"]
    assert at.selectbox(key="gfn_b").value == name_b  # B follows A's signature, not A's function name
    metrics = {m.label: int(m.value) for m in at.metric}
    assert metrics == {"added": 0, "removed": 0, "changed": 3, "unchanged": 14}
    table = at.dataframe[0].value
    assert set(table["name"]) == {"mlp_1_hidden_1_cast_readvariableop_resource",
                                  "mlp_1_hidden_1_biasadd_readvariableop_resource",
                                  "mlp_1_out_1_cast_readvariableop_resource"}
    assert _boxes(at)["mlp_1_hidden_1_cast_readvariableop_resource"].startswith("changed")
    # B's own pick, kept in the URL; the top-level graph against a function shows every op as different.
    at.selectbox(key="gfn_b").set_value("(top-level graph)").run()
    _clean(at)
    assert _param(at, "gfn_b") is None and {m.label: int(m.value) for m in at.metric}["unchanged"] < 14
