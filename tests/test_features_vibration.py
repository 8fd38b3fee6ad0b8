"""Time-domain vibration features: hand-checkable golden values, degenerate windows, shapes, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from shared.features import (
    VIBRATION_FEATURES,
    axes_features,
    vibration_feature_names,
    vibration_features,
    window_features,
)

IDX = {name: i for i, name in enumerate(VIBRATION_FEATURES)}


def feats(x: np.ndarray) -> dict[str, float]:
    return {k: float(v) for k, v in zip(VIBRATION_FEATURES, vibration_features(x), strict=True)}


def sine(amplitude: float, periods: int = 10, per_period: int = 400) -> np.ndarray:
    k = np.arange(periods * per_period)
    return amplitude * np.sin(2 * np.pi * k / per_period)


def test_names_are_the_contract() -> None:
    assert VIBRATION_FEATURES == (
        "rms", "peak", "ptp", "crest_factor", "variance", "std", "skewness", "kurtosis",
        "shape_factor", "impulse_factor", "clearance_factor",
    )  # fmt: skip
    names = vibration_feature_names()
    assert len(names) == 33
    assert names[:2] == ["x_rms", "x_peak"]
    assert names[10] == "x_clearance_factor"
    assert names[11] == "y_rms"
    assert names[-1] == "z_clearance_factor"
    assert vibration_feature_names(("x",)) == [f"x_{f}" for f in VIBRATION_FEATURES]


def test_sine_golden_values() -> None:
    a = 2.5
    f = feats(sine(a))
    assert f["rms"] == pytest.approx(a / math.sqrt(2), rel=1e-12)
    assert f["peak"] == pytest.approx(a, rel=1e-12)
    assert f["ptp"] == pytest.approx(2 * a, rel=1e-12)
    assert f["crest_factor"] == pytest.approx(math.sqrt(2), rel=1e-12)
    assert f["variance"] == pytest.approx(a * a / 2, rel=1e-12)
    assert f["std"] == pytest.approx(a / math.sqrt(2), rel=1e-12)
    assert f["skewness"] == pytest.approx(0.0, abs=1e-12)
    assert f["kurtosis"] == pytest.approx(-1.5, abs=1e-12)
    # continuous-sine limits; the sampled sine (400 samples/period) converges to them
    assert f["shape_factor"] == pytest.approx(math.pi / (2 * math.sqrt(2)), rel=1e-4)
    assert f["impulse_factor"] == pytest.approx(math.pi / 2, rel=1e-4)
    mean_sqrt = math.gamma(0.75) / (math.sqrt(math.pi) * math.gamma(1.25))  # E sqrt|sin|
    assert f["clearance_factor"] == pytest.approx(1 / mean_sqrt**2, rel=2e-3)


def test_square_wave() -> None:
    a = 0.8
    x = np.tile([a, a, -a, -a], 50)
    f = feats(x)
    assert f["rms"] == pytest.approx(a)
    assert f["peak"] == pytest.approx(a)
    assert f["ptp"] == pytest.approx(2 * a)
    assert f["variance"] == pytest.approx(a * a)
    assert f["std"] == pytest.approx(a)
    for ratio in ("crest_factor", "shape_factor", "impulse_factor", "clearance_factor"):
        assert f[ratio] == pytest.approx(1.0)
    assert f["skewness"] == pytest.approx(0.0, abs=1e-12)
    assert f["kurtosis"] == pytest.approx(-2.0)  # m4 / m2^2 = 1


def test_asymmetric_hand_computed() -> None:
    # x = [0, 0, 0, 1]: mean 1/4, m2 = 3/16, m3 = 3/32, m4 = 21/256
    f = feats(np.array([0.0, 0.0, 0.0, 1.0]))
    assert f["variance"] == pytest.approx(3 / 16)
    assert f["skewness"] == pytest.approx((3 / 32) / (3 / 16) ** 1.5)  # = 2/sqrt(3)
    assert f["skewness"] == pytest.approx(2 / math.sqrt(3))
    assert f["kurtosis"] == pytest.approx((21 / 256) / (3 / 16) ** 2 - 3)  # = -2/3
    assert f["rms"] == pytest.approx(0.5)
    assert f["crest_factor"] == pytest.approx(2.0)
    assert f["shape_factor"] == pytest.approx(2.0)  # 0.5 / 0.25
    assert f["impulse_factor"] == pytest.approx(4.0)
    assert f["clearance_factor"] == pytest.approx(16.0)  # 1 / (1/4)^2


def test_matches_scipy_moments_on_random_data() -> None:
    x = np.random.default_rng(1).gamma(2.0, size=(4, 1000))
    out = vibration_features(x)
    np.testing.assert_allclose(out[:, IDX["skewness"]], stats.skew(x, axis=-1), rtol=1e-10)
    np.testing.assert_allclose(out[:, IDX["kurtosis"]], stats.kurtosis(x, axis=-1), rtol=1e-10)
    np.testing.assert_allclose(out[:, IDX["variance"]], np.var(x, axis=-1), rtol=1e-12)


def test_constant_signal_is_defined() -> None:
    f = feats(np.full(64, -3.0))
    assert f == {
        "rms": 3.0, "peak": 3.0, "ptp": 0.0, "crest_factor": 1.0, "variance": 0.0, "std": 0.0,
        "skewness": 0.0, "kurtosis": 0.0, "shape_factor": 1.0, "impulse_factor": 1.0,
        "clearance_factor": 1.0,
    }  # fmt: skip


def test_zero_signal_is_all_zero() -> None:
    assert feats(np.zeros(32)) == dict.fromkeys(VIBRATION_FEATURES, 0.0)


def test_near_constant_and_extreme_scales_stay_finite() -> None:
    rng = np.random.default_rng(2)
    near = 0.1 + 3e-17 * rng.standard_normal(256)  # a few ulps of rounding noise around 0.1
    f = feats(near)
    assert f["skewness"] == 0.0 and f["kurtosis"] == 0.0
    base = vibration_features(sine(1.0))
    for scale in (1e-200, 1e90):
        out = vibration_features(sine(scale))
        assert np.all(np.isfinite(out))
        ratios = [IDX[k] for k in ("crest_factor", "skewness", "kurtosis", "shape_factor", "impulse_factor")]
        np.testing.assert_allclose(out[ratios], base[ratios], rtol=1e-9, atol=1e-12)
        assert out[IDX["rms"]] == pytest.approx(scale / math.sqrt(2), rel=1e-12)


def test_vectorised_over_leading_axes() -> None:
    x = np.random.default_rng(3).standard_normal((5, 3, 128))
    out = vibration_features(x)
    assert out.shape == (5, 3, 11)
    assert out.dtype == np.float64
    for i in range(5):
        for j in range(3):
            np.testing.assert_allclose(out[i, j], vibration_features(x[i, j]), rtol=1e-13)
    # integer and float32 input are accepted and computed in float64
    ints = np.array([1, -2, 3, -4], dtype=np.int16)
    np.testing.assert_allclose(vibration_features(ints), vibration_features(ints.astype(np.float64)))


def test_window_features_three_axes() -> None:
    rng = np.random.default_rng(4)
    x, y, z = rng.standard_normal((3, 256))
    names, values = window_features(x, y, z)
    assert names == vibration_feature_names()
    assert values.shape == (33,)
    np.testing.assert_allclose(values[:11], vibration_features(x))
    np.testing.assert_allclose(values[11:22], vibration_features(y))
    np.testing.assert_allclose(values[22:], vibration_features(z))
    assert values[names.index("y_peak")] == pytest.approx(np.max(np.abs(y)))


def test_window_features_single_axis_and_batched() -> None:
    x = sine(2.0)
    names, values = window_features(x)
    assert names == [f"x_{f}" for f in VIBRATION_FEATURES]
    assert values[names.index("x_rms")] == pytest.approx(2 / math.sqrt(2))
    batch = np.random.default_rng(5).standard_normal((7, 3, 64))
    names, values = window_features(batch[:, 0], batch[:, 1], batch[:, 2])
    assert values.shape == (7, 33)
    np.testing.assert_allclose(values.reshape(7, 3, 11), vibration_features(batch))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.array([1.0, np.nan, 2.0]), "x: 1 non-finite value"),
        (np.array([[1.0, 2.0], [np.inf, 1.0]]), "first at index (1, 0)"),
        (np.array([1.0]), "x: too short: 1 samples"),
        (np.array(3.0), "x: expected at least 1 dimension"),
        (np.zeros((0, 8)), "x: empty array"),
        (np.array([1 + 1j, 2.0]), "x: expected real numbers"),
        (np.array([True, False]), "x: expected real numbers"),
        (["a", "b"], "x: expected real numbers"),
        ([[1.0, 2.0], [3.0]], "x: not a rectangular numeric array"),
        (np.array([1e101, 0.0]), "exceeds the supported"),
    ],
)
def test_bad_input_raises_precise_error(bad: object, message: str) -> None:
    with pytest.raises(ValueError) as err:
        vibration_features(bad)
    assert message in str(err.value)


def test_window_features_errors_name_the_axis() -> None:
    x = np.zeros(16)
    with pytest.raises(ValueError, match="x alone"):
        window_features(x, y=x)
    with pytest.raises(ValueError, match=r"z: shape \(8,\) differs"):
        window_features(x, x, np.zeros(8))
    with pytest.raises(ValueError, match="y: 1 non-finite"):
        window_features(x, np.r_[np.nan, np.zeros(15)], x)


def test_feature_name_errors() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        vibration_feature_names(("x", "x"))
    with pytest.raises(ValueError, match="at least one"):
        vibration_feature_names(())
    with pytest.raises(ValueError, match="sequence of axis names"):
        vibration_feature_names("xyz")


def test_axes_features_any_subset_matches_per_axis_features() -> None:
    rng = np.random.default_rng(3)
    h, v = rng.normal(size=(2, 4, 256))
    names, values = axes_features({"y": h, "z": v})
    assert names[:2] == ["y_rms", "y_peak"] and names[11] == "z_rms" and len(names) == 22
    assert values.shape == (4, 22)
    np.testing.assert_allclose(values[:, :11], vibration_features(h))
    np.testing.assert_allclose(values[:, 11:], vibration_features(v))
    with pytest.raises(ValueError, match="z: shape"):
        axes_features({"y": h, "z": v[:, :100]})
    with pytest.raises(ValueError, match="at least one axis"):
        axes_features({})
