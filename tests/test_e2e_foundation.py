"""Issue 2's acceptance test: the README flow, end to end, on real servers and on embedded defaults.

Start the whole system with the real launcher, run the data generator exactly as the README says
(30 s at 0.2 s = 150 events), and check that every event comes back from the readings API exactly once.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import InfluxServer, MosquittoServer
from tests.support.stack import ROOT, Stack

pytestmark = pytest.mark.integration


@pytest.fixture(params=["mosquitto+influxdb", "embedded"])
def stack(
    request: pytest.FixtureRequest, tmp_path: Path, mosquitto: MosquittoServer, influxd: InfluxServer
) -> Iterator[Stack]:
    if request.param == "embedded":
        s = Stack(tmp_path)
    else:
        s = Stack(tmp_path, mqtt_url=mosquitto.url, influx_url=influxd.url)
    s.start()
    yield s
    code = s.stop()
    assert code == 0, f"launcher did not stop cleanly ({code}):\n{s.tail()}"


def test_generator_events_come_back_exactly_once(stack: Stack) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "scripts/generate_data.py",
            "--asset_id",
            "motor_01",
            "--duration",
            "30",
            "--interval",
            "0.2",
            "--healthy",
            "--api",
            stack.api,
        ],
        cwd=ROOT,
        env=stack.script_env(),  # the README's command: the key comes from DATA_DIR/admin.key
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "[COMPLETE] Sent 150 events, 0 failed" in out.stdout
    prefixes = re.findall(r"\[OK\] Sent event ([0-9a-f]{8})", out.stdout)
    assert len(prefixes) == 150

    deadline = time.monotonic() + 30
    readings: list[dict] = []
    while time.monotonic() < deadline:
        r = httpx.get(
            f"{stack.api}/api/v1/assets/motor_01/readings",
            params={"minutes": 10},
            headers=stack.headers,
            timeout=10,
        )
        if r.status_code == 200:
            readings = r.json()["readings"]
            if len(readings) >= 150:
                break
        time.sleep(0.5)
    ids = [x["event_id"] for x in readings]
    assert len(ids) == 150, f"{len(ids)} readings stored\n{stack.tail()}"
    assert len(set(ids)) == 150
    assert sorted(i[:8] for i in ids) == sorted(prefixes)
    ts = [x["ts"] for x in readings]
    assert ts == sorted(ts), "readings must be returned newest last"
    assets = httpx.get(f"{stack.api}/api/v1/assets", headers=stack.headers, timeout=10).json()
    assert "motor_01" in str(assets)
