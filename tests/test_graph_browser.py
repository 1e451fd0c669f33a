"""The Graph page's picture in headless Chromium: plotly draws it, and a click on a scope box opens that scope.

The server fixture follows tests/test_browser.py's pattern (copied, not imported): `streamlit run` on a
free port, /_stcore/health polled, the app waited on until its script stops running.
"""

import os
import urllib.parse
import urllib.request

import pytest
from dashboard_server import CHROMIUM, CHROMIUM_ARGS, ROOT, running_dashboard, wait_idle

RUN = "mnist_cnn/lr3e-3_bs100"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server():
    with running_dashboard(os.path.join(ROOT, "sample_checkpoints")) as url:
        yield url


_wait_idle = wait_idle


# The picture's box traces carry each box's id in customdata (scopes end with '/'); the page's DOM has one
# `.trace.scatter` group per trace in order, its `path.point`s in the order of the trace's points.
_BOXES_JS = """() => {
  const gd = document.querySelector("[data-testid='stPlotlyChart'] .js-plotly-plot");
  if (!gd || !gd.data) return null;
  const traces = gd.querySelectorAll(".scatterlayer .trace");
  const out = [];
  gd.data.forEach((trace, t) => {
    (trace.customdata || []).forEach((id, i) => {
      const point = traces[t] && traces[t].querySelectorAll("path.point")[i];
      if (!point) return;
      const r = point.getBoundingClientRect();
      out.push({id: String(id), x: r.x + r.width / 2, y: r.y + r.height / 2});
    });
  });
  return out;
}"""


_NOT_DRAWN_JS = """(boxId) => {
  const gd = document.querySelector("[data-testid='stPlotlyChart'] .js-plotly-plot");
  return !!(gd && gd.data && !gd.data.some(t => (t.customdata || []).includes(boxId)));
}"""


def _boxes(page) -> list[dict]:
    page.wait_for_selector("[data-testid='stPlotlyChart'] .main-svg", timeout=60_000)
    page.wait_for_function(f"() => {{ const b = ({_BOXES_JS})(); return b && b.length > 0; }}", timeout=30_000)
    return page.evaluate(_BOXES_JS)


def _expanded(page) -> list[str]:
    query = urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)
    return [s for value in query.get("expand", []) for s in value.split(",") if s]


def test_a_click_on_a_scope_box_opens_it(server, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        try:
            page.goto(f"{server}/graph?run={RUN}", wait_until="domcontentloaded")
            _wait_idle(page)
            assert page.locator("[data-testid='stException']").count() == 0
            assert page.locator("[data-testid='stAlertContentError']").count() == 0
            # Streamlit loads plotly's bundle lazily: the svg comes a moment after the script stops.
            page.wait_for_selector("[data-testid='stPlotlyChart'] .main-svg", timeout=60_000)
            chart = page.locator("[data-testid='stPlotlyChart']").first
            assert chart.locator(".main-svg").count() >= 1, "plotly drew no svg"
            before = _boxes(page)
            ids = {b["id"] for b in before}
            assert "conv1/" in ids and "fc1/" in ids, ids
            assert _expanded(page) == []
            target = next(b for b in before if b["id"] == "fc1/")
            page.mouse.click(target["x"], target["y"])
            page.wait_for_timeout(800)
            _wait_idle(page)
            page.wait_for_function("() => window.location.search.includes('expand=')", timeout=30_000)
            page.screenshot(path=str(tmp_path / "graph-expanded.png"))
            assert _expanded(page) == ["fc1"], page.url
            page.wait_for_function(_NOT_DRAWN_JS, arg="fc1/", timeout=30_000)  # plotly has redrawn
            after = _boxes(page)
            after_ids = {b["id"] for b in after}
            assert "fc1/" not in after_ids and len(after) > len(before), sorted(after_ids)
            assert any(i.startswith("fc1/") for i in after_ids), sorted(after_ids)
            assert page.locator("[data-testid='stException']").count() == 0
            # The chooser shows the opened scope too (the keyboard way back to the same state).
            assert "fc1" in page.locator("[data-testid='stMultiSelect']").first.inner_text()
            # A click on an op box shows its node_def, and the URL names the op.
            op = next(b for b in after if b["id"] == "input")
            page.mouse.click(op["x"], op["y"])
            page.wait_for_timeout(800)
            _wait_idle(page)
            page.wait_for_function("() => window.location.search.includes('gnode=input')", timeout=30_000)
            page.wait_for_function("() => document.querySelector(\"[data-testid='stMain']\").innerText"
                                   ".includes('Consumers')", timeout=30_000)
            main = page.locator("[data-testid='stMain']").inner_text()
            assert "Placeholder" in main and "Consumers" in main, main[-1500:]
            assert _expanded(page) == ["fc1"]  # the opened scope stays open
            assert page.locator("[data-testid='stException']").count() == 0
        finally:
            browser.close()
