"""Handler tests (in-memory bus, real SQLite store, real training) for features, calibrator and scorer."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from services.calibrator.service import build as build_calibrator
from services.features.service import build as build_features
from services.scorer.service import build as build_scorer
from shared import topics
from shared.bus import MemoryBus
from shared.features.engine import FeatureEngine
from shared.learning import registry
from shared.learning.autoencoder import AutoencoderConfig
from shared.learning.calibration import CalibrationConfig
from shared.messages import (
    AssetCommand,
    CalibrationRequest,
    FeatureVector,
    ModelAnnouncement,
    PurgeReply,
    Reading,
    Score,
    StateChange,
    new_event_id,
)
from shared.records import features_to_point, reading_to_point
from shared.service import Service, deliver, running_in_memory
from shared.settings import Settings
from shared.store.sqlite import SqliteStore
from shared.synth import simple_reading

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FAST = CalibrationConfig(autoencoder=AutoencoderConfig(epochs=20))


def readings(n: int, *, faulty: bool = False, fault: str | None = None, seed: int = 0, start: datetime = T0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        d = simple_reading(rng, faulty, fault)
        out.append(
            Reading(
                event_id=new_event_id(),
                asset_id="m1",
                ts=start + timedelta(seconds=0.2 * i),
                voltage_v=d["voltage_v"],
                current_a=d["current_a"],
                power_factor=d["power_factor"],
                vibration_g=d["vibration_g"],
                is_faulty=faulty,
            )
        )
    return out


async def test_features_service_publishes_legacy_and_batch() -> None:
    bus = MemoryBus()
    svc = build_features(Settings(), engine=FeatureEngine(batch_window=10, legacy_warmup=5))
    for r in readings(12):
        await deliver(svc, bus, topics.reading("m1"), r)
    legacy = bus.on(topics.features("m1", "legacy"))
    batch = bus.on(topics.features("m1", "batch"))
    assert len(legacy) == 8, "no legacy vector before 5 readings of history"
    assert len(batch) == 3
    fv = FeatureVector.model_validate_json(batch[-1].payload)
    assert len(fv.values) == 16 and fv.names[0] == "voltage_v_mean"


def fill_store(store: SqliteStore, rs: list[Reading], engine: FeatureEngine | None = None) -> None:
    eng = engine or FeatureEngine(batch_window=10)
    pts = []
    for r in rs:
        pts.append(reading_to_point(r))
        pts += [features_to_point(fv) for fv in eng.on_reading(r)]
    store.write(pts)


def make_calibrator(tmp_path: Path) -> tuple[Service, SqliteStore]:
    store = SqliteStore(tmp_path / "db.sqlite")
    settings = Settings(
        data_dir=tmp_path, model_dir=tmp_path / "models", batch_window=10, rotorwatch_env="development"
    )
    return build_calibrator(settings, store=store, config=FAST), store


async def calibrate_via_bus(cal: Service, bus: MemoryBus, minutes: float = 10, cid: str = "c1") -> dict:
    """Request a calibration of m1 and wait for the reply (running the calibrator meanwhile if needed)."""
    if not cal.serve_state.connected:
        async with running_in_memory(cal, bus):
            return await calibrate_via_bus(cal, bus, minutes, cid)
    q = bus.subscribe(topics.reply("t", cid))
    req = CalibrationRequest(
        correlation_id=cid, reply_to=topics.reply("t", cid), asset_id="m1", lookback_minutes=minutes
    )
    await bus.publish(topics.command("calibrate"), req)
    msg = await asyncio.wait_for(q.get(), 60)
    return json.loads(msg.payload)


async def test_calibration_success_announces_models_and_state(tmp_path: Path) -> None:
    cal, store = make_calibrator(tmp_path)
    fill_store(store, readings(400))
    bus = MemoryBus()
    reply = await calibrate_via_bus(cal, bus)
    assert reply["status"] == "completed", reply
    assert reply["data_points_collected"] == 400
    assert set(reply["models"]) == {"legacy", "batch"}
    version = registry.latest_version(tmp_path / "models", "m1")
    assert version and reply["models"]["legacy"] == version
    ann = ModelAnnouncement.model_validate_json(bus.retained[topics.model_announce("m1", "legacy")].payload)
    assert ann.version == version and ann.manifest.signal_baseline["voltage_v"].mean == pytest.approx(
        230, abs=1
    )
    states = [StateChange.model_validate_json(m.payload) for m in bus.on(topics.state("m1"))]
    assert states[0].state == "CALIBRATING" and states[-1].state == "CALIBRATED"
    assert any("Collected 400 data points" in s.reason for s in states)


async def test_insufficient_data_names_the_count(tmp_path: Path) -> None:
    cal, store = make_calibrator(tmp_path)
    fill_store(store, readings(42))
    reply = await calibrate_via_bus(cal, MemoryBus())
    assert reply["status"] == "failed" and reply["code"] == "insufficient_data"
    assert reply["message"].startswith("Insufficient data for calibration: found 42 readings (need 100)")


async def test_contaminated_baseline_rejected_and_previous_models_kept(tmp_path: Path) -> None:
    cal, store = make_calibrator(tmp_path)
    fill_store(store, readings(400))
    bus = MemoryBus()
    async with running_in_memory(cal, bus):
        assert (await calibrate_via_bus(cal, bus))["status"] == "completed"
        first = registry.latest_version(tmp_path / "models", "m1")
        # 12.5% faulty readings (voltage spikes) in the newest 2 minutes
        later = T0 + timedelta(hours=1)
        mixed = readings(350, start=later, seed=1) + readings(
            50, faulty=True, fault="voltage_spike", seed=2, start=later + timedelta(seconds=30.1)
        )
        mixed.sort(key=lambda r: r.ts)
        fill_store(store, mixed)
        reply = await calibrate_via_bus(cal, bus, minutes=2, cid="c2")
    assert reply["status"] == "failed" and reply["code"] == "validation_failed"
    assert reply["message"].startswith("Baseline validation failed:") and "% outliers" in reply["message"]
    assert registry.latest_version(tmp_path / "models", "m1") == first
    last = StateChange.model_validate_json(bus.on(topics.state("m1"))[-1].payload)
    assert last.state == "CALIBRATED" and last.reason.startswith("Baseline validation failed")


async def test_purge_returns_to_idle_and_deletes(tmp_path: Path) -> None:
    cal, store = make_calibrator(tmp_path)
    fill_store(store, readings(300))
    bus = MemoryBus()
    assert (await calibrate_via_bus(cal, bus))["status"] == "completed"
    q = bus.subscribe(topics.reply("t", "p1"))
    cmd = AssetCommand(correlation_id="p1", reply_to=topics.reply("t", "p1"), asset_id=None)
    await deliver(cal, bus, topics.command("purge"), cmd)
    reply = PurgeReply.model_validate_json((await q.get()).payload)
    assert reply.status == "ok" and reply.assets == ["m1"]
    assert store.assets() == [] and registry.list_versions(tmp_path / "models", "m1") == []
    assert topics.model_announce("m1", "legacy") not in bus.retained
    assert StateChange.model_validate_json(bus.retained[topics.state("m1")].payload).state == "IDLE"


async def test_scorer_scores_flags_faults_and_switches_to_monitoring(tmp_path: Path) -> None:
    cal, store = make_calibrator(tmp_path)
    eng = FeatureEngine(
        batch_window=10
    )  # the live features service keeps its state from calibration to scoring
    fill_store(store, readings(600), eng)
    bus = MemoryBus()
    assert (await calibrate_via_bus(cal, bus))["status"] == "completed"
    # development: the scorer trusts the key the calibrator generated under the same DATA_DIR
    scorer_settings = Settings(data_dir=tmp_path, rotorwatch_env="development")
    scorer = build_scorer(scorer_settings, ["--model", "legacy", "--window", "10"])
    for t in (topics.model_announce("m1", "legacy"), topics.state("m1")):
        m = bus.retained[t]
        await deliver(scorer, bus, m.topic, m.payload, retain=True)
    healthy = readings(200, seed=7, start=T0 + timedelta(seconds=120))
    faulty = readings(20, faulty=True, fault="voltage_spike", seed=8, start=T0 + timedelta(seconds=160))
    for r in healthy + faulty:
        for fv in eng.on_reading(r):
            if fv.kind == "legacy":
                await deliver(scorer, bus, topics.features("m1", "legacy"), fv)
    scores = [Score.model_validate_json(m.payload) for m in bus.on(topics.score("m1", "legacy"))]
    assert len(scores) == 220
    healthy_flags = sum(s.is_anomaly for s in scores[:200])
    assert healthy_flags <= 2, "at most 1% of healthy windows flagged"
    # The legacy forest sees a voltage spike through voltage_stability (|V - 230|) alone: the hourly mean
    # leaves spikes out (trimmed, so a past fault cannot hold the alarm policy for an hour), and the
    # scorer's 10-window mean reaches the threshold once ~all 10 windows are faulty (measured: the 12th).
    assert any(s.is_anomaly for s in scores[200:213]), "voltage spikes flagged within 13 windows"
    assert StateChange.model_validate_json(bus.retained[topics.state("m1")].payload).state == "MONITORING"
