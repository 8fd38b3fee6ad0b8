"""Legacy per-reading features: time-aware rolling mean, spikes, scores, ratios, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.features import LEGACY_FEATURE_NAMES, LegacyFeatureState

T0 = 1_700_000_000.0  # data time (Unix s); the wall clock plays no role


def upd(state: LegacyFeatureState, t: float, v: float = 400.0, c: float = 10.0, pf: float = 0.9,
        g: float = 0.5) -> dict[str, float]:  # fmt: skip
    out = state.update(T0 + t, v, c, pf, g)
    assert out.shape == (6,) and out.dtype == np.float64 and np.all(np.isfinite(out))
    return {k: float(x) for k, x in zip(LEGACY_FEATURE_NAMES, out, strict=True)}


def test_names_are_the_contract() -> None:
    assert LEGACY_FEATURE_NAMES == (
        "voltage_rolling_mean_1h", "current_spike_count", "power_factor_efficiency_score",
        "vibration_intensity_rms", "voltage_stability", "power_vibration_ratio",
    )  # fmt: skip


def test_rolling_mean_drops_old_points_by_data_time() -> None:
    s = LegacyFeatureState()
    assert upd(s, 0, v=100)["voltage_rolling_mean_1h"] == 100
    assert upd(s, 1800, v=200)["voltage_rolling_mean_1h"] == 150
    assert upd(s, 3599, v=300)["voltage_rolling_mean_1h"] == 200  # t=0 is 3599 s old: kept
    assert upd(s, 3600, v=400)["voltage_rolling_mean_1h"] == 300  # t=0 is exactly 3600 s old: dropped
    assert s.n_horizon == 3
    assert upd(s, 7200, v=500)["voltage_rolling_mean_1h"] == 500  # 1800, 3599, 3600 all dropped
    assert s.n_horizon == 1
    # a long gap empties the horizon down to the newest reading
    assert upd(s, 100_000, v=230)["voltage_rolling_mean_1h"] == 230
    assert s.last_ts == T0 + 100_000


def test_rolling_mean_memory_is_bounded() -> None:
    s = LegacyFeatureState(max_horizon_readings=3)
    for t, v in enumerate([10.0, 20.0, 30.0, 40.0, 50.0]):
        out = upd(s, t, v=v)
    assert s.n_horizon == 3
    assert out["voltage_rolling_mean_1h"] == pytest.approx(40.0)  # newest 3 readings


def test_out_of_order_reading_raises_and_leaves_state_unchanged() -> None:
    s = LegacyFeatureState()
    upd(s, 10, v=100)
    with pytest.raises(ValueError, match="ts_seconds: .* is earlier than the previous"):
        upd(s, 9, v=999)
    assert s.n_horizon == 1
    assert upd(s, 10, v=300)["voltage_rolling_mean_1h"] == 200  # equal timestamps are fine


def test_current_spike_count() -> None:
    s = LegacyFeatureState()
    for t in range(9):
        assert upd(s, t, c=10.0)["current_spike_count"] == 0  # flat current: no spikes
    # last 10 currents: nine 10 A and one 20 A -> mean 11, sigma sqrt((9*1 + 81)/10) = 3;
    # |20 - 11| = 9 > 2*3 -> 1 spike; |10 - 11| = 1 is not
    assert upd(s, 9, c=20.0)["current_spike_count"] == 1
    for t in range(10, 19):
        assert upd(s, t, c=10.0)["current_spike_count"] == 1  # still inside the last 10
    assert upd(s, 19, c=10.0)["current_spike_count"] == 0  # the spike left the window
    # a drop counts too: nine 20 A and one 10 A -> mean 19, sigma 3, |10 - 19| = 9 > 6
    drop = LegacyFeatureState()
    for t in range(9):
        upd(drop, t, c=20.0)
    assert upd(drop, 9, c=10.0)["current_spike_count"] == 1
    # with k = 4 the same spike (3 sigma) is not counted
    s4 = LegacyFeatureState(spike_k=4.0)
    for t in range(9):
        upd(s4, t, c=10.0)
    assert upd(s4, 9, c=20.0)["current_spike_count"] == 0


def test_power_factor_score() -> None:
    s = LegacyFeatureState()  # 100 * (PF - 0.4) / 0.6, clipped to 0..100
    score = "power_factor_efficiency_score"
    assert upd(s, 0, pf=0.92)[score] == pytest.approx(100 * 0.52 / 0.6)  # 86.7: the guide's healthy PF
    assert upd(s, 1, pf=0.7)[score] == pytest.approx(50.0)
    assert upd(s, 2, pf=1.0)[score] == 100.0
    assert upd(s, 3, pf=0.4)[score] == 0.0
    assert upd(s, 4, pf=0.1)[score] == 0.0  # below the floor: clipped
    assert upd(LegacyFeatureState(pf_floor=0.8), 0, pf=0.9)[score] == pytest.approx(50.0)


def test_vibration_rms_over_recent_readings() -> None:
    s = LegacyFeatureState(recent_n=2)
    upd(s, 0, g=100.0)
    upd(s, 1, g=3.0)
    assert upd(s, 2, g=4.0)["vibration_intensity_rms"] == pytest.approx(math.sqrt((9 + 16) / 2))


def test_voltage_stability_is_the_deviation_from_nominal() -> None:
    s = LegacyFeatureState()
    assert upd(s, 0, v=230.0)["voltage_stability"] == 0.0
    assert upd(s, 1, v=232.5)["voltage_stability"] == pytest.approx(2.5)
    assert upd(s, 2, v=225.0)["voltage_stability"] == pytest.approx(5.0)  # below nominal: same sign
    assert upd(LegacyFeatureState(nominal_voltage_v=400.0), 0, v=380.0)["voltage_stability"] == 20.0


def test_power_vibration_ratio() -> None:
    s = LegacyFeatureState()
    assert upd(s, 0, pf=0.92, g=0.15)["power_vibration_ratio"] == pytest.approx(0.15 / 0.93)  # 0.161
    assert upd(s, 1, pf=0.0, g=0.15)["power_vibration_ratio"] == pytest.approx(15.0)  # PF 0 stays finite
    assert upd(s, 2, pf=0.5, g=1.02)["power_vibration_ratio"] == pytest.approx(2.0)


def test_magnitudes_on_the_guides_healthy_data() -> None:
    """The guide's generator (V ~ N(230, 3²), I ~ N(15, 1²), PF ~ U(0.88, 0.95), g ~ N(0.15, 0.02²)),
    300 readings at 1 Hz, after the 30-reading warm-up: means near the guide's example baseline."""
    rng = np.random.default_rng(12)
    n = 300
    readings = np.stack(
        [rng.normal(230, 3, n), rng.normal(15, 1, n), rng.uniform(0.88, 0.95, n), rng.normal(0.15, 0.02, n)],
        1,
    )
    s = LegacyFeatureState()
    rows = [s.update(T0 + i, *map(float, r)) for i, r in enumerate(readings)][30:]
    mean = dict(zip(LEGACY_FEATURE_NAMES, np.mean(rows, axis=0), strict=True))
    assert mean["voltage_rolling_mean_1h"] == pytest.approx(230.2, abs=0.6)
    assert mean["current_spike_count"] == pytest.approx(0.3, abs=0.15)
    assert mean["power_factor_efficiency_score"] == pytest.approx(86.5, abs=1.5)
    assert mean["vibration_intensity_rms"] == pytest.approx(0.15, abs=0.005)
    assert mean["voltage_stability"] == pytest.approx(2.1, abs=0.5)
    assert mean["power_vibration_ratio"] == pytest.approx(0.16, abs=0.01)
    assert np.max(np.asarray(rows)[:, 1]) <= 2  # at most 2 spikes in 10 healthy readings (guide: 0..2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((float("nan"), 400, 10, 0.9, 0.5), "ts_seconds: must be finite"),
        ((0.0, float("inf"), 10, 0.9, 0.5), "voltage_v: must be finite"),
        ((0.0, 400, -1.0, 0.9, 0.5), "current_a: must be >= 0"),
        ((0.0, 400, 10, 1.5, 0.5), r"power_factor: must be in \[0, 1\]"),
        ((0.0, 400, 10, 0.9, -0.1), "vibration_g: must be >= 0"),
        ((0.0, "400", 10, 0.9, 0.5), "voltage_v: expected a number"),
        ((0.0, 400, True, 0.9, 0.5), "current_a: expected a number"),
    ],
)
def test_bad_reading_raises(args: tuple[object, ...], message: str) -> None:
    s = LegacyFeatureState()
    with pytest.raises(ValueError, match=message):
        s.update(*args)
    assert s.n_horizon == 0 and s.last_ts is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"horizon_s": 0}, "horizon_s: must be > 0"),
        ({"recent_n": 0}, "recent_n: must be >= 1"),
        ({"spike_k": -1.0}, "spike_k: must be >= 0"),
        ({"pf_floor": 1.0}, r"pf_floor: must be in \[0, 1\)"),
        ({"pf_floor": -0.1}, r"pf_floor: must be in \[0, 1\)"),
        ({"nominal_voltage_v": 0.0}, "nominal_voltage_v: must be > 0"),
        ({"max_horizon_readings": 0}, "max_horizon_readings: must be >= 1"),
    ],
)
def test_bad_configuration_raises(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LegacyFeatureState(**kwargs)


def test_reset_forgets_everything() -> None:
    s = LegacyFeatureState()
    upd(s, 0, v=100)
    s.reset()
    assert s.n_horizon == 0 and s.last_ts is None
    assert upd(s, -50, v=200)["voltage_rolling_mean_1h"] == 200  # earlier time accepted after reset


def test_hour_mean_is_the_plain_mean_on_healthy_noise() -> None:
    rng = np.random.default_rng(3)
    s = LegacyFeatureState()
    volts = 230 + 3 * rng.standard_normal(3600)
    for t, v in enumerate(volts):
        out = upd(s, t, v=float(v))
    assert abs(out["voltage_rolling_mean_1h"] - float(np.mean(volts[1:]))) < 0.02  # at most a tail clipped


def test_hour_mean_is_not_carried_by_a_short_burst() -> None:
    """2 min of 280..330 V spikes (test_e2e_health's fault) count only up to median + 4 sigma: the hour's
    mean moves by well under 1 V (the plain mean: ~2.5 V for the whole next hour); a sustained supply
    level change still moves it."""
    rng = np.random.default_rng(7)
    s = LegacyFeatureState()
    volts = list(230 + 3 * rng.standard_normal(3600))
    for t, v in enumerate(volts):
        upd(s, t, v=v)
    burst = list(rng.uniform(280, 330, 120)) + list(230 + 3 * rng.standard_normal(600))
    levels = [upd(s, 3600 + i, v=v)["voltage_rolling_mean_1h"] for i, v in enumerate(burst)]
    hour = (volts + burst)[-3599:]
    assert float(np.mean(hour)) - 230 > 2.0  # the plain mean of the same hour carries the burst
    assert max(levels) - 230 < 0.8, max(levels)
    for t in range(4320, 4320 + 2400):  # 40 min at 240 V: a real level change
        level = upd(s, t, v=240 + 3 * float(rng.standard_normal()))["voltage_rolling_mean_1h"]
    assert level > 236.0, level  # two thirds of the hour at 240 V
