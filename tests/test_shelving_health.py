"""Alarm shelving in the health assessor and the health service (issue 16): shelve with a reason and a
duration, the shelf runs out in data time and the alarm returns by itself (``unshelved`` by ``system``,
published on ``alarms/<asset>``), refusals with their codes, the shelf kept across a restart."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from services.health.messages import to_alarm_message
from shared import topics
from shared.bus import MemoryBus
from shared.health import HealthAssessor
from shared.health.alarms import AlarmConflict, AlarmNotFound, AlarmTransitionError
from shared.health.shelving import MAX_SHELVE_S
from shared.messages import AlarmActionReply, AlarmActionRequest, AlarmEvent, AssetConfig
from shared.service import Service, deliver
from tests.support.ids import Ids
from tests.test_health_assessor import T0, healthy, scores
from tests.test_health_service import ACTION, REPLY, service, severe_alarm, states, window
from tests.test_health_service import T0 as HT0


# -- the assessor ---------------------------------------------------------------------------------
def sensor_alarm(a: HealthAssessor, ts: float = T0) -> str:
    (t,) = a.observe_sensor(ts, True, "stuck at 0.2 g")
    return t.alarm_id


def test_every_shelf_that_ran_out_returns_on_the_next_update_whatever_source_it_observes() -> None:
    rng = np.random.default_rng(3)
    a = HealthAssessor("m1", id_factory=Ids())
    alarm_id = sensor_alarm(a)
    t = a.shelve(alarm_id, "ana", "accelerometer being replaced", 60)  # ts: the latest observed, T0
    assert (t.kind, t.ts, t.alarm["shelved_until"], t.who, t.note) == (
        "shelved",
        T0,
        T0 + 60,
        "ana",
        "accelerometer being replaced",
    )
    # the updates observe the anomaly source only; the shelved alarm is the sensor's
    assert a.update(T0 + 59, scores(healthy(rng))).alarm_events == []
    (back,) = a.update(T0 + 61, scores(healthy(rng))).alarm_events
    assert (back.kind, back.who, back.ts, back.alarm_id) == ("unshelved", "system", T0 + 61, alarm_id)
    assert back.alarm["shelved_until"] is None and not a.alarms.get(alarm_id).is_shelved
    assert a.update(T0 + 62, scores(healthy(rng))).alarm_events == []  # returns once


def test_a_shelf_runs_out_while_the_asset_is_stopped() -> None:
    rng = np.random.default_rng(4)
    a = HealthAssessor("m1", id_factory=Ids())
    alarm_id = sensor_alarm(a)
    a.shelve(alarm_id, "ana", "maintenance", 30, ts=T0 + 5)
    res = a.update(T0 + 40, scores(healthy(rng)), operating="stopped")
    assert [(e.kind, e.who) for e in res.alarm_events] == [("unshelved", "system")]
    assert res.health_score is None  # still not assessed


def test_a_shelf_runs_out_during_a_sensor_fault() -> None:
    # a held window (sensor fault) is observed only by the sensor alarm: other shelves return too
    rng = np.random.default_rng(5)
    a = HealthAssessor("m1", id_factory=Ids())
    for i in range(600):
        a.update(T0 + i, scores(healthy(rng)))
    for i in range(600, 640):
        a.update(T0 + i, scores(np.full(3, 4.0)))
    (anomaly,) = a.alarms.open_alarms("m1")
    a.shelve(anomaly.alarm_id, "ana", "known fault, part ordered", 100)  # from T0 + 639 s
    assert [e.kind for e in a.observe_sensor(T0 + 738, True, "stuck")] == ["opened"]
    assert [(e.kind, e.alarm_id) for e in a.observe_sensor(T0 + 739, True, "stuck")] == [
        ("unshelved", anomaly.alarm_id)
    ]


def test_unshelve_refusals_and_the_shelf_limit_from_the_config() -> None:
    a = HealthAssessor("m1", id_factory=Ids())
    alarm_id = sensor_alarm(a)
    assert a.max_shelve_s == MAX_SHELVE_S
    a.set_config(AssetConfig(asset_id="m1", alarms={"max_shelve_s": 600, "clear_windows": 3}))
    assert a.max_shelve_s == 600 and a.params.clear_windows == 3  # the lifecycle settings still apply
    with pytest.raises(AlarmTransitionError, match="exceeds the longest shelf allowed for this asset"):
        a.shelve(alarm_id, "ana", "r", 601)
    a.shelve(alarm_id, "ana", "r", 601, max_shelve_s=3600)  # an explicit limit wins
    with pytest.raises(AlarmTransitionError, match="reason must not be empty"):
        a.shelve(alarm_id, "ana", " ", 60)
    t = a.unshelve(alarm_id, "bo", "back on watch", ts=T0 + 10)
    assert (t.kind, t.who, t.note, t.ts) == ("unshelved", "bo", "back on watch", T0 + 10)
    with pytest.raises(AlarmConflict, match="is not shelved"):
        a.unshelve(alarm_id, "bo")
    with pytest.raises(AlarmNotFound):
        a.shelve("f" * 32, "ana", "r", 60)
    a.resolve(alarm_id, "bo", "replaced", "other")
    with pytest.raises(AlarmConflict, match="RESOLVED and cannot be shelved"):
        a.shelve(alarm_id, "ana", "r", 60)


def test_another_assets_alarm_is_not_found() -> None:
    ids = Ids()
    a, b = HealthAssessor("m1", id_factory=ids), HealthAssessor("m2", id_factory=ids)
    alarm_id = sensor_alarm(a)
    b._alarms = a.alarms  # one book holding both assets' alarms (as AlarmBook allows)
    with pytest.raises(AlarmNotFound, match="belongs to asset m1"):
        b.shelve(alarm_id, "ana", "r", 60)
    with pytest.raises(AlarmNotFound, match="belongs to asset m1"):
        b.unshelve(alarm_id, "ana")


def test_the_shelf_survives_the_assessor_state_round_trip() -> None:
    a = HealthAssessor("m1", id_factory=Ids())
    alarm_id = sensor_alarm(a)
    a.shelve(alarm_id, "ana", "valve work", 120)
    b = HealthAssessor.from_dict(a.to_dict())
    alarm = b.alarms.get(alarm_id)
    assert (alarm.shelved_until, alarm.shelved_by, alarm.shelve_reason) == (T0 + 120, "ana", "valve work")
    (back,) = b.update(T0 + 120, features={"velocity_rms_mm_s": 1.0}).alarm_events
    assert back.kind == "unshelved"


# -- the event message ------------------------------------------------------------------------------
def test_events_carry_the_transition_and_the_shelf_while_shelved() -> None:
    a = HealthAssessor("m1", id_factory=Ids())
    alarm_id = sensor_alarm(a)
    acked = to_alarm_message("m1", a.alarms.acknowledge(alarm_id, "ana"))
    assert acked.transition == "acknowledged" and acked.shelved_until is None
    shelved = to_alarm_message("m1", a.shelve(alarm_id, "ana", "valve work", 60))
    assert (shelved.transition, shelved.state, shelved.previous) == (
        "shelved",
        "ACKNOWLEDGED",
        "ACKNOWLEDGED",
    )
    assert shelved.shelved_until is not None and shelved.shelved_until.timestamp() == T0 + 60
    assert (shelved.shelved_by, shelved.shelve_reason, shelved.note) == ("ana", "valve work", "valve work")
    assert shelved.reopens == 0 and shelved.peak is None
    back = to_alarm_message("m1", a.unshelve(alarm_id, "bo", "done"))
    assert (back.transition, back.state, back.previous, back.who) == (
        "unshelved",
        "ACKNOWLEDGED",
        "ACKNOWLEDGED",
        "bo",
    )
    assert back.shelved_until is None and back.shelved_by is None and back.shelve_reason is None
    done = to_alarm_message("m1", a.resolve(alarm_id, "bo", "", "other"))
    assert (done.transition, done.state, done.previous) == ("resolved", "RESOLVED", "ACKNOWLEDGED")


# -- the health service on the in-memory bus ----------------------------------------------------------
def request(
    alarm_id: str, what: str, duration_s: float | None = None, note: str = "valve work"
) -> AlarmActionRequest:
    return AlarmActionRequest(
        correlation_id="1",
        reply_to=REPLY,
        alarm_id=alarm_id,
        action=what,  # type: ignore[arg-type]
        who="ana",
        note=note,
        duration_s=duration_s,
    )


async def act(svc: Service, bus: MemoryBus, req: AlarmActionRequest) -> AlarmActionReply:
    q = bus.subscribe(REPLY)
    await deliver(svc, bus, ACTION, req)
    return AlarmActionReply.model_validate_json((await q.get()).payload)


def events(bus: MemoryBus) -> list[AlarmEvent]:
    return [AlarmEvent.model_validate_json(m.payload) for m in bus.on(topics.alarm("p1"))]


async def test_shelve_then_the_data_runs_past_the_shelf_and_the_alarm_returns(tmp_path: Path) -> None:
    bus = MemoryBus()
    svc = service(tmp_path)
    alarm_id = await severe_alarm(svc, bus)  # windows 0..659: the latest data time is HT0 + 659 s
    n = len(events(bus))
    reply = await act(svc, bus, request(alarm_id, "shelve", 60))
    assert reply.status == "ok" and reply.message == "alarm shelved" and reply.alarm is not None
    ev = reply.alarm
    assert (ev.transition, ev.state, ev.who, ev.shelved_by, ev.shelve_reason) == (
        "shelved",
        "ACTIVE",
        "ana",
        "ana",
        "valve work",
    )
    assert ev.ts == HT0 + timedelta(seconds=659) and ev.shelved_until == HT0 + timedelta(seconds=719)
    assert events(bus)[n:] == [ev]  # published on alarms/p1 too
    for i in range(660, 730):  # the fault goes on past the shelf
        await window(svc, bus, i, 4.0)
    (back,) = events(bus)[n + 1 :]
    assert (back.transition, back.who, back.state) == ("unshelved", "system", "ACTIVE")
    assert back.ts == HT0 + timedelta(seconds=719) and back.shelved_until is None
    assert "shelved by ana until" in (back.note or "")
    # an operator shelves it again and returns it early
    assert (await act(svc, bus, request(alarm_id, "shelve", 600))).status == "ok"
    early = await act(svc, bus, request(alarm_id, "unshelve", note="fault back in focus"))
    assert early.status == "ok" and early.message == "alarm unshelved" and early.alarm is not None
    assert (early.alarm.transition, early.alarm.who, early.alarm.shelved_until) == ("unshelved", "ana", None)
    again = await act(svc, bus, request(alarm_id, "unshelve"))
    assert (again.status, again.code) == ("failed", "conflict") and "is not shelved" in again.message


async def test_shelve_refusals_have_their_codes_and_reasons(tmp_path: Path) -> None:
    bus = MemoryBus()
    svc = service(tmp_path)
    alarm_id = await severe_alarm(svc, bus)
    n = len(events(bus))
    missing = await act(svc, bus, request(alarm_id, "shelve"))
    assert (missing.status, missing.code) == ("failed", "invalid") and "duration_s" in missing.message
    no_reason = await act(svc, bus, request(alarm_id, "shelve", 60, note=""))
    assert no_reason.code == "invalid" and "reason must not be empty" in no_reason.message
    # the asset's alarms block limits the shelf (and applies without upsetting the other settings)
    await deliver(
        svc, bus, topics.asset_config("p1"), AssetConfig(asset_id="p1", alarms={"max_shelve_s": 120})
    )
    too_long = await act(svc, bus, request(alarm_id, "shelve", 121))
    assert too_long.code == "invalid" and "exceeds the longest shelf allowed" in too_long.message
    assert "120 s" in too_long.message
    assert (await act(svc, bus, request(alarm_id, "shelve", 120))).status == "ok"
    unknown = await act(svc, bus, request("e" * 32, "shelve", 60))
    assert unknown.code == "not_found"
    resolved = await act(
        svc, bus, AlarmActionRequest(**{**request(alarm_id, "resolve").model_dump(), "action_code": "other"})
    )
    assert resolved.status == "ok" and resolved.alarm is not None and resolved.alarm.shelved_until is None
    late = await act(svc, bus, request(alarm_id, "shelve", 60))
    assert (late.status, late.code) == ("failed", "conflict") and "RESOLVED" in late.message
    assert [e.transition for e in events(bus)[n:]] == ["shelved", "resolved"]  # refusals publish nothing


async def test_the_shelf_survives_a_restart_and_runs_out_after_it(tmp_path: Path) -> None:
    bus = MemoryBus()
    svc = service(tmp_path)
    await svc.state.open()  # type: ignore[union-attr]
    alarm_id = await severe_alarm(svc, bus)
    assert (await act(svc, bus, request(alarm_id, "shelve", 30))).status == "ok"
    await svc.state.close()  # type: ignore[union-attr]
    again = service(tmp_path)
    await again.state.open()  # type: ignore[union-attr]
    alarm = states(again).assessors["p1"].alarms.get(alarm_id)
    assert (alarm.shelved_by, alarm.shelve_reason) == ("ana", "valve work")
    assert alarm.shelved_until == (HT0 + timedelta(seconds=689)).timestamp()
    bus2 = MemoryBus()
    for i in range(660, 700):
        await window(again, bus2, i, 4.0)
    (back,) = events(bus2)
    assert (back.transition, back.who) == ("unshelved", "system")
    assert back.ts == HT0 + timedelta(seconds=689)
    await again.state.close()  # type: ignore[union-attr]
