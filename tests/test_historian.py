"""Historian: buffering/retry/backpressure with a fake store; end to end on real mosquitto + influxd."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest

from services.historian.service import build
from services.historian.writer import Historian
from shared import records, topics
from shared.bus import MemoryBus
from shared.messages import DeadLetter, Reading
from shared.service import deliver, run_service
from shared.settings import Settings
from shared.store import Point, Store, StoreError, StoreUnavailable
from shared.store.influx import InfluxStore
from shared.store.sqlite import SqliteStore
from tests.conftest import ROOT
from tests.support.servers import InfluxServer, MosquittoServer

T0 = datetime(2024, 1, 1, tzinfo=UTC)


class FakeStore(Store):
    """Keeps points by identity; ``fail`` decides per write call (1-based) whether the store is down."""

    def __init__(
        self,
        fail: Callable[[int], bool] = lambda n: False,
        refuse: Callable[[Point], bool] = lambda p: False,
    ) -> None:
        self.fail = fail
        self.refuse = refuse
        self.calls = 0
        self.batches: list[int] = []
        self.rows: dict[tuple, Point] = {}
        self.writes_per_identity: Counter[tuple] = Counter()

    @staticmethod
    def key(p: Point) -> tuple:
        return (p.measurement, p.asset_id, tuple(sorted(p.tags.items())), p.ts_ns)

    def write(self, points: Sequence[Point]) -> None:
        self.calls += 1
        if self.fail(self.calls):
            raise StoreUnavailable("store is down")
        if any(self.refuse(p) for p in points):
            raise StoreError("refused")
        self.batches.append(len(points))
        for p in points:
            self.rows[self.key(p)] = p
            self.writes_per_identity[self.key(p)] += 1

    def query(self, measurement: str, asset_id: str, **kw: object) -> list[Point]:
        return sorted(
            (p for p in self.rows.values() if p.measurement == measurement and p.asset_id == asset_id),
            key=lambda p: p.ts_ns,
        )

    def count(self, measurement: str, asset_id: str, **kw: object) -> int:
        return len(self.query(measurement, asset_id))

    def assets(self) -> list[str]:
        return sorted({p.asset_id for p in self.rows.values()})

    def delete_asset(self, asset_id: str) -> None:
        self.rows = {k: v for k, v in self.rows.items() if v.asset_id != asset_id}

    def ping(self) -> bool:
        return True


def pts(n: int, start: int = 0, asset: str = "m1") -> list[Point]:
    return [Point("readings", asset, 1_000 + i, {"v": float(i)}) for i in range(start, start + n)]


class Sleeps:
    """A fake ``sleep`` that records the delays and only yields to the loop."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, s: float) -> None:
        self.delays.append(s)
        await asyncio.sleep(0)


# --- (a) unit: buffer, batches, retry, backpressure ----------------------------------------------------
async def test_flush_writes_in_batches() -> None:
    store = FakeStore()
    h = Historian(store, batch_size=500)
    await h.add(pts(1234))
    assert h.buffered == 1234
    assert await h.flush() == 1234
    assert store.batches == [500, 500, 234]
    assert h.buffered == 0 and h.stats.written == 1234 and len(store.rows) == 1234


async def test_retry_backoff_doubles_to_five_seconds_and_nothing_is_lost() -> None:
    store = FakeStore(fail=lambda n: n <= 8)
    sleeps = Sleeps()
    h = Historian(store, batch_size=10, sleep=sleeps)
    await h.add(pts(25))
    assert await h.flush() == 25
    assert sleeps.delays == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]
    assert h.stats.write_failures == 8
    assert store.batches == [10, 10, 5]
    assert set(store.writes_per_identity.values()) == {1}
    assert [p.fields["v"] for p in store.query("readings", "m1")] == [float(i) for i in range(25)]


async def test_backoff_resets_after_a_success() -> None:
    store = FakeStore(fail=lambda n: n in (1, 2, 4))
    sleeps = Sleeps()
    h = Historian(store, batch_size=5, sleep=sleeps)
    await h.add(pts(10))
    await h.flush()
    assert sleeps.delays == [0.2, 0.4, 0.2]
    assert store.batches == [5, 5]


async def test_refused_point_is_isolated_and_the_rest_written() -> None:
    poison = 5
    store = FakeStore(refuse=lambda p: p.fields["v"] == float(poison))
    h = Historian(store, batch_size=8)
    await h.add(pts(8))
    assert await h.flush() == 7
    assert h.stats.dropped == 1 and h.buffered == 0
    assert sorted(p.fields["v"] for p in store.rows.values()) == [0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 7.0]


async def test_full_buffer_makes_the_handler_wait_instead_of_dropping() -> None:
    down = True
    store = FakeStore(fail=lambda n: down)
    h = Historian(store, batch_size=4, buffer_points=10, flush_seconds=0.01, sleep=Sleeps())
    h.start()
    await h.add(pts(10))  # fits exactly
    adder = asyncio.create_task(h.add(pts(3, start=10)))
    for _ in range(20):
        await asyncio.sleep(0)
    # the store is down, so no flush can have made room: the producer must still be waiting
    assert not adder.done()
    assert h.buffered == 10 and h.stats.backpressure_waits == 1
    down = False
    await asyncio.wait_for(adder, 10)
    await h.close()
    assert h.buffered == 0 and h.stats.dropped == 0
    assert sorted(int(p.fields["v"]) for p in store.rows.values()) == list(range(13))
    assert set(store.writes_per_identity.values()) == {1}


async def test_message_larger_than_buffer_is_taken_when_empty() -> None:
    store = FakeStore()
    h = Historian(store, batch_size=4, buffer_points=3)
    await h.add(pts(5))
    assert h.buffered == 5
    await h.flush()
    assert len(store.rows) == 5


async def test_run_flushes_a_partial_batch_on_the_timer() -> None:
    store = FakeStore()
    h = Historian(store, batch_size=100, flush_seconds=0.02)
    h.start()
    await h.add(pts(3))
    for _ in range(500):
        if len(store.rows) == 3:
            break
        await asyncio.sleep(0.01)
    assert len(store.rows) == 3 and store.batches == [3]
    await h.close()


async def test_close_flushes_and_gives_up_after_timeout_when_down() -> None:
    store = FakeStore()
    h = Historian(store)
    await h.add(pts(7))
    await h.close()
    assert len(store.rows) == 7
    down = Historian(FakeStore(fail=lambda n: True))
    await down.add(pts(2))
    await down.close(timeout_s=0.3)  # logs unflushed_on_exit, does not raise
    assert down.buffered == 2


def test_constructor_checks_arguments() -> None:
    for kw in ({"batch_size": 0}, {"flush_seconds": 0}, {"buffer_points": 0}, {"min_backoff_s": 0}):
        with pytest.raises(ValueError):
            Historian(FakeStore(), **kw)


def reading_msg(i: int, asset: str = "m1") -> Reading:
    return Reading(
        event_id=f"{i:032x}",
        asset_id=asset,
        ts=T0 + timedelta(milliseconds=i),
        voltage_v=400.0,
        current_a=10.0 + i,
        power_factor=0.9,
        vibration_g=0.1,
        is_faulty=False,
    )


async def test_routes_convert_and_dead_letter_bad_payloads() -> None:
    store = FakeStore()
    h = Historian(store)
    svc = build(Settings(), historian=h)
    bus = MemoryBus()
    assert svc.subscriptions == [f.filter for f in records.FAMILIES]
    good = reading_msg(1).model_dump_json().encode()
    for topic, payload in (
        (topics.reading("m1"), good),
        (topics.reading("m1"), b"{not json"),
        (topics.reading("m1"), b'{"event_id": "x"}'),
        (topics.reading("m2"), good),  # asset mismatch
        ("rotorwatch/v1/unknown/m1", good),
    ):
        await deliver(svc, bus, topic, payload)
    assert h.buffered == 1 and h.stats.messages == 1
    dead = [DeadLetter.model_validate_json(m.payload) for m in bus.on(topics.dead_letter("historian"))]
    assert len(dead) == 4
    assert "Invalid JSON" in dead[0].reason
    assert "does not match topic" in dead[2].reason
    assert "no historian route" in dead[3].reason
    await h.flush()
    [pt] = store.query("readings", "m1")
    assert records.point_to_reading(pt) == reading_msg(1)


# --- (b) integration: real mosquitto + a dedicated influxd that we stop mid-stream ---------------------
async def _wait_for(pred: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.mark.integration
async def test_influx_outage_mid_stream_loses_nothing_and_writes_nothing_twice(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    srv = InfluxServer(tmp_path / "influx").start()
    asset = f"hist-{uuid.uuid4().hex[:8]}"
    client_id = f"rotorwatch-historian-test-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        mqtt_url=mosquitto.url,
        influx_url=srv.url,
        influx_bucket="sensor_data",
        historian_batch_size=50,
        historian_flush_seconds=0.1,
    )
    store = InfluxStore.from_settings(settings)
    h = Historian.from_settings(store, settings)
    svc = build(settings, historian=h, client_id=client_id)
    state = svc.serve_state
    task = asyncio.create_task(run_service(svc, settings))
    try:
        await asyncio.wait_for(state.ready.wait(), 15)
        async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier=f"pub-{asset}") as pub:

            async def publish(rng: range) -> None:
                for i in rng:
                    await pub.publish(topics.reading(asset), reading_msg(i, asset).model_dump_json(), qos=1)

            await publish(range(0, 100))
            await _wait_for(lambda: h.stats.written >= 50, "first batches written")
            await asyncio.to_thread(srv.stop)
            await publish(range(100, 200))
            await _wait_for(lambda: h.stats.write_failures >= 1, "a failed write while influxd is down")
            # Messages are acknowledged only once written: the unwritten ones wait, buffered here or
            # still at the broker (its in-flight window is full of our unacknowledged messages).
            assert h.stats.written < 200  # some points had to wait for the store
            await asyncio.to_thread(srv.start)
            await publish(range(200, 300))
        await _wait_for(lambda: h.stats.written >= 300 and h.buffered == 0, "every point written")
        got = await asyncio.to_thread(store.query, "readings", asset)
        ids = Counter(p.fields["event_id"] for p in got)
        assert len(got) == 300
        assert set(ids) == {f"{i:032x}" for i in range(300)}
        assert max(ids.values()) == 1
        assert h.stats.dropped == 0
        assert records.point_to_reading(got[123]) == reading_msg(123, asset)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        store.close()
        srv.stop()
        # discard the persistent session so the broker stops queueing for this test client
        async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier=client_id, clean_session=True):
            pass


# --- (c) smoke: the real process ------------------------------------------------------------------------
def _env(mqtt_url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INFLUX_", "HISTORIAN_"))}
    env.update(
        MQTT_URL=mqtt_url,
        DATA_DIR=str(data_dir),
        PYTHONPATH=str(ROOT),
        HISTORIAN_FLUSH_SECONDS="0.1",
        LOG_LEVEL="DEBUG",  # "flushed" is a debug event (every checkpoint flushes)
    )
    return env


def _log_events(path: Path) -> list[Mapping[str, object]]:
    out = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


@pytest.mark.integration
async def test_process_writes_to_sqlite_and_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    broker = MosquittoServer(tmp_path / "mqtt").start()  # own broker: the real client id is persistent
    log_path = tmp_path / "historian.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.historian"],
            cwd=ROOT,
            env=_env(broker.url, tmp_path / "data"),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        await _wait_for(
            lambda: (
                any(e.get("event") == "connected" for e in _log_events(log_path)) or proc.poll() is not None
            ),
            "historian connected",
            30,
        )
        assert proc.poll() is None, log_path.read_text()
        r = reading_msg(7, "smoke-1")
        async with aiomqtt.Client("127.0.0.1", broker.port) as pub:
            await pub.publish(topics.reading("smoke-1"), r.model_dump_json(), qos=1)
        db = SqliteStore(tmp_path / "data" / "rotorwatch.db")
        await _wait_for(lambda: db.count("readings", "smoke-1") == 1, "reading in SQLite", 30)
        [pt] = db.query("readings", "smoke-1")
        assert pt == records.reading_to_point(r)
        db.close()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 15) == 0, log_path.read_text()
        events = [e.get("event") for e in _log_events(log_path)]
        assert "flushed" in events and events[-1] == "stopped"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        broker.stop()
