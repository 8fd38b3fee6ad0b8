"""Health service with prognostics, on the in-memory bus and on a real Mosquitto: a rising vibration
stream opens a ``trend`` alarm and publishes a fitted RUL and maintenance window; a healthy one publishes
no window and says why."""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.health.repository import AssessorStates
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
from shared.service import Service, deliver, run_service
from shared.settings import Settings
from tests.support.pipeline import Collector, client
from tests.support.signing import VERIFY_KEY, signed

T0 = datetime(2026, 3, 1, tzinfo=UTC)
RMS_CAL = 0.2  # g, the calibrated x_rms
STEP_S = 10  # one vibration window per 10 s of data time (FEMTO's snapshot interval)
NAMES = ["x_rms", "y_rms", "x_kurtosis", "y_kurtosis"]


def announcement(asset: str = "p1") -> ModelAnnouncement:
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
        asset_id=asset,
        model="autoencoder",
        version="v1",
        path="p1/v1",
        created_at=T0,
        manifest=manifest,
        onnx_b64="AA==",
    )
    return signed(ann)


def rising(i: int) -> float:
    """x_rms of window ``i``: rms_log = ln(1 + 0.02 exp(t / 1800 s)), 1.0 Np at 8016 s, 1.64 Np at 9606 s."""
    return RMS_CAL * (1 + 0.02 * math.exp(STEP_S * i / 1800))


def window_parts(i: int, rms: float, asset: str = "p1") -> list[tuple[str, FeatureVector | Score]]:
    """Window ``i`` (data time T0 + 10 i s): its vibration vector and the autoencoder's (healthy) score."""
    ts, event = T0 + timedelta(seconds=STEP_S * i), f"{asset}-{i:08d}"
    fv = FeatureVector(
        event_id=event, asset_id=asset, ts=ts, kind="vibration", names=NAMES, values=[rms, rms / 2, 0.0, 0.0]
    )
    score = Score(
        event_id=event,
        asset_id=asset,
        ts=ts,
        model="autoencoder",
        model_version="v1",
        anomaly_score=0.06,
        raw_score=0.06,
        threshold=0.2,
        is_anomaly=False,
        severity="NORMAL",
    )
    return [(topics.features(asset, "vibration"), fv), (topics.score(asset, "autoencoder"), score)]


async def vibration_window(svc: Service, bus: MemoryBus, i: int, rms: float) -> None:
    for topic, msg in window_parts(i, rms):
        await deliver(svc, bus, topic, msg)


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
    assert hu.indicators == {"rms_log": 0.0, "kurtosis_z": 0.0, "cusum": 0.0, "cusum_h": 10.0}


async def test_rising_vibration_opens_a_trend_alarm_and_publishes_a_fitted_window(tmp_path: Path) -> None:
    bus = MemoryBus()
    svc = build(Settings(data_dir=tmp_path, model_verify_key=VERIFY_KEY))
    await deliver(svc, bus, topics.model_announce("p1", "autoencoder"), announcement(), retain=True)
    for i in range(860):
        await vibration_window(svc, bus, i, rising(i))
    alarms = [AlarmEvent.model_validate_json(m.payload) for m in bus.on(topics.alarm("p1"))]
    trend = [a for a in alarms if a.source == "trend"]
    assert trend and trend[0].state == "ACTIVE" and trend[0].severity == "WARNING"
    assert "CUSUM" in trend[0].reason and (trend[0].opened_at - T0).total_seconds() > 8016
    hu = health(bus)
    assert hu.rul is not None and hu.rul.status == "estimate" and hu.rul.low_s is not None
    assert hu.maintenance_window_days == hu.rul.low_s / 86400
    assert hu.maintenance_reason.startswith("RUL ")
    # accuracy on this path (the default pooled fit, late on an accelerating rise): tests/test_prognostics.py
    assert hu.rul.median_s is not None and hu.rul.low_s <= hu.rul.median_s


async def test_a_restart_keeps_the_prognostics(tmp_path: Path) -> None:
    """Saved at a checkpoint, restored without a baseline, the retained announcement comes back: the
    tracker continues (its first alarm and buffer kept) instead of starting again."""
    bus = MemoryBus()
    svc = build(Settings(data_dir=tmp_path, model_verify_key=VERIFY_KEY))
    st = svc.state
    assert isinstance(st, AssessorStates)
    await st.open()
    await deliver(svc, bus, topics.model_announce("p1", "autoencoder"), announcement(), retain=True)
    for i in range(840):  # the trend alarm opens at window 826
        await vibration_window(svc, bus, i, rising(i))
    await st.save(st.snapshot())
    saved = st.assessors["p1"].to_dict()["prognostics"]
    assert saved["first_alarm_ts"] is not None
    again = build(Settings(data_dir=tmp_path, model_verify_key=VERIFY_KEY))
    st2 = again.state
    assert isinstance(st2, AssessorStates)
    await st2.open()
    await deliver(again, bus, topics.model_announce("p1", "autoencoder"), announcement(), retain=True)
    assert st2.assessors["p1"].to_dict()["prognostics"] == saved
    for i in range(840, 900):
        await vibration_window(again, bus, i, rising(i))
    hu = health(bus)
    assert hu.rul is not None and hu.rul.status == "estimate" and hu.maintenance_window_days is not None


@pytest.mark.integration
async def test_rising_vibration_on_a_real_broker(mosquitto: Any, tmp_path: Path) -> None:
    """The same rising stream through Mosquitto: the trend alarm and a health with a fitted window arrive."""
    asset = f"rul-{uuid.uuid4().hex[:8]}"
    s = Settings(data_dir=tmp_path, model_verify_key=VERIFY_KEY, mqtt_url=mosquitto.url)
    svc = build(s)
    async with client(mosquitto.url) as c:
        ann = announcement(asset).model_dump_json()
        await c.publish(topics.model_announce(asset, "autoencoder"), ann, qos=1, retain=True)
    async with Collector(mosquitto.url, [topics.alarm(asset), topics.health(asset)]) as col:
        task = asyncio.create_task(run_service(svc, s))
        try:
            async with client(mosquitto.url) as c:
                for i in range(860):
                    for topic, msg in window_parts(i, rising(i), asset):
                        await c.publish(topic, msg.model_dump_json(), qos=1)
            _, alarm, _ = await col.wait_for(lambda t, p: t == topics.alarm(asset) and p["source"] == "trend")
            _, hu, _ = await col.wait_for(
                lambda t, p: t == topics.health(asset) and (p.get("rul") or {}).get("status") == "estimate"
            )
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            async with client(mosquitto.url) as c:
                for t in (topics.model_announce(asset, "autoencoder"), topics.health(asset)):
                    await c.publish(t, b"", qos=1, retain=True)
    assert alarm["severity"] == "WARNING" and "CUSUM" in alarm["reason"]
    assert hu["maintenance_window_days"] == hu["rul"]["low_s"] / 86400
    assert hu["maintenance_reason"].startswith("RUL ") and hu["indicators"]["cusum_h"] == 10.0
