"""Whether the output folder may be replaced: only an empty one or one this generator made."""

# The output folder is replaced as a whole, and only if it is empty or carries `README_MARKER` (i.e. a
# previous run of this generator made it) and holds nothing but the generator's own entries: a mistyped
# --out must never delete someone's data.

from __future__ import annotations

from pathlib import Path

from ckptlib.errors import CkptError

from .readme import README_MARKER

ENTRIES = ("README.md", "linear", "mnist_cnn", "mnist_tf2", "mnist_keras", "from_cluster", "mnist_test")


def check_replaceable(out: Path) -> None:
    """Raise CkptError unless `out` is absent, empty, or a folder this generator made."""
    if not out.exists() and not out.is_symlink():
        return
    if out.is_symlink() or not out.is_dir():
        raise CkptError(f"Refusing to replace '{out}': it is not a folder.")
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return
    readme = out / "README.md"
    if not readme.is_file() or README_MARKER not in readme.read_text(errors="replace"):
        raise CkptError(f"Refusing to delete '{out}': it has no README.md with the generator's "
                        f"marker, so ckptlib.samples did not make it.")
    foreign = [name for name in entries if name not in ENTRIES]
    if foreign:
        raise CkptError(f"Refusing to delete '{out}': it holds entries the generator did not make: "
                        f"{', '.join(foreign)}.")
