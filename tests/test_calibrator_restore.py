"""calibrator start-up: every asset's last state back on the bus after a restart (issue 11, readiness).

A broker that forgot its retained messages (the embedded one after ``make run`` is restarted) sends the
calibrator no ``state/<a>``: it publishes each asset's last state again, retained, from its newest stored
``states`` point (the historian stores every StateChange) or, when only the broker restarted, from what
it knew before; an interrupted calibration is settled; it is ready only once that is done.

In-memory bus (a fresh :class:`MemoryBus` is a broker that forgot everything) and SQLite.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from services.calibrator import lifecycle
from services.calibrator.service import build
from shared import records, topics
from shared.bus import MemoryBus
from shared.learning import registry
from shared.learning.forest import export_forest_onnx, train_forest
from shared.messages import ServiceStatus, StateChange
from shared.service import running_in_memory
from shared.settings import Settings
from shared.store import StoreUnavailable
from shared.store.sqlite import SqliteStore
from tests.support.faults import wait_for

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def forest() -> tuple[Any, bytes]:
    X = np.random.default_rng(0).normal(size=(150, 6))
    model = train_forest(X, [f"f{i}" for i in range(6)], n_estimators=10)
    return model, export_forest_onnx(model)


def save_version(tmp_path: Path, asset: str, forest: tuple[Any, bytes]) -> str:
    model, blob = forest
    entry = {**model.entry(), "kind": "legacy"}
    return registry.save_version(
        tmp_path / "models", asset, {"legacy": (blob, entry)}, {"legacy": {}}, {"n": 1}
    )


def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, model_dir=tmp_path / "models", rotorwatch_env="development")


def store_states(store: SqliteStore, *changes: StateChange) -> None:
    """What the historian does with every StateChange."""
    store.write([records.state_to_point(c) for c in changes])


def change(asset: str, state: Any, previous: Any, reason: str, minutes: int) -> StateChange:
    return StateChange(
        asset_id=asset, state=state, previous=previous, reason=reason, ts=T0 + timedelta(minutes=minutes)
    )


def states_on(bus: MemoryBus, asset: str) -> list[StateChange]:
    """Every StateChange published on ``state/<asset>`` (the retained flag checked), in order."""
    out = []
    for m in bus.on(topics.state(asset)):
        assert m.retain, m
        out.append(StateChange.model_validate_json(m.payload))
    return out


def retained_state(bus: MemoryBus, asset: str) -> StateChange:
    return StateChange.model_validate_json(bus.retained[topics.state(asset)].payload)


def statuses(bus: MemoryBus) -> list[ServiceStatus]:
    return [ServiceStatus.model_validate_json(m.payload) for m in bus.on(topics.service_status("calibrator"))]


def first_ready(bus: MemoryBus) -> int:
    """Index in ``bus.published`` of the calibrator's first ready status."""
    return next(
        i
        for i, m in enumerate(bus.published)
        if m.topic == topics.service_status("calibrator")
        and ServiceStatus.model_validate_json(m.payload).ready
    )


async def test_a_monitoring_asset_is_monitoring_again_after_a_restart(
    tmp_path: Path, forest: tuple[Any, bytes]
) -> None:
    v = save_version(tmp_path, "m1", forest)
    store = SqliteStore(tmp_path / "db.sqlite")
    calibrated = change("m1", "CALIBRATED", "CALIBRATING", f"calibration completed: models {v}", 0)
    monitoring = change("m1", "MONITORING", "CALIBRATED", "first data scored by the legacy model", 5)
    store_states(store, change("m1", "CALIBRATING", "IDLE", "collecting", -5), calibrated, monitoring)
    bus = MemoryBus()  # the broker forgot every retained message
    async with running_in_memory(build(settings(tmp_path), store=store), bus):
        await wait_for(lambda: any(s.ready for s in statuses(bus)), 10, "calibrator ready")
    # exactly one state, the stored MONITORING as it was (time, previous, reason), with the models
    [again] = states_on(bus, "m1")
    assert again == monitoring.model_copy(update={"models": {"legacy": v}})
    assert retained_state(bus, "m1") == again
    # published before the calibrator said it is ready
    assert bus.published.index(bus.on(topics.state("m1"))[0]) < first_ready(bus)
    assert not statuses(bus)[0].ready and "states" in statuses(bus)[0].detail.waiting_for  # type: ignore[union-attr]
    # published again as it was: the historian's point is the same point (same time), not a new change
    assert [p.ts_ns for p in store.query(records.STATES, "m1")][-1] == records.state_to_point(
        monitoring
    ).ts_ns


async def test_interrupted_calibrations_in_the_store_are_settled(
    tmp_path: Path, forest: tuple[Any, bytes]
) -> None:
    """Stored CALIBRATING (the calibrator was stopped mid-job): CALIBRATED when the registry has models
    (they stay active), else IDLE — one state each, never the CALIBRATING again."""
    v = save_version(tmp_path, "m2", forest)
    store = SqliteStore(tmp_path / "db.sqlite")
    store_states(
        store,
        change("m2", "MONITORING", "CALIBRATED", "first data scored", 0),
        change("m2", "CALIBRATING", "MONITORING", "training legacy", 10),
        change("m3", "CALIBRATING", "IDLE", "collecting", 10),
    )
    bus = MemoryBus()
    async with running_in_memory(build(settings(tmp_path), store=store), bus):
        await wait_for(lambda: any(s.ready for s in statuses(bus)), 10, "calibrator ready")
    [m2] = states_on(bus, "m2")
    [m3] = states_on(bus, "m3")
    assert (m2.state, m2.previous) == ("CALIBRATED", "CALIBRATING")
    assert f"models {v} remain active" in m2.reason
    assert (m3.state, m3.previous, m3.reason) == (
        "IDLE",
        "CALIBRATING",
        "calibration interrupted before it finished; no models",
    )


async def test_a_retained_state_wins_and_an_asset_never_stored_with_models_becomes_calibrated(
    tmp_path: Path, forest: tuple[Any, bytes]
) -> None:
    """The broker kept m1's state (a newer one than the store's): not published again. m4 has models but
    no state anywhere: CALIBRATED as before this change."""
    save_version(tmp_path, "m1", forest)
    v4 = save_version(tmp_path, "m4", forest)
    store = SqliteStore(tmp_path / "db.sqlite")
    store_states(store, change("m1", "CALIBRATED", "CALIBRATING", "done", 0))
    bus = MemoryBus()
    kept = change("m1", "MONITORING", "CALIBRATED", "first data scored", 5)
    await bus.publish(topics.state("m1"), kept, retain=True)
    async with running_in_memory(build(settings(tmp_path), store=store), bus):
        await wait_for(lambda: any(s.ready for s in statuses(bus)), 10, "calibrator ready")
    assert states_on(bus, "m1") == [kept]
    [m4] = states_on(bus, "m4")
    assert (m4.state, m4.reason, m4.models) == (
        "CALIBRATED",
        f"models {v4} reloaded from the registry",
        {"legacy": v4},
    )


async def test_after_a_broker_restart_the_states_it_forgot_are_published_from_memory(
    tmp_path: Path, forest: tuple[Any, bytes]
) -> None:
    """The calibrator keeps running, the broker restarts empty (a second in-memory bus): the states it
    knew go out again as they were (with the announced models where they named none) — a purge's IDLE
    without ``purged`` (that signal went out once)."""
    v = save_version(tmp_path, "m1", forest)
    store = SqliteStore(tmp_path / "db.sqlite")  # empty: memory alone must do
    svc = build(settings(tmp_path), store=store)
    first = MemoryBus()
    monitoring = change("m1", "MONITORING", "CALIBRATED", "first data scored", 5)
    purged = StateChange(asset_id="gone", state="IDLE", previous="MONITORING", reason="purged", purged=True)
    await first.publish(topics.state("m1"), monitoring, retain=True)
    await first.publish(topics.state("gone"), purged, retain=True)
    async with running_in_memory(svc, first):
        await wait_for(lambda: any(s.ready for s in statuses(first)), 10, "ready on the first broker")
    assert states_on(first, "m1") == [monitoring], "the broker had it: not published again"

    second = MemoryBus()
    async with running_in_memory(svc, second):
        await wait_for(lambda: any(s.ready for s in statuses(second)), 10, "ready on the second broker")
    assert states_on(second, "m1") == [monitoring.model_copy(update={"models": {"legacy": v}})]
    assert states_on(second, "gone") == [purged.model_copy(update={"purged": False})]


class FailingStore(SqliteStore):
    """A store that is down for its first ``failures`` calls of :meth:`assets`."""

    def __init__(self, path: Path, failures: int) -> None:
        super().__init__(path)
        self.failures = failures

    def assets(self) -> list[str]:
        if self.failures > 0:
            self.failures -= 1
            raise StoreUnavailable("store down (test)")
        return super().assets()


async def test_the_calibrator_is_not_ready_while_the_store_cannot_give_the_states(
    tmp_path: Path, forest: tuple[Any, bytes]
) -> None:
    """The models are announced at once; the states step waits (retried) until the store answers."""
    save_version(tmp_path, "m1", forest)
    store = FailingStore(tmp_path / "db.sqlite", failures=2)
    store_states(store, change("m1", "MONITORING", "CALIBRATED", "first data scored", 5))
    bus = MemoryBus()
    async with running_in_memory(build(settings(tmp_path), store=store), bus):
        await wait_for(lambda: any(s.ready for s in statuses(bus)), 20, "calibrator ready")
    assert store.failures == 0
    waiting = [s.detail.waiting_for for s in statuses(bus) if s.detail is not None]
    assert ["states"] in waiting, waiting  # models and configs were done, states still pending
    assert [s.state for s in states_on(bus, "m1")] == ["MONITORING"]
    assert bus.on(topics.model_announce("m1", "legacy"))


async def test_restore_leaves_an_asset_being_calibrated_alone(tmp_path: Path) -> None:
    """A job accepted during start-up owns its asset's state: nothing restored or published for it."""
    store = SqliteStore(tmp_path / "db.sqlite")
    store_states(store, change("busy", "MONITORING", "CALIBRATED", "first data scored", 5))
    states = lifecycle.AssetStates()
    pubs = await lifecycle.restore(store, tmp_path / "models", states, {"busy"}, lifecycle.Announced())
    assert pubs == [] and states.get("busy") == "IDLE"


def test_two_scorers_monitoring_restores_the_first_ones_time(tmp_path: Path) -> None:
    """Each scorer moves a CALIBRATED asset to MONITORING on its first score: two of one reading store
    two MONITORINGs a fraction of a second apart. The state's ``since`` is the first one's, whichever
    the broker retained last (CI: restored 0.5 ms later than before the restart)."""
    store = SqliteStore(tmp_path / "s.db")
    first = change("m1", "MONITORING", "CALIBRATED", "first data scored by the legacy model", 5)
    second = first.model_copy(
        update={
            "ts": first.ts + timedelta(microseconds=480),
            "reason": "first data scored by the batch model",
        }
    )
    store_states(store, change("m1", "CALIBRATED", "CALIBRATING", "calibrated", 4), first, second)
    assert lifecycle.stored_states(store, ["m1"])["m1"].ts == first.ts
    later = change("m1", "MONITORING", "CALIBRATED", "after a recalibration", 9)
    store_states(store, change("m1", "CALIBRATED", "CALIBRATING", "again", 8), later)
    assert lifecycle.stored_states(store, ["m1"])["m1"].ts == later.ts  # a new run: its own time
