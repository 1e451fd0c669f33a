"""`eval` on a SavedModel's signature: accuracy equal to calling the signature, one-line errors, a hostile restore."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from ckptlib.cli.main import main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MNIST = os.path.join(REPO, "sample_checkpoints", "mnist_test")  # the shipped t10k files
LIMIT = 1000
TOLERANCE = 0.0005


@pytest.fixture(scope="module")
def tf():
    from ckptlib._tf import tf as import_tf

    return import_tf()


@pytest.fixture(scope="module")
def digits():
    """(images [N, 784] float32 in [0, 1], labels [N]) of the shipped test set."""
    from ckptlib.evaluate.mnist import load_mnist_test

    data = load_mnist_test(MNIST)
    return data.images.reshape(len(data.images), 784).astype(np.float32) / np.float32(255.0), data.labels


@pytest.fixture(scope="module")
def keras_model(tf, digits):
    """A 784-64-10 MLP trained a little on images the evaluation does not score (past the first LIMIT)."""
    keras = tf.keras
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((784,), name="pixels"), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(10)], name="mlp")
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    images, labels = digits
    model.fit(images[LIMIT:6000], labels[LIMIT:6000], epochs=2, batch_size=128, verbose=0)
    return model


@pytest.fixture(scope="module")
def keras_export(keras_model, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("keras") / "export")
    keras_model.export(folder, verbose=False)
    return folder


@pytest.fixture(scope="module")
def module_export(tf, keras_model, tmp_path_factory):
    """tf.saved_model.save of a tf.Module holding the same weights, taking [N, 28, 28, 1] images and a softmax
    temperature (fed by --feed), returning both class ids and probabilities: the evaluation picks the 10 values."""
    kernel1, bias1, kernel2, bias2 = (v.numpy() for v in keras_model.weights)

    class Classifier(tf.Module):
        def __init__(self):
            super().__init__()
            self.w1, self.b1 = tf.Variable(kernel1, name="w1"), tf.Variable(bias1, name="b1")
            self.w2, self.b2 = tf.Variable(kernel2, name="w2"), tf.Variable(bias2, name="b2")

        @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32, name="image"),
                                      tf.TensorSpec([], tf.float32, name="temperature")])
        def classify(self, image, temperature):
            hidden = tf.nn.relu(tf.matmul(tf.reshape(image, [-1, 784]), self.w1) + self.b1)
            scores = tf.nn.softmax((tf.matmul(hidden, self.w2) + self.b2) / temperature)
            return {"classes": tf.argmax(scores, axis=1), "probabilities": scores}

    module = Classifier()
    folder = str(tmp_path_factory.mktemp("module") / "export")
    tf.saved_model.save(module, folder, signatures={"serving_default": module.classify, "predict": module.classify})
    return folder


def _reference(tf, folder: str, digits, layout=(784,), **extra) -> float:
    """Accuracy of calling the loaded signature directly, here in the test process, on the first LIMIT images."""
    images, labels = digits
    signature = tf.saved_model.load(folder).signatures["serving_default"]
    key = next(k for k in signature.structured_input_signature[1] if k not in extra)
    outputs = signature(**{key: tf.constant(images[:LIMIT].reshape((LIMIT,) + layout))},
                        **{k: tf.constant(v) for k, v in extra.items()})
    scores = next(v for v in outputs.values() if v.shape.rank == 2).numpy()
    return float(np.mean(np.argmax(scores, axis=1) == labels[:LIMIT]))


def _eval(capsys, *args: str):
    """(exit code, JSON document or None, stderr) of `eval … --json` run in this process (its graph runs in
    the usual child)."""
    code = main(["eval", *args, "--mnist", MNIST, "--limit", str(LIMIT), "--json", "--no-cache"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if code == 0 else None, captured.err


def test_keras_export_matches_the_signature(tf, keras_export, digits, capsys):
    expected = _reference(tf, keras_export, digits)
    code, doc, err = _eval(capsys, keras_export, "--signature", "serving_default")
    assert code == 0, err
    assert abs(doc["accuracy"] - expected) <= TOLERANCE, (doc["accuracy"], expected)
    assert expected > 0.5  # trained: a match by chance is ruled out
    assert doc["signature"] == "serving_default" and doc["dataset"]["num_examples"] == LIMIT
    assert doc["input"] == "pixels" and doc["output_kind"] == "logits"
    assert doc["model"] == keras_export and doc["limits"]["time_s"] > 0 and doc["images_per_second"] > 0


def test_module_with_two_outputs_and_image_layout(tf, module_export, digits, capsys):
    expected = _reference(tf, module_export, digits, layout=(28, 28, 1), temperature=np.float32(2.0))
    code, doc, err = _eval(capsys, module_export, "--feed", "temperature=2.0")  # the default signature
    assert code == 0, err
    assert abs(doc["accuracy"] - expected) <= TOLERANCE, (doc["accuracy"], expected)
    assert (doc["input"], doc["output"], doc["output_kind"]) == ("image", "probabilities", "probabilities")
    assert doc["feeds"] == {"temperature": 2.0} and doc["signature"] == "serving_default"


def test_errors_are_one_line(keras_export, tmp_path, capsys):
    code, _, err = _eval(capsys, keras_export, "--signature", "nope")
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ")
    assert "no signature 'nope'" in err and "serving_default, serve" in err and keras_export in err
    empty = tmp_path / "not_a_saved_model"
    empty.mkdir()
    code, _, err = _eval(capsys, str(empty))  # refused before any child starts
    assert code == 2 and "without saved_model.pb" in err and err.count("\n") == 1


def test_signature_that_cannot_take_mnist(tf, tmp_path, capsys):
    class Adder(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 5], tf.int32, name="ids")])
        def __call__(self, ids):
            return {"sum": tf.reduce_sum(ids, axis=1)}

    folder = str(tmp_path / "adder")
    module = Adder()
    tf.saved_model.save(module, folder, signatures=module.__call__)
    code, _, err = _eval(capsys, folder)
    assert code == 2 and "no input takes MNIST images" in err and "'ids' (int32 [None, 5])" in err
    assert err.count("\n") == 1


def _tamper(tf, folder: str, edit) -> None:
    """Rewrite saved_model.pb after `edit(functions by name)` changed its function library."""
    from ckptlib.graph.collectiondefs import pb2

    path = os.path.join(folder, "saved_model.pb")
    saved = pb2("protobuf.saved_model_pb2").SavedModel()
    with open(path, "rb") as handle:
        saved.ParseFromString(handle.read())
    edit({f.signature.name: f for f in saved.meta_graphs[0].graph_def.library.function})
    with open(path, "wb") as handle:
        handle.write(saved.SerializeToString())


def _add_node(function, name: str, op: str, inputs=(), **strings) -> None:
    node = function.node_def.add(name=name, op=op)
    node.input.extend(inputs)
    for key, value in strings.items():
        node.attr[key].tensor.CopyFrom(tf_string_tensor(value))
        node.attr["dtype"].type = 7  # DT_STRING


def tf_string_tensor(value: str):
    from ckptlib.graph.collectiondefs import pb2

    tensor = pb2("framework.tensor_pb2").TensorProto(dtype=7)
    tensor.string_val.append(value.encode())
    tensor.tensor_shape.SetInParent()
    return tensor


def test_tampered_restore_never_runs(tf, keras_model, keras_export, digits, tmp_path, capsys):
    """The restore function is rewritten to read an untrained model's weights and to write a file: the
    loader would run it; eval uses the SavedModel's own variables and runs none of it."""
    tf.keras.backend.clear_session()
    other = str(tmp_path / "untrained")
    tf.keras.Sequential([tf.keras.Input((784,), name="pixels"), tf.keras.layers.Dense(64),
                         tf.keras.layers.Dense(10)]).export(other, verbose=False)
    folder = shutil.copytree(keras_export, tmp_path / "tampered")
    marker = tmp_path / "pwned"

    def edit(functions):
        restore = next(f for name, f in functions.items() if "traced_restore" in name)
        _add_node(restore, "evil_prefix", "Const", value=os.path.join(other, "variables", "variables"))
        _add_node(restore, "evil_path", "Const", value=str(marker))
        _add_node(restore, "evil_write", "WriteFile", ["evil_path:output:0", "evil_path:output:0"])
        for node in restore.node_def:
            if node.op == "RestoreV2":
                node.input[0] = "evil_prefix:output:0"

    _tamper(tf, str(folder), edit)
    code, doc, err = _eval(capsys, str(folder))
    assert code == 0, err
    assert abs(doc["accuracy"] - _reference(tf, keras_export, digits)) <= TOLERANCE
    assert not marker.exists()


def test_hostile_signature_is_refused(tf, keras_export, tmp_path, capsys):
    folder = shutil.copytree(keras_export, tmp_path / "hostile")
    marker = tmp_path / "pwned"

    def edit(functions):
        body = next(f for name, f in functions.items() if name.startswith("__inference___call__"))
        _add_node(body, "evil_path", "Const", value=str(marker))
        _add_node(body, "evil_write", "WriteFile", ["evil_path:output:0", "evil_path:output:0"])

    _tamper(tf, str(folder), edit)
    code, _, err = _eval(capsys, str(folder))
    assert code == 2 and "Refusing to evaluate" in err and "WriteFile" in err and err.count("\n") == 1
    assert not marker.exists()
