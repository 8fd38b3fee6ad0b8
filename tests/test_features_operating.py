"""The features service marks every vector with the asset's operating state (issue 16): in-memory
handler tests, the journal restoring the trackers, and one run on a real Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from services.features.journal import Journal
from services.features.service import FeaturesHandlers
from services.features.service import build as build_features
from shared import topics
from shared.features.engine import FeatureEngine
from shared.messages import AssetConfig, FeatureVector, Reading, Window
from shared.messages.operating import OperatingSettings
from shared.service import Delivery, run_service
from shared.settings import Settings
from tests.support.pipeline import Collector, client

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def reading(i: int, current_a: float, asset: str = "m1") -> Reading:
    return Reading(
        event_id=f"{i:032x}",
        asset_id=asset,
        ts=T0 + timedelta(seconds=i),
        voltage_v=400.0,
        current_a=current_a,
        power_factor=0.9 if current_a > 1 else 0.2,
        vibration_g=0.2 if current_a > 1 else 0.01,
    )


def window(i: int, amp_g: float, asset: str = "m2") -> Window:
    t = np.arange(256) / 2560.0
    x = [float(v) for v in 1.0 + amp_g * np.sin(2 * np.pi * 100 * t)]  # 1 g of gravity on the axis
    return Window(
        event_id=f"w{i}",
        asset_id=asset,
        ts=T0 + timedelta(seconds=10 * i),
        fs_hz=2560.0,
        n=256,
        axes=["x"],
        x=x,
    )


def vectors(out: object) -> list[FeatureVector]:
    assert isinstance(out, list)
    return [p.payload for p in out if isinstance(p.payload, FeatureVector)]


async def config(h: FeaturesHandlers, asset: str, operating: OperatingSettings | None) -> None:
    cfg = AssetConfig(asset_id=asset, operating=operating)
    await h.on_config(Delivery(topics.asset_config(asset), cfg, asset))


# 40 s running at 10 A, 20 s stopped (0.1 A), then running again: a stop/start cycle
CURRENTS = [10.0] * 40 + [0.1] * 20 + [10.0] * 60


async def test_every_vector_of_a_stop_start_cycle_carries_its_state() -> None:
    h = FeaturesHandlers(FeatureEngine(batch_window=8, legacy_warmup=5))
    await config(h, "m1", OperatingSettings(stopped_below_a=2.0, start_settle_s=30))
    by_second: dict[int, set[str | None]] = {}
    for i, c in enumerate(CURRENTS):
        for fv in vectors(await h.on_reading(Delivery(topics.reading("m1"), reading(i, c), "m1"))):
            by_second.setdefault(i, set()).add(fv.operating_state)
    assert by_second[39] == {"running"}
    assert all(by_second[i] == {"stopped"} for i in range(40, 60))
    assert all(by_second[i] == {"starting"} for i in range(60, 90))  # 30 s of data time
    assert all(by_second[i] == {"running"} for i in range(90, 120))
    # the wire form carries it, and a vector without it (before it existed) reads as unknown
    fv = vectors(await h.on_reading(Delivery(topics.reading("m1"), reading(120, 10.0), "m1")))[0]
    assert FeatureVector.model_validate_json(fv.model_dump_json()).operating_state == "running"
    old = fv.model_dump(mode="json", exclude={"operating_state"})
    assert FeatureVector.model_validate_json(FeatureVector(**old).model_dump_json()).operating_state is None


async def test_relative_levels_learn_the_running_current_without_a_config() -> None:
    h = FeaturesHandlers(FeatureEngine(batch_window=8, legacy_warmup=5))
    states = []
    for i, c in enumerate(CURRENTS):
        out = vectors(await h.on_reading(Delivery(topics.reading("m1"), reading(i, c), "m1")))
        states.append(out[-1].operating_state if out else "no vector")
    assert states[:5] == ["no vector"] * 4 + [None]  # warm-up, then unknown until the level is learned
    assert states[39] == "running" and set(states[40:60]) == {"stopped"}
    assert states[60] == "starting" and states[-1] == "running"


async def test_windows_of_an_asset_without_readings_are_marked_by_their_vibration() -> None:
    h = FeaturesHandlers(FeatureEngine())
    await config(h, "m2", OperatingSettings(stopped_below_g=0.02, start_settle_s=15))
    amps = [0.5, 0.5, 0.005, 0.005, 0.5, 0.5, 0.5]  # 10 s apart; gravity alone is no vibration
    got = [
        vectors(await h.on_window(Delivery(topics.window("m2"), window(i, a), "m2")))[0]
        for i, a in enumerate(amps)
    ]
    assert [fv.operating_state for fv in got] == [
        "running", "running", "stopped", "stopped", "starting", "starting", "running",
    ]  # fmt: skip
    # a re-delivered window keeps its state and does not move the tracker
    again = vectors(await h.on_window(Delivery(topics.window("m2"), window(3, 0.005), "m2")))[0]
    assert again.operating_state == "running"  # the tracker's state now, not a new stop


async def test_a_cleared_config_forgets_the_tracker() -> None:
    h = FeaturesHandlers(FeatureEngine())
    await config(h, "m1", OperatingSettings(stopped_below_a=2.0))
    await h.on_reading(Delivery(topics.reading("m1"), reading(0, 0.1), "m1"))
    assert h.operating["m1"].trackers["current_a"].state == "stopped"
    await h.on_config(Delivery(topics.asset_config("m1"), None, "m1"))
    assert "m1" not in h.operating


async def test_the_journal_restores_the_trackers_after_a_restart(tmp_path: Path) -> None:
    engine, states = FeatureEngine(batch_window=8, legacy_warmup=5), {}
    journal = Journal(tmp_path, engine, states)
    await journal.open()
    h = FeaturesHandlers(engine, journal, states)
    for i, c in enumerate(CURRENTS[:50]):  # running, then stopped for 10 s
        await h.on_reading(Delivery(topics.reading("m1"), reading(i, c), "m1"))
    await journal.save(journal.snapshot())
    engine2, states2 = FeatureEngine(batch_window=8, legacy_warmup=5), {}
    await Journal(tmp_path, engine2, states2).open()
    assert states2["m1"].to_dict() == states["m1"].to_dict()
    h2 = FeaturesHandlers(engine2, None, states2)
    out = vectors(await h2.on_reading(Delivery(topics.reading("m1"), reading(50, 0.1), "m1")))
    assert {fv.operating_state for fv in out} == {"stopped"}


@pytest.mark.integration
async def test_a_stop_start_cycle_on_a_real_broker_is_marked(mosquitto: Any, tmp_path: Path) -> None:
    """The features service on a real Mosquitto, configured by a retained config: its published vectors
    of a stop/start cycle carry stopped, then starting, then running."""
    asset = f"op-{uuid.uuid4().hex[:8]}"
    settings = Settings(data_dir=tmp_path, mqtt_url=mosquitto.url, batch_window=8, legacy_warmup=5)
    cfg = AssetConfig(asset_id=asset, operating=OperatingSettings(stopped_below_a=2.0, start_settle_s=30))
    async with client(mosquitto.url) as c:
        await c.publish(topics.asset_config(asset), cfg.model_dump_json(), qos=1, retain=True)
    svc = build_features(settings)
    async with Collector(mosquitto.url, [topics.features(asset, "batch")]) as col:
        task = asyncio.create_task(run_service(svc, settings))
        try:
            await asyncio.wait_for(svc.serve_state.ready.wait(), 20)
            async with client(mosquitto.url) as c:
                for i, cur in enumerate(CURRENTS):
                    await c.publish(topics.reading(asset), reading(i, cur, asset).model_dump_json(), qos=1)
            last = f"{len(CURRENTS) - 1:032x}"
            await col.wait_for(lambda t, p: p["event_id"] == last, timeout=60)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            async with client(mosquitto.url) as c:
                await c.publish(topics.asset_config(asset), b"", qos=1, retain=True)
    got = {int(p["event_id"], 16): p["operating_state"] for p in col.on(topics.features(asset, "batch"))}
    assert got[39] == "running" and {got[i] for i in range(40, 60)} == {"stopped"}
    assert {got[i] for i in range(60, 90)} == {"starting"} and got[len(CURRENTS) - 1] == "running"
