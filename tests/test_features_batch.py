"""Batch features and sliding windows: golden values, names, shapes, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.features import (
    BATCH_FEATURE_NAMES,
    DEFAULT_BATCH_WINDOW,
    batch_features,
    sliding_windows,
)


def test_names_are_the_contract() -> None:
    assert len(BATCH_FEATURE_NAMES) == 16
    assert BATCH_FEATURE_NAMES[:4] == ("voltage_v_mean", "voltage_v_std", "voltage_v_ptp", "voltage_v_rms")
    assert BATCH_FEATURE_NAMES[4] == "current_a_mean"
    assert BATCH_FEATURE_NAMES[8:12] == (
        "power_factor_mean", "power_factor_std", "power_factor_ptp", "power_factor_rms",
    )  # fmt: skip
    assert BATCH_FEATURE_NAMES[-1] == "vibration_g_rms"
    assert DEFAULT_BATCH_WINDOW == 100


def test_golden_values() -> None:
    window = np.array(
        [
            [228.0, 232.0, 228.0, 232.0],  # voltage: mean 230, std 2, ptp 4
            [10.0, 10.0, 10.0, 10.0],  # current: constant
            [0.9, 0.8, 0.9, 0.8],  # PF: mean 0.85, std 0.05, ptp 0.1
            [0.0, 3.0, 0.0, -3.0],  # vibration: mean 0, rms sqrt(4.5)
        ]
    )
    f = dict(zip(BATCH_FEATURE_NAMES, batch_features(window), strict=True))
    assert f["voltage_v_mean"] == pytest.approx(230.0)
    assert f["voltage_v_std"] == pytest.approx(2.0)
    assert f["voltage_v_ptp"] == pytest.approx(4.0)
    assert f["voltage_v_rms"] == pytest.approx(math.sqrt((228**2 + 232**2) / 2))
    assert (f["current_a_mean"], f["current_a_std"], f["current_a_ptp"], f["current_a_rms"]) == (
        10.0, 0.0, 0.0, 10.0,
    )  # fmt: skip
    assert f["power_factor_mean"] == pytest.approx(0.85)
    assert f["power_factor_std"] == pytest.approx(0.05)
    assert f["power_factor_ptp"] == pytest.approx(0.1)
    assert f["vibration_g_mean"] == pytest.approx(0.0)
    assert f["vibration_g_std"] == pytest.approx(math.sqrt(4.5))
    assert f["vibration_g_ptp"] == pytest.approx(6.0)
    assert f["vibration_g_rms"] == pytest.approx(math.sqrt(4.5))


def test_vectorised_shape_and_consistency() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, 3, 4, 100))
    out = batch_features(w)
    assert out.shape == (5, 3, 16)
    np.testing.assert_allclose(out[2, 1], batch_features(w[2, 1]))
    np.testing.assert_allclose(out[..., 1], np.std(w[..., 0, :], axis=-1), rtol=1e-12)  # voltage std
    np.testing.assert_allclose(out[..., 15], np.sqrt(np.mean(w[..., 3, :] ** 2, axis=-1)), rtol=1e-12)


def test_sliding_windows_layout() -> None:
    m = 10
    readings = np.stack([np.arange(m) + 100 * s for s in range(4)], axis=1).astype(float)  # [m, 4]
    wins = sliding_windows(readings, window=4, step=3)
    assert wins.shape == (3, 4, 4)  # (10 - 4) // 3 + 1
    for j in range(3):
        np.testing.assert_array_equal(wins[j], readings[3 * j : 3 * j + 4].T)
    assert not wins.flags.writeable  # read-only stride-trick view
    every = sliding_windows(readings, window=4)
    assert every.shape == (7, 4, 4)
    # a list of 4-element readings works the same
    listed = sliding_windows([list(r) for r in readings], window=4, step=3)
    np.testing.assert_array_equal(listed, wins)
    # features of the windows equal features of the slices
    np.testing.assert_allclose(batch_features(wins)[1], batch_features(readings[3:7].T))


def test_sliding_windows_too_few_readings_gives_none() -> None:
    out = sliding_windows(np.ones((99, 4)))
    assert out.shape == (0, 4, 100)
    assert sliding_windows(np.ones((100, 4))).shape == (1, 4, 100)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"readings": np.ones((10, 3))}, r"readings: expected shape \[m, 4\]"),
        ({"readings": np.ones((2, 10, 4))}, r"readings: expected shape \[m, 4\]"),
        ({"readings": np.ones(4)}, "readings: expected at least 2 dimension"),
        ({"readings": np.ones((10, 4)), "window": 1}, "window: must be >= 2"),
        ({"readings": np.ones((10, 4)), "window": 2.5}, "window: expected an integer"),
        ({"readings": np.ones((10, 4)), "step": 0}, "step: must be >= 1"),
        ({"readings": np.r_[np.ones((3, 4)), [[1, 2, np.nan, 4]]]}, "readings: 1 non-finite"),
    ],
)
def test_sliding_windows_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sliding_windows(**kwargs)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.ones((3, 10)), r"window: expected shape \[\.\.\., 4, n\]"),
        (np.ones(10), "window: expected at least 2 dimension"),
        (np.ones((4, 1)), "window: too short: 1 samples"),
        (np.r_[np.ones((3, 5)), [[1, 1, np.inf, 1, 1]]], "window: 1 non-finite"),
    ],
)
def test_batch_features_errors(bad: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        batch_features(bad)
