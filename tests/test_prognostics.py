"""PrognosticsTracker on hand-checkable RMS series (pure, data time, 1 window per second)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from shared.health.degradation import maintenance_window
from shared.health.prognostics import (
    Calibration,
    PrognosticsParams,
    PrognosticsTracker,
    calibration_from_baseline,
)
from shared.health.warning import cusum, persistent_level

T0 = 1_700_000_000.0
RMS_CAL = 0.2  # g


def feats(rms: float, kurtosis: float = 0.0) -> dict[str, float]:
    """A vibration window whose largest axis RMS is ``rms`` (g)."""
    return {"x_rms": rms, "y_rms": rms / 2, "x_kurtosis": kurtosis, "vibration_g_rms": 99.0}


#: Hand-checkable settings (the defaults may be retuned on FEMTO): CUSUM on a 30 s persistent level with
#: h = 10 Np·s, and one exponential path (``exp_offset``, the shape of :func:`rising`) over 1200 s.
HAND = {"persist_s": 30.0, "cusum_k": 0.7, "cusum_h": 10.0, "rul_model": "exp_offset", "rul_window_s": 1200.0}


def tracker(**kw) -> PrognosticsTracker:
    t = PrognosticsTracker(PrognosticsParams(**(HAND | kw)))
    t.calibrate(Calibration(RMS_CAL))
    return t


def feed(t: PrognosticsTracker, start: float, rms_of, seconds: int) -> list:
    return [t.update(start + i, feats(rms_of(start + i))) for i in range(seconds)]


def test_flat_rms_is_no_degradation_trend_with_the_reason() -> None:
    t = tracker()
    views = feed(t, T0, lambda _: RMS_CAL, 3600)
    last = views[-1]
    assert last.indicators == {"rms_log": 0.0, "cusum": 0.0, "cusum_h": 10.0}  # HAND's h
    assert not any(v.trend_on or v.crossed for v in views) and t.first_alarm_ts is None
    assert last.rul.status == "no_degradation_trend"
    assert last.rul.reason.startswith("no persistent rise of RMS above its calibrated level (CUSUM")
    days, why = maintenance_window(last.rul)
    assert days is None and why.startswith("no degradation trend: no persistent rise of RMS")
    assert len(t.series()[0]) == 360  # one mean per 10 s


def test_a_step_to_three_times_the_rms_alarms_after_persist_plus_h_over_shift_seconds() -> None:
    # rms_log = ln 3 = 1.0986 Np. The persistent level (lowest rms_log of the windows in the last 30 s)
    # is ln 3 from step + 29 s (the window at step - 1 is then out); from there S grows (1.0986 - 0.7)
    # x 1 s = 0.3986 Np·s per window and passes h = 10 at the 26th window (25 give 9.97): step + 54 s
    t = tracker()
    feed(t, T0, lambda _: RMS_CAL, 600)
    step = T0 + 600
    views = feed(t, step, lambda _: 3 * RMS_CAL, 200)
    first = next(i for i, v in enumerate(views) if v.crossed)
    assert first == 54 and t.first_alarm_ts == step + 54
    v = views[first]
    assert v.trend_on and v.indicators["cusum"] == 0.0  # reset at the alarm
    assert v.trend_reason == (
        "RMS ≥ 3.0× its calibrated level (rms_log ≥ 1.10 Np) throughout the last 30 s; "
        "CUSUM > 10 Np·s over 26 s of data"
    )
    assert all(w.trend_on for w in views[first:])  # S keeps growing: the condition stays on
    # alarms every 26 windows (54, 80, ..., 184): at step + 199, S = 15 x 0.3986 = 5.98 Np·s. Back at the
    # calibrated level the persistent level is 0 at once and S falls 0.7 Np·s per window: > 0 after 8
    # windows, 0 at the 9th
    after = feed(t, step + 200, lambda _: RMS_CAL, 20)
    assert [w.trend_on for w in after].index(False) == 8 and not any(w.trend_on for w in after[8:])


def test_a_spike_of_one_window_cannot_alarm() -> None:
    # one window every 10 s; a single window at 10x (2.30 Np): without persistence S = (2.30 - 0.7) x 10
    # = 16 Np·s > 10 alarms at once, with the 30 s persistence the level stays at 0
    spike = T0 + 3000.0

    def rms(s: float) -> float:
        return 10 * RMS_CAL if s == spike else RMS_CAL

    for persist_s, alarms in ((30.0, 0), (0.0, 1)):
        t = tracker(persist_s=persist_s)
        views = [t.update(T0 + 10 * i, feats(rms(T0 + 10 * i))) for i in range(600)]
        assert sum(v.crossed for v in views) == alarms


def test_twice_the_rms_stays_below_the_allowance() -> None:
    # k = 0.7 Np is RMS x 2.01: a steady doubling (0.693 Np) never accumulates
    t = tracker()
    views = feed(t, T0, lambda s: RMS_CAL * (1 if s < T0 + 600 else 2), 3000)
    assert not any(v.crossed for v in views) and views[-1].indicators["cusum"] == 0.0


def rising(s: float) -> float:
    """RMS whose excess over calibration grows exponentially: rms_log = ln(1 + 0.02 exp(t / 1800))."""
    return RMS_CAL * (1 + 0.02 * math.exp((s - T0) / 1800))


#: Analytic time the rising path reaches the default threshold 1.64 Np: 1800 ln((e^1.64 - 1) / 0.02).
T_FAIL = T0 + 1800 * math.log(math.expm1(1.64) / 0.02)


def test_an_exponential_rise_gives_an_estimate_near_the_analytic_crossing() -> None:
    t = tracker()
    views = feed(t, T0, rising, 8400)
    # rms_log reaches k = 0.7 Np at 1800 ln((e^0.7 - 1) / 0.02) = 7066 s rising at y' = (1.0138 / 2.0138)
    # / 1800 = 2.8e-4 Np/s; the persistent level (the lowest of the last 30 s) lags it by 29 s; then
    # S ~ y' tau^2 / 2 reaches h = 10 Np·s after tau = sqrt(2 h / y') = 267 s: 7066 + 29 + 267 = 7362 s
    assert t.first_alarm_ts - T0 == pytest.approx(7362, abs=15)
    assert all(v.rul.status == "no_degradation_trend" for v in views[: int(t.first_alarm_ts - T0)])
    rul = views[-1].rul
    assert rul.status == "estimate" and rul.model == "exp_offset" and rul.window_s == 1200.0
    assert rul.interval == 0.8 and rul.threshold == pytest.approx(1.64)
    assert rul.low_s <= rul.median_s <= rul.high_s
    actual = T_FAIL - rul.as_of  # ~1,140 s
    assert rul.median_s == pytest.approx(actual, abs=100)  # the 400 threshold draws' median: ±40 s
    assert rul.low_s < actual < rul.high_s
    days, why = maintenance_window(rul)
    assert days == rul.low_s / 86400 and why.startswith("RUL ")
    # a fresh estimate every 60 s of data time, the last one in between
    assert views[-1].rul.as_of - views[-61].rul.as_of == 60


def test_the_defaults_on_the_exponential_rise() -> None:
    # k 1.0 Np, h 10 Np·s on rms_log itself: rms_log reaches 1.0 Np at 1800 ln((e - 1) / 0.02) = 8016 s
    # rising at y' = (1.718 / 2.718) / 1800 = 3.5e-4 Np/s; S ~ y' tau^2 / 2 = 10 after tau = 239 s
    t = PrognosticsTracker()
    t.calibrate(Calibration(RMS_CAL))
    rul = feed(t, T0, rising, 8400)[-1].rul
    assert t.first_alarm_ts - T0 == pytest.approx(8016 + 239, abs=15)
    # both path shapes over 9600/4800/2400/1200 s pooled: measured median 1575 s, 80 % 271-5140 s against
    # 1232 s actual; the straight log-linear fits of the accelerating path make it late
    assert rul.status == "estimate" and rul.model == "pooled" and rul.window_s == 9600.0
    assert rul.low_s < T_FAIL - rul.as_of < rul.high_s and rul.median_s > T_FAIL - rul.as_of
    assert (
        "log_linear and exp_offset paths of rms_log over the last 9600/4800/2400/1200 s pooled" in rul.reason
    )


def test_state_round_trip_continues_identically() -> None:
    a = tracker()
    feed(a, T0, rising, 7500)
    b = PrognosticsTracker.from_dict(json.loads(json.dumps(a.to_dict())), a.params)
    b.calibrate(a.calibration)  # the same calibration: the history continues
    assert b.to_dict() == a.to_dict()
    va, vb = feed(a, T0 + 7500, rising, 300), feed(b, T0 + 7500, rising, 300)
    assert va == vb and va[-1].rul.status == "estimate"
    with pytest.raises(ValueError, match="malformed"):
        PrognosticsTracker.from_dict({"cal": None})


def test_maintenance_reset_keeps_the_calibration_only() -> None:
    t = tracker()
    feed(t, T0, rising, 8000)
    assert t.first_alarm_ts is not None
    t.reset()
    assert t.first_alarm_ts is None and t.calibration == Calibration(RMS_CAL)
    v = t.update(T0 + 8000, feats(RMS_CAL))
    assert v.indicators["cusum"] == 0.0 and v.rul.status == "no_degradation_trend"
    assert len(t.series()[0]) == 1
    # a new calibration level restarts the history, the same one keeps it
    feed(t, T0 + 8001, lambda _: RMS_CAL, 100)
    t.calibrate(Calibration(RMS_CAL))
    assert len(t.series()[0]) > 1
    t.calibrate(Calibration(2 * RMS_CAL))
    assert len(t.series()[0]) == 0


def test_no_calibration_pauses_and_the_same_one_resumes() -> None:
    # restored before the model announcements came back: windows say "not calibrated", history kept
    t = tracker()
    feed(t, T0, rising, 7500)
    saved = t.to_dict()
    r = PrognosticsTracker.from_dict(saved, t.params)
    r.calibrate(None)
    assert r.update(T0 + 7500, feats(RMS_CAL)).rul.status == "not_calibrated" and r.to_dict() == saved
    r.calibrate(Calibration(RMS_CAL))
    assert r.to_dict() == saved and r.update(T0 + 7500, feats(rising(T0 + 7500))).indicators["cusum"] > 0


def test_sensor_fault_windows_are_skipped() -> None:
    t = tracker()
    feed(t, T0, lambda _: RMS_CAL, 100)
    before = t.to_dict()
    v = t.update(T0 + 100, feats(50 * RMS_CAL), sensor_fault=True)
    assert v.rul.status == "sensor_fault" and v.indicators == {} and not v.trend_on
    assert t.to_dict() == before
    assert maintenance_window(v.rul)[1].startswith("sensor fault: ")


def test_not_calibrated_no_vibration_and_old_windows() -> None:
    t = PrognosticsTracker()
    v = t.update(T0, feats(RMS_CAL))
    assert v.rul.status == "not_calibrated" and maintenance_window(v.rul)[1].startswith("not calibrated: ")
    t.calibrate(Calibration(RMS_CAL))
    assert t.update(T0, {"vibration_g_rms": 1.0}) is None  # batch features only: no vibration window
    assert t.update(T0 + 5, feats(RMS_CAL)) is not None
    assert t.update(T0 + 1, feats(RMS_CAL)) is None  # older than the last window: ignored
    with pytest.raises(ValueError):
        t.update(T0 + 6, feats(-1.0))
    with pytest.raises(ValueError, match="rul_model"):
        PrognosticsParams(rul_model="cubic")
    with pytest.raises(ValueError, match="buffer_s"):
        PrognosticsParams(buffer_s=600.0)


def test_calibration_from_baseline_keeps_each_axis_level_and_the_largest() -> None:
    base = {
        "x_rms": {"mean": 0.21, "std": 0.01, "median": 0.2, "mad": 0.005},
        "y_rms": {"mean": 0.3, "std": 0.01},  # no median: its mean
        "x_kurtosis": {"mean": 0.1, "std": 0.2, "median": 0.0, "mad": 0.1},
        "vibration_g_rms": {"mean": 5.0, "std": 1.0},  # the batch signal's RMS is not an axis
    }
    cal = calibration_from_baseline(base)
    assert cal == Calibration(0.3, 0.0, pytest.approx(0.14826), {"x": 0.2, "y": 0.3})
    t = PrognosticsTracker()
    t.calibrate(cal)
    # rms_log: each axis against its own level (indicators.axes_log_ratio), axes absent from the window
    # ignored: x alone at 0.6 g over 0.2 g is ln 3; x 0.6 and y 0.6 (over 0.3) give (ln 3 + ln 2) / 2
    v = t.update(T0, {"x_rms": 0.6, "x_kurtosis": 1.4826})
    assert v.indicators["rms_log"] == pytest.approx(math.log(3))
    assert v.indicators["kurtosis_z"] == pytest.approx(10)
    v = t.update(T0 + 1, {"x_rms": 0.6, "y_rms": 0.6})
    assert v.indicators["rms_log"] == pytest.approx((math.log(3) + math.log(2)) / 2)
    assert calibration_from_baseline(None) is None
    assert calibration_from_baseline({"vibration_g_rms": {"mean": 1.0, "std": 0.1}}) is None


def test_the_tracker_alarms_as_warning_persistent_level_then_cusum() -> None:
    rng = np.random.default_rng(3)
    times = T0 + np.cumsum(rng.uniform(0.5, 90.0, 400))  # irregular steps, some longer than 60 s
    y = np.abs(rng.normal(0.8, 0.4, 400))
    t = tracker()
    crossed = [t.update(s, feats(RMS_CAL * math.exp(v))).crossed for s, v in zip(times, y, strict=True)]
    expected = cusum(times, persistent_level(times, y, 30.0), 0.7, 10.0, 60.0)[:, 0]
    assert sum(crossed) > 5 and crossed == expected.tolist()
