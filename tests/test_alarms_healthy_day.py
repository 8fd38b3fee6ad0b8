"""Replays through the health service's pure path (issue 16): a 24-hour healthy replay opens no alarm on
any of 5 assets ("Done when" line 2, first half), and a voltage burst opens one alarm that clears soon
after the fault and does not re-open while the legacy model's slow feature still holds the burst.

Why the health service's pure path and not the full stack: 24 h at the guide's 1 reading per second is
86,400 readings per asset, 432,000 for 5 assets; through Mosquitto, ingest, features, two scorers and the
historian the stack processes well under 200 readings/s on the shared 2 cores (``make bench``'s throughput),
i.e. more than 40 minutes. This test runs the same code the stack runs on the same data, without the
transport: per asset, 600 healthy readings (10 minutes, 1 s apart) calibrate the legacy and batch Isolation
Forests with the calibrator's own steps (:func:`services.calibrator.data.reading_features`,
:func:`services.calibrator.job.select_datasets`, :func:`shared.learning.calibration.calibrate`, ONNX export),
then 24 h of healthy readings (``shared.synth``, the generator of ``scripts/generate_data.py``) go through
the features stage's functions (:class:`shared.features.legacy.LegacyFeatureState` per reading,
:func:`shared.features.batch.batch_features` over sliding windows of ``BATCH_WINDOW`` readings), the ONNX
models and the scorer's rolling mean of 10 (:class:`shared.learning.scoring.RollingScore`), and every
reading's two scores with its signals and features into :class:`shared.health.HealthAssessor` (data time,
1 s apart), with the baseline the health service builds from the models' announcements (per-feature
mean/std/min/max of the training rows and the raw signals' statistics).

With the earlier fast path (a latest ratio of 1.5 alarmed after 3 of 5 flagged windows) the healthy day
of seed 0 opened 12 short anomaly alarms on the batch forest (its 10-window mean reached 1.75 x threshold
with the smoothed ratio at 0.3..0.7); ``ALARM_FAST_RATIO`` is now 2.0.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from numpy.typing import NDArray

from services.calibrator.data import Collected, reading_features, signal_baseline
from services.calibrator.job import MIN_FEATURE_ROWS, default_config, select_datasets
from shared import synth
from shared.features import legacy as legacy_mod
from shared.features.batch import BATCH_FEATURE_NAMES, batch_features, sliding_windows
from shared.features.engine import BATCH_WINDOW
from shared.features.legacy import LEGACY_FEATURE_NAMES, LegacyFeatureState
from shared.health import HealthAssessor, ModelScore
from shared.learning.calibration import calibrate
from shared.learning.scoring import OnnxModel
from shared.messages import SIGNALS, severity_of

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC
CAL_READINGS = 600
DAY_S = 24 * 3600
ROLLING = 10
LEGACY_WARMUP = 30
ASSETS = 5


def healthy_readings(rng: np.random.Generator, n: int) -> NDArray[np.float64]:
    """``n`` healthy readings [n, 4] (V, A, PF, g) of the project's generator."""
    rows = (synth.simple_reading(rng, False) for _ in range(n))
    return np.asarray([[d[s] for s in SIGNALS] for d in rows], dtype=np.float64)


def calibrated(readings: NDArray[np.float64]) -> tuple[dict[str, OnnxModel], dict[str, dict[str, float]]]:
    """The calibrator's legacy and batch models of ``readings`` (1 s apart) and the merged baseline."""
    n = readings.shape[0]
    ts = T0 + np.arange(n, dtype=np.float64)
    c = Collected("day", n / 60.0, int(ts[-1] * 1e9), signals=readings.copy(), reading_ts=ts.copy())
    c.datasets = reading_features(ts, readings, BATCH_WINDOW, LEGACY_WARMUP)
    c.counts = {"readings": n, **{k: int(v[0].shape[0]) for k, v in c.datasets.items()}}
    c.reading_span_s = float(ts[-1] - ts[0])
    datasets, _ = select_datasets(c, BATCH_WINDOW)
    assert set(datasets) == {"legacy", "batch"}
    result = calibrate(datasets, replace(default_config(), validate=False, min_readings=MIN_FEATURE_ROWS))
    models = {k: OnnxModel.from_bytes(blob, entry) for k, (blob, entry) in result.models.items()}
    baseline: dict[str, dict[str, float]] = {}
    for X, names in datasets.values():
        for j, name in enumerate(names):
            col = X[:, j]
            baseline[name] = {
                "mean": float(col.mean()),
                "std": float(col.std()),
                "min": float(col.min()),
                "max": float(col.max()),
            }
    baseline.update(signal_baseline(readings))
    return models, baseline


def rolling_mean(raw: NDArray[np.float64], window: int = ROLLING) -> NDArray[np.float64]:
    """The scorer's rolling mean: element i is the mean of raw[max(0, i - window + 1) .. i]."""
    c = np.concatenate([[0.0], np.cumsum(raw)])
    i = np.arange(1, raw.size + 1)
    lo = np.maximum(0, i - window)
    return (c[i] - c[lo]) / (i - lo)


def replay(
    a: HealthAssessor,
    models: dict[str, OnnxModel],
    readings: NDArray[np.float64],
    t0: float,
) -> list[dict[str, float]]:
    """Feed ``readings`` (1 s apart from data time ``t0``) through features, scores and ``a``; return the
    per-reading model ratios (anomaly score / threshold)."""
    n = readings.shape[0]
    ts = t0 + np.arange(n, dtype=np.float64)
    state = LegacyFeatureState()
    legacy = np.full((n, len(LEGACY_FEATURE_NAMES)), np.nan)
    for i in range(n):
        vec = state.update(float(ts[i]), *(float(v) for v in readings[i]))
        if state.n_horizon >= LEGACY_WARMUP:
            legacy[i] = vec
    batch = np.full((n, 16), np.nan)
    batch[BATCH_WINDOW - 1 :] = batch_features(sliding_windows(readings, BATCH_WINDOW))
    rows = {"legacy": legacy, "batch": batch}
    names = {"legacy": list(LEGACY_FEATURE_NAMES), "batch": list(BATCH_FEATURE_NAMES)}
    anomaly: dict[str, NDArray[np.float64]] = {}
    first: dict[str, int] = {}
    for kind, model in models.items():
        X = rows[kind]
        ok = ~np.isnan(X).any(axis=1)
        first[kind] = int(np.argmax(ok))
        cols = [names[kind].index(f) for f in model.features]
        raw = model.raw_scores(X[ok][:, cols])
        scores = np.full(n, np.nan)
        scores[ok] = rolling_mean(raw)
        anomaly[kind] = scores
    ratios = []
    for i in range(n):
        feats = dict(zip(SIGNALS, map(float, readings[i]), strict=True))
        scores_i = []
        for kind, model in models.items():
            if i < first[kind]:
                continue
            s = float(anomaly[kind][i])
            th = model.threshold
            feats.update(zip(names[kind], map(float, rows[kind][i]), strict=True))
            scores_i.append(ModelScore(kind, s, th, s > th, severity_of(s, th)))
        a.update(float(ts[i]), scores_i, feats)
        ratios.append({m.model: m.ratio for m in scores_i})
    return ratios


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(ASSETS))
def test_a_healthy_day_opens_no_alarm(seed: int) -> None:
    rng = np.random.default_rng(1600 + seed)
    models, baseline = calibrated(healthy_readings(rng, CAL_READINGS))
    a = HealthAssessor(f"day_{seed}", baseline=baseline)
    ratios = replay(a, models, healthy_readings(rng, DAY_S), T0 + CAL_READINGS)
    assert a.alarms.alarms() == [], [x.to_dict() for x in a.alarms.alarms()][:3]
    # the day was assessed with both models throughout (not a vacuous pass)
    assert len(ratios) == DAY_S and all(set(r) == {"legacy", "batch"} for r in ratios[LEGACY_WARMUP:])
    assert all(math.isfinite(v) for r in ratios for v in r.values())


def burst_hour(seed: int) -> tuple[HealthAssessor, NDArray[np.float64], float]:
    """An hour of healthy data, 30 ``voltage_spike`` readings (280..330 V, as ``make bench``), another hour
    of healthy data; the assessor, the legacy ratios per reading and the fault's first data time."""
    rng = np.random.default_rng(seed)
    models, baseline = calibrated(healthy_readings(rng, CAL_READINGS))
    a = HealthAssessor(f"burst_{seed}", baseline=baseline)
    rows = (synth.simple_reading(rng, True, "voltage_spike") for _ in range(BURST))
    burst = np.asarray([[d[s] for s in SIGNALS] for d in rows], dtype=np.float64)
    before = healthy_readings(rng, 3660)
    readings = np.concatenate([before, burst, healthy_readings(rng, 3600)])
    t0 = T0 + CAL_READINGS
    ratios = replay(a, models, readings, t0)
    return a, np.asarray([r.get("legacy", np.nan) for r in ratios]), t0 + before.shape[0]


BURST = 30


def test_a_voltage_burst_opens_one_alarm_and_the_slow_feature_does_not_hold_it() -> None:
    """The legacy forest reads ``voltage_rolling_mean_1h``, which would keep a burst for an hour. Its
    trimmed mean (:mod:`shared.features.legacy`) leaves the burst out, so after the burst the legacy
    ratio is back in its healthy range within minutes, and the one alarm clears about a minute after the
    fault ends (smoothed ratios below the clearing level 0.9, then 10 windows)."""
    a, legacy, fault = burst_hour(1700)
    end = fault + BURST
    [alarm] = a.alarms.alarms()
    assert fault <= alarm.opened_at <= end and alarm.severity == "CRITICAL"
    assert alarm.auto_cleared and alarm.resolved_at is not None and alarm.resolved_at - end <= 300
    i_end = int(end - (T0 + CAL_READINGS))
    assert np.nanmax(legacy[i_end + 300 :]) < 1.0  # from 5 min after the burst: never at the threshold


def test_the_plain_hourly_mean_held_the_legacy_model_and_hysteresis_keeps_it_one_alarm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same data with the plain (unclipped) hourly mean, the issue's situation: the burst lifts the
    mean ~0.6 V for an hour, far outside its calibrated spread, and the legacy ratio hovers around 1 (the
    alarm opened, cleared and opened again). With the clearing hysteresis it is one alarm that stays open
    while the legacy ratio hovers, not a chattering one."""
    monkeypatch.setattr(legacy_mod, "DEFAULT_CLIP_K", 1e9)  # nothing clipped: the plain mean
    a, legacy, fault = burst_hour(1700)
    i_end = int(fault + BURST - (T0 + CAL_READINGS))
    assert np.nanmean(legacy[i_end + 300 :]) > 1.0  # the lag this test detects
    [alarm] = a.alarms.alarms()  # one alarm, no re-open
    assert alarm.reopens == 0 and alarm.held_reopens == 0


def test_bursts_within_the_hour_leave_the_hourly_mean_where_it_was() -> None:
    """Three 30-reading bursts of 280..330 V within the hour (``make bench``'s repetitions 10 to 30 min
    apart) leave ``voltage_rolling_mean_1h`` within 0.02 V of the mean of the hour's healthy readings: the
    trimmed mean leaves them out. Clipped at median + 4 sigma instead (the winsorised mean it replaced)
    each burst still added 30 x ~11 V / 3600 s, about 0.09 V, far outside the spread a 10-minute
    calibration sees; the plain mean, about 0.6 V."""
    rng = np.random.default_rng(11)
    s = LegacyFeatureState()
    healthy: list[tuple[float, float]] = []
    t = 0.0
    for block in range(4):
        for v in 230 + 3 * rng.standard_normal(900):
            out = s.update(t, float(v), 15.0, 0.92, 0.15)
            healthy.append((t, float(v)))
            t += 1
        for v in rng.uniform(280, 330, 30 if block < 3 else 0):
            out = s.update(t, float(v), 15.0, 0.92, 0.15)
            t += 1
    last = t - 1
    in_hour = [v for ts, v in healthy if ts > last - 3600]
    assert len(in_hour) == 3600 - 90  # the hour holds all three bursts
    level = out[LEGACY_FEATURE_NAMES.index("voltage_rolling_mean_1h")]
    assert abs(level - float(np.mean(in_hour))) < 0.02, level
