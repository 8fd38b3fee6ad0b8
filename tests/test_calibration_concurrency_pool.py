"""The calibrator's bounded worker pool (issue 17, :mod:`services.calibrator.workers`): at most
``CALIBRATION_WORKERS`` calibrations at once, first come first served, the others CALIBRATING with their
place in the queue, other commands answered meanwhile. In memory (pool) and in-memory bus + SQLite store
(service); the real-stack test is in ``test_calibration_concurrency_stack.py``."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.calibrator import workers
from services.calibrator.service import build
from services.calibrator.workers import WorkerPool, waiting_text
from shared import topics
from shared.bus import MemoryBus
from shared.messages import CalibrationReply, CalibrationRequest, ConfigReply, StateChange
from shared.service import running_in_memory
from shared.settings import Settings
from shared.store.sqlite import SqliteStore
from tests.support.faults import wait_for


class Holder:
    """Tasks that each hold a worker of ``pool`` until released; records entries and queue positions."""

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool
        self.entered: list[str] = []
        self.positions: dict[str, list[int]] = {}
        self.release: dict[str, asyncio.Event] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    async def _hold(self, key: str) -> None:
        async def on_wait(position: int, size: int) -> None:
            assert size == self.pool.size
            self.positions.setdefault(key, []).append(position)

        async with self.pool.slot(key, on_wait):
            self.entered.append(key)
            await self.release[key].wait()

    def start(self, key: str) -> None:
        self.release[key] = asyncio.Event()
        self.tasks[key] = asyncio.create_task(self._hold(key))


async def test_pool_runs_at_most_size_first_come_first_served_and_reports_positions() -> None:
    h = Holder(WorkerPool(2))
    for key in "abcde":
        h.start(key)
    await wait_for(lambda: len(h.positions) == 3, 5, "c, d and e queue")
    assert h.entered == ["a", "b"]
    assert h.positions == {"c": [1], "d": [2], "e": [3]}
    assert h.pool.position("d") == 2 and h.pool.position("a") is None

    h.release["b"].set()  # b done: c (the head) runs, d and e move up
    await wait_for(lambda: h.positions.get("e") == [3, 2], 5, "e moves up")
    assert h.entered == ["a", "b", "c"] and h.positions["d"] == [2, 1]

    h.tasks["d"].cancel()  # d gives up while waiting: e moves up, nobody runs in its place
    await wait_for(lambda: h.positions.get("e") == [3, 2, 1], 5, "e moves up again")
    assert h.pool.busy == ["a", "c"] and h.entered == ["a", "b", "c"]

    h.release["a"].set()
    await wait_for(lambda: h.entered == ["a", "b", "c", "e"], 5, "e runs")
    for key in "ce":
        h.release[key].set()
    await asyncio.gather(*(h.tasks[k] for k in "abce"))
    assert h.pool.busy == [] and h.pool.waiting == []
    assert h.tasks["d"].cancelled()


async def test_a_running_calibration_that_fails_frees_its_worker() -> None:
    pool = WorkerPool(1)

    async def never(position: int, size: int) -> None:
        raise AssertionError("a free worker is taken without waiting")

    with pytest.raises(RuntimeError):
        async with pool.slot("a", never):
            raise RuntimeError("calibration crashed")
    async with pool.slot("b", never) as waited:
        assert waited is False and pool.busy == ["b"]
    assert pool.busy == []


def test_pool_size_and_setting_are_checked() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        WorkerPool(0)
    with pytest.raises(ValidationError):
        Settings(calibration_workers=0)
    assert Settings(calibration_workers=3).calibration_workers == 3
    assert Settings().calibration_workers is None
    assert workers.default_workers() == max(1, os.cpu_count() or 1)


# ---------------------------------------------------------------------------------------------
# the service: queued calibrations are CALIBRATING with their place; other commands flow
# ---------------------------------------------------------------------------------------------
def _request(asset: str, cid: str) -> CalibrationRequest:
    return CalibrationRequest(correlation_id=cid, reply_to=topics.reply("t", cid), asset_id=asset)


def _state(bus: MemoryBus, asset: str) -> StateChange | None:
    msg = bus.retained.get(topics.state(asset))
    return StateChange.model_validate_json(msg.payload) if msg else None


async def test_calibrations_beyond_the_workers_wait_with_their_place_while_commands_flow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CALIBRATION_WORKERS=1, three assets: one runs (held at its start), the others are CALIBRATING
    "waiting for a calibration worker" at positions 1 and 2 and move up as workers free; cmd/config is
    answered meanwhile; a request for a queued asset is busy; a queued calibration that fails returns its
    asset to the state it had before it queued (MONITORING), not to CALIBRATING."""
    gate, inside, most = asyncio.Event(), [], [0]
    real = workers.run_calibration

    async def held(cal: Any, bus: Any, req: CalibrationRequest) -> None:
        inside.append(req.asset_id)
        most[0] = max(most[0], len(inside))
        await gate.wait()
        try:
            await real(cal, bus, req)  # the store is empty: fails insufficient_data
        finally:
            inside.remove(req.asset_id)

    monkeypatch.setattr(workers, "run_calibration", held)
    settings = Settings(
        data_dir=tmp_path,
        model_dir=tmp_path / "models",
        rotorwatch_env="development",
        calibration_workers=1,
        calibration_store_quiet_s=0.1,
    )
    svc = build(settings, store=SqliteStore(tmp_path / "db.sqlite"))
    bus = MemoryBus()
    await bus.publish(topics.state("m2"), StateChange(asset_id="m2", state="MONITORING"), retain=True)
    states, replies = bus.subscribe(topics.STATE_FILTER), bus.subscribe(topics.reply("t", "+"))
    async with running_in_memory(svc, bus):
        await bus.publish(topics.command("calibrate"), _request("m1", "c1"))
        await wait_for(lambda: inside == ["m1"], 5, "m1 runs")
        for asset in ("m2", "m3"):
            await bus.publish(topics.command("calibrate"), _request(asset, f"c-{asset}"))
            await wait_for(lambda a=asset: getattr(_state(bus, a), "state", "") == "CALIBRATING", 5, asset)
        await wait_for(lambda: getattr(_state(bus, "m3"), "reason", "") == waiting_text(2, 1), 5, "m3 waits")
        m2 = _state(bus, "m2")
        assert m2 is not None and (m2.state, m2.reason) == ("CALIBRATING", waiting_text(1, 1))
        assert m2.calibration is not None and m2.calibration.phase == "waiting"

        config = {"correlation_id": "k1", "reply_to": topics.reply("t", "k1"), "config": {"asset_id": "m9"}}
        await bus.publish(topics.command("config"), config)
        await bus.publish(topics.command("calibrate"), _request("m3", "again"))
        got: dict[str, bytes] = {}
        while not {"k1", "again"} <= set(got):
            msg = await asyncio.wait_for(replies.get(), 10)
            got[msg.topic.rsplit("/", 1)[-1]] = msg.payload
        assert ConfigReply.model_validate_json(got["k1"]).status == "ok"
        assert CalibrationReply.model_validate_json(got["again"]).code == "busy"
        assert inside == ["m1"]  # still held: the config went through while the calibrations wait

        gate.set()
        done: dict[str, CalibrationReply] = {}
        while len(done) < 3:
            r = CalibrationReply.model_validate_json((await asyncio.wait_for(replies.get(), 30)).payload)
            done[r.asset_id or ""] = r
    assert {a: r.code for a, r in done.items()} == dict.fromkeys(("m1", "m2", "m3"), "insufficient_data")
    assert most[0] == 1
    m2 = _state(bus, "m2")
    assert m2 is not None and (m2.state, m2.previous) == ("MONITORING", "CALIBRATING")
    seen: list[tuple[str, str]] = []
    while not states.empty():
        s = StateChange.model_validate_json(states.get_nowait().payload)
        seen.append((s.asset_id, s.reason))
    m3_waits = [r for a, r in seen if a == "m3" and r.startswith("Waiting for a calibration worker")]
    assert m3_waits == [waiting_text(2, 1), waiting_text(1, 1)]
