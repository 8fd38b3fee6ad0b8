"""Degradation Index, health trend and maintenance window."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shared.health.degradation import (
    DegradationParams,
    DegradationState,
    DegradationTracker,
    maintenance_window,
)
from shared.health.prognostics import RulView

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
def test_window_is_the_conservative_end_of_a_fitted_rul() -> None:
    rul = RulView(
        "estimate",
        "exp_offset path of rms_log fitted over the last 1200 s (120 points, ...)",
        level=0.9,
        threshold=1.61,
        median_s=2 * 86400.0,
        low_s=43200.0,
        high_s=None,
        interval=0.8,
    )
    days, text = maintenance_window(rul)
    assert days == 0.5  # 43,200 s of data time = half a day
    assert text.startswith("RUL 2.0 d (80 %: 12.0 h to beyond) from the exp_offset path of rms_log fitted")


def test_no_window_without_an_estimate_and_the_reason_why() -> None:
    none = RulView("no_degradation_trend", "no persistent rise of RMS above its calibrated level")
    assert maintenance_window(none) == (
        None,
        "no degradation trend: no persistent rise of RMS above its calibrated level",
    )
    assert maintenance_window(RulView("not_calibrated", "no baseline")) == (
        None,
        "not calibrated: no baseline",
    )
    assert maintenance_window(RulView("sensor_fault", "skipped")) == (None, "sensor fault: skipped")
    assert maintenance_window(None) == (None, "no degradation trend: no vibration window assessed yet")
