"""Health flags of a checkpoint or a run: NaN/Inf, frozen weights, sudden norm jumps and collapses."""

from __future__ import annotations

from ckptlib.compare.diff import Progress
from ckptlib.compare.pairing import pair_key
from ckptlib.compare.trends import run_trends
from ckptlib.compare.types import DEFAULT_COLLAPSE, DEFAULT_JUMP, FLAGS, HealthFlag, RunHealth, RunTrends, TrendPoint
from ckptlib.compare.types import VariableTrend
from ckptlib.engine.types import Engine
from ckptlib.formats import Checkpoint
from ckptlib.formats.types import VariableInfo
from ckptlib.runs.types import RunHistory
from ckptlib.tensors.stats import variable_stats

__all__ = ["DEFAULT_COLLAPSE", "DEFAULT_JUMP", "FLAGS", "checkpoint_health", "health_from_trends", "run_health"]
_FLOATING = ("float", "bfloat", "complex")


def _examined(info: VariableInfo, include_optimizer: bool) -> bool:
    """Floating-point weights (and optimizer slots when asked); counters, metadata, ints never."""
    kinds = ("model", "optimizer") if include_optimizer else ("model",)
    return info.kind in kinds and info.dtype.startswith(_FLOATING)


def checkpoint_health(ckpt: Checkpoint, include_optimizer: bool = False) -> tuple[HealthFlag, ...]:
    """nan_inf flags of one checkpoint (the only flag that needs no history)."""
    flags = []
    for info in ckpt.variables:
        if not _examined(info, include_optimizer):
            continue
        stats = variable_stats(ckpt, info.name)  # streamed: large tensors are never held whole
        if stats.nan or stats.inf:
            flags.append(HealthFlag(ckpt.prefix, None, pair_key(info), "nan_inf",
                                    f"{stats.nan} NaN and {stats.inf} Inf of {info.num_elements} values."))
    return tuple(flags)


def run_health(history: RunHistory, jump_ratio: float = DEFAULT_JUMP, collapse_ratio: float = DEFAULT_COLLAPSE,
               include_optimizer: bool = False, progress: Progress | None = None,
               backend: str = "native", verify: bool = False, engine: Engine | None = None) -> RunHealth:
    """Flags over the run's complete checkpoints; optimizer slots only with include_optimizer.

    norm_jump: ||x_t|| > jump_ratio * ||x_prev||; norm_collapse: ||x_t|| < ||x_prev|| / collapse_ratio
    (norms over the finite values; a previous norm of 0 or None gives no ratio). frozen: a model
    weight identical (NaN == NaN) in every complete checkpoint holding it, at least two of them.
    The reading runs on `engine` (see run_trends; default: local processes).
    Example: `[f.flag for f in run_health(load_history("run")).flags]`.
    """
    _check_ratios(jump_ratio, collapse_ratio)
    trends = run_trends(history, progress=progress, backend=backend, verify=verify, engine=engine,
                        where=lambda info: _examined(info, include_optimizer))
    return health_from_trends(trends, jump_ratio, collapse_ratio, include_optimizer)


def health_from_trends(trends: RunTrends, jump_ratio: float = DEFAULT_JUMP, collapse_ratio: float = DEFAULT_COLLAPSE,
                       include_optimizer: bool = False) -> RunHealth:
    """The flags of trends already computed (the Trends page reads each tensor once for both)."""
    _check_ratios(jump_ratio, collapse_ratio)
    kinds = ("model", "optimizer") if include_optimizer else ("model",)
    examined = [t for t in trends.variables if t.kind in kinds and t.dtype.startswith(_FLOATING)]
    flags: list[HealthFlag] = []
    for trend in examined:
        flags += _nan_flags(trend)
        flags += _norm_flags(trend, jump_ratio, collapse_ratio)
        flags += _frozen_flags(trend)
    unreadable = [s for trend in examined for s in trend.skipped if s.error]
    return RunHealth(
        run=trends.run,
        flags=tuple(flags),
        checked=tuple(t.name for t in examined),
        skipped=trends.skipped + tuple(unreadable),
        jump_ratio=float(jump_ratio),
        collapse_ratio=float(collapse_ratio),
        include_optimizer=include_optimizer,
    )


def _check_ratios(jump_ratio: float, collapse_ratio: float) -> None:
    for label, ratio in (("jump_ratio", jump_ratio), ("collapse_ratio", collapse_ratio)):
        if not ratio > 1:
            raise ValueError(f"{label} must be > 1, not {ratio}")


def _step(point: TrendPoint) -> str:
    return f"step {point.step}" if point.step is not None else point.prefix.rsplit("/", 1)[-1]


def _nan_flags(trend: VariableTrend) -> list[HealthFlag]:
    """One flag per variable, at the first checkpoint holding NaN/Inf: later ones usually follow from it."""
    bad = [p for p in trend.points if p.nan or p.inf]
    if not bad:
        return []
    first = bad[0]
    detail = (f"{first.nan} NaN and {first.inf} Inf values at {_step(first)}; non-finite values in "
              f"{len(bad)} of the {len(trend.points)} checkpoints holding it.")
    return [HealthFlag(first.prefix, first.step, trend.name, "nan_inf", detail)]


def _norm_flags(trend: VariableTrend, jump_ratio: float, collapse_ratio: float) -> list[HealthFlag]:
    if trend.kind == "optimizer" and trend.shape == ():
        return []  # beta1_power, learning rates...: scalars that decay by design
    flags = []
    for before, after in zip(trend.points, trend.points[1:]):
        if not before.l2 or after.l2 is None:  # from 0 (e.g. zero-initialised biases) no ratio exists
            continue
        ratio = after.l2 / before.l2
        if ratio > jump_ratio:
            flag = "norm_jump"
        elif ratio < 1 / collapse_ratio:
            flag = "norm_collapse"
        else:
            continue
        detail = (f"L2 norm went from {before.l2:.6g} at {_step(before)} to {after.l2:.6g} at {_step(after)} "
                  f"(x{ratio:.3g}).")
        flags.append(HealthFlag(after.prefix, after.step, trend.name, flag, detail))
    return flags


def _frozen_flags(trend: VariableTrend) -> list[HealthFlag]:
    points = trend.points
    if trend.kind != "model" or len(points) < 2:
        return []
    if any(p.frac_changed_prev != 0.0 for p in points[1:]):  # None (a shape change) counts as moved
        return []
    detail = (f"Identical in all {len(points)} checkpoints holding it ({_step(points[0])} to {_step(points[-1])}): "
              "a trainable variable that never moves may be missing from the optimizer's var_list or get no gradient.")
    return [HealthFlag(None, None, trend.name, "frozen", detail)]
