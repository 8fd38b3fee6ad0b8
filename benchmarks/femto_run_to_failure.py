"""A real run-to-failure bearing through the whole system: FEMTO/PRONOSTIA Bearing1_1.

Run: ``PYTHONPATH=. .venv/bin/python -m benchmarks.femto_run_to_failure [--bearing Bearing1_1]
[--calibrate 300]`` (about 1-2 minutes; not part of ``make bench``: it reports detection on one real
run, not a speed ratio).

Starts Mosquitto and every service (:class:`tests.support.stack.Stack`, SQLite store) in a temporary
directory deleted afterwards, then, as a user would with ``scripts/replay.py``:

1. replays the first ``--calibrate`` snapshots of both channels to two assets in one call
   (``--channel 0=<b>_h --channel 1=<b>_v --window 2560 --limit N``, ``--speed max``: bounded in flight,
   acknowledged end to end);
2. calibrates each asset on them (``end`` = the last of those snapshots, ``?wait=true``);
3. replays the whole run with ``--resume`` (the stored part is skipped);
4. prints every alarm (source, severity, state, opened at, hours before the end of the run), the first
   health below 75 and the replay summaries (windows/s acknowledged end to end).

Data: ``../shared/datasets/femto_pronostia/femto_<bearing>.npz`` (see its README: 2,560-sample
snapshots at 25.6 kHz, two channels; ``t_s`` reconstructed as 10 s per file). The run starts at the
README's start time of Bearing1_1 (any other bearing: the same nominal start).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from tests.support.servers import MosquittoServer
from tests.support.stack import ROOT, Stack, api

DATA_DIR = ROOT.parent / "shared" / "datasets" / "femto_pronostia"
START = datetime(2010, 12, 1, 9, 39, 39, tzinfo=UTC)


def replay(stack: Stack, data: Path, bearing: str, *extra: str) -> None:
    cmd = [sys.executable, "scripts/replay.py", str(data), "--channel", f"0={bearing}_h"]
    cmd += ["--channel", f"1={bearing}_v", "--window", "2560", "--start", START.isoformat()]
    cmd += ["--mqtt", stack.broker_url, "--api", stack.api, *extra]
    out = subprocess.run(cmd, cwd=ROOT, env=stack.script_env(), capture_output=True, text=True, check=False)
    for line in out.stdout.splitlines():
        if line.startswith(("[COMPLETE]", "[ASSET]", "[FAIL]", "[START]")):
            print("  " + line, flush=True)
    if out.returncode != 0:
        raise SystemExit(f"replay failed ({out.returncode}): {out.stderr[-800:]}")


def report(stack: Stack, asset: str, end_of_life: datetime) -> None:
    alarms: list[dict[str, Any]] = api(stack, "GET", "/alarms", params={"asset_id": asset}).json()["alarms"]
    for a in sorted(alarms, key=lambda a: str(a["opened_at"])):
        opened = datetime.fromisoformat(a["opened_at"])
        lead_h = (end_of_life - opened).total_seconds() / 3600
        print(
            f"  {asset} {a['source']} {a['severity']} {a['state']} opened {a['opened_at']} "
            f"({lead_h:.2f} h before the end)"
        )
    params = {
        "from": START.isoformat(),
        "to": (end_of_life + timedelta(seconds=1)).isoformat(),
        "limit": 100000,
    }
    history = api(stack, "GET", f"/assets/{asset}/health", params=params).json()["history"]
    low = next((h["ts"] for h in history if h["health_score"] < 75), None)
    print(
        f"  {asset}: {len(alarms)} alarms, {len(history)} health points, first health < 75 at {low}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bearing", default="Bearing1_1")
    p.add_argument("--calibrate", type=int, default=300, help="snapshots to calibrate on")
    a = p.parse_args(argv)
    data = DATA_DIR / f"femto_{a.bearing}.npz"
    if not data.is_file():
        raise SystemExit(f"no {data}: the FEMTO data set must be beside the checkout (../shared)")
    with np.load(data) as z:
        t_s = np.asarray(z["t_s"], dtype=np.float64)
    asset = a.bearing.lower().replace("bearing", "femto")
    end_of_life = START + timedelta(seconds=float(t_s[-1]))
    cal_end = START + timedelta(seconds=float(t_s[a.calibrate - 1]) + 0.2)
    with tempfile.TemporaryDirectory(prefix="rw-femto-") as tmp:
        mq = MosquittoServer(Path(tmp) / "mqtt").start()
        stack = Stack(Path(tmp) / "stack", mqtt_url=mq.url).start()
        try:
            print(f"{a.bearing}: {len(t_s)} snapshots, end of run {end_of_life.isoformat()}", flush=True)
            replay(stack, data, asset, "--limit", str(a.calibrate))
            for side in ("h", "v"):
                body = {
                    "asset_id": f"{asset}_{side}",
                    "lookback_minutes": 24 * 60,
                    "end": cal_end.isoformat(),
                }
                r = api(stack, "POST", "/calibration/start", params={"wait": "true"}, json=body)
                print(f"  calibrate {asset}_{side}: {r.status_code} {r.json().get('message', r.text)[:300]}")
            replay(stack, data, asset, "--resume")
            for side in ("h", "v"):
                report(stack, f"{asset}_{side}", end_of_life)
        finally:
            stack.stop()
            mq.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
