"""calibrator service: command replies and codes, asset configuration, purge, reload, and the start-up
registry announcement that waits for the retained states (marker round trip, with a timeout fallback).

In-memory bus and SQLite store; one test runs the service on a real Mosquitto (marked integration).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel

from services.calibrator import configs
from services.calibrator.service import build
from shared import topics
from shared.bus import MemoryBus
from shared.learning import registry
from shared.learning.forest import export_forest_onnx, train_forest
from shared.messages import (
    AssetCommand,
    AssetConfig,
    CalibrationReply,
    CalibrationRequest,
    ConfigReply,
    ConfigRequest,
    DeadLetter,
    ModelAnnouncement,
    PurgeReply,
    ReloadReply,
    StateChange,
)
from shared.service import Service, deliver, run_service, running_in_memory
from shared.settings import Settings
from shared.store.sqlite import SqliteStore
from tests.support.pipeline import Collector, client

GOOD = {"name": "Cooling pump 3", "type": "pump", "rpm": 1480, "iso_group": 2, "foundation": "flexible"}
GEOMETRY = {"n_balls": 9, "ball_diameter_mm": 7.94, "pitch_diameter_mm": 39.04}


@pytest.fixture(scope="module")
def forest() -> tuple[Any, bytes]:
    X = np.random.default_rng(0).normal(size=(150, 6))
    model = train_forest(X, [f"f{i}" for i in range(6)], n_estimators=10)
    return model, export_forest_onnx(model)


def save_version(model_dir: Path, asset: str, forest: tuple[Any, bytes]) -> str:
    model, blob = forest
    entry = {**model.entry(), "kind": "legacy"}
    return registry.save_version(
        model_dir, asset, {"legacy": (blob, entry)}, {"legacy": {"ok": True}}, {"n": 1}
    )


def settings(tmp_path: Path, **over: Any) -> Settings:
    return Settings(
        data_dir=tmp_path,
        model_dir=tmp_path / "models",
        batch_window=10,
        rotorwatch_env="development",  # the model signing key is generated under tmp_path
        **over,
    )


def calibrator(tmp_path: Path, **over: Any) -> tuple[Service, SqliteStore]:
    store = SqliteStore(tmp_path / "db.sqlite")
    return build(settings(tmp_path), store=store, **over), store


async def ask(svc: Service, bus: MemoryBus, command: str, request: BaseModel | dict[str, Any]) -> bytes:
    """Deliver one command as the runner does and return the reply's payload."""
    payload = request if isinstance(request, BaseModel) else json.dumps(request)
    q = bus.subscribe(topics.reply("t", "r1"))
    await deliver(svc, bus, topics.command(command), payload)
    return (await asyncio.wait_for(q.get(), 10)).payload


def config_request(asset: str, **fields: Any) -> dict[str, Any]:
    return {
        "correlation_id": "r1",
        "reply_to": topics.reply("t", "r1"),
        "config": {"asset_id": asset, **fields},
    }


def state_of(bus: MemoryBus, asset: str) -> StateChange:
    return StateChange.model_validate_json(bus.retained[topics.state(asset)].payload)


# ---------------------------------------------------------------------------------------------
# cmd/calibrate
# ---------------------------------------------------------------------------------------------
async def test_second_request_for_a_running_calibration_is_busy(tmp_path: Path) -> None:
    svc, _ = calibrator(tmp_path)
    bus = MemoryBus()
    replies = bus.subscribe(topics.reply("t", "+"))
    async with running_in_memory(svc, bus):
        for cid in ("c1", "c2"):
            req = CalibrationRequest(correlation_id=cid, reply_to=topics.reply("t", cid), asset_id="m1")
            await bus.publish(topics.command("calibrate"), req)
        got = {}
        for _ in range(2):
            r = CalibrationReply.model_validate_json((await asyncio.wait_for(replies.get(), 30)).payload)
            got[r.correlation_id] = r
    assert (got["c2"].status, got["c2"].code) == ("rejected", "busy")
    assert got["c2"].message == "calibration of m1 is already running"
    assert (got["c1"].status, got["c1"].code) == ("failed", "insufficient_data")  # the store is empty


class BrokenStore(SqliteStore):
    def query(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")


async def test_a_crashing_calibration_replies_internal_and_restores_the_state(tmp_path: Path) -> None:
    svc = build(settings(tmp_path), store=BrokenStore(tmp_path / "db.sqlite"))
    bus = MemoryBus()
    await bus.publish(topics.state("m1"), StateChange(asset_id="m1", state="MONITORING"), retain=True)
    q = bus.subscribe(topics.reply("t", "c1"))
    async with running_in_memory(svc, bus):
        req = CalibrationRequest(correlation_id="c1", reply_to=topics.reply("t", "c1"), asset_id="m1")
        await bus.publish(topics.command("calibrate"), req)
        reply = CalibrationReply.model_validate_json((await asyncio.wait_for(q.get(), 30)).payload)
        assert (reply.status, reply.code) == ("failed", "internal")
        assert reply.message == "internal error: RuntimeError: disk on fire"
        assert (state_of(bus, "m1").state, state_of(bus, "m1").previous) == ("MONITORING", "CALIBRATING")
        # the asset is free again: a new request is accepted (and fails the same way, not "busy")
        await bus.publish(topics.command("calibrate"), req)
        again = CalibrationReply.model_validate_json((await asyncio.wait_for(q.get(), 30)).payload)
    assert again.code == "internal"


# ---------------------------------------------------------------------------------------------
# cmd/config
# ---------------------------------------------------------------------------------------------
async def test_config_is_persisted_published_retained_and_returned(tmp_path: Path) -> None:
    svc, _ = calibrator(tmp_path)
    bus = MemoryBus()
    reply = ConfigReply.model_validate_json(
        await ask(svc, bus, "config", config_request("p3", **GOOD, bearing=GEOMETRY))
    )
    assert (reply.status, reply.code, reply.correlation_id) == ("ok", None, "r1")
    cfg = reply.config
    assert cfg is not None and (cfg.asset_id, cfg.name, cfg.rpm) == ("p3", "Cooling pump 3", 1480.0)
    assert cfg.bearing is not None and cfg.bearing.n_balls == 9
    assert AssetConfig.model_validate_json(bus.retained[topics.asset_config("p3")].payload) == cfg
    assert configs.load_config(configs.config_dir(tmp_path), "p3") == cfg
    # a second request replaces it
    typed = ConfigRequest(
        correlation_id="r1", reply_to=topics.reply("t", "r1"), config=AssetConfig(asset_id="p3", rpm=2950)
    )
    reply = ConfigReply.model_validate_json(await ask(svc, bus, "config", typed))
    assert reply.config is not None and (reply.config.rpm, reply.config.type) == (2950.0, "motor")
    assert configs.load_config(configs.config_dir(tmp_path), "p3") == reply.config


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"rpm": 0}, "rpm: Input should be greater than 0"),
        ({"iso_group": 3}, "iso_group: Input should be 1 or 2"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
        (
            {"bearing": {"n_balls": 9, "ball_diameter_mm": 40, "pitch_diameter_mm": 39}},
            "bearing pitch_diameter (39 mm) must be greater than ball_diameter (40 mm)",
        ),
        (
            {"bearing": {"n_balls": 9, "ball_diameter_mm": 7.94}},
            "bearing geometry is incomplete: n_balls, ball_diameter given but pitch_diameter missing",
        ),
        ({"bearing": {}}, "bearing needs its geometry"),
        ({"bearing": {"n_balls": 2, "ball_diameter_mm": 1, "pitch_diameter_mm": 5}}, "bearing.n_balls:"),
    ],
)
async def test_invalid_config_is_answered_invalid_and_not_stored(
    tmp_path: Path, fields: dict[str, Any], reason: str
) -> None:
    svc, _ = calibrator(tmp_path)
    bus = MemoryBus()
    reply = ConfigReply.model_validate_json(await ask(svc, bus, "config", config_request("p3", **fields)))
    assert (reply.status, reply.code, reply.config) == ("failed", "invalid", None)
    assert reason in reply.message
    assert not configs.config_path(configs.config_dir(tmp_path), "p3").exists()
    assert topics.asset_config("p3") not in bus.retained


async def test_bad_asset_id_in_config_is_invalid_and_broken_envelope_is_a_dead_letter(tmp_path: Path) -> None:
    svc, _ = calibrator(tmp_path)
    bus = MemoryBus()
    reply = ConfigReply.model_validate_json(await ask(svc, bus, "config", config_request("a+b")))
    assert (reply.code, reply.message.split(":")[0]) == ("invalid", "asset_id")
    await deliver(svc, bus, topics.command("config"), json.dumps({"config": {"asset_id": "p3"}}))
    dead = DeadLetter.model_validate_json(bus.on(topics.dead_letter("calibrator"))[-1].payload)
    assert "correlation_id" in dead.reason and list(configs.config_dir(tmp_path).glob("*.json")) == []


async def test_persisted_configs_are_republished_on_each_connection(tmp_path: Path) -> None:
    cfg = AssetConfig(asset_id="f9", name="Fan 9", type="fan", rpm=980, iso_group=1)
    configs.save_config(configs.config_dir(tmp_path), cfg)
    (configs.config_dir(tmp_path) / "broken.json").write_text("{not json")
    svc, _ = calibrator(tmp_path)
    bus = MemoryBus()
    q = bus.subscribe(topics.asset_config("f9"))
    async with running_in_memory(svc, bus):
        got = await asyncio.wait_for(q.get(), 10)
    assert got.retain and AssetConfig.model_validate_json(got.payload) == cfg
    assert [m.topic for m in bus.on(topics.ASSET_CONFIG_FILTER)] == [topics.asset_config("f9")]


# ---------------------------------------------------------------------------------------------
# cmd/purge and cmd/reload
# ---------------------------------------------------------------------------------------------
async def test_purge_deletes_models_data_and_config_and_clears_retained(
    tmp_path: Path, forest: tuple[Any, bytes]
) -> None:
    svc, store = calibrator(tmp_path)
    bus = MemoryBus()
    save_version(tmp_path / "models", "m1", forest)
    await ask(svc, bus, "config", config_request("m1", **GOOD))
    await ask(svc, bus, "config", config_request("cfg-only", **GOOD))
    await bus.publish(topics.health("m1"), {"x": 1}, retain=True)
    cmd = AssetCommand(correlation_id="r1", reply_to=topics.reply("t", "r1"))
    reply = PurgeReply.model_validate_json(await ask(svc, bus, "purge", cmd))
    assert (reply.status, reply.message, reply.assets) == ("ok", "purged 2 asset(s)", ["cfg-only", "m1"])
    assert reply.deleted["m1"].models_deleted and not reply.deleted["cfg-only"].models_deleted
    assert registry.list_assets(tmp_path / "models") == [] and store.assets() == []
    assert list(configs.config_dir(tmp_path).glob("*.json")) == []
    for t in (topics.asset_config("m1"), topics.asset_config("cfg-only"), topics.health("m1")):
        assert t not in bus.retained
    assert (state_of(bus, "m1").state, state_of(bus, "m1").reason, state_of(bus, "m1").purged) == (
        "IDLE",
        "purged: stored data, models and baselines deleted",
        True,
    )


async def test_purge_of_dot_dot_is_refused_by_the_contract(tmp_path: Path) -> None:
    """``.`` and ``..`` are no asset ids (issue 10): such a command is a dead letter and purges nothing."""
    svc, _ = calibrator(tmp_path)
    bus = MemoryBus()
    for asset in ("..", "."):
        cmd = {"correlation_id": "r1", "reply_to": topics.reply("t", "r1"), "asset_id": asset}
        await deliver(svc, bus, topics.command("purge"), json.dumps(cmd))
    reasons = [
        DeadLetter.model_validate_json(m.payload).reason for m in bus.on(topics.dead_letter("calibrator"))
    ]
    assert len(reasons) == 2 and all("asset_id: String should match pattern" in r for r in reasons)
    assert bus.on(topics.reply("t", "r1")) == [] and bus.on(topics.STATE_FILTER) == []


async def test_reload_of_a_corrupt_manifest_is_answered_internal(
    tmp_path: Path, forest: tuple[Any, bytes]
) -> None:
    svc, _ = calibrator(tmp_path)
    v = save_version(tmp_path / "models", "m1", forest)
    (tmp_path / "models" / "m1" / v / "manifest.json").write_text("{broken")
    cmd = AssetCommand(correlation_id="r1", reply_to=topics.reply("t", "r1"), asset_id="m1")
    reply = ReloadReply.model_validate_json(await ask(svc, MemoryBus(), "reload", cmd))
    assert (reply.status, reply.code) == ("failed", "internal") and "not valid JSON" in reply.message


async def test_reload_reannounces_and_calibrates_idle_assets(
    tmp_path: Path, forest: tuple[Any, bytes]
) -> None:
    svc, _ = calibrator(tmp_path)
    bus = MemoryBus()
    v1 = save_version(tmp_path / "models", "m1", forest)
    v2 = save_version(tmp_path / "models", "m2", forest)
    await deliver(svc, bus, topics.state("m2"), StateChange(asset_id="m2", state="MONITORING"), retain=True)
    cmd = AssetCommand(correlation_id="r1", reply_to=topics.reply("t", "r1"))
    reply = ReloadReply.model_validate_json(await ask(svc, bus, "reload", cmd))
    assert (reply.status, reply.message, reply.versions) == (
        "ok",
        "reloaded 2 asset(s)",
        {"m1": v1, "m2": v2},
    )
    ann = ModelAnnouncement.model_validate_json(bus.retained[topics.model_announce("m1", "legacy")].payload)
    assert ann.version == v1 and ann.manifest.kind == "legacy" and ann.manifest.params
    assert (state_of(bus, "m1").state, state_of(bus, "m1").models) == ("CALIBRATED", {"legacy": v1})
    assert bus.on(topics.state("m2")) == [], "a MONITORING asset keeps its state"


# ---------------------------------------------------------------------------------------------
# Start-up: announce the registry once the retained states have arrived
# ---------------------------------------------------------------------------------------------
class MarkerBus(MemoryBus):
    """Holds the calibrator's sync markers back (``release`` sends them on, ``drop`` loses them)."""

    def __init__(self, *, drop: bool = False) -> None:
        super().__init__()
        self.drop = drop
        self.held: list[tuple[str, Any]] = []
        self.marker_sent = asyncio.Event()

    async def publish(self, topic: str, payload: Any, *, qos: int = 1, retain: bool = False) -> None:
        if topic.startswith(topics.sync_filter("calibrator")[:-1]):
            self.marker_sent.set()
            if not self.drop:
                self.held.append((topic, payload))
            return
        await super().publish(topic, payload, qos=qos, retain=retain)

    async def release(self) -> None:
        for topic, payload in self.held:
            await super().publish(topic, payload)


async def test_registry_is_announced_only_once_the_marker_returns(
    tmp_path: Path, forest: tuple[Any, bytes]
) -> None:
    svc, _ = calibrator(tmp_path)
    v = save_version(tmp_path / "models", "m1", forest)
    bus = MarkerBus()
    await bus.publish(topics.state("m1"), StateChange(asset_id="m1", state="MONITORING"), retain=True)
    announced = bus.subscribe(topics.model_announce("m1", "legacy"))
    async with running_in_memory(svc, bus):
        await asyncio.wait_for(bus.marker_sent.wait(), 10)
        assert announced.empty(), "nothing is announced before the marker is back"
        await bus.release()
        ann = ModelAnnouncement.model_validate_json((await asyncio.wait_for(announced.get(), 10)).payload)
    assert ann.version == v
    # the retained MONITORING had arrived: the calibrator did not move the asset back to CALIBRATED
    assert [StateChange.model_validate_json(m.payload).state for m in bus.on(topics.state("m1"))] == [
        "MONITORING"
    ]


async def test_registry_is_announced_after_the_timeout_when_the_marker_is_lost(
    tmp_path: Path, forest: tuple[Any, bytes]
) -> None:
    svc, _ = calibrator(tmp_path, sync_timeout_s=0.2)
    v = save_version(tmp_path / "models", "m1", forest)
    bus = MarkerBus(drop=True)
    calibrated = bus.subscribe(topics.state("m1"))
    async with running_in_memory(svc, bus):
        change = StateChange.model_validate_json((await asyncio.wait_for(calibrated.get(), 10)).payload)
    assert bus.marker_sent.is_set()
    assert (change.state, change.reason) == ("CALIBRATED", f"models {v} reloaded from the registry")


async def test_a_calibration_cut_off_by_a_restart_is_settled_at_start_up(
    tmp_path: Path, forest: tuple[Any, bytes]
) -> None:
    """Retained CALIBRATING with no job running: back to CALIBRATED when models exist, else IDLE."""
    svc, _ = calibrator(tmp_path)
    v = save_version(tmp_path / "models", "m1", forest)
    bus = MemoryBus()
    for asset in ("m1", "m2"):
        await bus.publish(topics.state(asset), StateChange(asset_id=asset, state="CALIBRATING"), retain=True)
    queues = {a: bus.subscribe(topics.state(a)) for a in ("m1", "m2")}
    for q in queues.values():
        await q.get()  # the retained CALIBRATING itself
    async with running_in_memory(svc, bus):
        m1, idle = [
            StateChange.model_validate_json((await asyncio.wait_for(q.get(), 10)).payload)
            for q in queues.values()
        ]
    assert (idle.state, idle.previous) == ("IDLE", "CALIBRATING")
    assert "interrupted" in idle.reason
    assert (m1.state, m1.previous) == ("CALIBRATED", "CALIBRATING")
    assert f"models {v} remain active" in m1.reason


@pytest.mark.integration
async def test_startup_waits_for_retained_states_on_a_real_broker(
    mosquitto: Any, tmp_path: Path, forest: tuple[Any, bytes]
) -> None:
    """Asset a (retained MONITORING) keeps its state; asset b (no state, announced after a) becomes
    CALIBRATED — so when b's state arrives, a's announcement is complete."""
    tag = uuid.uuid4().hex[:8]
    a, b = f"a-{tag}", f"b-{tag}"
    for asset in (a, b):
        save_version(tmp_path / "models", asset, forest)
    s = settings(tmp_path, mqtt_url=mosquitto.url)
    svc = build(s, store=SqliteStore(tmp_path / "db.sqlite"))
    async with client(mosquitto.url) as c:
        await c.publish(
            topics.state(a), StateChange(asset_id=a, state="MONITORING").model_dump_json(), qos=1, retain=True
        )
    async with Collector(mosquitto.url, [topics.state(a), topics.state(b)]) as col:
        task = asyncio.create_task(run_service(svc, s))
        try:
            await col.wait_for(lambda t, p: t == topics.state(b) and p["state"] == "CALIBRATED")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert [p["state"] for p in col.on(topics.state(a))] == ["MONITORING"]
    async with client(mosquitto.url) as c:
        for t in (topics.state(a), topics.state(b), topics.model_announce(a, "legacy")):
            await c.publish(t, b"", qos=1, retain=True)
        await c.publish(topics.model_announce(b, "legacy"), b"", qos=1, retain=True)
