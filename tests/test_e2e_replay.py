"""Issue 6: a recorded run replayed through the live pipeline with its original timestamps and sample
rate (scripts/replay.py over MQTT) — health, alarms and the degradation index follow the recording's
time, not the wall clock. Issue 11: a directory of gapped two-channel snapshot files replayed to two
assets in one call, at most ``--in-flight`` windows unacknowledged (seen by an independent subscriber),
every window acknowledged end to end and stored, and ``--resume`` sending nothing twice."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import httpx
import numpy as np
import pytest

from shared import topics
from shared.synth import vibration_window
from tests.support.recordings import vibration_recording
from tests.support.servers import MosquittoServer
from tests.support.stack import ROOT, Stack, api

pytestmark = pytest.mark.integration
ASSET = "replay_fan"
FS, N = 500.0, 256
START = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, mosquitto: MosquittoServer) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("replay"), mqtt_url=mosquitto.url).start()
    yield s
    s.stop()


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
    replay(stack, vibration_recording(tmp_path / "healthy.npz", [(400, None)], 1, 0.0), START)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = httpx.post(
            f"{stack.api}/api/v1/calibration/start?wait=true",
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
    run = vibration_recording(
        tmp_path / "run.npz", [(60, None), (80, "imbalance"), (150, None)], 2, healthy_s
    )
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


# ---------------------------------------------------------------------------------------------
# Issue 11: a directory of gapped snapshot files, two channels to two assets, bounded in flight
# ---------------------------------------------------------------------------------------------
SNAP_N = 2560  # samples per snapshot file: 10 windows of N
PATTERN = "%Y.%m.%d.%H.%M.%S"
B1, B2 = "snap_b1", "snap_b2"
IN_FLIGHT = 4


def snapshot_dir(directory: Path, first: datetime, files: int, seed: int) -> int:
    """``files`` two-channel snapshots one minute apart, in the header-less ASCII layout of bearing
    test rigs named by their start time, plus one CSV with an absolute time column holding two
    snapshots with a gap between them. Returns the windows per asset."""
    directory.mkdir(parents=True)
    rng = np.random.default_rng(seed)

    def two_channels(n: int) -> np.ndarray:
        a = vibration_window(rng, FS, n, rpm=1800)[0]
        b = vibration_window(rng, FS, n, rpm=1500)[1]
        return np.stack([a, b], axis=1)

    for k in range(files):
        name = (first + timedelta(minutes=k)).strftime(PATTERN)
        np.savetxt(directory / name, two_channels(SNAP_N), fmt="%.6f", delimiter="\t")
    # The CSV: 5 windows, a 2-minute gap, 5 windows (after the last ASCII file).
    t0 = first + timedelta(minutes=files)
    rows = ["t,0,1"]
    for seg, n in ((0, 5 * int(N)), (1, 5 * int(N))):
        data = two_channels(n)
        seg_start = t0 + timedelta(minutes=2 * seg)
        rows += [
            f"{(seg_start + timedelta(seconds=i / FS)).isoformat()},{data[i, 0]:.6f},{data[i, 1]:.6f}"
            for i in range(n)
        ]
    (directory / "tail.csv").write_text("\n".join(rows) + "\n")
    return files * SNAP_N // int(N) + 10


async def replay_observed(
    stack: Stack, paths: list[Path], extra: list[str]
) -> tuple[int, str, dict[str, int]]:
    """Run replay.py (two channels → two assets, at most IN_FLIGHT in flight) while an independent
    subscriber counts, for each asset, the raw windows published whose feature vector (and, where a
    model scores them, score) has not arrived yet, at every raw window it sees: the most per asset.

    Mosquitto forwards messages to a subscriber in the order it accepted them, and the replay publishes
    window k only after the acknowledgement of window k - IN_FLIGHT reached it, which the broker
    accepted before; so the subscriber's count bounds what the replay had in flight."""
    cmd = [sys.executable, "scripts/replay.py", *map(str, paths), "--mqtt", stack.broker_url]
    cmd += ["--channel", f"0={B1}", "--channel", f"1={B2}", "--fs", str(FS), "--name-pattern", PATTERN]
    cmd += ["--window", str(N), "--in-flight", str(IN_FLIGHT), *extra]
    raws: dict[str, dict[str, int]] = {B1: {}, B2: {}}  # event id -> order of publication
    done: dict[str, dict[str, set[str]]] = {B1: {}, B2: {}}
    models: dict[str, set[str]] = {B1: set(), B2: set()}
    last_scored: dict[str, int] = {B1: -1, B2: -1}
    most = {B1: 0, B2: 0}

    def complete(asset: str, eid: str) -> bool:
        """Its vector arrived and, with an autoencoder announced, its score (or a later window's: the
        scorer had no model loaded for this one, as the replay's rule)."""
        got = done[asset].get(eid, set())
        scored = "autoencoder" in got or last_scored[asset] > raws[asset][eid]
        return "vibration" in got and ("autoencoder" not in models[asset] or scored)

    async with aiomqtt.Client("127.0.0.1", int(stack.broker_url.rsplit(":", 1)[1])) as obs:
        for flt in ("raw/+/vibration", "features/+/vibration", "scores/+/+", "models/+/+"):
            await obs.subscribe(f"{topics.ROOT}/{flt}", qos=1)
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            cwd=ROOT,
            env=stack.script_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )

        async def watch() -> None:
            async for m in obs.messages:
                family, asset, kind = m.topic.value.removeprefix(topics.ROOT + "/").split("/")
                if asset not in raws:
                    continue
                if family == "models":
                    (models[asset].add if m.payload else models[asset].discard)(kind)
                    continue
                eid = json.loads(bytes(m.payload))["event_id"]
                if family == "raw":
                    raws[asset][eid] = len(raws[asset])
                    open_ = sum(1 for e in raws[asset] if not complete(asset, e))
                    most[asset] = max(most[asset], open_)
                    continue
                done[asset].setdefault(eid, set()).add(kind)
                if family == "scores" and eid in raws[asset]:
                    last_scored[asset] = max(last_scored[asset], raws[asset][eid])

        watcher = asyncio.create_task(watch())
        out, _ = await asyncio.wait_for(proc.communicate(), 600)
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    text = out.decode()
    print(
        "\n".join(line for line in text.splitlines() if line.startswith(("[COMPLETE]", "[ASSET]", "[NOTE]")))
    )
    print("most in flight seen by the subscriber:", most)
    return int(proc.returncode or 0), text, most


def stored_count(stack: Stack, asset: str, family: str, start: datetime, end: datetime, **params: str) -> int:
    """Items of ``family`` stored for ``asset`` with data time in [start, end), read page by page."""
    query: dict[str, object] = {"from": start.isoformat(), "to": end.isoformat(), "limit": 500, **params}
    ids: set[str] = set()
    while True:
        r = httpx.get(
            f"{stack.api}/api/v1/assets/{asset}/{family}", params=query, headers=stack.headers, timeout=30
        )
        if r.status_code == 404:
            return 0
        assert r.status_code == 200, r.text
        body = r.json()
        ids |= {x["event_id"] for x in body[family]}
        if not body.get("next"):
            return len(ids)
        query["after"] = body["next"]


def summary_numbers(out: str) -> dict[str, int]:
    head = r"\[COMPLETE\] Sent (\d+) windows, (\d+) acknowledged, (\d+) failed, (\d+) skipped"
    m = re.search(head + r" .* at most (\d+) in flight", out)
    assert m, out[-3000:]
    keys = ("sent", "acked", "failed", "skipped", "most")
    numbers = dict(zip(keys, map(int, m.groups()), strict=True))
    unscored = re.search(r"autoencoder (\d+)", out.split("[COMPLETE]")[-1])
    numbers["unscored"] = int(unscored.group(1)) if unscored else 0
    return numbers


async def test_a_directory_of_gapped_snapshots_replays_two_assets_bounded_and_resumable(
    stack: Stack, tmp_path: Path
) -> None:
    start = datetime(2024, 6, 1, 0, 0, tzinfo=UTC)
    healthy = tmp_path / "healthy"
    per_asset = snapshot_dir(healthy, start, 32, seed=11)
    rc, out, most = await replay_observed(stack, [healthy], [])
    assert rc == 0, out[-3000:]
    s = summary_numbers(out)
    assert (s["sent"], s["acked"], s["failed"], s["skipped"]) == (2 * per_asset, 2 * per_asset, 0, 0), out[
        -2000:
    ]
    assert s["most"] <= IN_FLIGHT and max(most.values()) <= IN_FLIGHT, (s, most)
    end = start + timedelta(minutes=40)
    for asset in (B1, B2):
        await asyncio.to_thread(
            wait_for_count, stack, asset, "features", start, end, per_asset, kind="vibration"
        )

    # Calibrate one asset: from now on its windows are acknowledged by their autoencoder score too.
    r = await asyncio.to_thread(
        api, stack, "POST", "/calibration/start?wait=true", json={"asset_id": B1, "lookback_minutes": 60}
    )
    assert r.status_code == 200 and "autoencoder" in r.json()["models"], r.text
    later = tmp_path / "later"
    later_start = start + timedelta(hours=1)
    per_asset_later = snapshot_dir(later, later_start, 6, seed=12)
    rc, out, most = await replay_observed(stack, [later], [])
    assert rc == 0, out[-3000:]
    s = summary_numbers(out)
    assert (s["acked"], s["failed"]) == (2 * per_asset_later, 0), out[-2000:]
    assert s["most"] <= IN_FLIGHT and max(most.values()) <= IN_FLIGHT, (s, most)
    later_end = later_start + timedelta(minutes=20)
    scored = per_asset_later - s["unscored"]  # a window the scorer met before its model loaded: counted
    assert scored > 0
    await asyncio.to_thread(wait_for_count, stack, B1, "scores", later_start, later_end, scored)
    await asyncio.to_thread(
        wait_for_count, stack, B2, "features", later_start, later_end, per_asset_later, kind="vibration"
    )
    assert await asyncio.to_thread(stored_count, stack, B2, "scores", later_start, later_end) == 0

    # Resumed: everything is stored, nothing is sent again.
    rc, out, _ = await replay_observed(stack, [healthy, later], ["--resume", "--api", stack.api])
    assert rc == 0, out[-3000:]
    s = summary_numbers(out)
    total = 2 * (per_asset + per_asset_later)
    assert (s["sent"], s["acked"], s["failed"], s["skipped"]) == (0, 0, 0, total), out[-2000:]

    # Not resumed: the pipeline drops windows it handled before (exactly once), so they are never
    # acknowledged; each asset is given up after IN_FLIGHT timeouts in a row, not one timeout per window.
    rc, out, _ = await replay_observed(stack, [later], ["--ack-timeout", "3"])
    assert rc == 1, out[-3000:]
    assert out.count("not acknowledged within 3 s: no vibration feature vector") == 2 * IN_FLIGHT, out[-3000:]
    for asset in (B1, B2):
        assert f"the other {per_asset_later - IN_FLIGHT} windows of {asset} are not sent" in out, out[-3000:]


def wait_for_count(
    stack: Stack, asset: str, family: str, start: datetime, end: datetime, expected: int, **params: str
) -> None:
    """Poll until exactly ``expected`` items of ``family`` are stored (the historian writes in batches)."""
    deadline = time.monotonic() + 120
    got = -1
    while time.monotonic() < deadline:
        got = stored_count(stack, asset, family, start, end, **params)
        if got >= expected:
            break
        time.sleep(0.5)
    assert got == expected, f"{asset} {family}: {got} stored, {expected} expected"


def test_simple_readings_are_acknowledged_through_the_feature_warm_up(stack: Stack, tmp_path: Path) -> None:
    """Readings: acknowledged by their reading event, and once the features stage produces (legacy after
    its warm-up of LEGACY_WARMUP readings, batch once its window is full) by their vectors too: more
    readings than --in-flight in the warm-up never deadlock, and every reading is stored."""
    asset, count = "simple_rp", 160
    first = datetime(2024, 7, 1, 0, 0, tzinfo=UTC)
    rng = np.random.default_rng(21)
    rows = ["timestamp,voltage_v,current_a,power_factor,vibration_g"]
    for i in range(count):
        ts = (first + timedelta(seconds=i)).isoformat()
        rows.append(
            f"{ts},{230 + rng.normal():.2f},{15 + rng.normal() * 0.2:.3f},0.9,{0.1 + rng.random() * 0.02:.4f}"
        )
    f = tmp_path / "readings.csv"
    f.write_text("\n".join(rows) + "\n")
    cmd = [sys.executable, "scripts/replay.py", str(f), "--kind", "simple", "--asset_id", asset]
    cmd += ["--mqtt", stack.broker_url, "--in-flight", "4", "--ack-timeout", "30"]
    out = subprocess.run(cmd, cwd=ROOT, env=stack.script_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert f"[COMPLETE] Sent {count} readings, {count} acknowledged, 0 failed" in out.stdout, out.stdout[
        -2000:
    ]
    assert "at most 4 in flight per asset (limit 4)" in out.stdout
    end = first + timedelta(seconds=count)
    wait_for_count(stack, asset, "readings", first, end, count)
    # A legacy vector for every reading from the LEGACY_WARMUP-th (30th) on.
    wait_for_count(stack, asset, "features", first, end, count - 29, kind="legacy")
