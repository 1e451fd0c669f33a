"""Exit codes a `set -e` CI script can trust: nothing to work on is exit 2, `health --fail-on` is exit 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import copy_run

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ckptlib", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def refused(proc: subprocess.CompletedProcess, words: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], proc.stderr


@pytest.fixture(scope="module")
def health_run(tmp_path_factory):
    import cmpbuild

    folder = str(tmp_path_factory.mktemp("exit_health") / "run")
    cmpbuild.health_run(folder)
    return folder


@pytest.fixture
def damaged_run(saver_rel, tmp_path):
    """Every byte of every data shard flipped: each checkpoint is complete on disk, every tensor fails its crc32c."""
    run = copy_run(saver_rel[0], tmp_path)
    for name in os.listdir(run):
        if ".data-" in name:
            path = os.path.join(run, name)
            with open(path, "r+b") as handle:
                data = handle.read()
                handle.seek(0)
                handle.write(bytes(b ^ 0xFF for b in data))
    return run


@pytest.mark.parametrize("command", [["health"], ["trend", "--var", "dense/kernel"]])
def test_empty_folders_and_roots_are_nothing_to_do(command, tmp_path, saver_rel):
    refused(cli(command[0], str(tmp_path), *command[1:]), "holds no checkpoints")
    root = os.path.dirname(saver_rel[0])  # a folder whose runs sit below it
    refused(cli(command[0], root, *command[1:], "--json"), "holds no checkpoints")


@pytest.mark.parametrize("command", [["health"], ["trend", "--var", "dense/kernel"]])
def test_every_checkpoint_damaged_is_nothing_to_do(command, damaged_run):
    refused(cli(command[0], damaged_run, *command[1:]), "every checkpoint was skipped as unreadable")


def test_trend_of_a_variable_no_checkpoint_can_read(saver_rel):
    refused(cli("trend", saver_rel[0], "--var", "no/such/var"), "no/such/var")


def test_health_exits_0_with_flags_and_1_only_for_the_flags_asked(health_run):
    plain = cli("health", health_run, "--json")
    assert plain.returncode == 0, plain.stderr
    flags = {f["flag"] for f in json.loads(plain.stdout)["flags"]}
    assert {"nan_inf", "frozen", "norm_jump", "norm_collapse"} <= flags
    failing = cli("health", health_run, "--fail-on", "frozen", "--json")
    assert failing.returncode == 1 and json.loads(failing.stdout)["flags"]  # the document is still printed
    assert cli("health", health_run, "--fail-on", "any").returncode == 1
    assert "failing: frozen, nan_inf" in cli("health", health_run, "--fail-on", "frozen", "--fail-on",
                                             "nan_inf").stdout


def test_fail_on_passes_a_healthy_run(saver_rel):
    proc = cli("health", saver_rel[0], "--fail-on", "nan_inf", "--fail-on", "norm_jump")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_fail_on_rejects_an_unknown_flag(saver_rel):
    refused(cli("health", saver_rel[0], "--fail-on", "sad"), "invalid choice")


def test_readme_ci_example_fails_when_ckptlib_fails(tmp_path):
    # The README's example, verbatim in spirit: with pipefail, jq's exit 0 on empty input cannot hide exit 2.
    script = (f"set -o pipefail; {sys.executable} -m ckptlib diff {tmp_path}/a {tmp_path}/b --json "
              "| python3 -c 'import sys; sys.stdin.read()'")
    assert subprocess.run(["bash", "-c", script], cwd=REPO, capture_output=True).returncode == 2
