"""The review report on real TensorFlow runs and a real SQLite review store; the HTML opened offline in Chromium."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from conftest import copy_run, snapshot

from ckptlib import errors
from ckptlib.compare.health import run_health
from ckptlib.evaluate.types import EvalHistory, EvalPoint
from ckptlib.review.report import write_report
from ckptlib.review.report_data import CHANGED_SINCE, DELETED, MAX_CHANGES
from ckptlib.review.store import ReviewStore
from ckptlib.review.targets import resolve_target
from ckptlib.runs.history import load_history

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EVIL = "<script>alert('xss')</script>"
DAY = 1_790_000_000.0  # fixed note times, so that "newest first" is known


@pytest.fixture(scope="module")
def cb():
    import cmpbuild

    return cmpbuild


@pytest.fixture(scope="module")
def health_run(tmp_path_factory, cb):
    """Six saves with injected NaN, a frozen weight, a norm jump and a collapse. Shared: never modified."""
    folder = str(tmp_path_factory.mktemp("report_health") / "run")
    cb.health_run(folder)
    return folder


@pytest.fixture(scope="module")
def wide_run(tmp_path_factory, cb):
    """Two checkpoints of 22 weights: 20 moved by different amounts, one unchanged, one zero in A."""
    folder = str(tmp_path_factory.mktemp("report_wide") / "run")
    rng = np.random.default_rng(3)
    a = {f"layer{i:02d}/w": rng.standard_normal((3, 4)).astype(np.float32) for i in range(20)}
    a["still/w"] = np.ones(5, np.float32)
    a["zero/w"] = np.zeros(4, np.float32)
    b = {name: (v + rng.standard_normal(v.shape).astype(np.float32) * 0.05 * (i + 1)) if name.startswith("layer")
         else v + (1 if name == "zero/w" else 0) for i, (name, v) in enumerate(a.items())}
    first = cb.save_v1(os.path.join(folder, "model.ckpt"), a, step=1)
    second = cb.save_v1(os.path.join(folder, "model.ckpt"), b, step=2)
    return folder, first, second


def _reviewed(run: str, store: ReviewStore) -> dict[str, int]:
    """Notes and verdicts on `run` (a private copy): returns note ids by role."""
    p = {step: os.path.join(run, f"model.ckpt-{step}") for step in range(1, 7)}
    ids = {
        "run": store.add_note(resolve_target(run), f"Plateau after step 3.\n\nSecond paragraph\nwith a break {EVIL}",
                              author="ana", now=DAY).id,
        "deleted": store.add_note(resolve_target(p[1]), "First save looked odd.", author="bo", now=DAY + 10).id,
        "rewritten": store.add_note(resolve_target(p[2]), "Checked by hand.", verdict="candidate", author="bo",
                                    now=DAY + 20).id,
        "regressed": store.add_note(resolve_target(p[5]), "Kernel blew up x100.", verdict="regressed", author="cy",
                                    now=DAY + 30).id,
        "var": store.add_note(resolve_target(p[6], variable="dense/kernel"), "- kernel `m` slot is NaN\n- look",
                              author="cy", now=DAY + 40).id,
        "ship": store.add_note(resolve_target(p[6]), "Good enough to ship.", verdict="ship", author="ana",
                               now=DAY + 50).id,
    }
    # After the notes: ckpt-1's files go away and ckpt-2's are rewritten (here: with ckpt-3's bytes).
    for name in os.listdir(run):
        if name.startswith("model.ckpt-1."):
            os.remove(os.path.join(run, name))
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copyfile(p[3] + suffix, p[2] + suffix)
    return ids


@pytest.fixture
def reviewed(tmp_path, health_run):
    run = copy_run(health_run, tmp_path / "runs")
    store = ReviewStore(f"sqlite:///{tmp_path / 'db' / 'review.sqlite3'}")
    ids = _reviewed(run, store)
    out_dir = tmp_path / "reports"
    out_dir.mkdir()
    return run, store, ids, out_dir


def _table_after(text: str, heading: str) -> list[list[str]]:
    """The rows (cells stripped) of the first Markdown table after `heading`, header and rule left out."""
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in row.strip("|").split(" | ")] for row in rows[2:]]


def _reference_rel_change(prefix_a: str, prefix_b: str, name: str) -> float:
    import tensorflow as tf

    a = np.asarray(tf.train.load_checkpoint(prefix_a).get_tensor(name), np.float64).reshape(-1)
    b = np.asarray(tf.train.load_checkpoint(prefix_b).get_tensor(name), np.float64).reshape(-1)
    finite = np.isfinite(a) & np.isfinite(b)  # the DESIGN.md rule: norms over positions finite in both
    return float(np.linalg.norm(b[finite] - a[finite]) / np.linalg.norm(a[finite]))


def test_markdown_report_holds_verdicts_notes_flags_and_numpy_top_changes(reviewed):
    run, store, ids, out_dir = reviewed
    before = snapshot(run)
    result = write_report(run, str(out_dir / "review.md"), store=store)
    text = (out_dir / "review.md").read_text(encoding="utf-8")
    assert result.format == "md" and result.output == str(out_dir / "review.md")
    assert result.bytes == os.path.getsize(result.output) == len(text.encode("utf-8"))
    assert text.startswith("# Review report: run\n") and f"`{run}`" in text and " UTC by ckptlib" in text

    history = {row[1]: row for row in _table_after(text, "## Checkpoints")}
    assert history["model.ckpt-6"][4:7] == ["latest", "ship", "2"]  # its verdict note and the variable note
    assert history["model.ckpt-5"][5:7] == ["regressed", "1"]
    assert history["model.ckpt-2"][5] == f"candidate ({CHANGED_SINCE})"
    assert "model.ckpt-1" not in history and history["model.ckpt-3"][5:7] == ["", "0"]  # ckpt-1 is gone

    notes = text.split("## Notes", 1)[1].split("\n## ", 1)[0]
    order = [notes.index(s) for s in ("Good enough to ship.", "- kernel `m` slot is NaN", "Kernel blew up x100.",
                                      "Checked by hand.", "First save looked odd.", "Plateau after step 3.")]
    assert order == sorted(order)  # newest first
    assert "### model.ckpt-6 · dense/kernel" in notes and "### model.ckpt-5 — **regressed**" in notes
    assert all(f"note #{note_id}" in notes for note_id in ids.values())
    assert notes.count(f"_⚠ {CHANGED_SINCE}_") == 1 and notes.count(f"_⚠ {DELETED}_") == 1
    assert notes.index(f"_⚠ {DELETED}_") > notes.index("### model.ckpt-1")
    assert "> Second paragraph\n> with a break" in notes

    flags = run_health(load_history(run)).flags
    assert {f.flag for f in flags} == {"nan_inf", "frozen", "norm_jump", "norm_collapse"}
    rows = _table_after(text, "## Health flags")
    assert sorted((r[0], r[1]) for r in rows) == sorted((f.flag, f.variable) for f in flags)
    assert all(f.detail in text for f in flags)

    top = _table_after(text, "## Top changes")
    assert "From `model.ckpt-5` to `model.ckpt-6`" in text
    assert [r[1] for r in top] == ["dense/kernel"]  # the only model weight that moved at step 6
    for row in top:
        expected = _reference_rel_change(os.path.join(run, "model.ckpt-5"), os.path.join(run, "model.ckpt-6"), row[1])
        assert row[4] == f"{expected:.6g}"
    assert "Accuracy was not computed" in text
    assert snapshot(run) == before  # the run folder is byte-identical
    assert os.listdir(out_dir) == ["review.md"]  # and no temporary file is left beside the report


def test_top_changes_equal_numpy_and_stop_at_fifteen(wide_run, tmp_path):
    run, first, second = wide_run
    out = tmp_path / "wide.md"
    write_report(run, str(out), store=None, a=first + ".index", b=second)  # a file of a checkpoint is fine
    text = out.read_text(encoding="utf-8")
    top = _table_after(text, "## Top changes")
    expected = sorted(((_reference_rel_change(first, second, f"layer{i:02d}/w"), f"layer{i:02d}/w")
                       for i in range(20)), reverse=True)[:MAX_CHANGES]
    assert len(top) == MAX_CHANGES == 15
    assert [(r[0], r[1]) for r in top] == [(str(i), name) for i, (_, name) in enumerate(expected, 1)]
    assert [r[4] for r in top] == [f"{value:.6g}" for value, _ in expected]
    assert "still/w" not in text.split("## Top changes")[1] and "zero/w" not in text.split("## Top changes")[1]


def test_html_report_is_one_self_contained_file(reviewed):
    run, store, _, out_dir = reviewed
    result = write_report(run, str(out_dir / "review.html"), store=store)
    page = (out_dir / "review.html").read_text(encoding="utf-8")
    assert result.format == "html" and result.bytes == os.path.getsize(result.output)
    assert page.count("plotly.js v") == 1 and page.count('<div id="fig-') == 2  # plotly.js inlined once
    lowered = page.lower()
    assert "<script src" not in lowered and "<link" not in lowered and "@import" not in lowered
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert EVIL not in page and html_escaped(EVIL) in page  # note text is escaped
    assert "<p>Plateau after step 3.</p><p>Second paragraph<br>with a break" in page
    assert "<li>kernel <code>m</code> slot is NaN</li>" in page
    assert CHANGED_SINCE in page and DELETED in page and "norm_jump" in page


def html_escaped(text: str) -> str:
    import html

    return html.escape(text, quote=True)


@pytest.mark.browser
def test_html_report_draws_its_charts_with_the_network_off(reviewed):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    run, store, _, out_dir = reviewed
    history = load_history(run)
    accuracy = EvalHistory(run=run, points=tuple(
        EvalPoint(step=e.step, prefix=e.prefix, accuracy=0.6 + 0.05 * i, num_examples=10_000)
        for i, e in enumerate(c for c in history.checkpoints if c.complete)), skipped=(), dataset_source="MNIST test")
    out = out_dir / "review.html"
    write_report(run, str(out), store=store, accuracy=accuracy)
    left, problems, dialogs = [], [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1300, "height": 2400})
            context.set_offline(True)

            def only_files(route):
                if route.request.url.startswith("file://"):
                    route.continue_()
                else:
                    left.append(route.request.url)
                    route.abort()

            context.route("**/*", only_files)
            page = context.new_page()
            local = ("file://", "data:", "blob:")
            page.on("request", lambda r: None if r.url.startswith(local) else left.append(r.url))
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(out.as_uri(), wait_until="load")
            page.wait_for_selector("#fig-accuracy .main-svg", timeout=30_000)
            assert page.locator(".js-plotly-plot .main-svg").count() >= 2
            assert page.locator(".js-plotly-plot").count() == 3  # timeline, top changes, accuracy
            assert page.locator("#fig-timeline .scatterlayer .trace").count() >= 3  # statuses + verdict markers
            assert EVIL in page.locator("#notes").inner_text()  # shown as text, never run
        finally:
            browser.close()
    assert left == [] and problems == [] and dialogs == []


def test_refuses_to_write_inside_or_beside_a_checkpoint_folder(health_run, tmp_path):
    before = snapshot(health_run)
    with pytest.raises(errors.UnsafeDestination, match="inside the checkpoint folder"):
        write_report(health_run, os.path.join(health_run, "review.html"), store=None)
    with pytest.raises(errors.UnsafeDestination, match="inside the checkpoint folder"):
        write_report(health_run, os.path.join(health_run, "sub", "review.md"), store=None)
    beside = copy_run(health_run, tmp_path, "other")  # a folder holding checkpoints of another run
    link = tmp_path / "into_run"
    os.symlink(health_run, link)
    with pytest.raises(errors.UnsafeDestination, match="holds checkpoint files"):
        write_report(health_run, os.path.join(beside, "review.md"), store=None)
    with pytest.raises(errors.UnsafeDestination, match="inside the checkpoint folder"):
        write_report(health_run, str(link / "review.md"), store=None)
    with pytest.raises(errors.NotFound, match="does not exist"):
        write_report(health_run, str(tmp_path / "no" / "such" / "review.md"), store=None)
    assert snapshot(health_run) == before


@pytest.mark.parametrize("name", ["review.txt", "review", "review.pdf"])
def test_unknown_extension_is_a_one_line_error_naming_the_file(health_run, tmp_path, name):
    out = str(tmp_path / name)
    with pytest.raises(errors.CkptError) as caught:
        write_report(health_run, out, store=None)
    message = str(caught.value)
    assert out in message and "\n" not in message and ".html" in message and ".md" in message
    assert os.listdir(tmp_path) == []


def test_report_without_notes_when_there_is_no_store_or_it_is_unreachable(health_run, tmp_path):
    write_report(health_run, str(tmp_path / "none.md"), store=None)
    assert "_Notes unavailable: no review database was given._" in (tmp_path / "none.md").read_text()
    (tmp_path / "blocker").write_text("a file where the database folder should be")
    broken = ReviewStore(f"sqlite:///{tmp_path / 'blocker' / 'review.sqlite3'}")
    with pytest.raises(errors.ReviewUnavailable):
        broken.check()  # the store itself fails...
    result = write_report(health_run, str(tmp_path / "broken.html"), store=broken)
    page = (tmp_path / "broken.html").read_text(encoding="utf-8")
    assert result.format == "html" and "Notes unavailable: Review database" in page  # ...the report does not
    rows = _table_after((tmp_path / "none.md").read_text(), "## Checkpoints")
    assert [r[5:7] for r in rows] == [["", "0"]] * 6


def test_one_checkpoint_run_says_there_is_nothing_to_compare(tfb, tmp_path):
    run = str(tmp_path / "single")
    tfb.tiny_saver_run(run, num_saves=1)
    for name in ("one.md", "one.html"):
        write_report(run, str(tmp_path / name), store=None)
    text = (tmp_path / "one.md").read_text()
    assert "The run has 1 complete checkpoint: at least two are needed to show what changed." in text
    assert len(_table_after(text, "## Checkpoints")) == 1
    page = (tmp_path / "one.html").read_text()
    assert page.count("plotly.js v") == 1 and 'id="fig-timeline"' in page and 'id="fig-changes"' not in page


def test_progress_between_sections_and_an_atomic_overwrite(health_run, tmp_path):
    calls = []
    out = tmp_path / "review.md"
    out.write_text("an older report")
    result = write_report(health_run, str(out), store=None, a=os.path.join(health_run, "model.ckpt-2"),
                          progress=lambda done, total, label: calls.append((done, total, label)))
    assert [c[0] for c in calls] == list(range(len(calls))) and calls[-1] == (calls[-1][1], calls[-1][1], "")
    assert {c[2] for c in calls} >= {"notes", "health", "changes"}
    assert os.listdir(tmp_path) == ["review.md"] and result.bytes == out.stat().st_size
    assert "From `model.ckpt-2` to `model.ckpt-6`" in out.read_text()  # b defaults to the latest complete one


def test_a_checkpoint_that_does_not_exist_is_refused_before_anything_is_written(health_run, tmp_path):
    with pytest.raises(errors.NotFound) as caught:
        write_report(health_run, str(tmp_path / "review.md"), store=None, a=str(tmp_path / "model.ckpt-99"))
    assert "model.ckpt-99" in str(caught.value) and "\n" not in str(caught.value)
    assert os.listdir(tmp_path) == []
