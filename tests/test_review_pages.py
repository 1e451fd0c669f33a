"""AppTest: team review on the dashboard, against a real SQLite review database in tmp_path."""

import json
import os
import shutil

import pytest
from streamlit.testing.v1 import AppTest

from ckptlib.review.store import ReviewStore
from ckptlib.review.types import Target

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "dashboard.py")
SAMPLES = os.path.join(os.path.dirname(APP), "sample_checkpoints")
LINEAR = os.path.join(SAMPLES, "linear")
CNN = os.path.join(SAMPLES, "mnist_cnn", "lr3e-3_bs100")
BASE = "http://dash.test:8501"  # what a browser reports as st.context.url
UNREACHABLE = "postgresql+psycopg://u:pw@127.0.0.1:1/x"


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("CKPTLIB_ROOT", SAMPLES)
    monkeypatch.delenv("CKPTLIB_DB", raising=False)


@pytest.fixture
def store(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'review.sqlite3'}"
    monkeypatch.setenv("CKPTLIB_DB", url)
    return ReviewStore(url)


def _page(page: str, user: dict | None = None, **params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.context = {"url": BASE + "/"}
    if user is not None:
        at.user = user
    for key, value in params.items():
        at.query_params[key] = value
    at.switch_page(f"pages/{page}.py")
    return at.run()


def _assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _texts(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def _add(at: AppTest, key: str, text: str, verdict: str | None = None, name: str | None = "ana") -> AppTest:
    generation = at.session_state.get(f"{key}_gen", 0)
    at.text_area(key=f"{key}_text_{generation}").input(text)
    if verdict:
        at.selectbox(key=f"{key}_verdict_{generation}").select(verdict)
    if name is not None:
        at.text_input(key=f"{key}_name").input(name)
    return at.button(key=f"{key}_submit").click().run()


def test_the_database_option_is_parsed_like_the_root():
    from ui.config import database_url

    assert database_url(["--root", "x", "--db", "sqlite:///a.db"], {"CKPTLIB_DB": "sqlite:///b.db"}) == "sqlite:///a.db"
    assert database_url([], {"CKPTLIB_DB": "sqlite:///b.db"}) == "sqlite:///b.db"
    default = database_url([], {})
    assert default.startswith("sqlite:///") and default.endswith("review.sqlite3")
    assert default.startswith(f"sqlite:///{os.environ['CKPTLIB_DATA_DIR']}")  # conftest: never the real home


def test_review_page_lists_the_notes_under_the_root_and_filters_them(store):
    last = os.path.join(LINEAR, "model.ckpt-500")
    ship = store.add_note(Target(LINEAR, checkpoint=last), "Best loss so far.", verdict="ship", author="ana",
                          url=f"{BASE}/history?run=linear")
    store.add_note(Target(LINEAR), "Loss plateaus after step 300.", author="bo")
    old = store.add_note(Target(CNN, checkpoint=os.path.join(CNN, "model.ckpt-200"),
                                checkpoint_b=os.path.join(CNN, "model.ckpt-1000")), "conv1 exploded", verdict="broken",
                         author="ana")
    store.add_note(old.target, "conv1 moved a lot, as expected", verdict="candidate", author="ana", supersedes=old.id)
    wrong = store.add_note(Target(CNN), "Wrong run, sorry", author="bo")
    store.retract(wrong.id, "bo")
    store.add_note(Target("/elsewhere/run"), "Not under this root", author="ana")

    at = _page("review")
    _assert_clean(at)
    assert at.title[0].value == "Review"
    table = at.dataframe[0].value
    assert len(table) == 4  # the superseded note and the note outside the root are not listed
    assert "conv1 exploded" not in set(table["text"])
    assert set(table["run"]) == {"linear", "mnist_cnn/lr3e-3_bs100"}
    assert table.loc[table["id"] == ship.id, "view"].item() == f"{BASE}/history?run=linear"
    assert "retracted" in table.loc[table["id"] == wrong.id, "state"].item()
    assert "[Open the view it was written from](http://dash.test:8501/history?run=linear)" in _texts(at)

    at.selectbox(key="rv_author").select("ana").run()
    _assert_clean(at)
    assert set(at.dataframe[0].value["author"]) == {"ana"} and len(at.dataframe[0].value) == 2
    assert at.query_params["rv_author"] in ("ana", ["ana"])  # the filter lives in the URL
    at.selectbox(key="rv_verdict").select("candidate").run()
    assert list(at.dataframe[0].value["text"]) == ["conv1 moved a lot, as expected"]

    # A shared link carries the filters.
    at = _page("review", rv_verdict="no verdict", rv_run="linear")
    _assert_clean(at)
    assert list(at.dataframe[0].value["text"]) == ["Loss plateaus after step 300."]


def test_a_note_added_on_history_is_stored_shown_and_its_verdict_lands_in_the_table(store):
    at = _page("history", run="linear")
    _assert_clean(at)
    assert _about(at).value == "checkpoint"  # the selected checkpoint by default
    at = _add(at, "history", "Looks **good**: loss `0.01`.", verdict="ship", name="ana_b")
    _assert_clean(at)
    (note,) = store.notes(run=LINEAR)
    assert note.target == Target(LINEAR, checkpoint=os.path.join(LINEAR, "model.ckpt-500"))
    assert (note.verdict, note.text, note.author) == ("ship", "Looks **good**: loss `0.01`.", "ana_b")
    assert note.url.startswith(BASE) and "run=linear" in note.url and "ckpt=model.ckpt-500" in note.url
    assert "Looks **good**" in _texts(at) and "ana\\_b" in _texts(at)
    assert any(s.value.startswith(f"Note {note.id} added") for s in at.success)
    table = at.dataframe[0].value
    assert table.set_index("checkpoint")["verdict"].to_dict()["model.ckpt-500"] == "ship"
    assert set(table["verdict"]) == {"", "ship"}

    # The name is asked once per session; the next note, on the whole run, is signed with it.
    assert "history_name" not in [t.key for t in at.text_input]
    _about(at).set_value("run")
    at = _add(at, "history", "Whole-run remark", name=None)
    _assert_clean(at)
    newest = store.notes(run=LINEAR)[0]
    assert (newest.target, newest.author, newest.verdict) == (Target(LINEAR), "ana_b", None)
    at.button(key="history_rename").click().run()
    assert "history_name" in [t.key for t in at.text_input]  # "Change name" asks again


def test_history_shows_stored_verdicts_in_the_table_and_on_the_timeline(store):
    store.add_note(Target(LINEAR, checkpoint=os.path.join(LINEAR, "model.ckpt-300")), "", verdict="candidate",
                   author="ana")
    store.add_note(Target(LINEAR, checkpoint=os.path.join(LINEAR, "model.ckpt-400")), "", verdict="regressed",
                   author="bo")
    at = _page("history", run="linear")
    _assert_clean(at)
    verdicts = at.dataframe[0].value.set_index("checkpoint")["verdict"].to_dict()
    assert (verdicts["model.ckpt-300"], verdicts["model.ckpt-400"], verdicts["model.ckpt-500"]) == \
        ("candidate", "regressed", "")
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    marks = {t["name"]: t["customdata"] for t in figure["data"] if t["name"].startswith("verdict")}
    assert marks == {"verdict: candidate": ["model.ckpt-300"], "verdict: regressed": ["model.ckpt-400"]}


def test_the_diff_form_stores_a_note_on_the_pair(store):
    at = _page("diff", run="mnist_cnn/lr3e-3_bs100", a_ckpt="model.ckpt-200", b_ckpt="model.ckpt-1000")
    _assert_clean(at)
    at = _add(at, "diff", "Only the head moved.", verdict="candidate")
    _assert_clean(at)
    (note,) = store.notes(run=CNN)
    assert note.target == Target(CNN, checkpoint=os.path.join(CNN, "model.ckpt-200"),
                                 checkpoint_b=os.path.join(CNN, "model.ckpt-1000"))
    assert note.url.startswith(f"{BASE}/diff?") and "a_ckpt=model.ckpt-200" in note.url
    assert "Only the head moved." in _texts(at)
    assert any(e.label.startswith("Notes on model.ckpt-200 → model.ckpt-1000 (1)") for e in at.expander)
    # Another pair does not show it.
    at = _page("diff", run="mnist_cnn/lr3e-3_bs100", a_ckpt="model.ckpt-900", b_ckpt="model.ckpt-1000")
    assert "Only the head moved." not in _texts(at)


def test_the_variables_form_stores_a_note_on_that_variable(store):
    at = _page("variables", run="linear", var="linear/weights")
    _assert_clean(at)
    at = _add(at, "variables", "Weights drift towards zero.", verdict="regressed")
    _assert_clean(at)
    (note,) = store.notes(run=LINEAR)
    assert note.target == Target(LINEAR, checkpoint=os.path.join(LINEAR, "model.ckpt-500"), variable="linear/weights")
    assert note.url.startswith(f"{BASE}/variables?") and "var=linear%2Fweights" in note.url
    assert "Weights drift towards zero." in _texts(at)
    at.selectbox(key="var").select("linear/bias").run()
    assert "Weights drift towards zero." not in _texts(at)


def test_a_signed_in_user_signs_notes_without_typing_a_name(store):
    at = _page("history", user={"is_logged_in": True, "email": "ana@example.com", "name": "Ana"}, run="linear")
    _assert_clean(at)
    assert "history_name" not in [t.key for t in at.text_input]
    at = _add(at, "history", "Signed by the login.", name=None)
    _assert_clean(at)
    assert store.notes(run=LINEAR)[0].author == "ana@example.com"


def test_notes_say_when_their_checkpoint_was_rewritten_or_deleted(store, tmp_path, monkeypatch):
    root = tmp_path / "root"
    run = str(shutil.copytree(LINEAR, root / "linear", copy_function=shutil.copy2))
    monkeypatch.setenv("CKPTLIB_ROOT", str(root))
    store.add_note(Target(run, checkpoint=os.path.join(run, "model.ckpt-500")), "Rewritten later", author="ana")
    store.add_note(Target(run, checkpoint=os.path.join(run, "model.ckpt-400")), "Deleted later", author="ana")
    for name in os.listdir(run):
        if name.startswith("model.ckpt-400."):
            os.remove(os.path.join(run, name))
        elif name.startswith("model.ckpt-100."):  # another checkpoint's files under 500's name
            shutil.copy(os.path.join(run, name), os.path.join(run, name.replace("-100.", "-500.")))
    at = _page("history", run="linear")
    assert not at.exception
    text = _texts(at)
    assert "made on an earlier version of this checkpoint" in text and "checkpoint deleted" in text
    at = _page("review")
    assert not at.exception
    assert set(at.dataframe[0].value["state"]) == {"made on an earlier version of this checkpoint",
                                                     "checkpoint deleted"}


@pytest.mark.parametrize("page, params", [
    ("history", {"run": "linear"}),
    ("diff", {"run": "mnist_cnn/lr3e-3_bs100"}),
    ("variables", {"run": "linear", "var": "linear/weights"}),
    ("review", {}),
])
def test_an_unreachable_database_shows_one_banner_and_the_page_still_renders(monkeypatch, page, params):
    monkeypatch.setenv("CKPTLIB_DB", UNREACHABLE)
    at = _page(page, **params)
    _assert_clean(at)
    banners = [w.value for w in at.warning if "Notes are unavailable" in w.value]
    assert len(banners) == 1, [w.value for w in at.warning]
    assert "127.0.0.1" in banners[0] and "u:***@" in banners[0] and ":pw@" not in banners[0]
    assert at.title[0].value == page.capitalize()
    assert not [b for b in at.button if b.key and b.key.endswith("_submit")]  # no form to fill in vain
    if page != "review":
        assert at.dataframe  # the page's own content is there


def test_a_read_only_database_shows_its_notes_and_a_banner_when_a_write_is_refused(store, tmp_path, monkeypatch):
    store.add_note(Target(LINEAR), "Written before the database became read-only", author="bo")
    monkeypatch.chdir(tmp_path)  # a `file:` URI must not become a folder here (it once did)
    monkeypatch.setenv("CKPTLIB_DB", f"sqlite:///file:{tmp_path / 'review.sqlite3'}?mode=ro&uri=true")
    at = _page("history", run="linear")
    _assert_clean(at)
    assert "Written before the database became read-only" in _texts(at)
    at = _add(at, "history", "Will not be kept")
    _assert_clean(at)
    banners = [w.value for w in at.warning if "Notes are unavailable" in w.value]
    assert len(banners) == 1 and "read-only" in banners[0], [w.value for w in at.warning]
    assert [n.text for n in store.notes(run=LINEAR)] == ["Written before the database became read-only"]


def test_the_report_button_writes_a_downloadable_file_outside_the_root(store):
    store.add_note(Target(LINEAR, checkpoint=os.path.join(LINEAR, "model.ckpt-500")), "Ship this one.",
                   verdict="ship", author="ana")
    before = sorted(os.listdir(LINEAR))
    at = _page("review", run="linear")
    _assert_clean(at)
    assert at.selectbox(key="report_run").value == "linear"  # the current run by default
    at.radio(key="report_format").set_value("Markdown")
    at.button(key="report_write").click().run()
    _assert_clean(at)
    (button,) = at.get("download_button")
    assert button.label.startswith("Download linear-review.md")
    made = at.session_state["review_report"]
    assert made["name"] == "linear-review.md" and made["mime"] == "text/markdown"
    text = made["data"].decode()
    assert text.startswith("# Review report: linear") and "Ship this one." in text
    assert sorted(os.listdir(LINEAR)) == before  # nothing written beside the checkpoints
    at.radio(key="report_format").set_value("HTML").run()
    assert not at.get("download_button")  # the file shown is always the one chosen


def _about(at):
    """The note form's "About" radio (its key changes with its choices)."""
    return next(r for r in at.radio if r.label == "About")
