"""Issue 17, end to end on real Mosquitto + real InfluxDB with every service running: a long-window asset
calibrates from far fewer than 300 windows, because its windows are split into frames. The first 30
snapshots of the real FEMTO Bearing1_1 (2,560 samples × 2 channels at 25.6 kHz) replayed as one 2-axis
asset give 600 frame rows of 128 samples: the autoencoder is trained on them (the manifest says so), too
few snapshots are refused with the amount needed in seconds, and the next snapshots are scored.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from shared import topics
from tests.support.pipeline import Collector, settle
from tests.support.servers import InfluxServer, MosquittoServer
from tests.support.stack import ROOT, Stack, api
from tests.test_axes_e2e import FEMTO, FEMTO_START, KIND, SCORER, calibrate, feature_names

pytestmark = pytest.mark.integration

CALIBRATION_SNAPSHOTS = 30
SCORED_SNAPSHOTS = 10


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, mosquitto: MosquittoServer, influxd: InfluxServer
) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("frames"), mqtt_url=mosquitto.url, influx_url=influxd.url).start()
    yield s
    s.stop()


def replay(stack: Stack, asset: str, *extra: str) -> None:
    """``scripts/replay.py`` of FEMTO Bearing1_1, channels 0 and 1 as the x and y of ``asset``."""
    cmd = [sys.executable, "scripts/replay.py", str(FEMTO), "--channel", f"0,1={asset}", "--window", "2560"]
    cmd += ["--start", FEMTO_START.isoformat(), "--mqtt", stack.broker_url, "--api", stack.api, *extra]
    out = subprocess.run(cmd, cwd=ROOT, env=stack.script_env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-1500:] + out.stderr[-1500:]


def end_of(snapshots: int) -> str:
    """Data time just after the first ``snapshots`` snapshots (ISO-8601)."""
    with np.load(FEMTO) as z:
        return (FEMTO_START + timedelta(seconds=float(z["t_s"][snapshots - 1]) + 1.0)).isoformat()


async def test_femto_calibrates_on_30_snapshots_of_frames_and_is_scored(stack: Stack) -> None:
    asset = "frames_b11"
    filters = [topics.model_announce_filter(KIND), topics.service_status(SCORER), topics.score(asset, KIND)]
    async with Collector(stack.broker_url, filters) as col:
        await asyncio.to_thread(replay, stack, asset, "--limit", "12")
        body: dict[str, Any] = {"asset_id": asset, "lookback_minutes": 24 * 60, "end": end_of(12)}
        r = await asyncio.to_thread(api, stack, "POST", "/calibration/start?wait=true", json=body)
        assert r.status_code == 400, r.text
        assert "need 300 frames of 128 samples = 1.5 s at 25.6 kHz = 15 windows of 2,560" in r.text, r.text
        assert "found 12 windows (1.2 s, 240 frames)" in r.text, r.text

        await asyncio.to_thread(replay, stack, asset, "--limit", str(CALIBRATION_SNAPSHOTS), "--resume")
        m = await calibrate(stack, col, asset, lookback_minutes=24 * 60, end=end_of(CALIBRATION_SNAPSHOTS))
        assert m["features"] == feature_names("xy")
        frames = m["frames"]
        assert (frames["frame_samples"], frames["frames_per_window"], frames["axes"]) == (128, 20, ["x", "y"])
        rows = CALIBRATION_SNAPSHOTS * 20
        assert 0.95 * rows <= m["training"]["n"] <= rows  # the frames of the windows the screening kept

        total = CALIBRATION_SNAPSHOTS + SCORED_SNAPSHOTS
        await asyncio.to_thread(replay, stack, asset, "--limit", str(total), "--resume")
        await settle(col, topics.score(asset, KIND), SCORED_SNAPSHOTS)
        scores = col.on(topics.score(asset, KIND))
        assert len(scores) == SCORED_SNAPSHOTS, len(scores)
        assert all(s["raw_score"] > 0 for s in scores)
        flagged = sum(s["is_anomaly"] for s in scores)
        assert flagged <= 1, f"{flagged}/{SCORED_SNAPSHOTS} early-life snapshots flagged: {scores}"
