"""opsafety sees everything that can run: every library function, functions named at any attribute depth,
functions that declare they implement an API; crafted GraphDefs built with TensorFlow, refused before they run."""

from __future__ import annotations

import numpy as np
import pytest
from graph_fixtures import gb  # noqa: F401 - fixture

from ckptlib.errors import ForbiddenOps
from ckptlib.evaluate import batches, opsafety, running
from ckptlib.evaluate.evaluation import evaluate
from ckptlib.evaluate.types import MnistTestSet

TINY = MnistTestSet(np.zeros((4, 28, 28), np.uint8), np.arange(4, dtype=np.uint8), "four blank images")


def _with_hidden_writer(gb, target: str, helper: str | None = None):
    """images -> outer_fn(images) -> logits, where outer_fn calls whatever function its caller passes in its
    `helper` attribute: the writer (a tf.function whose body calls WriteFile), named only inside the
    NameAttrList of the call node's `f` attr. Returns (graph_def, the writer's name)."""
    graph = gb.tf.Graph()
    with graph.as_default():
        @gb.tf.function
        def writer(x):
            gb.tf.io.write_file(target, "pwned")
            return gb.tf.identity(x)

        x = gb.v1.placeholder(gb.tf.float32, [None, 784], name="images")
        gb.tf.matmul(writer(x), gb.tf.zeros([784, 10]), name="logits")
    graph_def = graph.as_graph_def()
    writer_name = next(f.signature.name for f in graph_def.library.function if "writer" in f.signature.name)
    floats = gb.tf.float32.as_datatype_enum
    outer = graph_def.library.function.add()
    outer.signature.name = "outer_fn"
    outer.signature.is_stateful = True
    arg = outer.signature.input_arg.add()
    arg.name, arg.type = "x", floats
    ret = outer.signature.output_arg.add()
    ret.name, ret.type = "y", floats
    attr = outer.signature.attr.add()
    attr.name, attr.type = "helper", "func"
    call = outer.node_def.add(name="call", op="StatefulPartitionedCall", input=["x"])
    call.attr["Tin"].list.type.append(floats)
    call.attr["Tout"].list.type.append(floats)
    call.attr["f"].placeholder = "helper"  # filled in from the caller's NameAttrList when instantiated
    outer.ret["y"] = "call:output:0"
    node = next(n for n in graph_def.node if n.op == "StatefulPartitionedCall")
    node.attr["f"].func.name = "outer_fn"
    node.attr["f"].func.attr["helper"].func.name = helper or writer_name
    return graph_def, writer_name


def test_a_function_passed_through_a_nested_attr_is_seen_and_nothing_is_written(gb, tmp_path):
    target = tmp_path / "pwned.txt"
    graph_def, writer = _with_hidden_writer(gb, str(target))
    # The crafted graph is real: TensorFlow, left to itself, runs the hidden writer.
    graph = gb.tf.Graph()
    with graph.as_default():
        gb.v1.import_graph_def(graph_def, name="")
    with gb.v1.Session(graph=graph) as sess:
        sess.run("logits:0", {"images:0": np.zeros((1, 784), np.float32)})
    assert target.exists()
    target.unlink()
    main_nodes = list(graph_def.node)  # as freezing checks them: only the outputs' nodes, then what they call
    assert opsafety.forbidden_ops(graph_def, nodes=main_nodes) == [f"function {writer}: WriteFile"]
    assert "outer_fn" in opsafety.attr_functions(main_nodes[1].attr) and writer in opsafety.attr_functions(
        main_nodes[1].attr)
    pb = tmp_path / "hidden.pb"
    pb.write_bytes(graph_def.SerializeToString())
    with pytest.raises(ForbiddenOps, match=rf"Refusing to run .*function {writer}: WriteFile"):
        evaluate(str(pb), mnist=TINY)  # through the child, as the CLI and the dashboard do
    assert not target.exists()


def test_a_bare_op_named_in_a_nested_attr_is_refused(gb, tmp_path):
    graph_def, _ = _with_hidden_writer(gb, str(tmp_path / "pwned.txt"), helper="WriteFile")
    bad = opsafety.forbidden_ops(graph_def)
    assert "StatefulPartitionedCall calls 'WriteFile', which is not a function of the graph" in bad
    with pytest.raises(ForbiddenOps, match="calls 'WriteFile', which is not a function of the graph"):
        running.evaluate_graph_def(graph_def, "bare.pb", TINY)


def test_every_library_function_is_checked_even_when_nothing_calls_it(gb, tmp_path):
    graph_def, writer = _with_hidden_writer(gb, str(tmp_path / "pwned.txt"))
    caller = next(n for n in graph_def.node if n.op == "StatefulPartitionedCall")
    caller.attr["f"].func.attr["helper"].func.name = "outer_fn"  # no path to the writer any more...
    assert f"function {writer}: WriteFile" in opsafety.forbidden_ops(graph_def)  # ...the whole library is vetted
    # With only some nodes (freezing), an unreachable function counts only when it could be swapped in.
    assert not [b for b in opsafety.forbidden_ops(graph_def, nodes=list(graph_def.node)) if "WriteFile" in b]
    implementer = next(f for f in graph_def.library.function if f.signature.name == writer)
    implementer.attr["api_implements"].s = b"identity_fast_path"
    assert f"function {writer}: WriteFile" in opsafety.forbidden_ops(graph_def, nodes=list(graph_def.node))


def test_while_bodies_and_function_attrs_are_checked(gb, tmp_path):
    graph = gb.tf.Graph()
    with graph.as_default():
        x = gb.v1.placeholder(gb.tf.float32, [None, 784], name="images")

        def body(i, v):
            gb.tf.io.write_file(str(tmp_path / "loop.txt"), "pwned")
            return i + 1, v

        _, out = gb.tf.while_loop(lambda i, v: i < 2, body, [gb.tf.constant(0), x])
        gb.tf.matmul(out, gb.tf.zeros([784, 10]), name="logits")
    graph_def = graph.as_graph_def()
    assert {"While", "StatelessWhile"} & {n.op for n in graph_def.node}
    assert any(b.endswith("WriteFile") for b in opsafety.forbidden_ops(graph_def, nodes=list(graph_def.node)))
    # A function that names another in its own attributes (FunctionDef.attr) hands that one over too.
    clean, writer = _with_hidden_writer(gb, str(tmp_path / "pwned.txt"))
    outer = next(f for f in clean.library.function if f.signature.name == "outer_fn")
    caller = next(n for n in clean.node if n.op == "StatefulPartitionedCall")
    caller.attr["f"].func.attr["helper"].func.name = "outer_fn"
    outer.attr["_gradient_of"].func.name = writer
    assert f"function {writer}: WriteFile" in opsafety.forbidden_ops(clean, nodes=list(clean.node))


def test_sessions_run_the_functions_as_vetted():
    for device in ("cpu", "auto"):
        rewrite = batches.choose_device(device).config.graph_options.rewrite_options
        assert rewrite.implementation_selector == rewrite.OFF and rewrite.function_optimization == rewrite.OFF
