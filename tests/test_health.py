"""Health flags on a real run with injected NaN, a frozen weight, a norm jump and a norm collapse."""

from __future__ import annotations

import numpy as np
import pytest

from ckptlib.compare.health import checkpoint_health, run_health
from ckptlib.runs.history import load_history
from ckptlib.runs.resolve import open_checkpoint


@pytest.fixture(scope="module")
def cb():
    import cmpbuild

    return cmpbuild


@pytest.fixture(scope="module")
def run(tmp_path_factory, cb):
    folder = str(tmp_path_factory.mktemp("health") / "run")
    return folder, cb.health_run(folder)


@pytest.mark.parametrize("backend", ["native", "tf"])
def test_flags_on_model_weights(run, backend):
    folder, saved = run
    health = run_health(load_history(folder), backend=backend)
    found = {(f.variable, f.flag, f.step) for f in health.flags}
    assert found == {
        ("nanvar", "nan_inf", 4),
        ("nanconst", "nan_inf", 1),
        ("nanconst", "frozen", None),  # NaN == NaN: a constant tensor holding NaN never moved
        ("frozen/w", "frozen", None),
        ("dense/kernel", "norm_jump", 5),
        ("dense/bias", "norm_collapse", 5),  # and no jump at step 6: a ratio from a zero norm is undefined
    }
    assert set(health.checked) == {"dense/kernel", "dense/bias", "frozen/w", "nanvar", "nanconst"}
    flags = {(f.variable, f.flag): f for f in health.flags}
    assert flags[("nanvar", "nan_inf")].prefix == saved[3]
    assert "1 NaN and 0 Inf" in flags[("nanvar", "nan_inf")].detail
    assert "3 of the 6" in flags[("nanvar", "nan_inf")].detail
    assert flags[("frozen/w", "frozen")].prefix is None and "all 6" in flags[("frozen/w", "frozen")].detail
    assert health.skipped == () and not health.include_optimizer


def test_norm_jump_ratio_is_the_numpy_ratio(run, cb):
    folder, saved = run
    kernel4 = cb.read_all(saved[3])["dense/kernel"].astype(np.float64)
    kernel5 = cb.read_all(saved[4])["dense/kernel"].astype(np.float64)
    ratio = np.linalg.norm(kernel5) / np.linalg.norm(kernel4)
    flag = next(f for f in run_health(load_history(folder)).flags if f.flag == "norm_jump")
    assert f"(x{ratio:.3g})" in flag.detail
    # Just above the ratio: no jump; just below: the jump is flagged.
    assert not [f for f in run_health(load_history(folder), jump_ratio=ratio * 1.01).flags if f.flag == "norm_jump"]
    assert [f for f in run_health(load_history(folder), jump_ratio=ratio * 0.99).flags if f.flag == "norm_jump"]


def test_optimizer_slots_only_when_asked(run):
    folder, saved = run
    default = run_health(load_history(folder))
    assert not [name for name in default.checked if "Adam" in name or "power" in name]
    full = run_health(load_history(folder), include_optimizer=True)
    assert {"dense/kernel/Adam", "dense/kernel/Adam_1", "beta1_power"} <= set(full.checked)
    slot_nan = [f for f in full.flags if f.variable == "dense/kernel/Adam" and f.flag == "nan_inf"]
    assert len(slot_nan) == 1 and slot_nan[0].step == 6 and slot_nan[0].prefix == saved[5]
    assert not [f for f in full.flags if f.flag == "frozen" and "Adam" in f.variable]
    assert not [f for f in full.flags if "power" in f.variable]  # beta powers decay by design
    assert "global_step" not in full.checked


def test_checkpoint_health(run):
    _, saved = run
    flags = checkpoint_health(open_checkpoint(saved[3]))
    assert {(f.variable, f.flag, f.prefix) for f in flags} == {("nanvar", "nan_inf", saved[3]),
                                                               ("nanconst", "nan_inf", saved[3])}
    with_slots = checkpoint_health(open_checkpoint(saved[5]), include_optimizer=True)
    assert {f.variable for f in with_slots} == {"dense/kernel/Adam", "nanvar", "nanconst"}


def test_ratios_must_exceed_one(run):
    with pytest.raises(ValueError, match="jump_ratio"):
        run_health(load_history(run[0]), jump_ratio=1.0)
    with pytest.raises(ValueError, match="collapse_ratio"):
        run_health(load_history(run[0]), collapse_ratio=0.5)
