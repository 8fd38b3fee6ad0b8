"""Health service on the in-memory bus with prognostics: a rising vibration stream opens a ``trend`` alarm
and publishes a fitted RUL and maintenance window; a healthy one publishes no window and says why."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.health.service import build
from shared import topics
from shared.bus import MemoryBus
from shared.messages import (
    AlarmEvent,
    FeatureBaseline,
    FeatureStat,
    FeatureVector,
    HealthUpdate,
    ModelAnnouncement,
    ModelManifest,
    RawScore,
    Score,
)
from shared.service import Service, deliver
from shared.settings import Settings
from tests.support.signing import VERIFY_KEY, signed

T0 = datetime(2026, 3, 1, tzinfo=UTC)
RMS_CAL = 0.2  # g, the calibrated x_rms
STEP_S = 10  # one vibration window per 10 s of data time (FEMTO's snapshot interval)
NAMES = ["x_rms", "y_rms", "x_kurtosis", "y_kurtosis"]


def announcement() -> ModelAnnouncement:
    """A signed autoencoder announcement whose calibration baseline has the vibration RMS (median 0.2 g)."""
    stats = [
        FeatureStat(name="x_rms", mean=0.2, std=0.004, min=0.19, max=0.21, median=RMS_CAL, mad=0.003),
        FeatureStat(name="y_rms", mean=0.1, std=0.002, min=0.09, max=0.11, median=0.1, mad=0.001),
        FeatureStat(name="x_kurtosis", mean=0.0, std=0.1, min=-0.2, max=0.2, median=0.0, mad=0.07),
        FeatureStat(name="y_kurtosis", mean=0.0, std=0.1, min=-0.2, max=0.2, median=0.0, mad=0.07),
    ]
    manifest = ModelManifest(
        kind="autoencoder",
        algorithm="autoencoder",
        features=NAMES,
        n_features=len(NAMES),
        input="x",
        output="y",
        raw_score=RawScore(transform="identity"),
        threshold=0.2,
        baseline=FeatureBaseline(n=180, features=stats),
    )
    ann = ModelAnnouncement(
        asset_id="p1",
        model="autoencoder",
        version="v1",
        path="p1/v1",
        created_at=T0,
        manifest=manifest,
        onnx_b64="AA==",
    )
    return signed(ann)


async def vibration_window(svc: Service, bus: MemoryBus, i: int, rms: float) -> None:
    """Window ``i`` (data time T0 + 10 i s): its vibration vector and the autoencoder's (healthy) score."""
    ts, event = T0 + timedelta(seconds=STEP_S * i), f"p1-{i:08d}"
    fv = FeatureVector(
        event_id=event, asset_id="p1", ts=ts, kind="vibration", names=NAMES, values=[rms, rms / 2, 0.0, 0.0]
    )
    await deliver(svc, bus, topics.features("p1", "vibration"), fv)
    score = Score(
        event_id=event,
        asset_id="p1",
        ts=ts,
        model="autoencoder",
        model_version="v1",
        anomaly_score=0.06,
        raw_score=0.06,
        threshold=0.2,
        is_anomaly=False,
        severity="NORMAL",
    )
    await deliver(svc, bus, topics.score("p1", "autoencoder"), score)


def health(bus: MemoryBus) -> HealthUpdate:
    return HealthUpdate.model_validate_json(bus.retained[topics.health("p1")].payload)


async def test_healthy_stream_has_no_window_and_says_no_degradation_trend(tmp_path: Path) -> None:
    bus = MemoryBus()
    svc = build(Settings(data_dir=tmp_path, model_verify_key=VERIFY_KEY))
    await deliver(svc, bus, topics.model_announce("p1", "autoencoder"), announcement(), retain=True)
    for i in range(200):
        await vibration_window(svc, bus, i, RMS_CAL)
    hu = health(bus)
    assert hu.maintenance_window_days is None and not bus.on(topics.alarm("p1"))
    assert hu.maintenance_reason.startswith("no degradation trend: no persistent rise of RMS")
    assert hu.rul is not None and hu.rul.status == "no_degradation_trend"
    assert hu.indicators == {"rms_log": 0.0, "kurtosis_z": 0.0, "cusum": 0.0, "cusum_h": 30.0}


async def test_rising_vibration_opens_a_trend_alarm_and_publishes_a_fitted_window(tmp_path: Path) -> None:
    bus = MemoryBus()
    svc = build(Settings(data_dir=tmp_path, model_verify_key=VERIFY_KEY))
    await deliver(svc, bus, topics.model_announce("p1", "autoencoder"), announcement(), retain=True)
    # rms_log = ln(1 + 0.02 exp(t / 1800 s)): 0.7 Np at 7066 s, the 1.61 Np threshold at 9538 s
    for i in range(860):
        await vibration_window(svc, bus, i, RMS_CAL * (1 + 0.02 * math.exp(STEP_S * i / 1800)))
    alarms = [AlarmEvent.model_validate_json(m.payload) for m in bus.on(topics.alarm("p1"))]
    trend = [a for a in alarms if a.source == "trend"]
    assert trend and trend[0].state == "ACTIVE" and trend[0].severity == "WARNING"
    assert "CUSUM" in trend[0].reason and (trend[0].opened_at - T0).total_seconds() > 7066
    hu = health(bus)
    assert hu.rul is not None and hu.rul.status == "estimate" and hu.rul.low_s is not None
    assert hu.maintenance_window_days == hu.rul.low_s / 86400
    assert hu.maintenance_reason.startswith("RUL ")
    actual = 1800 * math.log(math.expm1(1.61) / 0.02) - (hu.rul.as_of - T0).total_seconds()
    assert hu.rul.low_s < actual < (hu.rul.high_s or math.inf)
