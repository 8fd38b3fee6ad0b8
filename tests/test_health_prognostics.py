"""HealthAssessor with prognostics: trend alarm, RUL and the maintenance window (pure, data time)."""

from __future__ import annotations

import json
import math

import numpy as np

from services.health.messages import to_rul_item
from shared.health import HealthAssessor, ModelScore
from shared.health.assessor import SOURCE_TREND
from shared.health.prognostics import RulView
from tests.support.ids import Ids

T0 = 1_700_000_000.0
RMS_CAL = 0.2  # g
#: A calibration baseline as the health service builds it from a vibration model's manifest.
BASELINE = {
    "x_rms": {"mean": 0.2, "std": 0.004, "min": 0.19, "max": 0.21, "median": 0.2, "mad": 0.003},
    "x_kurtosis": {"mean": 0.0, "std": 0.1, "min": -0.2, "max": 0.2, "median": 0.0, "mad": 0.07},
}


def healthy_scores(rng: np.random.Generator) -> list[ModelScore]:
    return [ModelScore("autoencoder", float(abs(rng.normal(0, 0.15))), 0.5, False, "NORMAL")]


def rising(s: float) -> float:
    """rms_log = ln(1 + 0.02 exp(t / 1800)): crosses k = 1.0 Np at 8016 s, the 1.64 Np threshold at 9606 s."""
    return RMS_CAL * (1 + 0.02 * math.exp((s - T0) / 1800))


def run(a: HealthAssessor, start: float, seconds: int, rms_of, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(seconds):
        ts = start + i
        out.append(a.update(ts, healthy_scores(rng), {"x_rms": rms_of(ts), "x_kurtosis": 0.0}))
    return out


def test_healthy_asset_has_no_window_and_says_why() -> None:
    a = HealthAssessor("m1", baseline=BASELINE, id_factory=Ids())
    res = run(a, T0, 1800, lambda _: RMS_CAL)
    last = res[-1]
    assert last.maintenance_window_days is None and a.alarms.alarms() == []
    assert last.maintenance_explanation.startswith("no degradation trend: no persistent rise of RMS")
    assert last.rul is not None and last.rul.status == "no_degradation_trend"
    assert last.indicators == {"rms_log": 0.0, "kurtosis_z": 0.0, "cusum": 0.0, "cusum_h": 10.0}
    json.dumps(last.to_dict())


def test_uncalibrated_asset_says_not_calibrated() -> None:
    a = HealthAssessor("m1", id_factory=Ids())
    last = run(a, T0, 10, lambda _: RMS_CAL)[-1]
    assert last.maintenance_window_days is None and last.rul.status == "not_calibrated"
    assert last.maintenance_explanation.startswith("not calibrated: ")


def test_rising_vibration_opens_a_trend_alarm_and_gives_a_fitted_window() -> None:
    a = HealthAssessor("m1", baseline=BASELINE, id_factory=Ids())
    res = run(a, T0, 8400, rising)
    opened = [e for r in res for e in r.alarm_events if e.kind == "opened"]
    trend = [e for e in opened if e.alarm["source"] == SOURCE_TREND]
    assert len(trend) == 1 and trend[0].alarm["severity"] == "WARNING"
    assert abs(trend[0].alarm["opened_at"] - (T0 + 8254)) < 15  # as tests/test_prognostics.py computes
    assert trend[0].alarm["reason"] == (
        "RMS 3.0× its calibrated level (rms_log 1.09 Np); CUSUM > 10 Np·s over 237 s of data"
    )
    last = res[-1]
    assert last.rul.status == "estimate"
    assert last.maintenance_window_days == last.rul.low_s / 86400
    assert last.maintenance_explanation.startswith("RUL ")
    assert {"rms_log", "kurtosis_z", "cusum"} <= last.indicators.keys()


def test_maintenance_resets_the_prognostics_and_an_old_state_still_loads() -> None:
    a = HealthAssessor("m1", baseline=BASELINE, id_factory=Ids())
    run(a, T0, 8400, rising)
    state = a.to_dict()
    assert state["version"] == 2 and state["prognostics"]["first_alarm_ts"] is not None
    b = HealthAssessor.from_dict(json.loads(json.dumps(state)), baseline=BASELINE)
    assert b.to_dict() == state
    # the service restores without a baseline and sets it when the retained announcement arrives
    r = HealthAssessor.from_dict(json.loads(json.dumps(state)))
    r.set_baseline(BASELINE)
    assert r.to_dict() == state
    a.record_maintenance("bearing_replaced", T0 + 8400)
    last = run(a, T0 + 8401, 5, lambda _: RMS_CAL)[-1]
    assert last.rul.status == "no_degradation_trend" and last.maintenance_window_days is None
    # a state saved before prognostics (version 1) loads with a fresh tracker
    old = {k: v for k, v in state.items() if k != "prognostics"} | {"version": 1}
    c = HealthAssessor.from_dict(old, baseline=BASELINE)
    assert c.to_dict()["prognostics"]["first_alarm_ts"] is None
    # a new calibration level restarts the history
    b.set_baseline({**BASELINE, "x_rms": {**BASELINE["x_rms"], "median": 0.4}})
    assert b.to_dict()["prognostics"]["buckets"] == []


def test_trend_alarm_clears_once_the_cusum_is_back_at_zero_for_clear_windows() -> None:
    # defaults (k 1.0, h 10, no persistence): a 3x step (1.0986 Np) adds 0.0986 Np·s per 1 s window and
    # alarms at the 102nd (+101 s); at +199 S = 98 x 0.0986 = 9.66 Np·s (below h: no second crossing)
    a = HealthAssessor("m1", baseline=BASELINE, id_factory=Ids())
    run(a, T0, 600, lambda _: RMS_CAL)
    during = run(a, T0 + 600, 200, lambda _: 3 * RMS_CAL)
    opened = [e for r in during for e in r.alarm_events if e.alarm["source"] == SOURCE_TREND]
    assert [e.kind for e in opened] == ["opened"] and opened[0].alarm["opened_at"] == T0 + 701
    assert opened[0].alarm["reason"] == (
        "RMS 3.0× its calibrated level (rms_log 1.10 Np); CUSUM > 10 Np·s over 102 s of data"
    )
    # back at the calibrated level S falls 1.0 Np·s per window: 0 from the 10th; 10 windows off resolve it
    after = run(a, T0 + 800, 50, lambda _: RMS_CAL)
    resolved = [(i, e) for i, r in enumerate(after) for e in r.alarm_events if e.kind == "resolved"]
    assert len(resolved) == 1 and resolved[0][1].auto_cleared and resolved[0][0] == 9 + 10 - 1


def test_rul_message_keeps_to_the_contracts_bounds() -> None:
    item = to_rul_item(
        RulView("estimate", "x" * 1500, threshold_basis="b" * 800, median_s=1.0, low_s=0.0, as_of=T0)
    )
    assert item is not None and (len(item.reason), len(item.threshold_basis or "")) == (1000, 500)
    assert item.as_of is not None and item.as_of.timestamp() == T0 and to_rul_item(None) is None
