"""Sensor faults through the service handlers on the in-memory bus: the features service publishes the
retained ``sensor/<a>`` status (stuck readings, a flat or clipped window, a dropout), and the health
service opens a sensor alarm, holds the machine's health at its value before the fault (marked
``sensor_fault``), withdraws a machine alarm the faulty data opened, and clears the sensor alarm after the
fault."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from services.features.service import build as build_features
from shared import topics
from shared.bus import MemoryBus
from shared.messages import (
    AlarmEvent,
    AssetConfig,
    HealthUpdate,
    Reading,
    SensorFindingItem,
    SensorSettings,
    SensorStatus,
    Window,
)
from shared.service import deliver
from shared.settings import Settings
from tests.test_health_service import T0, action, eid, service, window

ASSET = "p1"


def status(bus: MemoryBus, asset: str = ASSET) -> SensorStatus:
    return SensorStatus.model_validate_json(bus.retained[topics.sensor(asset)].payload)


def alarms(bus: MemoryBus) -> list[AlarmEvent]:
    return [AlarmEvent.model_validate_json(m.payload) for m in bus.on(topics.alarm(ASSET))]


def health(bus: MemoryBus) -> HealthUpdate:
    return HealthUpdate.model_validate_json(bus.retained[topics.health(ASSET)].payload)


def reading(i: int, values: tuple[float, float, float, float]) -> Reading:
    v, c, pf, g = values
    return Reading(
        event_id=eid(i),
        asset_id=ASSET,
        ts=T0 + timedelta(seconds=i),
        voltage_v=v,
        current_a=c,
        power_factor=pf,
        vibration_g=g,
    )


def vib(i: int, x: np.ndarray) -> Window:
    return Window(
        event_id=eid(i),
        asset_id=ASSET,
        ts=T0 + timedelta(seconds=i),
        fs_hz=500.0,
        n=len(x),
        axes=["x"],
        x=list(x),
    )


async def test_features_publishes_a_stuck_stream_as_a_sensor_fault(tmp_path: Path) -> None:
    svc, bus = build_features(Settings(data_dir=tmp_path)), MemoryBus()
    rng = np.random.default_rng(0)
    for i in range(40):
        noisy = (
            230 + rng.normal(0, 2),
            15 + rng.normal(0, 0.3),
            0.92 + rng.normal(0, 0.01),
            0.15 + rng.normal(0, 0.02),
        )
        await deliver(svc, bus, topics.reading(ASSET), reading(i, noisy))
    assert bus.on(topics.sensor(ASSET)) == []  # never told: ok
    for i in range(40, 70):
        await deliver(svc, bus, topics.reading(ASSET), reading(i, (230.0, 15.0, 0.92, 0.15)))
    s = status(bus)
    assert (
        s.status == "fault" and s.since == T0 + timedelta(seconds=40) and s.ts == T0 + timedelta(seconds=69)
    )
    assert {(f.kind, f.signal) for f in s.findings} == {
        ("stuck", k) for k in ("voltage_v", "current_a", "power_factor", "vibration_g")
    }
    assert any("stuck at 230 for 30 consecutive readings" in f.reason for f in s.findings)
    assert len(bus.on(topics.features(ASSET, "legacy"))) + len(bus.on(topics.features(ASSET, "batch"))) > 0


async def test_features_publishes_flat_and_clipped_windows(tmp_path: Path) -> None:
    svc, bus = build_features(Settings(data_dir=tmp_path)), MemoryBus()
    sine = np.sin(2 * np.pi * 10 * np.arange(256) / 500 + 0.3)
    await deliver(svc, bus, topics.window(ASSET), vib(0, sine))
    assert bus.on(topics.sensor(ASSET)) == []
    await deliver(svc, bus, topics.window(ASSET), vib(1, np.clip(sine * 2, -1.5, 1.5)))
    (f,) = status(bus).findings
    assert (f.kind, f.signal) == ("clipping", "x")
    await deliver(svc, bus, topics.window(ASSET), vib(2, np.zeros(256)))
    assert {f.kind for f in status(bus).findings} == {"clipping", "flatline"}
    assert len(bus.on(topics.features(ASSET, "vibration"))) == 3  # the features go on


def fault(since_s: float, ts_s: float, kind: str = "stuck") -> SensorStatus:
    finding = SensorFindingItem(
        kind=kind,  # type: ignore[arg-type]
        signal="voltage_v",
        since=T0 + timedelta(seconds=since_s),
        reason="voltage_v stuck at 230 for 30 consecutive readings (noise never repeats)",
    )
    return SensorStatus(
        asset_id=ASSET,
        status="fault",
        ts=T0 + timedelta(seconds=ts_s),
        since=T0 + timedelta(seconds=since_s),
        findings=[finding],
    )


def ok(ts_s: float) -> SensorStatus:
    ts = T0 + timedelta(seconds=ts_s)
    return SensorStatus(asset_id=ASSET, status="ok", ts=ts, since=ts)


async def test_health_holds_the_machine_health_and_raises_a_sensor_alarm(tmp_path: Path) -> None:
    bus, svc = MemoryBus(), service(tmp_path)
    await svc.state.open()  # type: ignore[union-attr]
    await deliver(svc, bus, topics.sensor(ASSET), ok(0), retain=True)  # the first status: nothing
    for i in range(100):
        await window(svc, bus, i, 0.3)
    before = health(bus)
    assert before.health_score >= 95 and before.sensor_fault is None and not alarms(bus)
    for i in range(100, 130):  # the stuck readings scored as anomalous before the fault is recognised
        await window(svc, bus, i, 4.0)
    machine = [a for a in alarms(bus) if a.source == "anomaly"]
    assert machine and machine[0].state == "ACTIVE" and health(bus).health_score < 50

    await deliver(svc, bus, topics.sensor(ASSET), fault(100, 129), retain=True)
    events = alarms(bus)
    sensor = [a for a in events if a.source == "sensor"]
    assert [(a.state, a.severity) for a in sensor] == [("ACTIVE", "WARNING")]
    assert "stuck at 230" in sensor[0].reason
    withdrawn = [a for a in events if a.source == "anomaly" and a.state == "RESOLVED"]
    assert withdrawn and withdrawn[0].who == "system" and withdrawn[0].action_code == "false_alarm"
    held = health(bus)
    assert held.health_score == before.health_score and held.risk_level == before.risk_level
    assert held.sensor_fault is not None and "stuck at 230" in held.sensor_fault
    assert held.active_alarms == 1  # the sensor alarm
    # no maintenance window while the measurement is implausible: the RUL says why
    assert held.maintenance_window_days is None and held.maintenance_reason.startswith("sensor fault: ")
    assert held.rul is not None and held.rul.status == "sensor_fault" and held.indicators == {}

    n = len(bus.on(topics.alarm(ASSET)))
    for i in range(130, 200):  # still stuck: the health stays where it was, no machine alarm
        await window(svc, bus, i, 4.0)
    assert health(bus).health_score == before.health_score and health(bus).sensor_fault
    assert len(bus.on(topics.alarm(ASSET))) == n

    await deliver(svc, bus, topics.sensor(ASSET), ok(200), retain=True)
    for i in range(200, 215):  # the sensor is fine again: the health moves, the sensor alarm clears
        await window(svc, bus, i, 0.3)
    cleared = [a for a in alarms(bus) if a.source == "sensor" and a.state == "RESOLVED"]
    assert cleared and cleared[0].auto_cleared
    after = health(bus)
    assert after.sensor_fault is None and after.active_alarms == 0 and after.health_score >= 95


async def test_a_fault_from_the_first_data_holds_no_health(tmp_path: Path) -> None:
    bus, svc = MemoryBus(), service(tmp_path)
    await svc.state.open()  # type: ignore[union-attr]
    await deliver(svc, bus, topics.sensor(ASSET), fault(0, 29), retain=True)
    for i in range(40):
        await window(svc, bus, i, 4.0)
    assert topics.health(ASSET) not in bus.retained  # nothing known from before the fault
    assert [a.source for a in alarms(bus)] == ["sensor"]


async def test_after_a_restart_a_fault_told_before_is_cleared_by_the_first_clean_reading(
    tmp_path: Path,
) -> None:
    svc, bus = build_features(Settings(data_dir=tmp_path)), MemoryBus()
    await deliver(svc, bus, topics.sensor(ASSET), fault(0, 29), retain=True)  # our own, read back
    await deliver(svc, bus, topics.reading(ASSET), reading(40, (231.0, 15.1, 0.93, 0.16)))
    s = status(bus)
    assert s.status == "ok" and s.findings == [] and s.since == T0 + timedelta(seconds=40)


def noisy(rng: np.random.Generator) -> tuple[float, float, float, float]:
    return (
        230 + rng.normal(0, 2),
        15 + rng.normal(0, 0.3),
        0.92 + rng.normal(0, 0.01),
        0.15 + rng.normal(0, 0.02),
    )


async def stream_fault(tmp_path: Path, kind: str) -> SensorStatus:
    """The features service's sensor status after 100 s of a healthy stream (1 reading or window per s)
    and then the fault ``kind``, starting at second 100."""
    svc, bus = build_features(Settings(data_dir=tmp_path / "features")), MemoryBus()
    rng = np.random.default_rng(7)
    sine = np.sin(2 * np.pi * 10 * np.arange(256) / 500 + 0.3)
    for i in range(100):
        if kind == "clipping":
            await deliver(svc, bus, topics.window(ASSET), vib(i, sine + rng.normal(0, 0.05, 256)))
        else:
            await deliver(svc, bus, topics.reading(ASSET), reading(i, noisy(rng)))
    assert bus.on(topics.sensor(ASSET)) == []
    if kind == "clipping":  # the sensor saturates at 0.8 g
        await deliver(
            svc, bus, topics.window(ASSET), vib(100, np.clip(sine + rng.normal(0, 0.05, 256), -0.8, 0.8))
        )
    elif kind == "dropout":  # 20 s without a reading
        await deliver(svc, bus, topics.reading(ASSET), reading(120, noisy(rng)))
    else:
        for i in range(100, 130):
            await deliver(svc, bus, topics.reading(ASSET), reading(i, (230.0, 15.0, 0.92, 0.15)))
    return status(bus)


@pytest.mark.parametrize(("kind", "since"), [("stuck", 100), ("clipping", 100), ("dropout", 120)])
async def test_stuck_clipped_and_dropped_out_streams_raise_a_sensor_alarm_and_hold_health(
    tmp_path: Path, kind: str, since: int
) -> None:
    s = await stream_fault(tmp_path, kind)
    assert s.status == "fault" and {f.kind for f in s.findings} == {kind}
    assert s.since == T0 + timedelta(seconds=since)
    bus, svc = MemoryBus(), service(tmp_path / "health")
    await svc.state.open()  # type: ignore[union-attr]
    for i in range(100):
        await window(svc, bus, i, 0.3)
    before = health(bus)
    for i in range(since, since + 30):  # what the faulty data would do to the machine's health
        await window(svc, bus, i, 4.0)
    await deliver(svc, bus, topics.sensor(ASSET), s, retain=True)
    for i in range(since + 30, since + 60):
        await window(svc, bus, i, 4.0)
    opened = [a for a in alarms(bus) if a.source == "sensor" and a.state == "ACTIVE"]
    assert len(opened) == 1 and opened[0].reason.startswith(s.findings[0].reason)
    held = health(bus)
    assert (held.health_score, held.risk_level) == (before.health_score, before.risk_level)
    assert held.sensor_fault and held.degradation_index == before.degradation_index


async def test_a_sensor_alarm_resolved_by_hand_during_the_fault_rearms_once_the_sensor_is_fine(
    tmp_path: Path,
) -> None:
    bus, svc = MemoryBus(), service(tmp_path)
    await svc.state.open()  # type: ignore[union-attr]
    for i in range(20):
        await window(svc, bus, i, 0.3)
    await deliver(svc, bus, topics.sensor(ASSET), fault(20, 20), retain=True)
    (opened,) = alarms(bus)
    await deliver(svc, bus, topics.command("alarm_action"), action(opened.alarm_id, "resolve", "false_alarm"))
    assert alarms(bus)[-1].state == "RESOLVED"
    await deliver(svc, bus, topics.sensor(ASSET), ok(30), retain=True)
    await deliver(svc, bus, topics.sensor(ASSET), fault(40, 40), retain=True)
    again = [a for a in alarms(bus) if a.state == "ACTIVE"]
    assert len(again) == 2 and again[1].alarm_id != opened.alarm_id


async def test_the_configured_full_scale_and_rate_are_what_the_sensor_is_checked_against(
    tmp_path: Path,
) -> None:
    """Three isolated samples at the accelerometer's 0.8 g range are too few for the generic flat-top
    rule (5 at the extreme) but are clipping once the asset config states the range; a 500 Hz window is
    a rate mismatch once the config says the device is set to 1000 Hz (without it the first window is
    the reference)."""
    rng = np.random.default_rng(5)
    x = rng.normal(0, 0.1, 256)
    x[[40, 120, 200]] = 0.8
    svc, bus = build_features(Settings(data_dir=tmp_path / "plain")), MemoryBus()
    await deliver(svc, bus, topics.window(ASSET), vib(0, x))
    assert bus.on(topics.sensor(ASSET)) == []

    svc, bus = build_features(Settings(data_dir=tmp_path / "configured")), MemoryBus()
    config = AssetConfig(asset_id=ASSET, sensor=SensorSettings(full_scale_g=0.8, sample_rate_hz=1000.0))
    await deliver(svc, bus, topics.asset_config(ASSET), config, retain=True)
    await deliver(svc, bus, topics.window(ASSET), vib(0, x))
    found = {f.kind: f for f in status(bus).findings}
    assert set(found) == {"clipping", "rate_mismatch"}
    assert "3 at the full scale" in found["clipping"].reason
    assert found["rate_mismatch"].reason == "Sample rate 500 Hz differs from the configured 1000 Hz"
    assert found["rate_mismatch"].values == {"fs_hz": 500.0, "ref_fs_hz": 1000.0}
