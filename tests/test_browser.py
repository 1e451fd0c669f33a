"""One real browser test: `streamlit run` in headless Chromium, every page visited, no exception box."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PAGES = ("history", "variables", "diff", "trends", "graph", "evaluate")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

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


def _wait_idle(page) -> None:
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=60_000)
    page.wait_for_timeout(500)  # let a rerun triggered by query-param sync start, then wait again
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=60_000)


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
            assert page.locator("[data-testid='stDataFrame']").count() >= 1
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
