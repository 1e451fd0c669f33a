"""The Graph page's navigation (AppTest): find a node by name, follow inputs and consumers, the device pins
named where the page announces them and listed in the op table, the tab and clear_devices kept in the URL,
and the words for a run without a graph (TF2 object-based, TF1 saved without .meta, some .meta files)."""

import json
import os
import urllib.parse
import urllib.request

import pytest
from dashboard_server import CHROMIUM, running_dashboard, wait_idle
from graph_fixtures import _needs_mnist
from page_links import assert_rendered, open_page
from streamlit.testing.v1 import AppTest

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "dashboard.py")
SAMPLES = os.path.join(os.path.dirname(APP), "sample_checkpoints")
CNN = "mnist_cnn/lr3e-3_bs100"
META = os.path.join(SAMPLES, CNN, "model.ckpt-1000.meta")
RESTORE_OPS = ["save/RestoreV2/tensor_names", "save/RestoreV2/shape_and_slices", "save/RestoreV2"]


@pytest.fixture(autouse=True)
def _restore_env(restored_root):
    yield


def _graph_page(root: str = SAMPLES, **params) -> AppTest:
    return open_page("graph", root, params, timeout=90)


def _clean(at: AppTest) -> None:
    assert_rendered(at)


def _param(at: AppTest, key: str):
    value = at.query_params.get(key)
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def _shown(at: AppTest) -> list[str]:
    """The node_def headers on the page ('**name** · `type` · device `…`')."""
    return [m.value for m in at.markdown if m.value.startswith("**") and "· device" in m.value]


def _boxes(at: AppTest) -> set[str]:
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    return {box_id for trace in spec["data"] for box_id in trace.get("customdata") or ()}


def _op_table(at: AppTest):
    return next(d.value for d in at.dataframe if list(d.value.columns) == ["name", "type", "device", "inputs"])


def _buttons(at: AppTest, prefix: str) -> dict[str, str]:
    return {b.key: b.label for b in at.button if (b.key or "").startswith(prefix)}


@pytest.fixture(scope="module")
def cnn_info():
    from ckptlib.graph.metagraph import describe_node, read_meta_graph

    return read_meta_graph(META), describe_node


# --- search ------------------------------------------------------------------------------------------


def test_find_nodes_ranks_the_exact_name_then_prefixes_then_parts():
    from ui.graph_nodes import find_nodes

    names = ["gradients/conv1/relu_grad", "conv1/relu", "conv1", "conv1/relu/x", "a/Conv1x", "fc1/relu"]
    assert find_nodes(names, "conv1") == ["conv1", "conv1/relu", "conv1/relu/x", "gradients/conv1/relu_grad",
                                          "a/Conv1x"]
    # The ops named 'relu' first, then the names with a part starting with it.
    assert find_nodes(names, "RELU") == ["conv1/relu", "fc1/relu", "gradients/conv1/relu_grad", "conv1/relu/x"]
    assert find_nodes(names, "  ") == [] and find_nodes(names, "nothing") == []


def test_a_search_lists_matching_ops_and_a_click_shows_one_in_the_url(cnn_info):
    info, _ = cnn_info
    at = _graph_page(run=CNN, gtab="Node", gfind="conv1/re")
    _clean(at)
    assert not any(s.key == "op" for s in at.selectbox)  # no 568-entry dropdown any more
    assert at.text_input(key="gfind").value == "conv1/re"
    expected = [o.name for o in info.ops if "conv1/re" in o.name.lower()]
    hits = _buttons(at, "gfind:")
    assert sorted(k.split(":", 1)[1] for k in hits) == sorted(expected) and "gfind:conv1/relu" in hits
    assert any(f"{len(expected)} of {info.num_ops} operations match" in c.value for c in at.caption)
    at.button(key="gfind:conv1/relu").click().run()
    _clean(at)
    assert _param(at, "op") == "conv1/relu"
    assert "**conv1/relu** · `Relu` · device `(none)`" in _shown(at)
    # A link with ?op= reproduces the view: same node, same search.
    again = _graph_page(run=CNN, gtab="Node", gfind="conv1/re", op="conv1/relu")
    _clean(again)
    assert "**conv1/relu** · `Relu` · device `(none)`" in _shown(again)
    assert _buttons(again, "gfind:") == hits


def test_a_search_with_many_matches_shows_the_first_ones_and_says_so(cnn_info):
    from ui.graph_nodes import MAX_HITS

    info, _ = cnn_info
    at = _graph_page(run=CNN, gtab="Node", gfind="/")
    _clean(at)
    total = sum("/" in o.name for o in info.ops)
    assert total > MAX_HITS and len(_buttons(at, "gfind:")) == MAX_HITS
    assert any(f"{total} of {info.num_ops} operations match" in c.value and "type more" in c.value
               for c in at.caption)


# --- inputs and consumers ----------------------------------------------------------------------------


def test_inputs_and_consumers_are_buttons_that_switch_the_node(cnn_info):
    _, describe = cnn_info
    at = _graph_page(run=CNN, gtab="Node")
    _clean(at)
    assert _param(at, "op") == "logits/logits"  # the best suggested output at first
    logits = describe(META, "logits/logits")
    assert list(_buttons(at, "gnode_tab_in:").values()) == [f"`{i}`" for i in logits.inputs]
    assert list(_buttons(at, "gnode_tab_out:").values()) == [f"`{c}`" for c in logits.consumers]
    at.button(key="gnode_tab_in:0").click().run()  # logits/MatMul
    _clean(at)
    first = logits.inputs[0]
    assert _param(at, "op") == first and _shown(at)[-1].startswith(f"**{first}**")
    back = next(k for k, label in _buttons(at, "gnode_tab_out:").items() if label == "`logits/logits`")
    at.button(key=back).click().run()
    assert _param(at, "op") == "logits/logits" and _shown(at)[-1].startswith("**logits/logits**")


def test_a_control_dependency_input_opens_the_node_it_names(cnn_info):
    info, _ = cnn_info
    op = next(o for o in info.ops if any(i.startswith("^") for i in o.inputs))
    at = _graph_page(run=CNN, gtab="Node", op=op.name)
    _clean(at)
    at_ = next(i for i, ref in enumerate(op.inputs) if ref.startswith("^"))
    assert at.button(key=f"gnode_tab_in:{at_}").label == f"`{op.inputs[at_]}`"
    at.button(key=f"gnode_tab_in:{at_}").click().run()
    _clean(at)
    assert _param(at, "op") == op.inputs[at_].lstrip("^").split(":")[0]


def test_in_the_picture_an_input_opens_its_scope_and_shows_its_node_def():
    at = _graph_page(run=CNN, gnode="logits/logits")  # a link to an op inside a collapsed scope
    _clean(at)
    assert at.selectbox(key="gnode").value == "logits/logits"
    assert any("logits/logits is not drawn" in c.value for c in at.caption)
    assert at.button(key="gpic_in:0").label == "`logits/MatMul`"
    at.button(key="gpic_in:0").click().run()
    _clean(at)
    # logits/MatMul is also a scope (its ReadVariableOp sits under it): opening it opens logits/ as well.
    assert _param(at, "gnode") == "logits/MatMul" and _param(at, "expand") == "logits/MatMul"
    assert "logits/MatMul" in _boxes(at)
    assert at.selectbox(key="gnode").value == "logits/MatMul"
    assert any(m.value.startswith("**logits/MatMul**") for m in at.markdown)
    assert not any("logits/MatMul is not drawn" in c.value for c in at.caption)  # its scope is open now


# --- device pins -------------------------------------------------------------------------------------


def test_the_device_notice_names_the_pinned_ops_and_the_op_table_lists_them():
    at = _graph_page(run=CNN, gtab="Operations")
    _clean(at)
    notice = next(i.value for i in at.info if "Device pins" in i.value)
    assert "`/device:CPU:0` on 3 ops" in notice and all(f"`{n}`" in notice for n in RESTORE_OPS)
    at.toggle(key="gpinned").set_value(True).run()
    _clean(at)
    assert _param(at, "gpinned") == "1"
    table = _op_table(at)
    assert list(table["name"]) == RESTORE_OPS and set(table["device"]) == {"/device:CPU:0"}
    # The filters are kept in the URL: a link shows the same rows.
    again = _graph_page(run=CNN, gtab="Operations", gpinned="1", op_scope="RestoreV2/")
    _clean(again)
    assert list(_op_table(again)["name"]) == RESTORE_OPS[:2]
    assert again.text_input(key="op_scope").value == "RestoreV2/"


def test_clear_devices_round_trips_through_the_url():
    at = _graph_page(run=CNN, clear_devices="1")
    _clean(at)
    assert at.toggle(key="clear_devices").value is True and _param(at, "clear_devices") == "1"
    cleared = next(i.value for i in at.info if "Cleared device pins" in i.value)
    assert "`/device:CPU:0` on 3 ops" in cleared
    at.toggle(key="clear_devices").set_value(False).run()
    assert _param(at, "clear_devices") is None and any("Device pins: `/device:CPU:0`" in i.value for i in at.info)


@pytest.fixture(scope="module")
def gpu_run(tmp_path_factory):
    """The tutorial-style run with its layer pinned to /device:GPU:0 (saved with soft placement)."""
    _needs_mnist()
    import graphbuild

    root = tmp_path_factory.mktemp("gpu_pins")
    graphbuild.softmax_run(str(root / "gpu"), device="/device:GPU:0")
    return root


def test_gpu_pins_warn_with_the_ops_and_clear_devices_lives_in_the_url(gpu_run):
    from ckptlib.graph.metagraph import read_meta_graph

    meta = os.path.join(gpu_run, "gpu", "model.ckpt-300.meta")
    pins: dict[str, list[str]] = {}
    for op in read_meta_graph(meta).ops:
        if op.device:
            pins.setdefault(op.device, []).append(op.name)
    gpu = pins["/device:GPU:0"]
    assert {"softmax_linear/weights", "softmax_linear/biases"} <= set(gpu)
    at = _graph_page(root=str(gpu_run), run="gpu")
    _clean(at)
    warning = next(w.value for w in at.warning if "Device pins" in w.value)
    for device, names in pins.items():  # each pin with its op count and the first ops named
        assert f"`{device}` on {len(names)} ops (`{names[0]}`" in warning
    at = _graph_page(root=str(gpu_run), run="gpu", clear_devices="1")
    _clean(at)
    assert at.toggle(key="clear_devices").value is True
    assert not any("Device pins" in w.value for w in at.warning)
    cleared = next(i.value for i in at.info if "Cleared device pins" in i.value)
    assert f"`/device:GPU:0` on {len(gpu)} ops (`{gpu[0]}`" in cleared
    assert "0 with a device pin (cleared: clear_devices is on)" in " ".join(c.value for c in at.caption)
    at.toggle(key="clear_devices").set_value(False).run()
    _clean(at)
    assert _param(at, "clear_devices") is None and any("Device pins" in w.value for w in at.warning)


# --- the tab in the URL ------------------------------------------------------------------------------


def test_the_tab_round_trips_through_the_url():
    at = _graph_page(run=CNN, gtab="Collections")
    _clean(at)
    assert at.session_state["gtab"] == "Collections" and _param(at, "gtab") == "Collections"
    # A link to another tab; a click inside it (here a search result) reruns the page on the same tab.
    # (AppTest cannot click a tab: test_a_browser_follows_nodes_and_a_fresh_one_reproduces_the_view does.)
    at = _graph_page(run=CNN, gtab="Node")
    assert at.session_state["gtab"] == "Node"
    at.text_input(key="gfind").input("logits/logits").run()
    at.button(key="gfind:logits/logits").click().run()
    _clean(at)
    assert at.session_state["gtab"] == "Node" and _param(at, "gtab") == "Node"
    # Compare mode and back: the tab comes back with the page.
    at.radio(key="gmode").set_value("Compare").run()
    at.radio(key="gmode").set_value("Inspect").run()
    _clean(at)
    assert at.session_state["gtab"] == "Node"


# --- why a run shows no graph ------------------------------------------------------------------------


def test_a_tf2_run_is_called_object_based():
    at = _graph_page(run="mnist_tf2")
    assert not at.exception
    text = " ".join(i.value for i in at.info)
    assert "holds TF2 object-based checkpoints" in text and "SavedModel" in text


def test_a_tf1_run_saved_without_meta_is_not_called_tf2(tmp_path, tfb):
    tfb.saver_run(str(tmp_path / "nometa"), num_saves=2, save_relative_paths=True, write_meta=False)
    at = _graph_page(root=str(tmp_path), run="nometa")
    assert not at.exception
    text = " ".join(i.value for i in at.info)
    assert "saved without a .meta" in text and "write_meta_graph" in text
    assert "TF2" not in text and "object-based" not in text


def test_a_checkpoint_without_meta_in_a_run_with_some_says_which_graph_is_shown(tmp_path, tfb):
    tfb.saver_run(str(tmp_path / "some"), num_saves=3, max_to_keep=None, save_relative_paths=True)
    names = sorted(n[: -len(".index")] for n in os.listdir(tmp_path / "some") if n.endswith(".index"))
    metas = sorted(n for n in os.listdir(tmp_path / "some") if n.endswith(".meta"))
    middle = next(n for n in names if f"{n}.meta" not in metas)
    at = _graph_page(root=str(tmp_path), run="some", ckpt=middle)
    _clean(at)
    shown = at.selectbox(key="meta").value
    assert shown in metas
    note = " ".join(c.value for c in at.caption)
    assert f"{middle} (chosen in the sidebar) was saved without a .meta" in note
    assert f"{len(metas)} of {len(names)} checkpoints" in note and f"Showing {shown}" in note
    assert "TF2" not in note
    # A checkpoint with its .meta: no such note.
    with_meta = metas[0][: -len(".meta")]
    at = _graph_page(root=str(tmp_path), run="some", ckpt=with_meta)
    assert not any("without a .meta" in c.value for c in at.caption)


# --- in Chromium: the tab bound to the URL, the buttons, a fresh browser on the shared link ------------
@pytest.fixture(scope="module")
def server():
    with running_dashboard(SAMPLES) as url:
        yield url, CHROMIUM


_wait_idle = wait_idle


def _query(page) -> dict[str, str]:
    return {k: v[-1] for k, v in urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query).items()}


def _active_tab(page) -> str:
    return page.locator("[data-testid='stTab'][aria-selected='true']").first.inner_text().strip()


def _click(page, locator, param: str, value: str) -> None:
    locator.click()
    page.wait_for_function("([k, v]) => new URLSearchParams(window.location.search).get(k) === v",
                           arg=[param, value], timeout=30_000)
    _wait_idle(page)


def _no_errors(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.locator("[data-testid='stAlertContentError']").count() == 0


@pytest.mark.browser
def test_a_browser_follows_nodes_and_a_fresh_one_reproduces_the_view(server, tmp_path):
    from playwright.sync_api import sync_playwright

    url, chromium = server
    args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=args)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2200})
            page.goto(f"{url}/graph?run={CNN}&gtab=Node&gfind=conv1%2Fre", wait_until="domcontentloaded")
            _wait_idle(page)
            _no_errors(page)
            assert _active_tab(page) == "Node"
            main = page.locator("[data-testid='stMain']")
            _click(page, main.get_by_role("button", name="conv1/relu · Relu", exact=True), "op", "conv1/relu")
            page.wait_for_function("() => document.querySelector(\"[data-testid='stMain']\").innerText"
                                   ".includes('conv1/relu · Relu · device')", timeout=30_000)
            assert _active_tab(page) == "Node"
            # Its input, then one of that op's consumers: each a click, each in the URL.
            _click(page, main.get_by_role("button", name="conv1/add", exact=True), "op", "conv1/add")
            assert _active_tab(page) == "Node" and "conv1/add · AddV2" in main.inner_text()
            # Another tab by a click, clear_devices by a click: both in the URL.
            _click(page, page.locator("[data-testid='stTab']", has_text="Operations"), "gtab", "Operations")
            assert page.locator("[data-testid='stMain']").get_by_text("Only pinned ops").count() >= 1
            _click(page, main.get_by_text("clear_devices", exact=True), "clear_devices", "1")
            _no_errors(page)
            page.screenshot(path=str(tmp_path / "graph-navigation.png"))
            shared = page.url
            assert {"op": "conv1/add", "gtab": "Operations", "clear_devices": "1"}.items() <= _query(page).items()
            # A teammate's fresh browser on that link: same tab, same switch, same node.
            other = browser.new_context(viewport={"width": 1400, "height": 2200}).new_page()
            other.goto(shared, wait_until="domcontentloaded")
            _wait_idle(other)
            _no_errors(other)
            assert _active_tab(other) == "Operations"
            assert other.get_by_label("clear_devices", exact=True).is_checked()
            assert "Cleared device pins" in other.locator("[data-testid='stMain']").inner_text()
            _click(other, other.locator("[data-testid='stTab']", has_text="Node"), "gtab", "Node")
            assert "conv1/add · AddV2" in other.locator("[data-testid='stMain']").inner_text()
        finally:
            browser.close()
