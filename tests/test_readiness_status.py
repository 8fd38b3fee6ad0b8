"""Services say when they are ready: the runner's status sequence (``status/<service>``, retained).

In memory (the same reporter the broker runner uses) and on a real Mosquitto: ``online, ready=false``
once subscribed, ``ready=true`` only after every retained message was handled and the declared start-up
steps are done, again on every detail change, ``offline`` on a clean stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np
import pytest

from services.calibrator.service import build as build_calibrator
from services.scorer.service import build as build_scorer
from shared import topics
from shared.bus import Incoming, MemoryBus, ServeState, serve
from shared.learning import registry
from shared.learning.forest import export_forest_onnx, train_forest
from shared.messages.inputs import ServiceDetail, ServiceStatus
from shared.readiness import Readiness
from shared.service import Delivery, Outbox, Route, Service, running_in_memory
from shared.settings import Settings
from shared.store.sqlite import SqliteStore
from tests.support.faults import wait_for
from tests.support.servers import MosquittoServer


def statuses(bus: MemoryBus, name: str) -> list[ServiceStatus]:
    return [ServiceStatus.model_validate_json(m.payload) for m in bus.on(topics.service_status(name))]


def summary(bus: MemoryBus, name: str) -> list[tuple[str, bool, list[str], int | None]]:
    """(state, ready, waiting_for, models_loaded) of every status published so far."""
    out = []
    for s in statuses(bus, name):
        d = s.detail or ServiceDetail()
        out.append((s.state, s.ready, d.waiting_for, d.models_loaded))
    return out


def test_old_status_payloads_still_parse() -> None:
    old = ServiceStatus.model_validate_json(b'{"service": "ingest", "state": "online", "pid": 7}')
    assert (old.ready, old.detail) == (False, None)


def test_readiness_needs_the_sync_and_every_step() -> None:
    r = Readiness(steps=("models", "configs"))
    r.begin()
    assert not r.ready and r.detail().waiting_for == ["configs", "models"]
    r.sync()
    r.done("models")
    assert not r.ready and r.detail().waiting_for == ["configs"]
    r.done("configs")
    assert r.ready and r.detail().waiting_for == []
    r.begin()  # a new connection: everything again
    assert not r.ready and not r.synced and r.detail().waiting_for == ["configs", "models"]
    with pytest.raises(ValueError, match="unknown start-up step"):
        r.done("coffee")
    with pytest.raises(ValueError):
        r.update(models_loaded=-1)


class Counter:
    """A toy service: counts retained ``t/<asset>`` messages as 'models', start-up step on demand."""

    def __init__(self, steps: tuple[str, ...] = ()) -> None:
        self.readiness = Readiness(steps=steps)
        self.seen: set[str] = set()
        self.release = asyncio.Event()

    async def on_msg(self, d: Delivery[Incoming]) -> Outbox:
        self.seen.add(d.topic)
        self.readiness.update(models_loaded=len(self.seen))
        return None

    async def startup(self, bus: object) -> None:
        await self.release.wait()
        self.readiness.done("models")

    def service(self) -> Service:
        route = Route("t/+", lambda m: m, self.on_msg)
        tasks = (self.startup,) if self.readiness.steps else ()
        return Service(name="counter", routes=(route,), tasks=tasks, readiness=self.readiness)


async def test_ready_only_after_the_retained_messages_were_handled() -> None:
    bus = MemoryBus()
    for a in ("a", "b"):
        await bus.publish(f"t/{a}", b"x", retain=True)
    c = Counter()
    async with running_in_memory(c.service(), bus):
        await wait_for(lambda: any(s.ready for s in statuses(bus, "counter")), 5, "ready")
        # the first status is online but not ready (before the retained messages), the last one ready
        # with both retained messages counted; nothing ready before them
        seq = summary(bus, "counter")
        assert seq[0] == ("online", False, [], None)
        assert seq[-1] == ("online", True, [], 2)
        assert all(not ready for _, ready, _, n in seq if n != 2)
        await bus.publish("t/c", b"x")  # a detail change is published again
        await wait_for(lambda: summary(bus, "counter")[-1] == ("online", True, [], 3), 5, "count 3")
        n = len(statuses(bus, "counter"))
        await bus.publish("t/c", b"x")  # no change: no new status
        await wait_for(lambda: "t/c" in c.seen, 5, "handled")
        assert len(statuses(bus, "counter")) == n
    assert summary(bus, "counter")[-1][:2] == ("offline", False)
    assert ServiceStatus.model_validate_json(
        bus.retained[topics.service_status("counter")].payload
    ).state == ("offline")


async def test_ready_waits_for_the_start_up_steps() -> None:
    bus = MemoryBus()
    c = Counter(steps=("models",))
    async with running_in_memory(c.service(), bus):
        # synced, and the reporter has taken that change (it clears the flag, then publishes at once)
        await wait_for(lambda: c.readiness.synced and not c.readiness.changed.is_set(), 5, "synced")
        assert not any(s.ready for s in statuses(bus, "counter"))
        assert summary(bus, "counter")[-1] == ("online", False, ["models"], None)
        c.release.set()
        await wait_for(lambda: summary(bus, "counter")[-1] == ("online", True, [], None), 5, "ready")


@pytest.mark.integration
async def test_the_runner_on_a_real_broker_announces_ready_after_the_retained_state(
    mosquitto: MosquittoServer,
) -> None:
    settings = Settings(mqtt_url=mosquitto.url)
    name, prefix = f"ready-{uuid.uuid4().hex[:8]}", f"rt{uuid.uuid4().hex[:8]}"
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as c:
        for i in range(50):
            await c.publish(f"{prefix}/{i}", b"x", qos=1, retain=True)
    handled: list[str] = []
    readiness = Readiness()
    seen: list[tuple[bool, int]] = []  # (ready, handled when that status was received)

    async def handler(bus: object, msg: Incoming) -> None:
        handled.append(msg.topic)
        readiness.update(models_loaded=len(handled))

    subscribed = asyncio.Event()

    async def watch() -> None:
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as w:
            await w.subscribe(topics.service_status(name), qos=1)
            subscribed.set()
            async for m in w.messages:
                s = ServiceStatus.model_validate_json(bytes(m.payload))  # type: ignore[arg-type]
                if s.state == "online":
                    seen.append((s.ready, (s.detail or ServiceDetail()).models_loaded or 0))

    watcher = asyncio.create_task(watch())
    await asyncio.wait_for(subscribed.wait(), 10)
    st = ServeState(readiness=readiness)
    task = asyncio.create_task(serve(name, settings, [f"{prefix}/#"], handler, state=st))
    try:
        await wait_for(lambda: any(r for r, _ in seen), 15, "ready status")
        first_ready = next(n for r, n in seen if r)
        assert seen[0][0] is False  # online, not ready, first
        assert first_ready == 50  # every retained message was handled before "ready"
    finally:
        task.cancel()
        watcher.cancel()
        for t in (task, watcher):
            with contextlib.suppress(asyncio.CancelledError):
                await t


# ---------------------------------------------------------------------------------------------
# The calibrator and a scorer after a restart (in memory: a fresh bus forgot every retained message)
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def forest() -> tuple[Any, bytes]:
    X = np.random.default_rng(0).normal(size=(150, 6))
    model = train_forest(X, [f"f{i}" for i in range(6)], n_estimators=10)
    return model, export_forest_onnx(model)


async def test_calibrator_ready_after_reannouncing_and_the_scorer_counts_what_it_loaded(
    tmp_path: Path, forest: tuple[Any, bytes]
) -> None:
    model, blob = forest
    entry = {**model.entry(), "kind": "legacy"}
    for asset in ("m1", "m2"):
        registry.save_version(tmp_path / "models", asset, {"legacy": (blob, entry)}, {"legacy": {}}, {"n": 1})
    settings = Settings(data_dir=tmp_path, model_dir=tmp_path / "models", rotorwatch_env="development")
    calibrator = build_calibrator(settings, store=SqliteStore(tmp_path / "db.sqlite"))
    scorer = build_scorer(settings, ["--model", "legacy"])
    bus = MemoryBus()
    async with running_in_memory(scorer, bus), running_in_memory(calibrator, bus):
        await wait_for(lambda: any(s.ready for s in statuses(bus, "calibrator")), 10, "calibrator ready")
        await wait_for(lambda: summary(bus, "scorer-legacy")[-1] == ("online", True, [], 2), 10, "2 loaded")
    cal = statuses(bus, "calibrator")
    first = (cal[0].ready, cal[0].detail)
    assert first == (False, ServiceDetail(waiting_for=["configs", "models", "states"]))
    ready = next(s for s in cal if s.ready)
    assert ready.detail == ServiceDetail(models_announced=2)
    # both announcements went out before the calibrator said it is ready
    order = [m.topic for m in bus.published]
    first_ready = next(
        i
        for i, m in enumerate(bus.published)
        if m.topic == topics.service_status("calibrator")
        and ServiceStatus.model_validate_json(m.payload).ready
    )
    assert {topics.model_announce(a, "legacy") for a in ("m1", "m2")} <= set(order[:first_ready])
    # the scorer: ready at once (nothing retained on a fresh bus), then again with each model loaded
    assert summary(bus, "scorer-legacy")[:2] == [("online", False, [], 0), ("online", True, [], 0)]
