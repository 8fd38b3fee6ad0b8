"""Health service handlers on the in-memory bus: windows (reading, feature vectors, scores) in → retained
health, alarms, ack/resolve, model baselines, purge; the per-window join (the same verdicts whatever
order the streams arrive in, waits driven by an injected clock, the tick); the assessor state saved at
checkpoints through the state port, restored with its pending windows, the last health republished."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel

from services.health.messages import Tick, baseline_from_manifest
from services.health.repository import AssessorRepository, AssessorStates, AssetSave
from services.health.service import HealthHandlers, build
from shared import topics
from shared.bus import MemoryBus
from shared.health.join import AssetJoin
from shared.messages import (
    AlarmActionReply,
    AlarmActionRequest,
    AlarmEvent,
    AssetConfig,
    DeadLetter,
    FeatureBaseline,
    FeatureStat,
    FeatureVector,
    HealthUpdate,
    IsoSettings,
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
from tests.support.faults import wait_for
from tests.support.signing import VERIFY_KEY, signed

T0 = datetime(2026, 3, 1, tzinfo=UTC)
ACTION = topics.command("alarm_action")
REPLY = topics.reply("gw", "1")


def service(tmp_path: Path) -> Service:
    return build(Settings(data_dir=tmp_path, model_verify_key=VERIFY_KEY))


def states(svc: Service) -> AssessorStates:
    assert isinstance(svc.state, AssessorStates)
    return svc.state


def eid(i: int, asset: str = "p1") -> str:
    return f"{asset}-{i:08d}"


def score(i: int, ratio: float, model: str = "legacy", asset: str = "p1") -> Score:
    thr = 0.2
    return Score(
        event_id=eid(i, asset),
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


def reading(i: int, asset: str = "p1", power_factor: float = 0.92) -> Reading:
    return Reading(
        event_id=eid(i, asset),
        asset_id=asset,
        ts=T0 + timedelta(seconds=i),
        voltage_v=230.0 + (i % 3),
        current_a=12.0,
        power_factor=power_factor,
        vibration_g=0.2,
    )


def vector(i: int, asset: str = "p1") -> FeatureVector:
    r = reading(i, asset)
    return FeatureVector(
        event_id=r.event_id,
        asset_id=asset,
        ts=r.ts,
        kind="legacy",
        names=["voltage_v", "current_a"],
        values=[r.voltage_v, r.current_a],
    )


Part = tuple[str, BaseModel]


def parts(i: int, ratio: float | None, asset: str = "p1") -> list[Part]:
    """One electrical window as the stages publish it: the reading, its legacy vector, its score (None:
    the score never comes, e.g. dead-lettered at the scorer)."""
    out: list[Part] = [
        (topics.reading(asset), reading(i, asset)),
        (topics.features(asset, "legacy"), vector(i, asset)),
    ]
    if ratio is not None:
        out.append((topics.score(asset, "legacy"), score(i, ratio, asset=asset)))
    return out


async def window(svc: Service, bus: MemoryBus, i: int, ratio: float | None, asset: str = "p1") -> None:
    for topic, msg in parts(i, ratio, asset):
        await deliver(svc, bus, topic, msg)


async def checkpoint(svc: Service) -> None:
    """What the runner does between messages on a broker (the in-memory runner does not)."""
    st = states(svc)
    await st.save(st.snapshot())


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
    for i in range(660):
        await window(svc, bus, i, 0.3 if i < 600 else 4.0)
    opened = [AlarmEvent.model_validate_json(m.payload) for m in bus.on(topics.alarm("p1"))]
    assert len({a.alarm_id for a in opened if a.state == "ACTIVE"}) == 1
    return opened[0].alarm_id


async def test_healthy_then_severe_fault_raises_one_alarm_then_ack_and_resolve(tmp_path: Path) -> None:
    bus = MemoryBus()
    svc = service(tmp_path)
    await svc.state.open()  # type: ignore[union-attr]
    for i in range(600):
        await window(svc, bus, i, 0.3)
    hu = HealthUpdate.model_validate_json(bus.retained[topics.health("p1")].payload)
    assert hu.health_score >= 95 and hu.risk_level == "LOW" and not bus.on(topics.alarm("p1"))
    for i in range(600, 660):
        await window(svc, bus, i, 4.0)
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
    iso = IsoSettings(applies=True, power_kw=75)  # confirmed: group 2 (15 .. 300 kW), rigid
    await deliver(svc, bus, topics.asset_config("p1"), AssetConfig(asset_id="p1", iso=iso))
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
    assert (hu.zone_basis, hu.zone_basis_text) == ("iso20816-3", "ISO 20816-3 group 2, rigid")
    assert any("5.1 mm/s" in i.text for i in hu.insights)


def test_baseline_from_typed_manifest() -> None:
    b = baseline_from_manifest(manifest())
    # features also bring their median and MAD (the prognostics' calibrated RMS is a median)
    assert b["current_a"] == {"mean": 12.0, "std": 0.5, "min": 11.0, "max": 13.0, "median": 12.0, "mad": 0.3}
    # the raw-signal baseline wins over a feature of the same name; absent statistics are left out
    assert b["voltage_v"] == {"mean": 231.0, "std": 2.5}
    assert b["power_factor"] == {"mean": 0.92, "std": 0.01}
    assert baseline_from_manifest(manifest(baseline=False)).keys() == {"power_factor", "voltage_v"}


async def test_model_announcement_sets_the_baseline_and_a_cleared_one_drops_it(tmp_path: Path) -> None:
    bus = MemoryBus()
    svc = service(tmp_path)
    await window(svc, bus, 0, 0.3)
    a = states(svc).assessors["p1"]
    assert a.baseline is None
    await deliver(svc, bus, topics.model_announce("p1", "legacy"), announcement(), retain=True)
    assert a.baseline is not None and a.baseline["power_factor"]["mean"] == 0.92
    # a reading far off the signal baseline now moves the signals track (4σ → ratio 1)
    await deliver(svc, bus, topics.reading("p1"), reading(1, power_factor=0.52))
    await deliver(svc, bus, topics.features("p1", "legacy"), vector(1))
    assert "signals" not in a.to_dict()["models"]  # the window waits for its legacy score
    await deliver(svc, bus, topics.score("p1", "legacy"), score(1, 0.3))
    signals = a.to_dict()["models"]["signals"]  # |0.52 - 0.92| / 0.01 = 40σ → ratio 10, capped at 5
    assert signals["last"] == 5.0 and signals["severity"] == "CRITICAL"
    await deliver(svc, bus, topics.model_announce("p1", "legacy"), b"", retain=True)
    assert a.baseline is None


async def test_out_of_order_data_is_a_dead_letter_and_a_late_part_is_dropped(tmp_path: Path) -> None:
    bus = MemoryBus()
    svc = service(tmp_path)
    await deliver(svc, bus, topics.model_announce("p1", "legacy"), announcement(), retain=True)
    await window(svc, bus, 10, 0.3)
    assert states(svc).joins["p1"].pending == 0
    await deliver(svc, bus, topics.score("p1", "legacy"), score(5, 0.3))
    [dl] = [DeadLetter.model_validate_json(m.payload) for m in bus.on(topics.dead_letter("health"))]
    assert dl.reason.startswith("health update refused") and "older than the last released" in dl.reason
    # a part of a window already assessed (e.g. re-delivered) is dropped without a dead letter
    await deliver(
        svc, bus, topics.score("p1", "legacy"), score(10, 0.3).model_copy(update={"raw_score": 1.0})
    )
    assert len(bus.on(topics.dead_letter("health"))) == 1 and handlers(svc).late_parts == 1


async def test_purge_forgets_the_asset_and_its_saved_state(tmp_path: Path) -> None:
    bus = MemoryBus()
    svc = service(tmp_path)
    alarm_id = await severe_alarm(svc, bus)
    await window(svc, bus, 0, 0.3, asset="p2")
    saved = tmp_path / "health" / "p1.json"
    assert not saved.exists()
    await checkpoint(svc)
    assert saved.exists()
    # an IDLE state that is no purge (e.g. a failed first calibration) keeps everything
    failed = StateChange(asset_id="p1", state="IDLE", previous="CALIBRATING", reason="purged nothing")
    await deliver(svc, bus, topics.state("p1"), failed, retain=True)
    assert "p1" in states(svc).assessors and saved.exists()
    purged = StateChange(asset_id="p1", state="IDLE", previous="MONITORING", reason="purge", purged=True)
    await deliver(svc, bus, topics.state("p1"), purged, retain=True)
    assert "p1" not in states(svc).assessors and saved.exists()
    await checkpoint(svc)  # deleted with the checkpoint that covers the purge
    assert not saved.exists()
    assert "p2" in states(svc).assessors  # other assets untouched
    q = bus.subscribe(REPLY)
    await deliver(svc, bus, ACTION, action(alarm_id))
    assert AlarmActionReply.model_validate_json((await q.get()).payload).code == "not_found"
    # new data starts a fresh assessment
    await window(svc, bus, 700, 0.3)
    assert states(svc).assessors["p1"].alarms.alarms() == []


async def test_checkpoints_save_what_changed(tmp_path: Path) -> None:
    saves: list[set[str]] = []

    class Recording(AssessorRepository):
        def write_all(self, saves_: dict[str, AssetSave]) -> None:
            saves.append(set(saves_))
            super().write_all(saves_)

    st = AssessorStates(Recording(tmp_path))
    await st.open()
    svc = Service(name="health", routes=HealthHandlers(st).routes(), state=st)
    bus = MemoryBus()
    for i in range(20):
        await window(svc, bus, i, 0.3)
    await window(svc, bus, 0, 0.3, asset="p2")
    await checkpoint(svc)
    await checkpoint(svc)  # nothing changed since: nothing written
    assert saves == [{"p1", "p2"}]
    await deliver(svc, bus, topics.reading("p1"), reading(20))  # a window that waits for its vector
    await checkpoint(svc)
    assert saves[-1] == {"p1"}
    blob = json.loads((tmp_path / "p1.json").read_text())
    assert blob["last_health"] == json.loads(bus.retained[topics.health("p1")].payload)
    journal = [json.loads(line) for line in (tmp_path / "parts" / "p1.jsonl").read_text().splitlines()]
    # appended per part taken: 20 windows of 3 parts and one reading, less window 0's score (no baseline
    # here: no score was awaited yet, it came after its window was assessed and was dropped)
    assert len(journal) == 20 * 3 + 1 - 1 and journal[-1][:2] == ["reading", eid(20)]
    restored = AssessorStates(AssessorRepository(tmp_path))
    await restored.open()
    assert restored.assessors["p1"].to_dict() == st.assessors["p1"].to_dict()
    assert contents(restored.joins["p1"]) == contents(st.joins["p1"]) and len(contents(st.joins["p1"])) == 1
    assert restored.joins["p1"].last_released_ts == st.joins["p1"].last_released_ts
    assert restored.last_health == st.last_health
    await st.close()
    assert saves[-1] == {"p1", "p2"}
    # closing compacts the journal to the pending windows
    assert len((tmp_path / "parts" / "p1.jsonl").read_text().splitlines()) == 1
    again = AssessorStates(AssessorRepository(tmp_path))
    await again.open()
    assert contents(again.joins["p1"]) == contents(st.joins["p1"])


def contents(join: AssetJoin) -> list[tuple]:
    return [(e.event_id, e.ts, e.reading, e.features, e.scores) for e in join.entries()]


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
    for i in range(2):  # no baseline: the legacy scores are awaited once their stream is known
        await window(svc, bus, i, 0.3)
    assert topics.health("p1") in bus.retained and len(bus.on(topics.dead_letter("health"))) == 1


async def test_the_runner_opens_and_closes_the_state_port(tmp_path: Path) -> None:
    """Through the whole in-memory loop: saved states are loaded before the first message (the last
    health is republished, retained: a restarted broker forgot it), and every asset is saved when the
    service stops."""
    first_bus = MemoryBus()
    first = service(tmp_path)
    alarm_id = await severe_alarm(first, first_bus)
    last = first_bus.retained[topics.health("p1")].payload
    await first.state.close()  # type: ignore[union-attr]
    bus = MemoryBus()
    svc = service(tmp_path)
    replies = bus.subscribe(REPLY)
    async with running_in_memory(svc, bus):
        await wait_for(lambda: topics.health("p1") in bus.retained, 5, "the last health republished")
        assert bus.retained[topics.health("p1")].payload == last
        await bus.publish(ACTION, action(alarm_id))
        reply = AlarmActionReply.model_validate_json((await replies.get()).payload)
        assert reply.status == "ok" and reply.alarm is not None and reply.alarm.state == "ACKNOWLEDGED"
        for i in range(2):
            for topic, msg in parts(i, 0.3, asset="p3"):
                await bus.publish(topic, msg)
        await bus.publish(ACTION, action("f" * 32))  # processed in order: p3 is assessed by now
        await replies.get()
        assert not (tmp_path / "health" / "p3.json").exists()  # no checkpoint in memory: saved on close
    saved = {p.stem for p in (tmp_path / "health").glob("*.json")}
    assert saved == {"p1", "p3"}
    p3 = json.loads((tmp_path / "health" / "p3.json").read_text())
    assert p3["models"]["legacy"]["last_ts"] == T0.timestamp() + 1
    again = AssessorStates(AssessorRepository(tmp_path / "health"))
    await again.open()
    assert again.assessors["p1"].alarms.get(alarm_id).state == "ACKNOWLEDGED"


# ---------------------------------------------------------------------------------------------
# The per-window join: verdicts do not depend on how the streams interleave
# ---------------------------------------------------------------------------------------------
def handlers(svc: Service) -> HealthHandlers:
    route = next(r for r in svc.routes if r.model is Tick)
    return route.handler.__self__  # type: ignore[attr-defined]


def verdicts(bus: MemoryBus) -> list[tuple[str, dict]]:
    """Every health and alarm message in publish order (alarm ids are random: left out)."""
    out = []
    for m in bus.published:
        if m.topic in (topics.health("p1"), topics.alarm("p1")):
            d = json.loads(m.payload)
            d.pop("alarm_id", None)
            out.append((m.topic, d))
    return out


async def replay(tmp_path: Path, order: list[Part]) -> list[tuple[str, dict]]:
    bus = MemoryBus()
    svc = service(tmp_path)
    states(svc).clock = lambda: 0.0  # no wait ever runs out: only the data decides
    await deliver(svc, bus, topics.model_announce("p1", "legacy"), announcement(), retain=True)
    for topic, msg in order:
        await deliver(svc, bus, topic, msg)
    assert states(svc).joins["p1"].pending == 0 and not bus.on(topics.dead_letter("health"))
    return verdicts(bus)


async def test_features_first_then_scores_gives_the_same_health_and_alarms(tmp_path: Path) -> None:
    """The ``--speed max`` shape (every reading and vector of 200 windows, then their scores) and the
    paced one (each window whole before the next) publish the same health series and alarm events.
    The healthy tail is long enough (90 windows) for the smoothed ratio to fall below 1 after the
    fault, which the alarm's deadband waits for before it clears."""
    ratios = [0.3 if i < 120 else 4.0 if i < 170 else 0.3 for i in range(260)]
    windows = [parts(i, r) for i, r in enumerate(ratios)]
    paced = [p for w in windows for p in w]
    ahead = [p for w in windows for p in w[:2]] + [w[2] for w in windows]
    expected = await replay(tmp_path / "paced", paced)
    assert await replay(tmp_path / "ahead", ahead) == expected
    alarms = [v for t, v in expected if t == topics.alarm("p1")]
    assert [a["state"] for a in alarms][:1] == ["ACTIVE"] and alarms[-1]["auto_cleared"]
    opened = datetime.fromisoformat(alarms[0]["opened_at"])
    assert T0 + timedelta(seconds=120) < opened < T0 + timedelta(seconds=130)  # within the fault, data time
    assert len([t for t, _ in expected if t == topics.health("p1")]) > 100


async def test_a_missing_score_is_waited_for_then_the_window_goes_without_it(tmp_path: Path) -> None:
    bus = MemoryBus()
    svc = service(tmp_path)
    clock = [0.0]
    states(svc).clock = lambda: clock[0]
    h = handlers(svc)
    await deliver(svc, bus, topics.model_announce("p1", "legacy"), announcement(), retain=True)
    await window(svc, bus, 0, 0.3)
    await window(svc, bus, 1, None)  # its legacy score never comes (dead-lettered at the scorer)
    await window(svc, bus, 2, None)
    join = states(svc).joins["p1"]
    assert join.pending == 2 and h.next_due() == h.join_wait_s == 10.0
    clock[0] = 9.9
    await deliver(svc, bus, h.tick_topic, h.tick())
    assert join.pending == 2
    clock[0] = 10.0
    foreign = Tick(
        process="another-process", n=7, at=10.0, republish=True
    )  # a previous run's, another instance's
    await deliver(svc, bus, h.tick_topic, foreign)
    assert join.pending == 2
    await deliver(svc, bus, h.tick_topic, h.tick())
    assert join.pending == 0 and h.next_due() is None
    assert states(svc).assessors["p1"].to_dict()["now"] == (T0 + timedelta(seconds=2)).timestamp()
    await deliver(svc, bus, topics.score("p1", "legacy"), score(1, 0.3))  # too late: dropped
    assert h.late_parts == 1 and not bus.on(topics.dead_letter("health"))


async def test_a_backlog_is_not_mistaken_for_missing_parts(tmp_path: Path) -> None:
    """Waits run out only on a tick, as of when it was published: a slow health stage handling a backlog
    (the readings queued before the vectors) must not release windows whose parts are already queued."""
    bus = MemoryBus()
    svc = service(tmp_path)
    clock = [0.0]
    states(svc).clock = lambda: clock[0]
    h = handlers(svc)
    await deliver(svc, bus, topics.model_announce("p1", "legacy"), announcement(), retain=True)
    stale_tick = h.tick()  # published at 0, handled after the backlog
    for i in range(50):  # the readings came first; handling them takes long (wall clock)
        clock[0] = i
        await deliver(svc, bus, topics.reading("p1"), reading(i))
    await deliver(svc, bus, h.tick_topic, stale_tick)
    assert states(svc).joins["p1"].pending == 50
    for i in range(50):
        await deliver(svc, bus, topics.features("p1", "legacy"), vector(i))
        await deliver(svc, bus, topics.score("p1", "legacy"), score(i, 0.3))
    assert states(svc).joins["p1"].pending == 0 and h.late_parts == 0
    assert not bus.on(topics.dead_letter("health"))
    assert len(bus.on(topics.health("p1"))) == 50


async def test_the_tick_task_releases_when_no_further_message_comes(tmp_path: Path) -> None:
    bus = MemoryBus()
    svc = build(Settings(data_dir=tmp_path, model_verify_key=VERIFY_KEY, health_join_wait_s=0.2))
    clock = [0.0]
    states(svc).clock = lambda: clock[0]
    h = handlers(svc)
    async with running_in_memory(svc, bus):
        await bus.publish(topics.model_announce("p1", "legacy"), announcement(), retain=True)
        for topic, msg in parts(0, 0.3) + parts(1, None):
            await bus.publish(topic, msg)
        await wait_for(
            lambda: states(svc).joins.get("p1") is not None and h.next_due() is not None, 5, "pending"
        )
        ticks = len(bus.on(h.tick_topic))
        clock[0] = 1.0  # the last window's wait is over; nothing else will arrive
        await wait_for(lambda: states(svc).joins["p1"].pending == 0, 5, "window 1 released by a tick")
        assert len(bus.on(h.tick_topic)) > ticks
    payloads = [m.payload for m in bus.on(h.tick_topic)]
    assert len(set(payloads)) == len(payloads)  # unique: the runner skips a repeated topic + payload


async def test_a_restart_restores_the_pending_windows(tmp_path: Path) -> None:
    first = service(tmp_path)
    bus = MemoryBus()
    await deliver(first, bus, topics.model_announce("p1", "legacy"), announcement(), retain=True)
    await window(first, bus, 0, 0.3)
    for topic, msg in parts(1, None):  # acknowledged (after a checkpoint), its score still to come
        await deliver(first, bus, topic, msg)
    await checkpoint(first)
    # killed here; the next process loads the last checkpoint
    svc = service(tmp_path)
    await svc.state.open()  # type: ignore[union-attr]
    await deliver(svc, bus, topics.model_announce("p1", "legacy"), announcement(), retain=True)
    assert [e.event_id for e in states(svc).joins["p1"].entries()] == [eid(1)]
    assert states(svc).last_health["p1"] == json.loads(bus.retained[topics.health("p1")].payload)
    await deliver(svc, bus, topics.score("p1", "legacy"), score(1, 0.3))
    hu = HealthUpdate.model_validate_json(bus.retained[topics.health("p1")].payload)
    assert hu.ts == T0 + timedelta(seconds=1) and states(svc).joins["p1"].pending == 0
    # the publish throttle goes on from the last health published before the restart
    again = service(tmp_path / "again")
    await deliver(again, bus, topics.model_announce("p1", "legacy"), announcement(), retain=True)
    await window(again, bus, 0, 0.3)
    await checkpoint(again)
    half = [
        (t, m.model_copy(update={"ts": m.ts + timedelta(seconds=0.5), "event_id": "p1-half"}))
        for t, m in parts(0, 0.3)
    ]
    restarted = service(tmp_path / "again")
    await restarted.state.open()  # type: ignore[union-attr]
    await deliver(restarted, bus, topics.model_announce("p1", "legacy"), announcement(), retain=True)
    n = len(bus.on(topics.health("p1")))
    for topic, msg in half:  # 0.5 s of data time after the last published health: not due
        await deliver(restarted, bus, topic, msg)
    assert states(restarted).joins["p1"].pending == 0 and len(bus.on(topics.health("p1"))) == n
