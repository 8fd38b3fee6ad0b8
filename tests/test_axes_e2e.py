"""Issue 17 acceptance, end to end on real Mosquitto + real InfluxDB with every service running: a 1-axis
(``z`` alone), a 2-axis (positional ``channels``: x, y) and a 3-axis (x, y, z) asset are each calibrated
on their own windows and scored. Each model's inputs are exactly its axes' features (11, 22, 33), and
its windows are scored by it. An asset calibrated on x, y, z that then sends x, y is not scored: the
scorer dead-letters each window naming the calibrated axes and the received ones. A real FEMTO bearing
replayed with ``--channel 0,1=ASSET`` becomes one 2-axis asset whose model takes the x and y features.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from shared import topics
from shared.features import VIBRATION_FEATURES
from shared.synth import vibration_window
from tests.support.pipeline import Collector, publish, settle
from tests.support.servers import InfluxServer, MosquittoServer
from tests.support.stack import ROOT, Stack, api

pytestmark = pytest.mark.integration

T0 = time.time() - 6 * 3600  # data time starts six hours ago
FS, N = 500.0, 256
DT = N / FS
CALIBRATION_WINDOWS = 400
SCORED_WINDOWS = 40
KIND = "autoencoder"
SCORER = f"scorer-{KIND}"
FEMTO = ROOT.parent / "shared" / "datasets" / "femto_pronostia" / "femto_Bearing1_1.npz"
FEMTO_START = datetime(2010, 12, 1, 9, 39, 39, tzinfo=UTC)

#: asset -> (axes of the synthetic sensor's rows it sends, payload form)
ASSETS: dict[str, tuple[str, str]] = {
    "axes_one": ("z", "named"),
    "axes_two": ("xy", "channels"),
    "axes_three": ("xyz", "named"),
}


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, mosquitto: MosquittoServer, influxd: InfluxServer
) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("axes"), mqtt_url=mosquitto.url, influx_url=influxd.url).start()
    yield s
    s.stop()


def payloads(asset: str, axes: str, form: str, n: int, t0: float, seed: int) -> list[dict[str, Any]]:
    """``n`` healthy windows of ``axes`` (rows of :func:`vibration_window`: x, y, z), each with an event
    id, sent by name or as positional ``channels``."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        w = vibration_window(rng, FS, N, rpm=1800.0, t0_s=t0 + i * DT)
        rows = {a: w["xyz".index(a)].round(6).tolist() for a in axes}
        body: dict[str, Any] = {
            "motor_id": asset,
            "ts": t0 + i * DT,
            "fs_hz": FS,
            "event_id": uuid.uuid4().hex,
        }
        body |= {"channels": list(rows.values())} if form == "channels" else rows
        out.append(body)
    return out


def vibration_count(stack: Stack, asset: str) -> int:
    r = api(
        stack,
        "GET",
        f"/assets/{asset}/features",
        params={"kind": "vibration", "minutes": 43200, "limit": 5000},
    )
    return int(r.json()["count"]) if r.status_code == 200 else 0


async def wait_stored(stack: Stack, asset: str, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while (got := await asyncio.to_thread(vibration_count, stack, asset)) < n:
        if time.monotonic() > deadline:
            raise AssertionError(f"{asset}: {got}/{n} vibration vectors stored\n{stack.tail()}")
        await asyncio.sleep(0.3)


def feature_names(axes: str) -> list[str]:
    return [f"{a}_{f}" for a in axes for f in VIBRATION_FEATURES]


def manifest(col: Collector, asset: str) -> dict[str, Any]:
    [ann] = col.on(topics.model_announce(asset, KIND))[-1:]
    return ann["manifest"]  # type: ignore[no-any-return]


async def calibrate(stack: Stack, col: Collector, asset: str, **body: Any) -> dict[str, Any]:
    """Calibrate ``asset`` (wait=true), then wait until the scorer has loaded a model for every asset
    this stack announced so far (its ``models_loaded``) and return the announced manifest."""
    r = await asyncio.to_thread(
        api, stack, "POST", "/calibration/start?wait=true", json={"asset_id": asset, **body}
    )
    assert r.status_code == 200, r.text
    version = r.json()["models"][KIND]
    _, mine, _ = await col.wait_for(
        lambda t, p: t == topics.model_announce(asset, KIND) and p.get("version") == version, timeout=60
    )
    # Only this stack's announcements count: the session's broker also holds retained announcements
    # of other tests' stacks, signed with other keys, which this stack's scorer rightly refuses.
    key = mine["key_id"]
    announced = col.on(topics.model_announce_filter(KIND))
    loaded = len({p["asset_id"] for p in announced if p.get("key_id") == key})
    await col.wait_for(
        lambda t, p: (
            t == topics.service_status(SCORER)
            and ((p.get("detail") or {}).get("models_loaded") or 0) >= loaded
        ),
        timeout=60,
    )
    return manifest(col, asset)


async def test_one_two_and_three_axis_assets_calibrate_and_score(stack: Stack) -> None:
    url = stack.broker_url
    filters = [
        topics.model_announce_filter(KIND),
        topics.SCORE_FILTER,
        topics.service_status(SCORER),
        topics.dead_letter(SCORER),
    ]
    t_scored = T0 + CALIBRATION_WINDOWS * DT
    async with Collector(url, filters) as col:
        for k, (asset, (axes, form)) in enumerate(ASSETS.items()):
            await publish(
                url, topics.raw_vibration(asset), payloads(asset, axes, form, CALIBRATION_WINDOWS, T0, k)
            )
        for asset, (axes, _) in ASSETS.items():
            await wait_stored(stack, asset, CALIBRATION_WINDOWS)
            end = datetime.fromtimestamp(t_scored, UTC).isoformat()
            m = await calibrate(stack, col, asset, lookback_minutes=10, end=end)
            assert m["features"] == feature_names(axes), (asset, m["features"])
            assert m["n_features"] == 11 * len(axes)

        sent: dict[str, set[str]] = {}
        for k, (asset, (axes, form)) in enumerate(ASSETS.items()):
            batch = payloads(asset, axes, form, SCORED_WINDOWS, t_scored, 10 + k)
            sent[asset] = {p["event_id"] for p in batch}
            await publish(url, topics.raw_vibration(asset), batch)
        for asset in ASSETS:
            f = topics.score(asset, KIND)
            await settle(col, f, SCORED_WINDOWS)
            scores = [s for s in col.on(f) if s["event_id"] in sent[asset]]
            assert len(scores) == SCORED_WINDOWS, f"{asset}: {len(scores)}/{SCORED_WINDOWS} scored"
            flagged = sum(s["is_anomaly"] for s in scores)
            assert flagged <= 2, f"{asset}: {flagged}/{SCORED_WINDOWS} healthy windows flagged"

        # Layout change: the 3-axis asset now sends x and y only.
        asset = "axes_three"
        t_change = t_scored + SCORED_WINDOWS * DT
        changed = payloads(asset, "xy", "named", 5, t_change, 99)
        ids = {p["event_id"] for p in changed}
        await publish(url, topics.raw_vibration(asset), changed)

        def refused(t: str, p: dict[str, Any]) -> bool:
            return t == topics.dead_letter(SCORER) and any(i in p["payload_excerpt"] for i in ids)

        await col.wait_for(refused, timeout=60)
        await settle(col, topics.dead_letter(SCORER), 5)
        letters = [p for t, p, _ in col.messages if refused(t, p)]
        assert len(letters) == 5, letters
        for dl in letters:
            # The reason names the calibrated axes, the received ones, and what to do.
            reason = dl["reason"]
            assert "calibrated on axes x,y,z" in reason and "this window has x,y" in reason, reason
            assert "recalibrate" in reason, reason
        assert not [s for s in col.on(topics.score(asset, KIND)) if s["event_id"] in ids]


async def test_femto_bearing_replayed_as_one_two_axis_asset(stack: Stack) -> None:
    """The real FEMTO Bearing1_1 (channel 0 horizontal, channel 1 vertical), its first 300 snapshots
    replayed as ``--channel 0,1=femto_b11``: one asset with x and y, calibrated on them; its model
    takes the 22 x and y features and scores the next snapshots."""
    asset = "femto_b11"
    filters = [topics.model_announce_filter(KIND), topics.service_status(SCORER), topics.score(asset, KIND)]

    def replay(*extra: str) -> None:
        cmd = [
            sys.executable,
            "scripts/replay.py",
            str(FEMTO),
            "--channel",
            f"0,1={asset}",
            "--window",
            "2560",
        ]
        cmd += ["--start", FEMTO_START.isoformat(), "--mqtt", stack.broker_url, "--api", stack.api, *extra]
        out = subprocess.run(
            cmd, cwd=ROOT, env=stack.script_env(), capture_output=True, text=True, timeout=600
        )
        assert out.returncode == 0, out.stdout[-1500:] + out.stderr[-1500:]

    async with Collector(stack.broker_url, filters) as col:
        await asyncio.to_thread(replay, "--limit", "300")
        with np.load(FEMTO) as z:
            end = FEMTO_START + timedelta(seconds=float(z["t_s"][299]) + 1.0)
        m = await calibrate(stack, col, asset, lookback_minutes=24 * 60, end=end.isoformat())
        assert m["features"] == feature_names("xy") and m["n_features"] == 22
        await asyncio.to_thread(replay, "--limit", "320", "--resume")
        await settle(col, topics.score(asset, KIND), 20)
        assert len(col.on(topics.score(asset, KIND))) >= 20
