"""Remaining useful life (shared/health/rul.py) on hand-checkable paths, and the PHM 2012 score."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.health.rul import (
    NoTrend,
    RulEstimate,
    ThresholdPrior,
    challenge_score,
    estimate_rul,
    threshold_prior,
    trend_test,
)

T = np.arange(0.0, 3600.0, 10.0)


def test_an_exact_exponential_path_gives_the_exact_rul() -> None:
    # S / S_cal = exp(0.1 + 2e-4 t): y = ln(S / S_cal) = 0.1 + 2e-4 t reaches D = 1.5 at t = 7000 s
    y = 0.1 + 2e-4 * T
    est = estimate_rul(T, y, t_now=3000.0, prior=ThresholdPrior(1.5, 0.0, 2), window_s=1200.0)
    assert isinstance(est, RulEstimate)
    assert est.median_s == pytest.approx(4000.0)
    assert est.low_s == pytest.approx(4000.0) and est.high_s == pytest.approx(4000.0)
    assert est.slope_per_s == pytest.approx(2e-4)
    assert est.level_now == pytest.approx(0.1 + 2e-4 * 3000.0)
    assert est.n_points == 120


def test_the_offset_exponential_model_is_exact_on_its_own_path() -> None:
    # Gebraeel with phi = S_cal: S / S_cal = 1 + 0.05 exp(5e-4 t); D = its value at t = 8000 s
    y = np.log1p(0.05 * np.exp(5e-4 * T))
    d = math.log1p(0.05 * math.exp(5e-4 * 8000.0))
    prior = ThresholdPrior(d, 0.0, 2)
    est = estimate_rul(T, y, 3000.0, prior, 1200.0, model="exp_offset")
    assert isinstance(est, RulEstimate)
    assert est.median_s == pytest.approx(5000.0, rel=1e-9)
    # the log-linear model on the same accelerating path is late (extrapolates a straight line)
    late = estimate_rul(T, y, 3000.0, prior, 1200.0, model="log_linear")
    assert isinstance(late, RulEstimate) and late.median_s > 5000.0


def test_the_threshold_spread_widens_the_interval() -> None:
    y = 0.1 + 2e-4 * T
    est = estimate_rul(T, y, 3000.0, ThresholdPrior(1.5, 0.2, 5), 1200.0, n_boot=2000)
    assert isinstance(est, RulEstimate)
    # D ~ N(1.5, 0.2): RUL = (D - 0.7) / 2e-4, its 10th/90th percentiles at 1.5 -+ 1.2816 * 0.2
    assert est.median_s == pytest.approx(4000.0, rel=0.03)
    assert est.low_s == pytest.approx((1.5 - 1.2816 * 0.2 - 0.7) / 2e-4, rel=0.05)
    assert est.high_s == pytest.approx((1.5 + 1.2816 * 0.2 - 0.7) / 2e-4, rel=0.05)


def test_a_flat_series_gives_no_degradation_trend() -> None:
    flat = np.full(T.size, 0.3)
    out = estimate_rul(T, flat, 3000.0, ThresholdPrior(1.5, 0.1, 5), 1200.0)
    assert isinstance(out, NoTrend) and "no degradation trend" in out.reason
    wobble = 0.3 + 0.01 * (-1.0) ** np.arange(T.size)
    assert isinstance(estimate_rul(T, wobble, 3000.0, ThresholdPrior(1.5, 0.1, 5), 1200.0), NoTrend)
    falling = 1.0 - 1e-4 * T
    assert isinstance(estimate_rul(T, falling, 3000.0, ThresholdPrior(1.5, 0.1, 5), 1200.0), NoTrend)
    few = estimate_rul(T, 1e-3 * T, 3000.0, ThresholdPrior(1.5, 0.1, 5), 30.0)
    assert isinstance(few, NoTrend) and "window" in few.reason


def test_past_the_threshold_the_rul_is_zero() -> None:
    est = estimate_rul(T, 2.0 + 1e-4 * T, 3000.0, ThresholdPrior(1.5, 0.0, 2), 1200.0)
    assert isinstance(est, RulEstimate) and est.median_s == 0.0


def test_trend_test_on_a_monotone_series() -> None:
    tr = trend_test(T[:20], np.arange(20.0))
    # S = n(n-1)/2 = 190, var = 20*19*45/18 = 950, z = 189 / sqrt(950)
    assert tr.z == pytest.approx(189 / math.sqrt(950))
    assert tr.rising and tr.slope == pytest.approx(0.1)
    with pytest.raises(ValueError):
        trend_test([0.0, 1.0], [0.0, 1.0])


def test_threshold_prior() -> None:
    p = threshold_prior([1.0, 2.0, 3.0])
    assert (p.median, p.spread, p.n_runs) == (2.0, 1.0, 3)
    with pytest.raises(ValueError):
        threshold_prior([1.0])


def test_challenge_score_known_values() -> None:
    actual = np.full(5, 100.0)
    er, a = challenge_score(actual, np.array([100.0, 105.0, 80.0, 0.0, np.inf]))
    assert er == pytest.approx([0.0, -5.0, 20.0, 100.0, -np.inf])
    assert a == pytest.approx([1.0, 0.5, 0.5, 2.0**-5, 0.0])
    with pytest.raises(ValueError):
        challenge_score(np.array([0.0]), np.array([1.0]))
    with pytest.raises(ValueError):
        challenge_score(np.array([1.0]), np.array([-1.0]))


def test_pooled_model_spans_the_single_fits_and_needs_a_trend_somewhere() -> None:
    # rms_log = 0.2 + t / 1000 on 10 s windows: every path and window sees the same rising line, the
    # threshold 1.2 Np is crossed at t = 1000 s; at t_now = 600 s the RUL is ~400 s.
    t = np.arange(0.0, 601.0, 10.0)
    y = 0.2 + t / 1000.0 + np.random.default_rng(1).normal(0, 0.005, t.size)
    prior = ThresholdPrior(1.2, 0.02, 5)
    single = [estimate_rul(t, y, 600.0, prior, 600.0, model=m) for m in ("log_linear", "exp_offset")]
    pooled = estimate_rul(t, y, 600.0, prior, 600.0, model="pooled")
    assert isinstance(pooled, RulEstimate) and all(isinstance(e, RulEstimate) for e in single)
    assert pooled.median_s == pytest.approx(400.0, rel=0.15)
    assert min(e.low_s for e in single) <= pooled.low_s and pooled.high_s <= max(e.high_s for e in single)
    assert pooled.n_points == single[0].n_points == t.size - 1  # the longest window, t > t_now - 600 s
    flat = estimate_rul(t, np.full(t.size, 0.1), 600.0, prior, 600.0, model="pooled")
    assert isinstance(flat, NoTrend) and "600 s" in flat.reason
    with pytest.raises(ValueError):
        estimate_rul(t, y, 600.0, prior, 600.0, model="nope")
