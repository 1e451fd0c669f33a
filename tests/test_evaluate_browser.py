"""Browser test: a click on a point of Evaluate's accuracy chart opens the Diff of that step against the one
before (plotly's selection only happens in a real browser)."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from urllib.parse import parse_qs, urlparse

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CNN = "mnist_cnn/lr3e-3_bs100"

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian chromium is needed for the browser test: apt-get install -y chromium")
    port = _free_port()
    env = dict(os.environ, CKPTLIB_ROOT=os.path.join(ROOT, "sample_checkpoints"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "dashboard.py", "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"streamlit did not start: {proc.stdout.read().decode(errors='replace')[-2000:]}")
            time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def _wait_idle(page, timeout: int = 180_000) -> None:
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout)
    page.wait_for_timeout(500)  # let a rerun triggered by query-param sync start, then wait again
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout)


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
