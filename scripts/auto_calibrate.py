#!/usr/bin/env python
"""Calibrate an asset end to end: send healthy data, wait until it is stored, calibrate, print the result.

Examples (from the repository root, with ``make run`` going in another terminal)::

    python scripts/auto_calibrate.py --asset_id motor_01                 #10 min at 10 Hz, accelerated
    python scripts/auto_calibrate.py --asset_id motor_01 --realtime --duration 120 --interval 0.5

The data come from ``scripts/generate_data.py`` (healthy mode; ``--fast`` accelerated timestamps unless
``--realtime``). Exit code 0 when calibration completed, 1 when it failed (the reason is printed), 2 for
bad arguments or an unreachable gateway.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from shared.apikey import API_KEY_HELP, auth_headers, script_api_key  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--asset_id", default="motor_01")
    p.add_argument("--api", default="http://localhost:8000", help="gateway base URL")
    p.add_argument("--api-key", default=None, help=API_KEY_HELP)
    p.add_argument("--duration", type=float, default=600.0, help="seconds of healthy data to send")
    p.add_argument("--interval", type=float, default=0.1, help="seconds between readings")
    p.add_argument("--realtime", action="store_true", help="send in real time instead of accelerated")
    p.add_argument("--lookback_minutes", type=float, default=None, help="default: the data's duration")
    p.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the data to be stored")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    if a.duration <= 0 or a.interval <= 0:
        print("[FAIL] --duration and --interval must be positive")
        return 2
    expected = round(a.duration / a.interval)
    api = a.api.rstrip("/")
    key = script_api_key(a.api_key)
    headers = auth_headers(key)
    try:
        httpx.get(f"{api}/healthz", timeout=5)
    except httpx.HTTPError as exc:
        print(f"[FAIL] gateway not reachable at {api}: {exc}")
        return 2

    print(f"[STEP 1/3] Sending {expected} healthy readings for {a.asset_id} ...", flush=True)
    gen = [
        sys.executable,
        str(ROOT / "scripts" / "generate_data.py"),
        "--asset_id",
        a.asset_id,
        "--duration",
        str(a.duration),
        "--interval",
        str(a.interval),
        "--healthy",
        "--api",
        api,
        "--seed",
        str(a.seed),
        *(("--api-key", key) if key else ()),
    ]
    if not a.realtime:
        gen.append("--fast")
    out = subprocess.run(gen, capture_output=True, text=True)
    summary = (out.stdout.strip().splitlines() or ["(no output)"])[-1]
    print(f"           {summary}")
    if out.returncode != 0:
        print(f"[FAIL] data generator exited with {out.returncode}")
        return 1

    print("[STEP 2/3] Waiting until the readings are stored ...", flush=True)
    minutes = a.duration / 60 + (0 if a.realtime else 24 * 60)
    deadline = time.monotonic() + a.wait
    count = 0
    while time.monotonic() < deadline:
        r = httpx.get(
            f"{api}/api/v1/assets/{a.asset_id}/readings",
            params={"minutes": minutes, "limit": 100000},
            headers=headers,
            timeout=30,
        )
        if r.status_code == 200:
            count = r.json()["count"]
            if count >= expected:
                break
        elif r.status_code in (401, 403):
            print(f"[FAIL] HTTP {r.status_code}: {r.json().get('detail')} (see --api-key)")
            return 1
        time.sleep(1.0)
    print(f"           {count} readings stored")
    time.sleep(2.0)  # the features of the last readings are still in flight

    lookback = a.lookback_minutes if a.lookback_minutes is not None else max(1.0, a.duration / 60 + 0.5)
    print(f"[STEP 3/3] Calibrating on the last {lookback:g} minutes of data ...", flush=True)
    r = httpx.post(
        f"{api}/api/v1/calibration/start",
        json={"asset_id": a.asset_id, "lookback_minutes": lookback},
        headers=headers,
        timeout=600,
    )
    body = r.json()
    if r.status_code == 200:
        print(f"[OK] {body['message']}")
        for kind, version in body.get("models", {}).items():
            print(f"     {kind}: {version}")
        return 0
    print(f"[FAIL] HTTP {r.status_code}: {body.get('detail', body)}")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
