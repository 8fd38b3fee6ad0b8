"""A maintenance log entry (``logs/<asset>``) restarts the asset's degradation and prognostics tracking in
the health service: the mapping table, the ledger's decisions (pending, late, duplicate, superseded), the
service on the in-memory bus (a restart and a redelivery reset nothing twice) and on a real Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.health.messages import LOG_RESETS, MaintenanceLedger, MaintenanceReset, log_reset
from services.health.repository import AssessorStates
from services.health.service import build
from shared import topics
from shared.bus import MemoryBus
from shared.health.alarms import MAINTENANCE_ACTIONS
from shared.messages import (
    LOG_EVENT_TYPES,
    AlarmActionRequest,
    AlarmEvent,
    DeadLetter,
    HealthUpdate,
    OperatorLog,
)
from shared.service import Service, deliver, run_service
from shared.settings import Settings
from tests.support.pipeline import Collector, client
from tests.support.signing import VERIFY_KEY
from tests.test_health_service_prognostics import (
    RMS_CAL,
    STEP_S,
    T0,
    announcement,
    rising,
    window_parts,
)

#: Windows of the rising path (tests/test_health_service_prognostics.py): its trend alarm opens at
#: window 826 and a fitted RUL follows; the replacement is logged at the data time of window REPLACED.
TREND_WINDOWS = 860
REPLACED = TREND_WINDOWS


def at(i: int) -> datetime:
    return T0 + timedelta(seconds=STEP_S * i)


def entry(event_type: str, i: float, log_id: str = "log-1", asset: str = "p1") -> OperatorLog:
    ts = T0 + timedelta(seconds=STEP_S * i)
    return OperatorLog(log_id=log_id, asset_id=asset, event_type=event_type, ts=ts, author="tech")  # type: ignore[arg-type]


async def windows(svc: Service, bus: MemoryBus, idx: range, rms: Any = rising) -> None:
    for i in idx:
        for topic, msg in window_parts(i, rms(i)):
            await deliver(svc, bus, topic, msg)


def health(bus: MemoryBus, asset: str = "p1") -> HealthUpdate:
    return HealthUpdate.model_validate_json(bus.retained[topics.health(asset)].payload)


def states(svc: Service) -> AssessorStates:
    assert isinstance(svc.state, AssessorStates)
    return svc.state


def degradation(svc: Service) -> dict[str, Any]:
    return states(svc).assessors["p1"].to_dict()["degradation"]


async def trending(tmp_path: Path) -> tuple[Service, MemoryBus]:
    """A service whose asset p1 has an open trend alarm and a fitted RUL (860 rising windows)."""
    bus = MemoryBus()
    svc = build(Settings(data_dir=tmp_path, model_verify_key=VERIFY_KEY))
    await states(svc).open()
    await deliver(svc, bus, topics.model_announce("p1", "autoencoder"), announcement(), retain=True)
    await windows(svc, bus, range(TREND_WINDOWS))
    hu = health(bus)
    assert hu.rul is not None and hu.rul.status == "estimate", hu.rul
    return svc, bus


# --- the mapping table -------------------------------------------------------------------------------
def test_every_log_event_type_has_one_documented_row() -> None:
    assert set(LOG_RESETS) == set(LOG_EVENT_TYPES)
    for event_type in LOG_EVENT_TYPES:
        action, why = log_reset(event_type)
        assert why and (action is None or action in MAINTENANCE_ACTIONS), event_type


def test_replacements_and_repairs_reset_lubrication_and_looking_do_not() -> None:
    assert log_reset("corrective_bearing_replacement")[0] == "bearing_replaced"
    assert log_reset("corrective_alignment")[0] == "realigned"
    assert log_reset("corrective_balancing")[0] == "balanced"
    assert log_reset("corrective_electrical")[0] == "electrical_repair"
    for kept in ("preventive_lubrication", "preventive_inspection", "preventive_cleaning", "observation"):
        assert log_reset(kept)[0] is None, kept
    assert log_reset("other")[0] is None and log_reset("no_such_type")[0] is None


# --- the ledger (pure) -----------------------------------------------------------------------------------
def test_ledger_defers_a_future_entry_until_its_data_time_and_applies_it_at_that_time() -> None:
    ledger = MaintenanceLedger()
    what, r = ledger.take("a", "corrective_bearing_replacement", 150.0, assessed=100.0)
    assert what == "pending" and r is not None and r.applied is None
    assert ledger.due(149.0) is None and ledger.last is None
    done = ledger.due(160.0)
    assert done == MaintenanceReset("a", "corrective_bearing_replacement", "bearing_replaced", 150.0, 150.0)
    assert ledger.pending == [] and ledger.last == done and ledger.due(170.0) is None


def test_ledger_applies_a_late_entry_at_the_newest_assessed_time_and_says_so() -> None:
    ledger = MaintenanceLedger()
    what, r = ledger.take("a", "corrective_alignment", 50.0, assessed=100.0)
    assert what == "apply" and r is not None and (r.logged, r.applied, r.action) == (50.0, 100.0, "realigned")
    assert "entered after the data" in r.note() and "corrective_alignment" in r.note()
    assert "entered after" not in MaintenanceReset("b", "x", "balanced", 5.0, 5.0).note()


def test_ledger_is_idempotent() -> None:
    ledger = MaintenanceLedger()
    assert ledger.take("a", "corrective_bearing_replacement", 50.0, assessed=100.0)[0] == "apply"
    assert ledger.take("a", "corrective_bearing_replacement", 50.0, assessed=200.0) == ("duplicate", None)
    # the same replacement logged again (another id, same or earlier time): superseded
    assert ledger.take("b", "corrective_bearing_replacement", 50.0, assessed=200.0) == ("superseded", None)
    assert ledger.take("c", "corrective_balancing", 40.0, assessed=200.0) == ("superseded", None)
    # already reset at 300 by resolving an alarm with a maintenance code
    assert ledger.take("d", "corrective_balancing", 250.0, 400.0, reset_at=300.0) == ("superseded", None)
    assert ledger.take("e", "preventive_lubrication", 500.0, assessed=400.0) == ("no_reset", None)
    assert ledger.take("e", "corrective_balancing", 500.0, assessed=400.0) == ("duplicate", None)
    # two pending entries before one window: the later one is applied, once
    assert ledger.take("f", "corrective_balancing", 600.0, assessed=400.0)[0] == "pending"
    assert ledger.take("g", "corrective_alignment", 650.0, assessed=400.0)[0] == "pending"
    r = ledger.due(700.0)
    assert r is not None and (r.log_id, r.applied) == ("g", 650.0) and ledger.pending == []
    again = MaintenanceLedger.from_dict(ledger.to_dict())
    assert again == ledger and again.take("g", "corrective_alignment", 650.0, 700.0) == ("duplicate", None)


# --- the health service on the in-memory bus ----------------------------------------------------------
async def test_a_logged_bearing_replacement_restarts_the_rul_and_says_why(tmp_path: Path) -> None:
    svc, bus = await trending(tmp_path)
    assert degradation(svc)["reset_at"] is None
    # logged with the data time of the next window: pending until that window, then applied before it
    await deliver(svc, bus, topics.oplog("p1"), entry("corrective_bearing_replacement", REPLACED))
    assert degradation(svc)["reset_at"] is None
    await windows(svc, bus, range(REPLACED, REPLACED + 1), lambda i: RMS_CAL)
    assert degradation(svc)["reset_at"] == at(REPLACED).timestamp()
    hu = health(bus)
    assert hu.ts == at(REPLACED)  # published at once, whatever the throttle
    assert hu.rul is not None and hu.rul.status == "no_degradation_trend"
    assert hu.maintenance_window_days is None
    assert hu.indicators["cusum"] == 0.0 and hu.degradation_index == 0.0
    note = f"reset by corrective_bearing_replacement logged at {at(REPLACED).isoformat()}"
    assert note in hu.maintenance_reason and note in hu.rul.reason
    assert hu.maintenance_reason.startswith("no degradation trend")
    await windows(svc, bus, range(REPLACED + 1, REPLACED + 30), lambda i: RMS_CAL)
    later = health(bus)
    assert later.rul is not None and later.rul.status == "no_degradation_trend" and note in later.rul.reason


async def test_a_logged_lubrication_keeps_the_trend(tmp_path: Path) -> None:
    svc, bus = await trending(tmp_path)
    await deliver(svc, bus, topics.oplog("p1"), entry("preventive_lubrication", REPLACED))
    await windows(svc, bus, range(REPLACED, REPLACED + 3))
    hu = health(bus)
    assert hu.rul is not None and hu.rul.status == "estimate" and "reset by" not in hu.maintenance_reason
    assert degradation(svc)["reset_at"] is None


async def test_a_late_entry_resets_from_the_newest_assessed_window_and_never_twice(tmp_path: Path) -> None:
    """Logged after the data it names was assessed: the reset takes effect at the newest assessed window
    (the windows in between stay in the old trend, and in the store); a QoS 1 duplicate, the same entry
    after a restart, and an older entry reset nothing again."""
    svc, bus = await trending(tmp_path)
    late = entry("corrective_bearing_replacement", REPLACED - 20)
    await deliver(svc, bus, topics.oplog("p1"), late)
    last_assessed = at(TREND_WINDOWS - 1).timestamp()
    assert degradation(svc)["reset_at"] == last_assessed
    await windows(svc, bus, range(REPLACED, REPLACED + 5), lambda i: RMS_CAL)
    hu = health(bus)
    assert hu.rul is not None and hu.rul.status == "no_degradation_trend"
    assert "entered after the data" in hu.maintenance_reason
    prognostics = states(svc).assessors["p1"].to_dict()["prognostics"]
    await deliver(svc, bus, topics.oplog("p1"), late)  # QoS 1 duplicate
    await deliver(svc, bus, topics.oplog("p1"), entry("corrective_balancing", REPLACED - 30, "log-older"))
    assert degradation(svc)["reset_at"] == last_assessed
    assert states(svc).assessors["p1"].to_dict()["prognostics"] == prognostics
    # restart: the ledger is saved with the asset's state; the redelivered entry is a duplicate
    await states(svc).save(states(svc).snapshot())
    again = build(Settings(data_dir=tmp_path, model_verify_key=VERIFY_KEY))
    await states(again).open()
    await deliver(again, bus, topics.model_announce("p1", "autoencoder"), announcement(), retain=True)
    await deliver(again, bus, topics.oplog("p1"), late)
    assert degradation(again)["reset_at"] == last_assessed
    assert states(again).assessors["p1"].to_dict()["prognostics"] == prognostics
    assert bus.on(topics.dead_letter("health")) == []


async def test_an_entry_after_its_alarm_was_resolved_as_maintenance_resets_nothing_again(
    tmp_path: Path,
) -> None:
    """The trend alarm resolved with ``bearing_replaced`` reset the tracking already; the replacement's log
    entry (naming an earlier data time) then changes nothing, a later one resets again."""
    svc, bus = await trending(tmp_path)
    [trend] = [
        a
        for a in (AlarmEvent.model_validate_json(m.payload) for m in bus.on(topics.alarm("p1")))
        if a.source == "trend"
    ]
    req = AlarmActionRequest(
        correlation_id="c1",
        reply_to="rotorwatch/v1/reply/test/c1",
        alarm_id=trend.alarm_id,
        action="resolve",
        who="tech",
        action_code="bearing_replaced",
    )
    await deliver(svc, bus, topics.command("alarm_action"), req)
    reset_at = degradation(svc)["reset_at"]
    assert reset_at is not None and reset_at >= at(REPLACED - 1).timestamp()
    await windows(svc, bus, range(REPLACED, REPLACED + 10), lambda i: RMS_CAL)
    await deliver(svc, bus, topics.oplog("p1"), entry("corrective_bearing_replacement", REPLACED - 5))
    assert degradation(svc)["reset_at"] == reset_at and states(svc).last_reset("p1") is None
    await deliver(svc, bus, topics.oplog("p1"), entry("corrective_balancing", REPLACED + 20, "log-2"))
    await windows(svc, bus, range(REPLACED + 10, REPLACED + 21), lambda i: RMS_CAL)
    assert degradation(svc)["reset_at"] == at(REPLACED + 20).timestamp()
    assert "reset by corrective_balancing" in health(bus).maintenance_reason


async def test_a_resolve_as_maintenance_after_a_log_reset_ends_its_note(tmp_path: Path) -> None:
    svc, bus = await trending(tmp_path)
    [trend] = [
        a
        for a in (AlarmEvent.model_validate_json(m.payload) for m in bus.on(topics.alarm("p1")))
        if a.source == "trend"
    ]
    await deliver(svc, bus, topics.oplog("p1"), entry("corrective_balancing", REPLACED - 10))
    await windows(svc, bus, range(REPLACED, REPLACED + 1), lambda i: RMS_CAL)
    assert "reset by corrective_balancing" in health(bus).maintenance_reason
    req = AlarmActionRequest(
        correlation_id="c1",
        reply_to="rotorwatch/v1/reply/test/c1",
        alarm_id=trend.alarm_id,
        action="resolve",
        who="tech",
        action_code="bearing_replaced",
    )
    await deliver(svc, bus, topics.command("alarm_action"), req)
    await windows(svc, bus, range(REPLACED + 1, REPLACED + 3), lambda i: RMS_CAL)
    assert "reset by" not in health(bus).maintenance_reason


async def test_an_entry_on_another_assets_topic_is_a_dead_letter(tmp_path: Path) -> None:
    svc, bus = await trending(tmp_path)
    await deliver(svc, bus, topics.oplog("p2"), entry("corrective_bearing_replacement", REPLACED))
    [dl] = [DeadLetter.model_validate_json(m.payload) for m in bus.on(topics.dead_letter("health"))]
    assert "log entry of asset 'p1'" in dl.reason
    await windows(svc, bus, range(REPLACED, REPLACED + 1))
    assert degradation(svc)["reset_at"] is None


async def test_an_entry_for_an_untracked_asset_changes_nothing(tmp_path: Path) -> None:
    bus = MemoryBus()
    svc = build(Settings(data_dir=tmp_path, model_verify_key=VERIFY_KEY))
    await deliver(svc, bus, topics.oplog("new"), entry("corrective_bearing_replacement", 0, asset="new"))
    assert states(svc).assessors == {} and bus.on(topics.dead_letter("health")) == []


# --- on a real broker ------------------------------------------------------------------------------------
@pytest.mark.integration
async def test_a_logged_replacement_restarts_the_rul_on_a_real_broker(mosquitto: Any, tmp_path: Path) -> None:
    """Through Mosquitto: a trend with a fitted RUL; an OperatorLog as the gateway publishes it (QoS 1,
    twice: a redelivery); the next health says the tracking restarted, with no estimate."""
    asset = f"mnt-{uuid.uuid4().hex[:8]}"
    s = Settings(data_dir=tmp_path, model_verify_key=VERIFY_KEY, mqtt_url=mosquitto.url)
    svc = build(s)
    async with client(mosquitto.url) as c:
        ann = announcement(asset).model_dump_json()
        await c.publish(topics.model_announce(asset, "autoencoder"), ann, qos=1, retain=True)
    async with Collector(mosquitto.url, [topics.health(asset)]) as col:
        task = asyncio.create_task(run_service(svc, s))
        try:
            async with client(mosquitto.url) as c:
                for i in range(TREND_WINDOWS):
                    for topic, msg in window_parts(i, rising(i), asset):
                        await c.publish(topic, msg.model_dump_json(), qos=1)
                await col.wait_for(lambda t, p: datetime.fromisoformat(p["ts"]) == at(TREND_WINDOWS - 1))
                log_entry = entry("corrective_bearing_replacement", REPLACED, uuid.uuid4().hex, asset)
                for _ in range(2):
                    await c.publish(topics.oplog(asset), log_entry.model_dump_json(), qos=1)
                for i in range(REPLACED, REPLACED + 3):
                    for topic, msg in window_parts(i, RMS_CAL, asset):
                        await c.publish(topic, msg.model_dump_json(), qos=1)
            _, hu, _ = await col.wait_for(lambda t, p: "reset by" in p.get("maintenance_reason", ""))
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            async with client(mosquitto.url) as c:
                for t in (topics.model_announce(asset, "autoencoder"), topics.health(asset)):
                    await c.publish(t, b"", qos=1, retain=True)
    before = [p for _, p, _ in col.messages if (p.get("rul") or {}).get("status") == "estimate"]
    assert before, "the trend had a fitted RUL before the replacement"
    assert datetime.fromisoformat(hu["ts"]) == at(REPLACED)
    assert hu["rul"]["status"] == "no_degradation_trend" and hu["maintenance_window_days"] is None
    note = f"reset by corrective_bearing_replacement logged at {at(REPLACED).isoformat()}"
    assert note in hu["rul"]["reason"] and note in hu["maintenance_reason"]
