"""Degradation Index, health trend and maintenance window."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shared.health.degradation import (
    DegradationParams,
    DegradationState,
    DegradationTracker,
    maintenance_window_days,
)

T0 = 1_700_000_000.0


def test_di_never_grows_without_persistent_anomaly() -> None:
    tr = DegradationTracker()
    rng = np.random.default_rng(0)
    for i in range(2000):
        # excess may be large, but the persistent flag is off -> no growth
        tr.update(T0 + i, health=100.0, persistent=False, excess=float(rng.uniform(0, 5)))
    assert tr.di == 0.0
    # persistent but at/below threshold -> no growth
    for i in range(2000, 2100):
        tr.update(T0 + i, health=80.0, persistent=True, excess=-0.2)
    assert tr.di == 0.0


def test_di_half_life_is_one_day_at_excess_one() -> None:
    tr = DegradationTracker()
    tr.update(T0, 35.0, True, 1.0)
    for i in range(1, 289):  # 288 * 300 s = 1 day
        tr.update(T0 + 300.0 * i, 35.0, True, 1.0)
    assert tr.di == pytest.approx(0.5, rel=1e-9)
    assert tr.state.anomalous_s == pytest.approx(86_400.0)


def test_di_rate_scales_with_severity_and_saturates() -> None:
    def run(excess: float, seconds: int) -> float:
        tr = DegradationTracker()
        for i in range(0, seconds + 1, 60):
            tr.update(T0 + i, 10.0, True, excess)
        return tr.di

    mild, severe = run(0.3, 6 * 3600), run(3.0, 6 * 3600)
    assert 0 < mild < severe < 1
    # excess 3 for 6 h: 1 - 2**(-3 * 0.25) = 0.4054
    assert severe == pytest.approx(1 - 2 ** (-0.75), rel=1e-9)
    # excess above S_MAX (4) is capped
    assert run(10.0, 3600) == pytest.approx(run(4.0, 3600))
    assert run(4.0, 40 * 86_400) == pytest.approx(1.0) and run(4.0, 40 * 86_400) <= 1.0


def test_di_keeps_memory_and_gaps_are_capped() -> None:
    tr = DegradationTracker()
    tr.update(T0, 10.0, True, 2.0)
    tr.update(T0 + 3600 * 24 * 5, 10.0, True, 2.0)  # 5-day gap counts as max_gap_s = 300 s
    expected = 1 - 2 ** (-2.0 * 300 / 86_400)
    assert tr.di == pytest.approx(expected)
    for i in range(1, 10_000):  # long healthy stretch: DI unchanged
        tr.update(T0 + 3600 * 24 * 5 + 60 * i, 100.0, False, 0.0)
    assert tr.di == pytest.approx(expected)
    # out-of-order timestamps credit nothing and don't move the clock back
    last = tr.state.last_ts
    tr.update(T0, 10.0, True, 4.0)
    assert tr.di == pytest.approx(expected) and tr.state.last_ts == last


def test_reset_only_by_explicit_maintenance_and_state_round_trip() -> None:
    tr = DegradationTracker()
    for i in range(100):
        tr.update(T0 + 60 * i, 20.0, True, 3.0)
    assert tr.di > 0
    blob = json.dumps(tr.to_dict())
    restored = DegradationTracker.from_dict(json.loads(blob))
    assert restored.state == tr.state
    for t in (tr, restored):
        t.update(T0 + 6000, 20.0, True, 3.0)
    assert restored.di == tr.di
    with pytest.raises(ValueError, match="reason"):
        tr.reset(T0 + 6001, "")
    tr.reset(T0 + 6001, "bearing_replaced")
    assert tr.di == 0.0 and tr.state.reset_reason == "bearing_replaced" and tr.trend_per_day is None
    with pytest.raises(ValueError, match="unknown"):
        DegradationState.from_dict({"di": 0.1, "bogus": 1})
    with pytest.raises(ValueError, match="0..1"):
        DegradationState.from_dict({"di": 1.5})


def test_trend_of_linear_decline_and_recovery() -> None:
    tr = DegradationTracker()
    b = -12.0  # points/day
    assert tr.trend_per_day is None
    for i in range(0, 3 * 86_400, 60):
        tr.update(T0 + i, 100.0 + b * i / 86_400, False, 0.0)
        if i == 600:
            assert tr.trend_per_day is None  # less than 15 min of data
    assert tr.trend_per_day == pytest.approx(b, rel=0.02)

    flat = DegradationTracker()
    for i in range(0, 86_400, 60):
        flat.update(T0 + i, 97.0, False, 0.0)
    assert flat.trend_per_day == 0.0

    # a step down and a recovery: falling right after the drop, not falling after the recovery
    st = DegradationTracker()
    t = T0
    for h, seconds in ((100.0, 7200), (10.0, 600)):
        for _ in range(seconds):
            st.update(t, h, False, 0.0)
            t += 1
    falling = st.trend_per_day
    assert falling is not None and falling < -100
    for _ in range(600):
        st.update(t, 100.0, False, 0.0)
        t += 1
    assert st.trend_per_day is not None and st.trend_per_day >= 0.0


def test_tracker_validates_input() -> None:
    tr = DegradationTracker()
    with pytest.raises(ValueError, match="ts"):
        tr.update(float("nan"), 100.0, False, 0.0)
    with pytest.raises(ValueError, match="health"):
        tr.update(T0, 101.0, False, 0.0)
    with pytest.raises(ValueError, match="persistent"):
        tr.update(T0, 100.0, 1, 0.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="half_life_s"):
        DegradationParams(half_life_s=0)


# ---------------------------------------------------------------------------------------------
# Maintenance window
# ---------------------------------------------------------------------------------------------
def test_window_by_risk() -> None:
    days, text = maintenance_window_days(18.0, "CRITICAL", 0.0, None)
    assert days == 1.0 and text == "CRITICAL risk: health 18/100"
    assert maintenance_window_days(40.0, "HIGH", 0.0, 0.0)[0] == 4.0
    assert maintenance_window_days(25.0, None, 0.0, None)[0] == 4.0
    assert maintenance_window_days(50.0, None, 0.0, None)[0] == 7.0
    assert maintenance_window_days(62.5, None, 0.0, None)[0] == pytest.approx(10.5)
    assert maintenance_window_days(75.0, None, 0.0, None)[0] == 14.0
    assert maintenance_window_days(80.0, None, 0.0, None)[0] == pytest.approx(17.2)
    days, text = maintenance_window_days(100.0, "LOW", 0.0, 0.0)
    assert days == 30.0 and text == "LOW risk: health 100/100"


def test_window_shortened_by_falling_trend_and_di() -> None:
    # MODERATE 60: base 7 + 7 * 10 / 25 = 9.8; falling 10/day -> (60 - 25) / 10 = 3.5 days
    days, text = maintenance_window_days(60.0, "MODERATE", 0.0, -10.0)
    assert days == pytest.approx(3.5)
    assert text == "MODERATE risk: health 60/100; health falling 10.0 points/day"
    # slow fall that does not beat the base is not a driver
    days, text = maintenance_window_days(100.0, "LOW", 0.0, -1.0)
    assert days == 30.0 and "falling" not in text
    # noise-level trend ignored
    assert maintenance_window_days(60.0, None, 0.0, -0.4)[0] == pytest.approx(9.8)
    # DI 0.42 -> * (1 - 0.21)
    days, text = maintenance_window_days(100.0, None, 0.42, None)
    assert days == pytest.approx(30 * 0.79)
    assert text == "LOW risk: health 100/100; degradation index 0.42"
    # CRITICAL, falling 12/day, DI 0.42: time to 0 is 1.5 d > 1 d base -> 1 * 0.79
    days, text = maintenance_window_days(18.0, "CRITICAL", 0.42, -12.0)
    assert days == pytest.approx(0.79)
    assert text == "CRITICAL risk: health 18/100; degradation index 0.42"
    # HIGH 40 falling 12/day -> (40 - 25) / 12 = 1.25 d
    days, text = maintenance_window_days(40.0, "HIGH", 0.0, -12.0)
    assert days == pytest.approx(1.25) and "health falling 12.0 points/day" in text
    # floor
    assert maintenance_window_days(5.0, None, 1.0, -100.0)[0] == 0.25


def test_window_validates_input() -> None:
    with pytest.raises(ValueError, match="does not match"):
        maintenance_window_days(80.0, "HIGH", 0.0, None)
    with pytest.raises(ValueError, match="unknown risk"):
        maintenance_window_days(80.0, "SEVERE", 0.0, None)
    with pytest.raises(ValueError, match="degradation_index"):
        maintenance_window_days(80.0, None, 1.2, None)
    with pytest.raises(ValueError, match="trend_per_day"):
        maintenance_window_days(80.0, None, 0.0, float("inf"))
    with pytest.raises(ValueError, match="health"):
        maintenance_window_days(120.0, None, 0.0, None)
