"""Remote runs through fsspec: real TensorFlow runs copied into memory://, compared with the local originals."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import uuid

import numpy as np
import pytest

from ckptlib import errors, storage
from ckptlib.cli.main import main
from ckptlib.compare.diff import diff_checkpoints
from ckptlib.formats import bundle
from ckptlib.formats.v2bundle import BundleCheckpoint as Checkpoint
from ckptlib.runs.history import find_runs, load_history
from ckptlib.runs.resolve import open_checkpoint

fsspec = pytest.importorskip("fsspec")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def remote(saver_rel, manager_plain, sharded):
    """The runs copied file by file into a fresh memory:// root: {name: (local run, remote run)}."""
    fs = fsspec.filesystem("memory")
    root = f"memory://ckptlib-test-{uuid.uuid4().hex}"
    runs = {"saver": saver_rel[0], "manager": manager_plain[0], "sharded": os.path.dirname(sharded[0])}
    for name, local in runs.items():
        for entry in os.listdir(local):
            if os.path.isfile(os.path.join(local, entry)):
                fs.put_file(os.path.join(local, entry), f"{root}/runs/{name}/{entry}")
    yield root, {name: (local, f"{root}/runs/{name}") for name, local in runs.items()}
    fs.rm(root, recursive=True)


def _without_place(entry):
    """A history entry without what differs between the copies: where it is and the file times."""
    return dataclasses.replace(entry, prefix=os.path.basename(entry.prefix), mtime=None)


@pytest.mark.parametrize("which", ["saver", "manager", "sharded"])
def test_history_matches_the_local_run(remote, which):
    local, url = remote[1][which]
    here, there = load_history(local), load_history(url)
    notes = there.notes
    if which == "sharded":  # its Saver wrote absolute paths into the state file: seen from the copy, it moved
        assert notes[0].startswith("The state file points to another folder") and "looked up by name" in notes[0]
        notes = notes[1:]
    # Uploading gives the files new times: where the state file records save times, the copy says so.
    notes = tuple(n for n in notes if not n.startswith("File times look copied"))
    assert there.path == url and there.problem == here.problem and notes == here.notes
    assert [_without_place(e) for e in there.checkpoints] == [_without_place(e) for e in here.checkpoints]
    assert all(e.prefix.startswith(url + "/") and e.mtime is not None for e in there.checkpoints)


def test_find_runs_under_a_url(remote):
    root, runs = remote
    found = find_runs(root)
    assert [(r.name, r.path) for r in found] == [(f"runs/{n}", runs[n][1]) for n in sorted(runs)]
    for summary in found:
        local = load_history(runs[summary.name.split("/")[-1]][0])
        assert summary.num_checkpoints == len(local.checkpoints) and summary.latest_step == local.latest.step


@pytest.mark.parametrize("which", ["saver", "manager", "sharded"])
def test_variables_and_values_match_the_local_checkpoint(remote, which):
    local, url = remote[1][which]
    here, there = open_checkpoint(local), open_checkpoint(url)  # a run folder: its latest checkpoint
    assert there.prefix == url + "/" + os.path.basename(here.prefix)
    assert there.variables == here.variables
    tiny = Checkpoint(there.prefix, chunk_elements=3)
    for var in here.variables:
        want, got = here.read(var.name), there.read(var.name)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert got.tolist() == want.tolist() if want.dtype == object else got.tobytes() == want.tobytes()
        streamed = np.concatenate([chunk.copy() for chunk in tiny.iter_chunks(var.name)])
        assert streamed.tolist() == want.reshape(-1).tolist()
    assert {r.status for r in diff_checkpoints(here, there).variables} == {"unchanged"}


def test_a_tensor_is_fetched_with_ranged_reads_of_its_own_bytes(remote, monkeypatch):
    url = remote[1]["saver"][1]
    ckpt = open_checkpoint(url)
    entry = bundle.read_index(ckpt.prefix).entries["dense/kernel"]
    fetched = []
    original = type(fsspec.filesystem("memory")).cat_file

    def spy(self, path, start=None, end=None, **kwargs):
        fetched.append((os.path.basename(path), start, end))
        return original(self, path, start=start, end=end, **kwargs)

    monkeypatch.setattr(type(fsspec.filesystem("memory")), "cat_file", spy)
    ckpt.read("dense/kernel")
    data = [f for f in fetched if ".data-" in f[0]]
    assert data == [(os.path.basename(ckpt.prefix) + ".data-00000-of-00001", entry.offset, entry.offset + entry.size)]


def test_cli_reads_urls(remote, capsys):
    url = remote[1]["manager"][1]
    assert main(["vars", url, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["checkpoint"].startswith(url + "/ckpt-")
    assert main(["history", url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["run"] == url
    assert main(["show", url, "--var", "net/w/.ATTRIBUTES/VARIABLE_VALUE", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stats"]["l2"] > 0


def test_missing_data_file_at_a_url(remote):
    fs = fsspec.filesystem("memory")
    local, url = remote[1]["saver"]
    copy = url + "-damaged"
    fs.copy(url, copy, recursive=True)
    latest = load_history(copy).latest
    fs.rm(latest.prefix + ".data-00000-of-00001")
    entry = next(e for e in load_history(copy).checkpoints if e.prefix == latest.prefix)
    assert not entry.complete and "is missing" in entry.problem
    with pytest.raises(errors.IncompleteCheckpoint, match="is missing"):
        Checkpoint(latest.prefix).read("dense/kernel")
    fs.rm(copy, recursive=True)


def test_urls_without_fsspec_are_a_clean_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "fsspec", None)
    with pytest.raises(errors.CkptError, match="fsspec"):
        open_checkpoint("memory://nowhere/run")
    with pytest.raises(errors.CkptError, match="fsspec"):
        load_history("gs://bucket/run")


def test_url_helpers():
    assert storage.is_url("gs://b/run") and not storage.is_url("/tmp/run") and not storage.is_url("file:///tmp")
    assert storage.join("s3://b/run", "model.ckpt-5") == "s3://b/run/model.ckpt-5"
    assert storage.normalize("s3://b/run/./x/../model.ckpt-5") == "s3://b/run/model.ckpt-5"
    assert storage.relative("s3://b/runs/a", "s3://b") == "runs/a" and storage.relative("s3://b", "s3://b") == "."
    assert storage.absolute("gs://b/run/") == "gs://b/run"


def test_local_paths_never_import_fsspec(saver_rel):
    run = saver_rel[0]
    code = (
        "import sys, contextlib, io\n"
        "from ckptlib.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    for argv in (['runs', sys.argv[1]], ['history', sys.argv[1]], ['vars', sys.argv[1]],\n"
        "                 ['diff', sys.argv[1], sys.argv[1]], ['trend', sys.argv[1], '--var', 'dense/kernel']):\n"
        "        assert main(argv) == 0, argv\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fsspec', 'tensorflow')))\n"
    )  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, run], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": REPO})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
