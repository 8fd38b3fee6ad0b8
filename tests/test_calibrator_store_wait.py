"""Calibration waits for the historian: before collecting, the calibrator waits until the store holds the
asset's data up to the requested end, or the store has stopped moving (``CALIBRATION_STORE_QUIET_S``), at
most ``CALIBRATION_STORE_WAIT_S``; a calibration short of data says how far behind the store is; other
commands are answered meanwhile. In-memory bus, real SQLite store, real training (the whole stack on a
real broker: ``tests/test_calibration_burst.py``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from services.calibrator.data import StoreProgress, StoreWait
from services.calibrator.service import build
from shared import topics
from shared.bus import MemoryBus
from shared.features.engine import FeatureEngine
from shared.messages import CalibrationRequest, ConfigReply, Reading, StateChange, ts_ns
from shared.records import features_to_point, reading_to_point
from shared.service import running_in_memory
from shared.settings import Settings
from shared.store import Point
from shared.store.sqlite import SqliteStore
from tests.support.faults import wait_for
from tests.test_learning_services import FAST, readings

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make(tmp_path: Path, **over: Any) -> tuple[Any, SqliteStore]:
    store = SqliteStore(tmp_path / "db.sqlite")
    settings = Settings(
        data_dir=tmp_path,
        model_dir=tmp_path / "models",
        batch_window=10,
        rotorwatch_env="development",
        **over,
    )
    return build(settings, store=store, config=FAST), store


def points(rs: Sequence[Reading], engine: FeatureEngine) -> list[Point]:
    """What the historian stores for these readings: each reading and its feature vectors."""
    out: list[Point] = []
    for r in rs:
        out.append(reading_to_point(r))
        out += [features_to_point(fv) for fv in engine.on_reading(r)]
    return out


def request(cid: str, end: datetime | None = None, minutes: float = 10) -> CalibrationRequest:
    return CalibrationRequest(
        correlation_id=cid, reply_to=topics.reply("t", cid), asset_id="m1", lookback_minutes=minutes, end=end
    )


def states(bus: MemoryBus) -> list[StateChange]:
    return [StateChange.model_validate_json(m.payload) for m in bus.on(topics.state("m1"))]


async def test_calibration_waits_until_the_store_holds_the_requested_end(tmp_path: Path) -> None:
    """The historian writes the data only after the request (in batches, as it does under a burst): the
    calibration finds every reading up to ``end`` (it would find none without the wait). Nothing here
    depends on timing: the wait ends when the data reaches ``end``, never by quiet or timeout."""
    cal, store = make(tmp_path, calibration_store_quiet_s=600, calibration_store_wait_s=600)
    rs = readings(500)  # 0.2 s apart: 100 s of data
    end = rs[399].ts  # the calibration asks for the data up to the 400th reading
    bus = MemoryBus()
    replies = bus.subscribe(topics.reply("t", "c1"))
    engine = FeatureEngine(batch_window=10)
    async with running_in_memory(cal, bus):
        await bus.publish(topics.command("calibrate"), request("c1", end))
        await wait_for(lambda: any("Waiting for the store" in s.reason for s in states(bus)), 30, "waiting")
        for i in range(0, len(rs), 50):  # the historian catching up
            await asyncio.to_thread(store.write, points(rs[i : i + 50], engine))
            await asyncio.sleep(0)
        reply = json.loads((await asyncio.wait_for(replies.get(), 120)).payload)
    assert reply["status"] == "completed", reply
    assert reply["data_points_collected"] == 400  # up to end, not the 100 stored after it
    assert [s.reason for s in states(bus)][:2] == [
        f"Waiting for the store to hold the data up to {end.isoformat()}",
        "Collecting the last 10 minutes of data",
    ]


async def test_short_of_data_the_reply_says_how_far_behind_the_store_is(tmp_path: Path) -> None:
    """Data that stops 60 s before the requested end: once the store has been quiet the calibration
    goes on with what it holds, and the insufficient-data reply names the store's newest time and lag."""
    cal, store = make(tmp_path, calibration_store_quiet_s=0.3)
    rs = readings(42)
    store.write(points(rs, FeatureEngine(batch_window=10)))
    end = rs[-1].ts + timedelta(seconds=60)
    bus = MemoryBus()
    replies = bus.subscribe(topics.reply("t", "c1"))
    async with running_in_memory(cal, bus):
        await bus.publish(topics.command("calibrate"), request("c1", end))
        reply = json.loads((await asyncio.wait_for(replies.get(), 60)).payload)
    assert (reply["status"], reply["code"]) == ("failed", "insufficient_data")
    assert reply["message"].startswith("Insufficient data for calibration: found 42 readings (need 100)")
    assert (
        f"; the store holds data of m1 up to {rs[-1].ts.isoformat()}, 60.0 s before the requested end "
        f"{end.isoformat()} (waited " in reply["message"]
    )
    assert reply["message"].endswith(" s for the historian)")


async def test_the_wait_is_bounded_while_the_store_keeps_moving(tmp_path: Path) -> None:
    """A store that keeps moving but never reaches ``end`` (never quiet): the calibration stops waiting
    after ``CALIBRATION_STORE_WAIT_S`` and calibrates on what is stored."""
    cal, store = make(tmp_path, calibration_store_quiet_s=600, calibration_store_wait_s=1)
    rs = readings(800)
    engine = FeatureEngine(batch_window=10)
    store.write(points(rs[:400], engine))
    bus = MemoryBus()
    replies = bus.subscribe(topics.reply("t", "c1"))
    async with running_in_memory(cal, bus):
        await bus.publish(topics.command("calibrate"), request("c1", rs[-1].ts + timedelta(hours=1)))
        for r in rs[400:]:  # one more reading at a time, until the reply
            await asyncio.to_thread(store.write, points([r], engine))
            if not replies.empty():
                break
            await asyncio.sleep(0.01)
        reply = json.loads((await asyncio.wait_for(replies.get(), 120)).payload)
    assert reply["status"] == "completed", reply
    assert 400 <= reply["data_points_collected"] < 800


async def test_other_commands_are_answered_while_a_calibration_waits(tmp_path: Path) -> None:
    """An empty store never reaches ``end`` and a long quiet period keeps the calibration waiting; a
    configuration command is answered meanwhile, and a second calibration of the asset is busy."""
    cal, _ = make(tmp_path, calibration_store_quiet_s=600, calibration_store_wait_s=600)
    bus = MemoryBus()
    config_q = bus.subscribe(topics.reply("t", "cfg"))
    busy_q = bus.subscribe(topics.reply("t", "c2"))
    async with running_in_memory(cal, bus):
        await bus.publish(topics.command("calibrate"), request("c1"))
        await wait_for(lambda: any("Waiting for the store" in s.reason for s in states(bus)), 30, "waiting")
        cfg = {"correlation_id": "cfg", "reply_to": topics.reply("t", "cfg"), "config": {"asset_id": "m2"}}
        await bus.publish(topics.command("config"), json.dumps(cfg))
        reply = ConfigReply.model_validate_json((await asyncio.wait_for(config_q.get(), 30)).payload)
        assert reply.status == "ok"
        await bus.publish(topics.command("calibrate"), request("c2"))
        busy = json.loads((await asyncio.wait_for(busy_q.get(), 30)).payload)
        assert busy["code"] == "busy"
        assert states(bus)[-1].state == "CALIBRATING"  # still waiting for the store


def test_lag_text_and_progress() -> None:
    end = T0 + timedelta(seconds=90)
    held = StoreProgress((ts_ns(T0), None, None, None, None))
    wait = StoreWait(held, ts_ns(end), 2.04)
    assert wait.behind
    assert wait.lag_text("m1") == (
        "the store holds data of m1 up to 2026-01-01T00:00:00+00:00, 90.0 s before the requested end "
        "2026-01-01T00:01:30+00:00 (waited 2.0 s for the historian)"
    )
    empty = StoreWait(StoreProgress((None,) * 5), ts_ns(end), 30.0)
    assert empty.lag_text("m1") == (
        "the store holds no data of m1 (requested end 2026-01-01T00:01:30+00:00; "
        "waited 30.0 s for the historian)"
    )
    assert not StoreWait(StoreProgress((None, ts_ns(end), None, None, None)), ts_ns(end), 0.0).behind
