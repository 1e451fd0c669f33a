"""The shape of ckptlib/ read from its imports (ast): no circles, arrows one way, small modules, cheap import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ckptlib"

# Lower layers never import higher ones (ARCHITECTURE.md). Same-layer packages stay apart unless listed.
LAYERS = {
    "ckptlib.errors": 0, "ckptlib._tf": 0,
    "ckptlib.storage": 1,
    "ckptlib.formats": 2,
    "ckptlib.runs": 3, "ckptlib.tensors": 3, "ckptlib.engine": 3,
    "ckptlib.compare": 4, "ckptlib.graph": 4, "ckptlib.evaluate": 4, "ckptlib.review": 4, "ckptlib.cache": 4,
    "ckptlib.live": 4,
    "ckptlib.cli": 5, "ckptlib.api": 5, "ckptlib.samples": 5, "ckptlib.__main__": 5, "ckptlib": 5,
}
SIDEWAYS = {
    ("ckptlib.live", "ckptlib.compare"),  # watching reports changes and health
    ("ckptlib.evaluate", "ckptlib.graph"),  # evaluation reads the graph it runs
    ("ckptlib.graph", "ckptlib.compare"),  # graph diff reuses the variable diff's name mapping
    ("ckptlib.review", "ckptlib.compare"), ("ckptlib.review", "ckptlib.evaluate"),  # a report shows both
    ("ckptlib.cache", "ckptlib.compare"), ("ckptlib.cache", "ckptlib.evaluate"),  # the cache stores their results
    ("ckptlib._tf", "ckptlib.errors"),  # TensorFlow's errors become CkptErrors
    ("ckptlib", "ckptlib.api"), ("ckptlib.__main__", "ckptlib.cli"),  # entry points hand over to the verbs
}
# Who may import TensorFlow besides ckptlib._tf, and why.
TF_IMPORTERS = {"ckptlib.samples.clock": "puts a simulated clock into TensorFlow's own saver modules"}
MAX_LINES = 300
BIG_ON_PURPOSE: dict[str, str] = {}  # module -> why it may be longer than MAX_LINES


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path) -> set[str]:
    """Every ckptlib module `name` imports, anywhere in the file (function-level imports included)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _owners(module: str) -> list[str]:
    # The root package is its own entry: it does not adopt every module below it.
    return [key for key in LAYERS if module == key or (key != "ckptlib" and module.startswith(key + "."))]


def _layer_of(module: str) -> tuple[str, int]:
    owner = max(_owners(module), key=len)
    return owner, LAYERS[owner]


def test_every_module_has_a_layer():
    unplaced = [m for m in MODULES if not _owners(m)]
    assert not unplaced, f"put these in LAYERS (and ARCHITECTURE.md): {unplaced}"


def test_no_import_circles():
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    circles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(GRAPH[module]):
            if state.get(target) == 1:
                circles.append(path[path.index(target):] + [target] if target in path else [module, target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def test_imports_point_down_the_layers():
    upward = []
    for module, targets in GRAPH.items():
        owner, layer = _layer_of(module)
        for target in targets:
            target_owner, target_layer = _layer_of(target)
            if target_owner == owner or target_layer < layer or (owner, target_owner) in SIDEWAYS:
                continue
            upward.append(f"{module} -> {target}")
    assert not upward, "imports against the layering: " + ", ".join(sorted(upward))


def test_capabilities_say_what_they_own():
    for module, path in MODULES.items():
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc, f"{module} has no docstring"
        if path.name == "__init__.py":
            assert doc.strip(), f"{module}: the package's one-line docstring says what it owns"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_small(module):
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES or module in BIG_ON_PURPOSE, f"{module} has {lines} lines; split it by job"


def test_only_the_tf_module_imports_tensorflow():
    importers = sorted(m for m, p in MODULES.items() if m != "ckptlib._tf" and m not in TF_IMPORTERS and any(
        isinstance(n, (ast.Import, ast.ImportFrom)) and any(
            (getattr(n, "module", None) or a.name).split(".")[0] == "tensorflow" for a in n.names)
        for n in ast.walk(ast.parse(p.read_text()))))
    assert importers == []


def test_nothing_in_ckptlib_imports_streamlit():
    for module, path in MODULES.items():
        assert "streamlit" not in {
            (getattr(n, "module", None) or a.name).split(".")[0]
            for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, (ast.Import, ast.ImportFrom))
            for a in n.names}, module


def test_import_ckptlib_is_cheap():
    code = ("import sys, ckptlib; heavy = [m for m in ('numpy', 'tensorflow', 'google.protobuf') if m in sys.modules];"
            " print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_layer_check_sees_a_planted_circle_and_an_upward_import(tmp_path):
    # The checks above must be able to fail: feed them a tiny fake graph with both faults.
    fake = {"ckptlib.formats.a": {"ckptlib.formats.b"}, "ckptlib.formats.b": {"ckptlib.formats.a"},
            "ckptlib.storage.x": {"ckptlib.runs.y"}, "ckptlib.runs.y": set()}
    saved = dict(GRAPH)
    GRAPH.clear()
    GRAPH.update(fake)
    try:
        with pytest.raises(AssertionError, match="formats.a -> ckptlib.formats.b -> ckptlib.formats.a"):
            test_no_import_circles()
        with pytest.raises(AssertionError, match="storage.x -> ckptlib.runs.y"):
            test_imports_point_down_the_layers()
    finally:
        GRAPH.clear()
        GRAPH.update(saved)


def test_pages_reach_ckptlib_only_through_ui():
    for page in sorted([ROOT / "dashboard.py", *(ROOT / "pages").glob("*.py")]):
        imported = {(getattr(n, "module", None) or a.name) for n in ast.walk(ast.parse(page.read_text()))
                    if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
        assert not [m for m in imported if m.split(".")[0] == "ckptlib"], page.name
