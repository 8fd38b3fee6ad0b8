"""Health service handlers on the in-memory bus: scores in → retained health, alarms, ack/resolve."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.health.service import HealthService
from shared import topics
from shared.bus import Incoming, MemoryBus
from shared.messages import AlarmActionRequest, AlarmEvent, FeatureVector, HealthUpdate, Score, new_event_id

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def score(i: int, ratio: float, model: str = "legacy") -> Incoming:
    thr = 0.2
    s = Score(
        event_id=new_event_id(),
        asset_id="p1",
        ts=T0 + timedelta(seconds=i),
        model=model,
        model_version="v1",
        anomaly_score=ratio * thr,
        raw_score=ratio * thr,
        threshold=thr,
        is_anomaly=ratio > 1,
        severity="CRITICAL" if ratio > 2 else "WARNING" if ratio > 1 else "NORMAL",
    )
    return Incoming(topics.score("p1", model), s.model_dump_json().encode())


async def test_healthy_then_severe_fault_raises_one_alarm_then_ack_and_resolve(tmp_path: Path) -> None:
    bus = MemoryBus()
    svc = HealthService(state_dir=tmp_path)
    for i in range(600):
        await svc.handle(bus, score(i, 0.3))
    hu = HealthUpdate.model_validate_json(bus.retained[topics.health("p1")].payload)
    assert hu.health_score >= 95 and hu.risk_level == "LOW" and not bus.on(topics.alarm("p1"))
    for i in range(600, 660):
        await svc.handle(bus, score(i, 4.0))
    hu = HealthUpdate.model_validate_json(bus.retained[topics.health("p1")].payload)
    assert hu.health_score < 50 and hu.active_alarms == 1
    alarms = [AlarmEvent.model_validate_json(m.payload) for m in bus.on(topics.alarm("p1"))]
    opened = [a for a in alarms if a.state == "ACTIVE"]
    assert len({a.alarm_id for a in opened}) == 1
    alarm_id = opened[0].alarm_id

    q = bus.subscribe(topics.reply("gw", "1"))
    for action, code, expect in (
        ("ack", None, "ok"),
        ("ack", None, "failed"),
        ("resolve", "bearing_replaced", "ok"),
    ):
        req = AlarmActionRequest(
            correlation_id="1",
            reply_to=topics.reply("gw", "1"),
            alarm_id=alarm_id,
            action=action,
            who="ana",
            note="checked",
            action_code=code,
        )
        await svc.handle(bus, Incoming(topics.command("alarm_action"), req.model_dump_json().encode()))
        reply = json.loads((await q.get()).payload)
        assert reply["status"] == expect, reply
    assert reply["data"]["state"] == "RESOLVED" and reply["data"]["action_code"] == "bearing_replaced"

    unknown = AlarmActionRequest(
        correlation_id="1", reply_to=topics.reply("gw", "1"), alarm_id="f" * 32, action="ack", who="ana"
    )
    await svc.handle(bus, Incoming(topics.command("alarm_action"), unknown.model_dump_json().encode()))
    assert json.loads((await q.get()).payload)["message"].startswith("unknown alarm")

    # state survives a restart (degradation memory, resolved alarm)
    svc.save_all()
    again = HealthService(state_dir=tmp_path)
    again.load_all()
    assert again.assessors["p1"].alarms.get(alarm_id).state == "RESOLVED"


async def test_iso_zone_health_before_calibration() -> None:
    bus = MemoryBus()
    svc = HealthService()
    fv = FeatureVector(
        event_id=new_event_id(),
        asset_id="p1",
        ts=T0,
        kind="vibration",
        names=["x_rms"],
        values=[0.5],
        extras={"velocity_rms_mm_s": 5.1},
    )
    await svc.handle(bus, Incoming(topics.features("p1", "vibration"), fv.model_dump_json().encode()))
    hu = HealthUpdate.model_validate_json(bus.retained[topics.health("p1")].payload)
    assert hu.iso_zone == "D" and hu.velocity_rms_mm_s == 5.1  # group 2 rigid: C/D at 4.5 mm/s
    assert any("5.1 mm/s" in i.text for i in hu.insights)
