"""The calibrator's asynchronous side (in-memory bus, real SQLite store, real training): the ``accepted``
reply before training when asked for, and the typed progress on every state change of a calibration."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from shared import topics
from shared.bus import MemoryBus
from shared.messages import CalibrationRequest, StateChange
from shared.service import running_in_memory
from tests.test_learning_services import T0, fill_store, make_calibrator, readings


async def replies_and_states(tmp_path: Path, n: int) -> tuple[list[dict[str, Any]], list[StateChange]]:
    """Calibrate m1 on ``n`` stored readings with ``reply_accepted``; every reply until the final one and
    every state change the calibrator published."""
    cal, store = make_calibrator(tmp_path)
    fill_store(store, readings(n))
    bus = MemoryBus()
    q = bus.subscribe(topics.reply("t", "c1"))
    states = bus.subscribe(topics.state("m1"))
    req = CalibrationRequest(
        correlation_id="c1",
        reply_to=topics.reply("t", "c1"),
        asset_id="m1",
        lookback_minutes=10,
        end=T0.replace(minute=30),
        reply_accepted=True,
    )
    got: list[dict[str, Any]] = []
    async with running_in_memory(cal, bus):
        await bus.publish(topics.command("calibrate"), req)
        while not got or got[-1]["status"] == "accepted":
            got.append(json.loads((await asyncio.wait_for(q.get(), 60)).payload))
    changes = []
    while not states.empty():
        changes.append(StateChange.model_validate_json(states.get_nowait().payload))
    return got, changes


async def test_accepted_with_the_points_then_completed_and_the_progress_on_every_state(
    tmp_path: Path,
) -> None:
    got, changes = await replies_and_states(tmp_path, 400)
    assert [(r["status"], r["data_points_collected"]) for r in got] == [("accepted", 400), ("completed", 400)]
    assert got[0]["message"] == "Baseline calibration in progress"
    progress = [c.calibration for c in changes]
    assert all(p is not None for p in progress)
    phases = [p.phase for p in progress if p is not None]
    seen = list(dict.fromkeys(phases))
    assert seen == ["waiting", "collecting", "validating", "training", "saving", "completed"]
    assert [p.step for p in progress if p is not None][:2] == [1, 2]
    started = {p.started_at for p in progress if p is not None}
    assert len(started) == 1  # one calibration, one start time
    last = changes[-1]
    assert last.state == "CALIBRATED" and last.calibration is not None
    assert (last.calibration.percent, last.calibration.data_points_collected) == (100.0, 400)
    assert last.calibration.finished_at is not None
    assert all(c.state == "CALIBRATING" for c in changes[:-1])
    percents = [p.percent for p in progress if p is not None]
    assert percents == sorted(percents)


async def test_too_little_data_is_the_only_reply(tmp_path: Path) -> None:
    got, changes = await replies_and_states(tmp_path, 42)
    assert [(r["status"], r["code"]) for r in got] == [("failed", "insufficient_data")]
    assert got[0]["message"].startswith("Insufficient data for calibration: found 42 readings (need 100)")
    last = changes[-1]
    assert last.state == "IDLE" and last.calibration is not None
    assert (last.calibration.phase, last.calibration.step) == ("failed", 2)  # failed while collecting
    assert last.calibration.finished_at is not None
