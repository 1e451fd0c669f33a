"""Team review in a real browser: `streamlit run` in headless Chromium, a note with a verdict added on History,
then seen on History and on the Review page (and in the database, with the URL of the view)."""

import os

import pytest
from dashboard_server import CHROMIUM, CHROMIUM_ARGS, SAMPLES, running_dashboard, wait_idle

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('review_browser') / 'review.sqlite3'}"


@pytest.fixture(scope="module")
def server(database):
    # The database comes from --db, as a team would start it, not from the environment.
    with running_dashboard(SAMPLES, ("--db", database), drop_env=("CKPTLIB_DB",)) as url:
        yield url


_wait_idle = wait_idle


def _assert_clean(page, name: str) -> None:
    assert page.locator("[data-testid='stException']").count() == 0, name
    assert page.locator("[data-testid='stAlertContentError']").count() == 0, name


def test_a_note_with_a_verdict_added_on_history_shows_there_and_on_review(server, database, tmp_path):
    from playwright.sync_api import sync_playwright

    from ckptlib.review.store import ReviewStore

    text = "Lowest loss of the run: ship model.ckpt-500."
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2600})
        try:
            page.goto(f"{server}/history?run=linear", wait_until="domcontentloaded")
            _wait_idle(page)
            _assert_clean(page, "history")
            form = page.locator("[data-testid='stForm']")
            form.locator("[data-testid='stSelectbox']").filter(has_text="Verdict").click()
            page.get_by_role("option", name="ship", exact=True).click()
            form.get_by_label("Your name", exact=True).fill("ana")
            form.get_by_label("Note (Markdown)").fill(text)
            form.get_by_role("button", name="Add note").click()
            page.wait_for_timeout(800)
            _wait_idle(page)
            page.screenshot(path=str(tmp_path / "history.png"))
            _assert_clean(page, "history after the note")
            main = page.locator("[data-testid='stMain']")
            assert text in main.inner_text()
            assert "Note 1 added" in main.inner_text()
            assert main.locator("[data-testid='stMarkdownContainer']").filter(has_text="ship").count() >= 1
            # The name was asked once: the form no longer asks for it.
            assert page.locator("[data-testid='stForm']").get_by_label("Your name", exact=True).count() == 0

            page.goto(f"{server}/review", wait_until="domcontentloaded")
            _wait_idle(page)
            page.screenshot(path=str(tmp_path / "review.png"))
            _assert_clean(page, "review")
            assert page.locator("h1").first.inner_text().strip() == "Review"
            main = page.locator("[data-testid='stMain']").inner_text()
            assert text in main and "ana" in main and "ship" in main, main[-1500:]
            link = page.get_by_role("link", name="Open the view it was written from")
            assert link.count() == 1
            href = link.get_attribute("href")
        finally:
            browser.close()

    (note,) = ReviewStore(database).notes()
    assert (note.verdict, note.author, note.text) == ("ship", "ana", text)
    assert note.target.checkpoint == os.path.join(SAMPLES, "linear", "model.ckpt-500")
    assert note.url == href and note.url.startswith(server) and "run=linear" in note.url, note.url
