"""Health service handlers on the in-memory bus: scores in → retained health, alarms, ack/resolve,
model baselines, purge, and the assessor state saved through the state port."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.health.messages import baseline_from_manifest
from services.health.repository import AssessorRepository, AssessorStates
from services.health.service import HealthHandlers, build
from shared import topics
from shared.bus import MemoryBus
from shared.messages import (
    AlarmActionReply,
    AlarmActionRequest,
    AlarmEvent,
    DeadLetter,
    FeatureBaseline,
    FeatureStat,
    FeatureVector,
    HealthUpdate,
    ModelAnnouncement,
    ModelManifest,
    RawScore,
    Reading,
    Score,
    SignalStat,
    StateChange,
    new_event_id,
)
from shared.service import Service, deliver, running_in_memory
from shared.settings import Settings
from tests.support.signing import VERIFY_KEY, signed

T0 = datetime(2026, 3, 1, tzinfo=UTC)
ACTION = topics.command("alarm_action")
REPLY = topics.reply("gw", "1")


def service(tmp_path: Path) -> Service:
    return build(Settings(data_dir=tmp_path, model_verify_key=VERIFY_KEY))


def states(svc: Service) -> AssessorStates:
    assert isinstance(svc.state, AssessorStates)
    return svc.state


def score(i: int, ratio: float, model: str = "legacy", asset: str = "p1") -> Score:
    thr = 0.2
    return Score(
        event_id=new_event_id(),
        asset_id=asset,
        ts=T0 + timedelta(seconds=i),
        model=model,
        model_version="v1",
        anomaly_score=ratio * thr,
        raw_score=ratio * thr,
        threshold=thr,
        is_anomaly=ratio > 1,
        severity="CRITICAL" if ratio > 2 else "WARNING" if ratio > 1 else "NORMAL",
    )


def action(alarm_id: str, what: str = "ack", code: str | None = None) -> AlarmActionRequest:
    return AlarmActionRequest(
        correlation_id="1",
        reply_to=REPLY,
        alarm_id=alarm_id,
        action=what,  # type: ignore[arg-type]
        who="ana",
        note="checked",
        action_code=code,  # type: ignore[arg-type]
    )


def manifest(baseline: bool = True) -> ModelManifest:
    return ModelManifest(
        kind="legacy",
        algorithm="isolation_forest",
        features=["voltage_v", "current_a"],
        n_features=2,
        input="x",
        output="y",
        raw_score=RawScore(transform="identity"),
        threshold=0.2,
        baseline=FeatureBaseline(
            n=100,
            features=[
                FeatureStat(name="voltage_v", mean=230, std=2, min=225, max=236, median=230, mad=1.3),
                FeatureStat(name="current_a", mean=12, std=0.5, min=11, max=13, median=12, mad=0.3),
            ],
        )
        if baseline
        else None,
        signal_baseline={
            "power_factor": SignalStat(mean=0.92, std=0.01),
            "voltage_v": SignalStat(mean=231, std=2.5),
        },
    )


def announcement() -> ModelAnnouncement:
    """A model announcement signed with the test key the service trusts."""
    return signed(
        ModelAnnouncement(
            asset_id="p1",
            model="legacy",
            version="v1",
            path="p1/v1",
            created_at=T0,
            manifest=manifest(),
            onnx_b64="AA==",
        )
    )


async def severe_alarm(svc: Service, bus: MemoryBus) -> str:
    """600 healthy seconds, then a severe fault: the one alarm's id."""
    for i in range(600):
        await deliver(svc, bus, topics.score("p1", "legacy"), score(i, 0.3))
    for i in range(600, 660):
        await deliver(svc, bus, topics.score("p1", "legacy"), score(i, 4.0))
    opened = [AlarmEvent.model_validate_json(m.payload) for m in bus.on(topics.alarm("p1"))]
    assert len({a.alarm_id for a in opened if a.state == "ACTIVE"}) == 1
    return opened[0].alarm_id


async def test_healthy_then_severe_fault_raises_one_alarm_then_ack_and_resolve(tmp_path: Path) -> None:
    bus = MemoryBus()
    svc = service(tmp_path)
    await svc.state.open()  # type: ignore[union-attr]
    for i in range(600):
        await deliver(svc, bus, topics.score("p1", "legacy"), score(i, 0.3))
    hu = HealthUpdate.model_validate_json(bus.retained[topics.health("p1")].payload)
    assert hu.health_score >= 95 and hu.risk_level == "LOW" and not bus.on(topics.alarm("p1"))
    for i in range(600, 660):
        await deliver(svc, bus, topics.score("p1", "legacy"), score(i, 4.0))
    hu = HealthUpdate.model_validate_json(bus.retained[topics.health("p1")].payload)
    assert hu.health_score < 50 and hu.active_alarms == 1
    alarms = [AlarmEvent.model_validate_json(m.payload) for m in bus.on(topics.alarm("p1"))]
    opened = [a for a in alarms if a.state == "ACTIVE"]
    assert len({a.alarm_id for a in opened}) == 1
    alarm_id = opened[0].alarm_id

    q = bus.subscribe(REPLY)
    for what, code, expect, error in (
        ("ack", None, "ok", None),
        ("ack", None, "failed", "conflict"),
        ("resolve", "bearing_replaced", "ok", None),
        ("resolve", "other", "failed", "conflict"),
    ):
        await deliver(svc, bus, ACTION, action(alarm_id, what, code))
        reply = AlarmActionReply.model_validate_json((await q.get()).payload)
        assert reply.status == expect and reply.code == error, reply
        if expect == "ok":
            last_ok = reply
    assert last_ok.alarm is not None
    assert last_ok.alarm.state == "RESOLVED" and last_ok.alarm.action_code == "bearing_replaced"
    assert last_ok.alarm.previous == "ACKNOWLEDGED" and last_ok.message == "alarm resolved"

    await deliver(svc, bus, ACTION, action("f" * 32))
    unknown = AlarmActionReply.model_validate_json((await q.get()).payload)
    assert unknown.status == "failed" and unknown.code == "not_found"
    assert unknown.message.startswith("unknown alarm")

    # state survives a restart (degradation memory, resolved alarm)
    await svc.state.close()  # type: ignore[union-attr]
    again = service(tmp_path)
    await again.state.open()  # type: ignore[union-attr]
    assert states(again).assessors["p1"].alarms.get(alarm_id).state == "RESOLVED"


async def test_iso_zone_health_before_calibration(tmp_path: Path) -> None:
    bus = MemoryBus()
    svc = service(tmp_path)
    fv = FeatureVector(
        event_id=new_event_id(),
        asset_id="p1",
        ts=T0,
        kind="vibration",
        names=["x_rms"],
        values=[0.5],
        extras={"velocity_rms_mm_s": 5.1},
    )
    await deliver(svc, bus, topics.features("p1", "vibration"), fv)
    hu = HealthUpdate.model_validate_json(bus.retained[topics.health("p1")].payload)
    assert hu.iso_zone == "D" and hu.velocity_rms_mm_s == 5.1  # group 2 rigid: C/D at 4.5 mm/s
    assert any("5.1 mm/s" in i.text for i in hu.insights)


def test_baseline_from_typed_manifest() -> None:
    b = baseline_from_manifest(manifest())
    assert b["current_a"] == {"mean": 12.0, "std": 0.5, "min": 11.0, "max": 13.0}
    # the raw-signal baseline wins over a feature of the same name; absent statistics are left out
    assert b["voltage_v"] == {"mean": 231.0, "std": 2.5}
    assert b["power_factor"] == {"mean": 0.92, "std": 0.01}
    assert baseline_from_manifest(manifest(baseline=False)).keys() == {"power_factor", "voltage_v"}


async def test_model_announcement_sets_the_baseline_and_a_cleared_one_drops_it(tmp_path: Path) -> None:
    bus = MemoryBus()
    svc = service(tmp_path)
    await deliver(svc, bus, topics.score("p1", "legacy"), score(0, 0.3))
    a = states(svc).assessors["p1"]
    assert a.baseline is None
    await deliver(svc, bus, topics.model_announce("p1", "legacy"), announcement(), retain=True)
    assert a.baseline is not None and a.baseline["power_factor"]["mean"] == 0.92
    # a reading far off the signal baseline now moves the signals track (4σ → ratio 1)
    reading = Reading(
        event_id=new_event_id(),
        asset_id="p1",
        ts=T0 + timedelta(seconds=1),
        voltage_v=231.0,
        current_a=12.0,
        power_factor=0.52,
        vibration_g=0.2,
    )
    await deliver(svc, bus, topics.reading("p1"), reading)
    signals = a.to_dict()["models"]["signals"]  # |0.52 - 0.92| / 0.01 = 40σ → ratio 10, capped at 5
    assert signals["last"] == 5.0 and signals["severity"] == "CRITICAL"
    await deliver(svc, bus, topics.model_announce("p1", "legacy"), b"", retain=True)
    assert a.baseline is None


async def test_out_of_order_data_is_a_dead_letter(tmp_path: Path) -> None:
    bus = MemoryBus()
    svc = service(tmp_path)
    await deliver(svc, bus, topics.score("p1", "legacy"), score(10, 0.3))
    await deliver(svc, bus, topics.score("p1", "legacy"), score(5, 0.3))
    [dl] = [DeadLetter.model_validate_json(m.payload) for m in bus.on(topics.dead_letter("health"))]
    assert dl.reason.startswith("health update refused") and "older" in dl.reason


async def test_purge_forgets_the_asset_and_its_saved_state(tmp_path: Path) -> None:
    bus = MemoryBus()
    svc = service(tmp_path)
    alarm_id = await severe_alarm(svc, bus)
    await deliver(svc, bus, topics.score("p2", "legacy"), score(0, 0.3, asset="p2"))
    saved = tmp_path / "health" / "p1.json"
    assert saved.exists()  # saved at once on the alarm transition
    # an IDLE state that is no purge (e.g. a failed first calibration) keeps everything
    failed = StateChange(asset_id="p1", state="IDLE", previous="CALIBRATING", reason="purged nothing")
    await deliver(svc, bus, topics.state("p1"), failed, retain=True)
    assert "p1" in states(svc).assessors and saved.exists()
    purged = StateChange(asset_id="p1", state="IDLE", previous="MONITORING", reason="purge", purged=True)
    await deliver(svc, bus, topics.state("p1"), purged, retain=True)
    assert "p1" not in states(svc).assessors and not saved.exists()
    assert "p2" in states(svc).assessors  # other assets untouched
    q = bus.subscribe(REPLY)
    await deliver(svc, bus, ACTION, action(alarm_id))
    assert AlarmActionReply.model_validate_json((await q.get()).payload).code == "not_found"
    # new data starts a fresh assessment
    await deliver(svc, bus, topics.score("p1", "legacy"), score(700, 0.3))
    assert states(svc).assessors["p1"].alarms.alarms() == []


async def test_saves_are_throttled_and_forced_by_alarm_transitions(tmp_path: Path) -> None:
    saves: list[str] = []

    class Recording(AssessorRepository):
        def save(self, asset: str, state: dict) -> None:
            saves.append(asset)
            super().save(asset, state)

    clock = [0.0]
    st = AssessorStates(Recording(tmp_path), save_every_s=5.0, clock=lambda: clock[0])
    await st.open()
    h = HealthHandlers(st)
    for i in range(20):  # 20 healthy scores within 2 s of wall time: one save
        clock[0] = i * 0.1
        await h.assess("p1", (T0 + timedelta(seconds=i)).timestamp(), scores=[score(i, 0.3)])
    assert saves == ["p1"]
    clock[0] = 6.0
    await h.assess("p1", (T0 + timedelta(seconds=20)).timestamp(), scores=[score(20, 0.3)])
    assert saves == ["p1", "p1"]
    for i in range(21, 40):  # a fault: the opening transition is saved at once
        out = await h.assess("p1", (T0 + timedelta(seconds=i)).timestamp(), scores=[score(i, 4.0)])
        if any(p.topic == topics.alarm("p1") for p in out or ()):
            break
    assert saves == ["p1", "p1", "p1"]
    await st.close()
    assert len(saves) == 4
    blob = json.loads((tmp_path / "p1.json").read_text())
    assert blob["alarms"]["alarms"][0]["state"] == "ACTIVE"
    restored = AssessorStates(AssessorRepository(tmp_path))
    await restored.open()
    assert restored.assessors["p1"].to_dict() == st.assessors["p1"].to_dict()


async def test_unreadable_state_file_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "p1.json").write_text("{not json")
    (tmp_path / "p2.json").write_text(json.dumps({"version": 99}))
    (tmp_path / "not an asset.json").write_text("{}")
    st = AssessorStates(AssessorRepository(tmp_path))
    await st.open()
    assert st.assessors == {}


async def test_a_bad_baseline_is_refused_once_and_scoring_goes_on(tmp_path: Path) -> None:
    bus = MemoryBus()
    svc = service(tmp_path)
    bad = announcement().model_copy(deep=True)
    bad.manifest.signal_baseline["current_a"] = SignalStat(mean=12.0, std=-1.0)
    bad = signed(bad)  # signed as the calibrator would: the baseline itself is what is refused
    await deliver(svc, bus, topics.model_announce("p1", "legacy"), bad, retain=True)
    [dl] = bus.on(topics.dead_letter("health"))
    assert "std" in DeadLetter.model_validate_json(dl.payload).reason
    await deliver(svc, bus, topics.score("p1", "legacy"), score(0, 0.3))
    assert topics.health("p1") in bus.retained and len(bus.on(topics.dead_letter("health"))) == 1


async def test_the_runner_opens_and_closes_the_state_port(tmp_path: Path) -> None:
    """Through the whole in-memory loop: saved states are loaded before the first message, and every
    assessor is saved when the service stops."""
    first = service(tmp_path)
    alarm_id = await severe_alarm(first, MemoryBus())
    await first.state.close()  # type: ignore[union-attr]
    bus = MemoryBus()
    svc = service(tmp_path)
    replies = bus.subscribe(REPLY)
    async with running_in_memory(svc, bus):
        await bus.publish(ACTION, action(alarm_id))
        reply = AlarmActionReply.model_validate_json((await replies.get()).payload)
        assert reply.status == "ok" and reply.alarm is not None and reply.alarm.state == "ACKNOWLEDGED"
        for i in range(2):  # the second is within 5 s of the first save: saved only on close
            await bus.publish(topics.score("p3", "legacy"), score(i, 0.3, asset="p3"))
        await bus.publish(ACTION, action("f" * 32))  # processed in order: p3 is assessed by now
        await replies.get()
        p3 = json.loads((tmp_path / "health" / "p3.json").read_text())
        assert p3["models"]["legacy"]["last_ts"] == T0.timestamp()
    saved = {p.stem for p in (tmp_path / "health").glob("*.json")}
    assert saved == {"p1", "p3"}
    p3 = json.loads((tmp_path / "health" / "p3.json").read_text())
    assert p3["models"]["legacy"]["last_ts"] == T0.timestamp() + 1
    again = AssessorStates(AssessorRepository(tmp_path / "health"))
    await again.open()
    assert again.assessors["p1"].alarms.get(alarm_id).state == "ACKNOWLEDGED"
