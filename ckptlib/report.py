"""Turn ckptlib's dataclasses into the JSON documents of the CLI contract (see DESIGN.md)."""

from __future__ import annotations

from ckptlib.types import CheckpointEntry, RunHistory, RunSummary, TensorSummary, VariableInfo


def runs_doc(root: str, runs: tuple[RunSummary, ...]) -> dict:
    return {
        "root": root,
        "runs": [
            {"path": r.path, "name": r.name, "num_checkpoints": r.num_checkpoints, "latest_step": r.latest_step}
            for r in runs
        ],
    }


def entry_doc(entry: CheckpointEntry) -> dict:
    return {
        "prefix": entry.prefix,
        "step": entry.step,
        "mtime": entry.mtime,
        "size_bytes": entry.size_bytes,
        "in_state": entry.in_state,
        "latest": entry.latest,
        "complete": entry.complete,
        "has_meta": entry.has_meta,
        "problem": entry.problem,
        "preserved": entry.preserved,
        "status": entry.status,
    }


def history_doc(history: RunHistory) -> dict:
    return {
        "run": history.path,
        "problem": history.problem,
        "notes": list(history.notes),
        "last_preserved_timestamp": history.last_preserved_timestamp,
        "checkpoints": [entry_doc(e) for e in history.checkpoints],
    }


def variable_doc(var: VariableInfo) -> dict:
    return {
        "name": var.name,
        "shape": list(var.shape),
        "dtype": var.dtype,
        "num_elements": var.num_elements,
        "nbytes": var.nbytes,
        "kind": var.kind,
    }


def vars_doc(prefix: str, variables: tuple[VariableInfo, ...]) -> dict:
    return {"checkpoint": prefix, "variables": [variable_doc(v) for v in variables]}


def show_doc(summary: TensorSummary) -> dict:
    stats = summary.stats
    hist = summary.histogram
    return {
        "checkpoint": summary.checkpoint,
        "name": summary.info.name,
        "shape": list(summary.info.shape),
        "dtype": summary.info.dtype,
        "kind": summary.info.kind,
        "stats": {
            "min": stats.min,
            "max": stats.max,
            "mean": stats.mean,
            "std": stats.std,
            "l2": stats.l2,
            "nan": stats.nan,
            "inf": stats.inf,
            "zero_fraction": stats.zero_fraction,
        },
        "histogram": {"edges": list(hist.edges), "counts": list(hist.counts)} if hist else None,
        "preview": summary.preview,
        "preview_truncated": summary.preview_truncated,
    }
