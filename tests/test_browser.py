"""One real browser test: `streamlit run` in headless Chromium, every page visited, no exception box."""

import os

import pytest
from dashboard_server import CHROMIUM, CHROMIUM_ARGS, ROOT, running_dashboard, wait_idle

PAGES = ("history", "variables", "diff", "trends", "graph", "evaluate")

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server():
    with running_dashboard(os.path.join(ROOT, "sample_checkpoints")) as url:
        yield url


_wait_idle = wait_idle


def test_every_page_renders_in_chromium(server, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2200})
        try:
            for name in PAGES:
                page.goto(f"{server}/{name}?run=mnist_cnn/lr3e-3_bs100", wait_until="domcontentloaded")
                _wait_idle(page)
                page.screenshot(path=str(tmp_path / f"{name}.png"))
                assert page.locator("[data-testid='stException']").count() == 0, name
                assert page.locator("[data-testid='stAlertContentError']").count() == 0, name
                assert page.locator("h1").first.inner_text().strip().lower() == name
                # A deep link goes through dashboard.py's st.navigation: its titles are in the sidebar.
                nav = page.locator("[data-testid='stSidebarNav']").inner_text()
                assert "History" in nav and "Trends" in nav and "dashboard" not in nav, nav
            # The History table holds the sample run's checkpoints.
            page.goto(f"{server}/history?run=linear", wait_until="domcontentloaded")
            _wait_idle(page)
            # The script can be idle before the browser has drawn the table (a loaded machine): wait for it.
            page.wait_for_selector("[data-testid='stDataFrame']", timeout=30_000)
            assert "model.ckpt" in page.locator("[data-testid='stMain']").inner_text() or \
                page.locator("[data-testid='stPlotlyChart']").count() >= 1
            # Freeze, then Evaluate: the browser's "Frozen graph" picker must move to the graph just
            # frozen (its logits), not stay on the run folder's frozen.pb (its probabilities).
            page.goto(f"{server}/evaluate?run=mnist_cnn/lr3e-3_bs100", wait_until="domcontentloaded")
            _wait_idle(page)
            for button in ("Freeze", "Evaluate"):
                page.get_by_role("button", name=button, exact=True).click()
                page.wait_for_timeout(800)
                _wait_idle(page)
            main = page.locator("[data-testid='stMain']").inner_text()
            assert "Accuracy" in main and "logits/logits:0" in main, main[-1500:]
            assert page.locator("[data-testid='stException']").count() == 0
        finally:
            browser.close()


def test_the_note_form_has_a_choice_after_a_run_switch_in_the_sidebar(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2200})
        try:
            page.goto(f"{server}/?run=mnist_cnn/lr3e-3_bs100", wait_until="domcontentloaded")  # History: the main page
            _wait_idle(page)
            about = page.locator("[data-testid='stRadio']").filter(has_text="About")
            about.wait_for(timeout=30_000)
            assert about.locator("input:checked").count() == 1
            run_box = page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").filter(has_text="Run")
            run_box.click()
            page.keyboard.type("mnist_tf2")
            page.keyboard.press("Enter")
            page.wait_for_timeout(800)
            _wait_idle(page)
            assert "ckpt-8" in page.locator("[data-testid='stMain']").inner_text()  # the switch happened
            about.wait_for(timeout=30_000)
            assert about.locator("input:checked").count() == 1, about.inner_text()
        finally:
            browser.close()
