"""The Live toggle of History and Trends: kept in the URL, polling the run, showing checkpoints saved since."""

from __future__ import annotations

import os
import shutil

import pytest
from conftest import copy_run
from streamlit.testing.v1 import AppTest

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "dashboard.py")


@pytest.fixture
def live_root(saver_rel, tmp_path, monkeypatch):
    """A root holding a copy of a real run; its last checkpoint held back, to be 'saved' during the test."""
    run = copy_run(saver_rel[0], tmp_path / "root", "run")
    held = tmp_path / "held"
    held.mkdir()
    last = sorted((n for n in os.listdir(run) if n.endswith(".index")), key=lambda n: int(n[:-6].rsplit("-", 1)[1]))[-1]
    for name in os.listdir(run):
        if name.startswith(last[:-6] + "."):
            shutil.move(os.path.join(run, name), held / name)
    monkeypatch.setenv("CKPTLIB_ROOT", str(tmp_path / "root"))
    return run, held, last[:-6]


def _app(page: str, live: bool) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["run"] = "run"
    if live:
        at.query_params["live"] = "1"
    at.switch_page(page)
    return at


@pytest.mark.parametrize("page", ["pages/history.py", "pages/trends.py"])
def test_live_link_turns_following_on_and_shows_new_checkpoints(live_root, page):
    run, held, name = live_root
    at = _app(page, live=True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.toggle(key="live").value is True and at.query_params["live"] in ("1", ["1"])
    assert any("Live: following" in c.value for c in at.caption)
    for file in os.listdir(held):  # the trainer saves its next checkpoint
        shutil.move(os.path.join(held, file), os.path.join(run, file))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if page.endswith("history.py"):
        assert name in set(at.dataframe[0].value["checkpoint"])
    # The sidebar's checkpoint picker (shared by both pages) now offers the new checkpoint.
    step = name.rsplit("-", 1)[1]  # its labels start with the step
    assert any(option.split()[0] == step for box in at.sidebar.selectbox for option in box.options)
    at.toggle(key="live").set_value(False).run()
    assert "live" not in at.query_params
    assert not any("Live: following" in c.value for c in at.caption)


def test_live_is_off_by_default(live_root):
    at = _app("pages/history.py", live=False).run()
    assert at.toggle(key="live").value is False
    assert not any("Live: following" in c.value for c in at.caption)
