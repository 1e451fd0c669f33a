"""Browser test: a click on a point of Evaluate's accuracy chart opens the Diff of that step against the one
before (plotly's selection only happens in a real browser)."""

import os
from urllib.parse import parse_qs, urlparse

import pytest
from dashboard_server import CHROMIUM, CHROMIUM_ARGS, ROOT, running_dashboard, wait_idle

CNN = "mnist_cnn/lr3e-3_bs100"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server():
    with running_dashboard(os.path.join(ROOT, "sample_checkpoints")) as url:
        yield url


def _wait_idle(page) -> None:
    wait_idle(page, timeout=180_000)


def test_a_click_on_an_accuracy_point_opens_the_diff_against_the_step_before(server, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2200})
        try:
            # A shared link: accuracy over the run is computed again without a click.
            page.goto(f"{server}/evaluate?run={CNN}&eval_over_run=logits/logits", wait_until="domcontentloaded")
            _wait_idle(page)
            page.wait_for_selector("text=Best: step", timeout=180_000)
            chart = page.locator("[data-testid='stPlotlyChart']").first
            chart.scroll_into_view_if_needed()
            points = chart.locator(".scatterlayer .trace .points path")
            assert points.count() == 7  # steps 200, 400, 600, 700, 800, 900, 1000
            points.nth(4).click(force=True)  # step 800
            page.wait_for_url("**/diff?**", timeout=60_000)
            _wait_idle(page)
            page.screenshot(path=str(tmp_path / "diff.png"))
            assert page.locator("h1").first.inner_text().strip() == "Diff"
            query = parse_qs(urlparse(page.url).query)
            assert query["a_ckpt"] == ["model.ckpt-700"] and query["b_ckpt"] == ["model.ckpt-800"], page.url
            assert page.locator("[data-testid='stException']").count() == 0
        finally:
            browser.close()
