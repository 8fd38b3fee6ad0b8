"""Issue 17 on the real stack (Mosquitto, InfluxDB, every service): a test rig whose *healthy* vibration
reads as ISO 20816-3 zone D of group-2 limits (a severe 1x tone: ~20 mm/s) is calibrated on that data
and monitored without confirming ISO applicability — its health shows the zone as information, with no
alarm; once its config confirms the standard applies (75 kW pump), the same vibration opens the
``iso20816`` alarm naming its basis."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.recordings import FS_HZ, WINDOW, vibration_recording
from tests.support.servers import MosquittoServer
from tests.support.stack import ROOT, Stack, api

pytestmark = pytest.mark.integration
ASSET = "iso_rig"
START = datetime(2025, 4, 1, 8, 0, tzinfo=UTC)
WINDOW_S = WINDOW / FS_HZ


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, mosquitto: MosquittoServer) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("iso"), mqtt_url=mosquitto.url).start()
    yield s
    s.stop()


def replay(stack: Stack, path: Path, start: datetime) -> None:
    out = subprocess.run(
        [sys.executable, "scripts/replay.py", str(path), "--asset_id", ASSET, "--mqtt", stack.broker_url]
        + ["--start", start.isoformat(), "--window", str(WINDOW)],
        cwd=ROOT,
        env=stack.script_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-1500:] + out.stderr[-1500:]


def rig(tmp_path: Path, name: str, windows: int, seed: int, t0: datetime) -> Path:
    """The rig's normal running: a severe 1x tone (the synthetic 'imbalance'), stationary."""
    return vibration_recording(tmp_path / name, [(windows, "imbalance")], seed, (t0 - START).total_seconds())


def status(stack: Stack) -> dict[str, Any]:
    r = httpx.get(f"{stack.api}/api/v1/monitoring/status", headers=stack.headers, timeout=10)
    return r.json()["assets"].get(ASSET, {})


def wait_health(stack: Stack, until: datetime, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = status(stack)
        h = st.get("health") or {}
        if h.get("ts") and datetime.fromisoformat(h["ts"]) >= until:
            return st
        time.sleep(0.3)
    raise AssertionError(f"health never reached data time {until}")


def calibrate(stack: Stack) -> None:
    deadline = time.monotonic() + 60
    while True:
        r = api(
            stack, "POST", "/calibration/start?wait=true", json={"asset_id": ASSET, "lookback_minutes": 10}
        )
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(2)  # windows still in flight: not yet enough stored
    assert r.status_code == 200, r.text


def test_rig_zone_is_information_until_applicability_is_confirmed(stack: Stack, tmp_path: Path) -> None:
    # 1. no iso block: calibrated on its own (loud but normal) running
    replay(stack, rig(tmp_path, "cal.npz", 400, 1, START), START)
    calibrate(stack)

    # 2. monitored: zone D by group-2 limits, shown as information only, no alarm, no health cap
    t1 = START + timedelta(seconds=400 * WINDOW_S)
    replay(stack, rig(tmp_path, "mon.npz", 150, 2, t1), t1)
    end1 = t1 + timedelta(seconds=150 * WINDOW_S)
    st = wait_health(stack, end1 - timedelta(seconds=2))
    print(
        "unconfirmed:",
        {k: st.get(k) for k in ("iso_zone", "velocity_rms_mm_s", "zone_basis", "health_score")},
    )
    assert st["iso_zone"] == "D" and st["velocity_rms_mm_s"] > 4.5
    assert st["zone_basis"] == "information"
    assert st["zone_basis_text"].startswith("information only: ISO applicability not confirmed")
    assert st["active_alarms"] == 0
    assert st["health_score"] > 20  # zone D would cap it at 20

    # 3. the user confirms ISO 20816-3 applies (75 kW pump: group 2, rigid): the same running alarms
    cfg = {"name": "rig", "rpm": 1800, "iso": {"applies": True, "power_kw": 75, "machine_type": "pump"}}
    assert api(stack, "PUT", f"/assets/{ASSET}/config", json=cfg).status_code == 200
    t2 = end1
    replay(stack, rig(tmp_path, "conf.npz", 100, 3, t2), t2)
    st = wait_health(stack, t2 + timedelta(seconds=100 * WINDOW_S - 2))
    assert (st["iso_zone"], st["zone_basis"], st["zone_basis_text"]) == (
        "D",
        "iso20816-3",
        "ISO 20816-3 group 2, rigid",
    )
    assert st["active_alarms"] >= 1 and st["health_score"] <= 20
    deadline = time.monotonic() + 30
    while True:
        alarms = api(stack, "GET", "/alarms", params={"asset_id": ASSET}).json()["alarms"]
        iso = [a for a in alarms if a["source"] == "iso20816"]
        if iso or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(iso) == 1, alarms
    assert "ISO 20816-3 group 2, rigid" in iso[0]["reason"]
    # opened on the confirmed data, not before (data time)
    assert datetime.fromisoformat(iso[0]["opened_at"]) >= t2
