"""Health indicators against the calibrated baseline (shared/health/indicators.py), hand-checkable."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.health.indicators import (
    MAD_TO_SIGMA,
    axes_log_ratio,
    ewma,
    log_ratio,
    robust_baseline,
    robust_z,
    window_indicators,
    window_inputs,
)


def test_robust_baseline_median_and_mad() -> None:
    b = robust_baseline([1.0, 2.0, 3.0, 4.0, 100.0])  # median 3, |x-3| = 2,1,0,1,97 -> MAD 1
    assert b.median == 3.0
    assert b.scale == pytest.approx(MAD_TO_SIGMA)
    assert b.n == 5


def test_robust_baseline_floors_a_constant_calibration() -> None:
    assert robust_baseline([0.5] * 10).scale == pytest.approx(0.005)  # 1 % of |median|
    assert robust_baseline([0.5] * 10, rel_floor=0.0, abs_floor=0.2).scale == 0.2


@pytest.mark.parametrize("bad", [[1.0, 2.0], [1.0, math.nan, 2.0], [[1.0, 2.0, 3.0]]])
def test_robust_baseline_refuses_bad_input(bad: list) -> None:
    with pytest.raises(ValueError):
        robust_baseline(bad)


def test_log_ratio_and_z() -> None:
    assert log_ratio([1.0, 2.0, 0.5], 1.0) == pytest.approx([0.0, math.log(2), -math.log(2)])
    assert np.isfinite(log_ratio([0.0], 1.0)).all()  # a dead channel stays finite
    with pytest.raises(ValueError, match="reference"):
        log_ratio([1.0], 0.0)
    with pytest.raises(ValueError, match="x"):
        log_ratio([-1.0], 1.0)
    assert robust_z([3.0, 5.0], robust_baseline([1.0, 2.0, 3.0, 4.0, 5.0])) == pytest.approx(
        [0.0, 2.0 / MAD_TO_SIGMA]
    )


def test_ewma_step_response_in_data_time() -> None:
    t = np.arange(0.0, 1000.0, 10.0)
    x = np.where(t >= 100.0, 1.0, 0.0)
    e = ewma(t, x, tau_s=100.0)
    assert e[t < 100].max() == 0.0
    # after 100 s at the new level: 1 - exp(-1) (the sample at 100 s counts as one 10 s step)
    i = int(np.flatnonzero(t == 190.0)[0])
    assert e[i] == pytest.approx(1 - math.exp(-1.0))


def test_ewma_gap_restarts_at_the_new_sample_and_spacing_does_not_matter() -> None:
    e = ewma([0.0, 1e6], [0.0, 5.0], tau_s=10.0)
    assert e[1] == pytest.approx(5.0)
    coarse = ewma([0.0, 20.0], [0.0, 1.0], 10.0)[-1]
    fine = ewma([0.0, 10.0, 20.0], [0.0, 1.0, 1.0], 10.0)[-1]
    assert coarse == pytest.approx(fine)  # same data time at level 1 -> same mean
    with pytest.raises(ValueError, match="non-decreasing"):
        ewma([1.0, 0.0], [0.0, 0.0], 1.0)


def test_window_inputs_and_indicators() -> None:
    names = ["x_rms", "x_kurtosis", "y_rms", "y_kurtosis"]
    values = np.array([[1.0, 0.0, 0.5, 0.1]] * 4 + [[2.0, 3.0, 0.5, 0.0]])
    extras = {f"band_{i}_energy": np.full(5, 1.0) for i in range(8)}
    extras["band_7_energy"] = np.array([1.0, 1.0, 1.0, 1.0, 5.0])
    inp = window_inputs(names, values, extras)
    assert inp["rms"] == pytest.approx([1, 1, 1, 1, 2])
    assert inp["hf_energy"] == pytest.approx([4, 4, 4, 4, 8])  # bands 4..7
    ind = window_indicators(inp, np.array([True] * 4 + [False]))
    assert ind["rms_log"][-1] == pytest.approx(math.log(2))
    assert ind["hf_energy_log"][-1] == pytest.approx(math.log(2))
    assert ind["rms_log"][:4] == pytest.approx(0.0)
    assert ind["kurtosis_z"][-1] > 10  # kurtosis 3 vs a calibration of 0.1 (floored spread)
    with pytest.raises(ValueError, match="band_0_energy"):
        window_inputs(names, values, {})
    with pytest.raises(ValueError, match="calibration"):
        window_indicators(inp, np.array([True, True, False, False, False]))


def test_axes_log_ratio_is_the_mean_of_each_axis_against_its_own_calibration() -> None:
    # x at 4x its calibration (ln 4 = 1.386 Np), y unchanged (0 Np): mean 0.693 Np = ln 2
    out = axes_log_ratio({"x": [0.4, 0.1], "y": [2.0, 2.0]}, {"x": 0.1, "y": 2.0})
    np.testing.assert_allclose(out, [math.log(2.0), 0.0])
    # one axis: log_ratio itself; axes without a reference are ignored
    np.testing.assert_allclose(axes_log_ratio({"x": [0.2], "z": [9.0]}, {"x": 0.1}), [math.log(2.0)])
    with pytest.raises(ValueError):
        axes_log_ratio({"z": [1.0]}, {"x": 0.1})
    with pytest.raises(ValueError):
        axes_log_ratio({"x": [1.0, 2.0], "y": [1.0]}, {"x": 0.1, "y": 0.1})
