"""Real clicks on the Trends charts in headless Chromium: a change-matrix cell and a line point each open the
Diff of that step against the one before, for that variable (plotly selections can only be made in a browser)."""

import os
from urllib.parse import parse_qs, urlparse

import pytest
from dashboard_server import CHROMIUM, CHROMIUM_ARGS, ROOT, running_dashboard, wait_idle

pytestmark = pytest.mark.browser
RUN = "mnist_cnn/lr3e-3_bs100"
# Pixel position of a data point inside a plotly div, from plotly's own axes (category names work too).
WHERE = """(el, [x, y]) => {
    const L = el._fullLayout, r = el.getBoundingClientRect();
    const at = (axis, v) => axis._offset + axis.c2p(axis.d2c(v));
    return [r.left + at(L.xaxis, x), r.top + at(L.yaxis, y)];
}"""


@pytest.fixture(scope="module")
def server():
    with running_dashboard(os.path.join(ROOT, "sample_checkpoints")) as url:
        yield url


@pytest.fixture()
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 2400})
        finally:
            browser.close()


def _click(page, chart_index: int, x, y) -> None:
    plot = page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot").nth(chart_index)
    plot.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    px, py = plot.evaluate(WHERE, [x, y])
    page.mouse.move(px, py)
    page.wait_for_timeout(300)
    page.mouse.click(px, py)


def _diff_opened(page, a: str, b: str, variable: str) -> None:
    page.wait_for_url("**/diff?**", timeout=30_000)
    wait_idle(page)
    query = parse_qs(urlparse(page.url).query)
    assert query["a_ckpt"] == [a] and query["b_ckpt"] == [b], page.url
    assert query["dvar"] == [variable], page.url
    assert page.locator("h1").first.inner_text().strip() == "Diff"
    assert page.locator("[data-testid='stException']").count() == 0
    main = page.locator("[data-testid='stMain']")
    assert main.locator("h3").first.inner_text().strip() == variable  # the Diff's subheader: that variable


def test_a_change_matrix_cell_opens_the_diff_of_that_step(server, page, tmp_path):
    page.goto(f"{server}/trends?run={RUN}&var=conv1/biases", wait_until="domcontentloaded")
    wait_idle(page)
    try:
        _click(page, 0, "800", "conv2/weights")
        _diff_opened(page, "model.ckpt-700", "model.ckpt-800", "conv2/weights")
    finally:
        page.screenshot(path=str(tmp_path / "after_matrix_click.png"))


def test_a_line_point_opens_the_diff_of_that_step(server, page, tmp_path):
    page.goto(f"{server}/trends?run={RUN}&var=fc1/weights", wait_until="domcontentloaded")
    wait_idle(page)
    plot = page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot").nth(1)  # the l2 line
    value = plot.evaluate("el => el.data[0].y[2]")  # step 600, the third checkpoint
    try:
        _click(page, 1, 600, value)
        _diff_opened(page, "model.ckpt-400", "model.ckpt-600", "fc1/weights")
    finally:
        page.screenshot(path=str(tmp_path / "after_line_click.png"))
