"""Turn ckptlib's dataclasses into the JSON documents of the CLI contract (see DESIGN.md)."""

from __future__ import annotations

import math

from ckptlib.compare.types import CheckpointDiff, RunHealth, RunTrends
from ckptlib.evaluate.types import EvalHistory, EvalResult, FreezeResult
from ckptlib.formats.types import VariableInfo
from ckptlib.runs.types import CheckpointEntry, RunHistory, RunSummary, SkippedCheckpoint
from ckptlib.tensors.types import TensorSummary


def _number(value):
    """A JSON-safe number: NaN and Inf (JSON cannot hold them; an l2 past float64's range) become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _shape(shape):
    """A shape for JSON: None (unknown or absent) -> null; unknown dimensions -> null inside the list."""
    return list(shape) if shape is not None else None


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
        "checksums": entry.checksums,
        "stored_step": entry.stored_step,
        "time_source": entry.time_source,
    }


def history_doc(history: RunHistory) -> dict:
    return {
        "run": history.path,
        "problem": history.problem,
        "notes": list(history.notes),
        "last_preserved_timestamp": history.last_preserved_timestamp,
        "file_times_copied": history.file_times_copied,
        "checkpoints": [entry_doc(e) for e in history.checkpoints],
    }


def variable_doc(var: VariableInfo) -> dict:
    return {
        "name": var.name,
        "display_name": var.display_name,
        "shape": list(var.shape),
        "dtype": var.dtype,
        "num_elements": var.num_elements,
        "nbytes": var.nbytes,
        "kind": var.kind,
        "slot_of": var.slot_of,
        "copy_of": var.copy_of,
        **({"name_note": var.note} if var.note else {}),
    }


def vars_doc(prefix: str, variables: tuple[VariableInfo, ...]) -> dict:
    return {"checkpoint": prefix, "variables": [variable_doc(v) for v in variables]}


def show_doc(summary: TensorSummary) -> dict:
    stats = summary.stats
    hist = summary.histogram
    return {
        "checkpoint": summary.checkpoint,
        "name": summary.info.name,
        "display_name": summary.info.display_name,
        "shape": list(summary.info.shape),
        "dtype": summary.info.dtype,
        "kind": summary.info.kind,
        "stats": {
            "min": _number(stats.min),
            "max": _number(stats.max),
            "mean": _number(stats.mean),
            "std": _number(stats.std),
            "l2": _number(stats.l2),
            "nan": stats.nan,
            "inf": stats.inf,
            "zero_fraction": stats.zero_fraction,
        },
        "histogram": {"edges": list(hist.edges), "counts": list(hist.counts)} if hist else None,
        "preview": summary.preview,
        "preview_truncated": summary.preview_truncated,
    }


# --- Compare: diff, trend, health ---------------------------------------------------------------


def diff_doc(diff: CheckpointDiff) -> dict:
    return {
        "a": diff.a,
        "b": diff.b,
        "atol": _number(diff.atol),
        "summary": diff.summary,
        "variables": [
            {
                "name": row.name,
                "name_a": row.name_a,
                "display_name": row.display_name or row.name,
                "status": row.status,
                "kind": row.kind,
                "shape_a": _shape(row.shape_a),
                "shape_b": _shape(row.shape_b),
                "dtype_a": row.dtype_a,
                "dtype_b": row.dtype_b,
                "l2_diff": _number(row.l2_diff),
                "rel_change": _number(row.rel_change),
                "max_abs_diff": _number(row.max_abs_diff),
                "mean_abs_diff": _number(row.mean_abs_diff),
                "cosine": _number(row.cosine),
                "frac_changed": _number(row.frac_changed),
                "num_changed": row.num_changed,
                "nonfinite": row.nonfinite,
                **({"by": row.by} if row.by else {}),
            }
            for row in diff.variables
        ],
        "suggestions": [
            {"removed": s.removed, "added": s.added, "shape": list(s.shape), "dtype": s.dtype,
             "similarity": s.similarity}
            for s in diff.suggestions
        ],
        "suggested_rules": list(diff.suggested_rules),
    }


def _skipped_doc(skipped: SkippedCheckpoint) -> dict:
    return {"prefix": skipped.prefix, "step": skipped.step, "variable": skipped.variable, "reason": skipped.reason}


def trend_doc(trends: RunTrends, name: str) -> dict:
    """The `trend RUN_DIR --var NAME` document for one variable of `trends`."""
    trend = trends.get(name)
    if trend is None:
        raise KeyError(name)
    return {
        "run": trends.run,
        "variable": trend.key or trend.name,  # the raw key, as everywhere in the JSON contract
        "display_name": trend.display_name or trend.name,
        "key": trend.key,
        "kind": trend.kind,
        "dtype": trend.dtype,
        "points": [
            {
                "step": p.step,
                "prefix": p.prefix,
                "l2": _number(p.l2),
                "mean": _number(p.mean),
                "std": _number(p.std),
                "min": _number(p.min),
                "max": _number(p.max),
                "nan": p.nan,
                "inf": p.inf,
                "rel_change_prev": _number(p.rel_change_prev),
                "rel_change_first": _number(p.rel_change_first),
                "frac_changed_prev": _number(p.frac_changed_prev),
                **({"by": p.by} if p.by else {}),
            }
            for p in trend.points
        ],
        "skipped": [_skipped_doc(s) for s in trends.skipped + trend.skipped],
    }


def health_doc(health: RunHealth) -> dict:
    return {
        "run": health.run,
        "jump_ratio": _number(health.jump_ratio),
        "collapse_ratio": _number(health.collapse_ratio),
        "include_optimizer": health.include_optimizer,
        "checked": list(health.checked),
        "flags": [
            {"prefix": f.prefix, "step": f.step, "variable": f.variable, "flag": f.flag, "detail": f.detail}
            for f in health.flags
        ],
        "skipped": [_skipped_doc(s) for s in health.skipped],
    }


# --- Graph, freeze, evaluate ------------------------------------------------------------------


def freeze_doc(result: FreezeResult) -> dict:
    return {
        "output": result.output,
        "num_nodes": result.num_nodes,
        "bytes": result.bytes,
        "checkpoint": result.checkpoint,
        "outputs": list(result.outputs),
        "num_variables": result.num_variables,
        "cleared_devices": list(result.cleared_devices),
    }


def eval_doc(result: EvalResult) -> dict:
    return {
        "model": result.model,
        "input": result.input,
        "output": result.output,
        "output_kind": result.output_kind,
        "dataset": {"source": result.dataset_source, "num_examples": result.num_examples},
        "accuracy": result.accuracy,
        "num_correct": result.num_correct,
        "per_class_accuracy": list(result.per_class_accuracy),
        "confusion": [list(row) for row in result.confusion],
        "device": result.device,
        "images_per_second": _number(result.images_per_second),
        "batch_size": result.batch_size,
        "raw_pixels": result.raw_pixels,
        "feeds": dict(result.feeds),
        "metric": None if result.metric is None else {"name": result.metric.name,
                                                      "value": _number(result.metric.value)},
    }


def eval_history_doc(history: EvalHistory) -> dict:
    best = history.best
    return {
        "run": history.run,
        "dataset": {"source": history.dataset_source},
        "device": history.device or None,
        "points": [{"step": p.step, "prefix": p.prefix, "accuracy": p.accuracy, "num_examples": p.num_examples,
                    "meta": p.meta, "metric": _number(p.metric)} for p in history.points],
        "best": None if best is None else {"step": best.step, "prefix": best.prefix, "accuracy": best.accuracy},
        "skipped": [{"prefix": s.prefix, "step": s.step, "reason": s.reason, "error": s.error} for s in history.skipped],
    }
