"""Baseline statistics and the calibration-data validation rule (shared.learning.baseline)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from scipy.stats import norm

from shared.learning.baseline import (
    Baseline,
    familywise_cutoff,
    robust_scales,
    robust_z,
    validate_baseline,
)

FAIL_RE = re.compile(r"^Baseline validation failed: \d+\.\d% outliers$")


def clean(rng: np.random.Generator, n: int, d: int, rho: float) -> np.ndarray:
    """Gaussian features, unit variance, pairwise correlation rho (one shared factor)."""
    return math.sqrt(1 - rho) * rng.normal(size=(n, d)) + math.sqrt(rho) * rng.normal(size=(n, 1))


def contaminate(rng: np.random.Generator, X: np.ndarray, frac: float, shift: float, k: int) -> np.ndarray:
    """Replace the first frac·n rows by fault rows: shifted by ``shift`` σ in the first k features."""
    Y = X.copy()
    m = int(round(frac * X.shape[0]))
    Y[:m, :k] += shift
    return Y


# --- Baseline -------------------------------------------------------------------------------
def test_baseline_fit_hand_values_and_json_round_trip():
    X = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 60.0]])
    b = Baseline.fit(X, ["a", "b"])
    assert b.n == 3
    assert b.mean == (2.0, 30.0)
    assert b.std == pytest.approx((math.sqrt(2 / 3), math.sqrt((400 + 100 + 900) / 3)))
    assert b.min == (1.0, 10.0) and b.max == (3.0, 60.0)
    assert b.median == (2.0, 20.0)
    assert b.mad == (1.0, 10.0)  # |[1,2,3]-2| -> median 1; |[10,20,60]-20| -> [10,0,40] -> 10
    d = json.loads(json.dumps(b.to_dict()))
    assert d["features"][1] == {
        "name": "b",
        "mean": 30.0,
        "std": b.std[1],
        "min": 10.0,
        "max": 60.0,
        "median": 20.0,
        "mad": 10.0,
    }
    assert Baseline.from_dict(d) == b


def test_baseline_rejects_bad_input():
    with pytest.raises(ValueError, match="non-finite"):
        Baseline.fit(np.array([[1.0, np.nan]]), ["a", "b"])
    with pytest.raises(ValueError, match="2 feature names for 3"):
        Baseline.fit(np.zeros((4, 3)), ["a", "b"])
    with pytest.raises(ValueError, match="2-D"):
        Baseline.fit(np.zeros(4), ["a"])
    with pytest.raises(ValueError, match="duplicate"):
        Baseline.fit(np.zeros((4, 2)), ["a", "a"])
    with pytest.raises(ValueError, match="finite number"):
        Baseline.from_dict(
            {
                "n": 3,
                "features": [
                    {"name": "a", "mean": float("nan"), "std": 1, "min": 0, "max": 1, "median": 0, "mad": 1}
                ],
            }
        )


# --- robust statistics ------------------------------------------------------------------------
def test_familywise_cutoff_is_sidak_equivalent_of_3_sigma():
    p1 = 2 * norm.sf(3.0)
    assert familywise_cutoff(3.0, 1) == pytest.approx(3.0, abs=1e-12)
    for d, expected in ((6, 3.51), (16, 3.76), (33, 3.94)):
        c = familywise_cutoff(3.0, d)
        assert c == pytest.approx(expected, abs=0.005)
        # P(all d independent |Z| <= c) == P(|Z| <= 3)
        assert (1 - 2 * norm.sf(c)) ** d == pytest.approx(1 - p1, rel=1e-12)


def test_robust_scales_are_consistent_for_gaussian_and_resist_masking():
    rng = np.random.default_rng(0)
    X = rng.normal(5.0, 2.0, size=(20_000, 2))
    med, lo, hi = robust_scales(X)
    assert med == pytest.approx([5.0, 5.0], abs=0.05)
    assert lo == pytest.approx([2.0, 2.0], rel=0.03) and hi == pytest.approx([2.0, 2.0], rel=0.03)
    # 10 % of rows at +8σ: plain std is inflated ~1.6x (masking), the robust upper scale is not.
    Y = contaminate(rng, X, 0.10, 16.0, 2)
    assert Y[:, 0].std() > 1.6 * 2.0
    _, lo, hi = robust_scales(Y)
    assert hi == pytest.approx([2.0, 2.0], rel=0.15)


def test_skewed_and_clipped_and_atomic_features_are_not_outliers():
    rng = np.random.default_rng(1)
    n = 400
    capped = 100.0 * np.minimum(rng.normal(0.92, 0.01, n) / 0.92, 1.0)  # PF score capped at 100 %
    lognorm = np.exp(rng.normal(0.0, 0.5, n))  # right-skewed
    counts = (rng.random(n) < 0.1).astype(float)  # 0 in 90 % of rows, 1 in 10 %
    X = np.column_stack([capped, lognorm, counts])
    med, lo, hi = robust_scales(X)
    # capped score: the long lower side has the σ of the uncapped signal, 100·0.01/0.92 = 1.087
    assert lo[0] == pytest.approx(1.087, rel=0.1) and hi[0] < 0.2
    assert hi[1] > 1.2 * lo[1]  # log-normal: the right side is wider
    assert hi[2] == math.inf and lo[2] == math.inf  # both sides of the count are the atom 0: not judged
    assert np.all(robust_z(X)[:, 2] == 0.0)
    res = validate_baseline(X, ["pf_score", "lognormal", "count"])
    assert res.ok, res.message


def test_constant_feature_gives_zero_z():
    X = np.column_stack([np.full(50, 7.0), np.arange(50.0)])
    assert np.all(robust_z(X)[:, 0] == 0.0)
    assert validate_baseline(X).ok


# --- the rule, both directions -----------------------------------------------------------------
@pytest.mark.parametrize("d", [6, 16, 33])
@pytest.mark.parametrize("n", [100, 300, 1000, 10_000])
@pytest.mark.parametrize("rho", [0.0, 0.8])
def test_clean_gaussian_passes(d, n, rho):
    rng = np.random.default_rng(1000 * d + n + int(10 * rho))
    res = validate_baseline(clean(rng, n, d, rho))
    assert res.ok, res.message
    assert res.outlier_fraction <= 0.05
    assert res.message.startswith("Baseline validated:")


@pytest.mark.parametrize("d", [6, 16, 33])
@pytest.mark.parametrize("n", [100, 300, 1000])
@pytest.mark.parametrize("rho", [0.0, 0.8])
def test_ten_percent_fault_rows_fail(d, n, rho):
    rng = np.random.default_rng(7 * d + n + int(10 * rho))
    X = contaminate(rng, clean(rng, n, d, rho), frac=0.10, shift=6.0, k=3)
    res = validate_baseline(X)
    assert not res.ok
    assert FAIL_RE.match(res.message), res.message
    assert 0.09 <= res.outlier_fraction <= 0.15


def test_fault_in_a_single_feature_is_caught_by_the_feature_rule():
    rng = np.random.default_rng(5)
    X = contaminate(rng, clean(rng, 1000, 33, 0.0), frac=0.10, shift=5.0, k=1)
    res = validate_baseline(X)
    assert not res.ok
    assert res.worst_feature == "f0"
    assert res.feature_fraction >= 0.09


def test_five_percent_boundary_and_message_are_exact():
    # 1-D: 190 evenly spread Gaussian quantiles + far outliers at 100 σ.
    core = norm.ppf((np.arange(190) + 0.5) / 190)
    ok = validate_baseline(np.concatenate([core, np.full(10, 100.0)])[:, None])
    assert ok.ok and ok.outlier_fraction == pytest.approx(10 / 200)  # exactly 5 % is not "more than"
    bad = validate_baseline(np.concatenate([core, np.full(11, 100.0)])[:, None])
    assert not bad.ok
    assert bad.outlier_fraction == pytest.approx(11 / 201)
    assert bad.message == "Baseline validation failed: 5.5% outliers"
    # thresholds are configurable
    assert validate_baseline(
        np.concatenate([core, np.full(11, 100.0)])[:, None], max_outlier_fraction=0.06
    ).ok
    assert validate_baseline(np.concatenate([core, np.full(11, 100.0)])[:, None], sigma=200.0).ok
    # the core alone has 4.2 % of its points beyond ±2σ (hand count: 2·4 of 190 quantiles)
    core_only = validate_baseline(core[:, None], sigma=2.0, max_outlier_fraction=0.01)
    assert not core_only.ok and core_only.outlier_fraction == pytest.approx(8 / 190)


def test_validate_rejects_bad_arguments():
    with pytest.raises(ValueError, match="at least 2"):
        validate_baseline(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="sigma"):
        validate_baseline(np.zeros((10, 3)), sigma=0)
    with pytest.raises(ValueError, match="max_outlier_fraction"):
        validate_baseline(np.zeros((10, 3)), max_outlier_fraction=1.5)
