"""Issue 6: a recorded run replayed through the live pipeline with its original timestamps and sample
rate (scripts/replay.py over MQTT) — health, alarms and the degradation index follow the recording's
time, not the wall clock."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest

from shared.synth import vibration_window
from tests.support.servers import MosquittoServer
from tests.support.stack import ROOT, Stack

pytestmark = pytest.mark.integration
ASSET = "replay_fan"
FS, N = 500.0, 256
START = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, mosquitto: MosquittoServer) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("replay"), mqtt_url=mosquitto.url).start()
    yield s
    s.stop()


def recording(path: Path, windows: list[tuple[int, str | None]], seed: int, t0: float) -> Path:
    """A continuous 3-axis recording: ``(count, fault)`` segments of N-sample windows."""
    rng = np.random.default_rng(seed)
    parts, t = [], t0
    for count, fault in windows:
        for _ in range(count):
            parts.append(vibration_window(rng, FS, N, rpm=1800, fault=fault, severity="severe", t0_s=t))
            t += N / FS
    data = np.concatenate(parts, axis=1)
    np.savez(path, x=data[0], y=data[1], z=data[2], fs_hz=np.float64(FS))
    return path


def replay(stack: Stack, path: Path, start: datetime) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "scripts/replay.py",
            str(path),
            "--asset_id",
            ASSET,
            "--mqtt",
            stack.broker_url,
            "--start",
            start.isoformat(),
            "--window",
            str(N),
        ],
        cwd=ROOT,
        env=stack.script_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-1500:] + out.stderr[-1500:]


def wait_health(stack: Stack, until: datetime, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = (
            httpx.get(f"{stack.api}/api/v1/monitoring/status", headers=stack.headers, timeout=10)
            .json()["assets"]
            .get(ASSET, {})
        )
        h = st.get("health") or {}
        if h.get("ts") and datetime.fromisoformat(h["ts"]) >= until:
            return st
        time.sleep(0.3)
    raise AssertionError(f"health never reached data time {until}")


def test_replayed_history_drives_alarms_and_degradation_in_data_time(stack: Stack, tmp_path: Path) -> None:
    healthy_s = 400 * N / FS
    replay(stack, recording(tmp_path / "healthy.npz", [(400, None)], 1, 0.0), START)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = httpx.post(
            f"{stack.api}/api/v1/calibration/start",
            json={"asset_id": ASSET, "lookback_minutes": 10},
            headers=stack.headers,
            timeout=300,
        )
        if r.status_code == 200:
            break
        time.sleep(2)  # windows still in flight: not yet 300 stored
    assert r.status_code == 200, r.text
    assert "autoencoder" in r.json()["models"]

    fault_start = START + timedelta(seconds=healthy_s)
    run = recording(tmp_path / "run.npz", [(60, None), (80, "imbalance"), (150, None)], 2, healthy_s)
    replay(stack, run, fault_start)
    end = fault_start + timedelta(seconds=(60 + 80 + 150) * N / FS)
    st = wait_health(stack, end - timedelta(seconds=2))

    # the alarm transitions reach the store through the historian's batches: give them a moment
    deadline = time.monotonic() + 30
    while True:
        alarms = httpx.get(
            f"{stack.api}/api/v1/alarms", params={"asset_id": ASSET}, headers=stack.headers, timeout=10
        ).json()["alarms"]
        if (alarms and all(a["state"] == "RESOLVED" for a in alarms)) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert alarms, "the replayed fault raised an alarm"
    print("replay alarms:", [(a["source"], a["state"], a["opened_at"], a["ts"]) for a in alarms])
    opened = datetime.fromisoformat(alarms[-1]["opened_at"])
    onset = fault_start + timedelta(seconds=60 * N / FS)
    # opened in recording time, within a few windows after the fault's onset — not at wall-clock time
    assert onset <= opened <= onset + timedelta(seconds=20 * N / FS), (opened, onset)
    assert alarms[-1]["state"] == "RESOLVED" and alarms[-1]["auto_cleared"]
    assert st["degradation_index"] > 0
    assert st["health_score"] >= 75, "recovered after the fault (data time)"
