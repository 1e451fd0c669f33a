"""AppTest helpers shared by the page tests: open a page as a link would, restore the root, check it rendered."""

from __future__ import annotations

import os

import pytest
from streamlit.testing.v1 import AppTest

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "dashboard.py")


@pytest.fixture
def restored_root():
    """Put CKPTLIB_ROOT back as it was after the test (the helpers below set it)."""
    saved = os.environ.get("CKPTLIB_ROOT")
    yield
    if saved is None:
        os.environ.pop("CKPTLIB_ROOT", None)
    else:
        os.environ["CKPTLIB_ROOT"] = saved


def open_page(page: str | None, root: str, params: dict, timeout: int = 60) -> AppTest:
    """The dashboard on `root`, opened at pages/`page`.py (None: its first page; a path ending in .py as it is)
    with these query parameters, after its first run."""
    os.environ["CKPTLIB_ROOT"] = root
    at = AppTest.from_file(APP, default_timeout=timeout)
    for key, value in params.items():
        at.query_params[key] = value
    if page:
        at.switch_page(page if page.endswith(".py") else f"pages/{page}.py")
    return at.run()


def assert_rendered(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at
