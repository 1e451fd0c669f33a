"""V1 checkpoints in a run: the single file a TF <= 0.11 Saver wrote (`model.ckpt-1000`, beside its .meta)."""

from __future__ import annotations

import re
from dataclasses import replace

from ckptlib import errors, storage
from ckptlib.runs.naming import step_from_name
from ckptlib.runs.types import CheckpointEntry

# A V1 file has no suffix; files with one of these are something else (bundles, graphs, Keras, events).
_OTHER = re.compile(r"(\.(index|meta|pb|pbtxt|json|h5|hdf5|keras|txt|csv|npz|npy|py|md)|\.data-\d{5}-of-\d{5}|^checkpoint)$")


def with_v1_files(run_dir: str, entries: list[CheckpointEntry], state_known: bool) -> list[CheckpointEntry]:
    """`entries` with each V1 file found complete (a listed one was 'missing': it has no .index) and every
    unlisted V1 file added. Sniffing reads a few bytes of files without a suffix only."""
    from ckptlib.formats.v1table import V1Checkpoint, sniff

    listing = {name: (size, mtime) for name, is_dir, size, mtime in storage.scan(run_dir) if not is_dir}
    candidates = {name for name in listing if not _OTHER.search(name) and "." not in name.rsplit("-", 1)[-1]}
    v1 = {name for name in candidates if sniff(storage.join(run_dir, name)) is not None}
    if not v1:
        return entries
    by_name = {e.name: e for e in entries}
    out = [e for e in entries if e.name not in v1]
    for name in sorted(v1):
        size, mtime = listing[name]
        meta = listing.get(name + ".meta")
        problem = None
        try:
            V1Checkpoint(storage.join(run_dir, name)).variables  # noqa: B018 - parse the table now
        except errors.CkptError as exc:
            problem = str(exc)
        known = by_name.get(name)
        base = known or CheckpointEntry(
            prefix=storage.join(run_dir, name), step=step_from_name(name), mtime=mtime, size_bytes=0,
            in_state=False, latest=False, complete=False, has_meta=False, problem=None, state_known=state_known,
            time_source="file" if mtime else "unknown")
        keep_time = known is not None and known.time_source == "state"
        out.append(replace(base, size_bytes=size + (meta[0] if meta else 0), complete=problem is None,
                           has_meta=meta is not None, problem=problem,
                           mtime=base.mtime if keep_time else mtime,
                           time_source=base.time_source if keep_time else ("file" if mtime else "unknown")))
    return out
