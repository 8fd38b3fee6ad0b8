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
    # last 10 currents: nine 10 A and one 20 A -> mean 11, sigma sqrt((9*1 + 81)/10) = 3,
    # threshold 11 + 2*3 = 17 < 20 -> 1 spike
    assert upd(s, 9, c=20.0)["current_spike_count"] == 1
    for t in range(10, 19):
        assert upd(s, t, c=10.0)["current_spike_count"] == 1  # still inside the last 10
    assert upd(s, 19, c=10.0)["current_spike_count"] == 0  # the spike left the window
    # with k = 4 the same spike (3 sigma) is not counted
    s4 = LegacyFeatureState(spike_k=4.0)
    for t in range(9):
        upd(s4, t, c=10.0)
    assert upd(s4, 9, c=20.0)["current_spike_count"] == 0


def test_power_factor_score() -> None:
    s = LegacyFeatureState()
    assert upd(s, 0, pf=0.46)["power_factor_efficiency_score"] == pytest.approx(50.0)  # 100*0.46/0.92
    assert upd(s, 1, pf=0.95)["power_factor_efficiency_score"] == 100.0  # clipped at nominal
    assert upd(s, 2, pf=0.0)["power_factor_efficiency_score"] == 0.0
    assert upd(LegacyFeatureState(nominal_pf=0.8), 0, pf=0.6)["power_factor_efficiency_score"] == (
        pytest.approx(75.0)
    )


def test_vibration_rms_over_recent_readings() -> None:
    s = LegacyFeatureState(recent_n=2)
    upd(s, 0, g=100.0)
    upd(s, 1, g=3.0)
    assert upd(s, 2, g=4.0)["vibration_intensity_rms"] == pytest.approx(math.sqrt((9 + 16) / 2))


def test_voltage_stability() -> None:
    s = LegacyFeatureState()
    assert upd(s, 0, v=100.0)["voltage_stability"] == 1.0
    assert upd(s, 1, v=100.0)["voltage_stability"] == 1.0
    s = LegacyFeatureState(recent_n=2)
    upd(s, 0, v=90.0)
    assert upd(s, 1, v=110.0)["voltage_stability"] == pytest.approx(0.9)  # 1 - 10/100
    s = LegacyFeatureState(recent_n=2)
    upd(s, 0, v=0.0)
    assert upd(s, 1, v=300.0)["voltage_stability"] == 0.0  # 1 - 150/150 = 0
    assert upd(LegacyFeatureState(), 0, v=0.0)["voltage_stability"] == 0.0  # no supply


def test_power_vibration_ratio() -> None:
    p_kw = math.sqrt(3) * 400 * 10 * 0.9 / 1000  # 6.235 kW three-phase
    s = LegacyFeatureState()
    assert upd(s, 0, v=400, c=10, pf=0.9, g=0.5)["power_vibration_ratio"] == pytest.approx(p_kw / 0.5)
    assert upd(s, 1, v=400, c=10, pf=0.9, g=0.0)["power_vibration_ratio"] == pytest.approx(p_kw / 0.01)
    one = LegacyFeatureState(phases=1)
    assert upd(one, 0, v=400, c=10, pf=0.9, g=0.5)["power_vibration_ratio"] == pytest.approx(7.2)


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
        ({"nominal_pf": 1.2}, "nominal_pf: must be in"),
        ({"vibration_floor_g": 0.0}, "vibration_floor_g: must be > 0"),
        ({"phases": 2}, "phases: must be 1 or 3"),
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
