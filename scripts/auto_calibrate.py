#!/usr/bin/env python
"""Calibrate an asset end to end: send healthy data, wait until it is stored, calibrate, print the result.

Examples (from the repository root, with ``make run`` going in another terminal)::

    python scripts/auto_calibrate.py                  # motor_01, 10 min at 10 Hz, accelerated
    python scripts/auto_calibrate.py --asset_id pump_alpha --realtime --duration 300 --interval 1

Steps as in the calibration guide: ``[1/3] Generating healthy data...`` (``scripts/generate_data.py``,
healthy mode; ``--fast`` accelerated timestamps unless ``--realtime``), ``[2/3] Waiting for data to
propagate...`` (until the readings are stored), ``[3/3] Starting calibration...`` (``POST
/api/v1/calibration/start``, 202, then ``GET /api/v1/monitoring/status`` until the calibration completed
or failed, its progress printed). The gateway defaults to ``make run``'s (``$GATEWAY_PORT``). Exit code 0
when calibration completed, 1 when it failed (the reason is printed), 2 for bad arguments or an
unreachable gateway.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # any Python: the repository's .venv when this one lacks the packages
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _bootstrap

    _bootstrap.ensure()

import argparse
import json
import subprocess
import time
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "scripts"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from generate_data import default_api  # noqa: E402

from shared.apikey import API_KEY_HELP, auth_headers, script_api_key  # noqa: E402
from shared.settings import Settings  # noqa: E402

#: Seconds between two looks at the calibration's progress.
POLL_S = 0.5


def mark(ok: bool) -> str:
    """The guide's ✅ / ❌ where the console can print them, else [OK] / [FAIL]."""
    sign = "\u2705" if ok else "\u274c"
    try:
        sign.encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return "[OK]" if ok else "[FAIL]"
    return sign


def asset_status(api: str, headers: dict[str, str], asset: str) -> dict[str, Any]:
    r = httpx.get(f"{api}/api/v1/monitoring/status", headers=headers, timeout=30)
    r.raise_for_status()
    return r.json()["assets"].get(asset, {})  # type: ignore[no-any-return]


def outcome(st: dict[str, Any], before: str | None) -> bool | None:
    """True / False once the calibration started after ``before`` (the previous one's start) completed /
    failed; None while it runs."""
    cal = st.get("calibration") or {}
    if st.get("state") == "CALIBRATING" or cal.get("started_at") == before:
        return None
    if cal.get("phase") in ("completed", "failed"):
        return cal["phase"] == "completed"
    return None


def follow(api: str, headers: dict[str, str], asset: str, before: str | None, timeout: float) -> bool | None:
    """Poll the status until the calibration ends (its progress printed as it changes); None on timeout."""
    deadline, shown = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        st = asset_status(api, headers, asset)
        done = outcome(st, before)
        if done is not None:
            return done
        cal = st.get("calibration") or {}
        line = f"      {cal.get('percent', 0):.0f}% {st.get('reason', '')}" if cal else ""
        if line and line != shown:
            print(line, flush=True)
            shown = line
        time.sleep(POLL_S)
    return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--asset_id", default="motor_01")
    p.add_argument("--api", default=default_api(Settings()), help="gateway base URL (default: $GATEWAY_PORT)")
    p.add_argument("--api-key", default=None, help=API_KEY_HELP)
    p.add_argument("--duration", type=float, default=600.0, help="seconds of healthy data to send")
    p.add_argument("--interval", type=float, default=0.1, help="seconds between readings")
    p.add_argument("--realtime", action="store_true", help="send in real time instead of accelerated")
    p.add_argument("--lookback_minutes", type=float, default=None, help="default: the data's duration")
    p.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the data to be stored")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the calibration")
    return p.parse_args(argv)


def generate(a: argparse.Namespace, api: str, key: str | None) -> bool:
    """Step 1: the generator's healthy run (its summary printed); False when it failed."""
    gen = [sys.executable, str(ROOT / "scripts" / "generate_data.py"), "--asset_id", a.asset_id]
    gen += ["--duration", str(a.duration), "--interval", str(a.interval), "--healthy", "--api", api]
    gen += ["--seed", str(a.seed), *(("--api-key", key) if key else ()), *(() if a.realtime else ("--fast",))]
    out = subprocess.run(gen, capture_output=True, text=True)
    summary = [line for line in out.stdout.splitlines() if line.startswith("[COMPLETE]")] or ["(no summary)"]
    print(f"      {summary[-1]}")
    if out.returncode != 0:
        print(f"[FAIL] data generator exited with {out.returncode}")
        return False
    return True


def wait_stored(a: argparse.Namespace, api: str, headers: dict[str, str], expected: int) -> bool:
    """Step 2: until the store holds the readings sent (bounded by ``--wait``); False when refused."""
    minutes = a.duration / 60 + (0 if a.realtime else 24 * 60)
    deadline, count = time.monotonic() + a.wait, 0
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
            return False
        time.sleep(1.0)
    print(f"      {count} readings stored")
    return True


def calibrate(a: argparse.Namespace, api: str, headers: dict[str, str]) -> int:
    """Step 3: start the calibration (202) and follow it in the status until it ends."""
    lookback = a.lookback_minutes if a.lookback_minutes is not None else max(1.0, a.duration / 60 + 0.5)
    before = (asset_status(api, headers, a.asset_id).get("calibration") or {}).get("started_at")
    body = {"asset_id": a.asset_id, "lookback_minutes": lookback}
    r = httpx.post(f"{api}/api/v1/calibration/start", json=body, headers=headers, timeout=a.timeout)
    if r.status_code != 202:
        print(f"{mark(False)} Calibration failed!")
        print(f"[FAIL] HTTP {r.status_code}: {r.json().get('detail', r.text)}")
        return 1
    started = r.json()
    points = started["data_points_collected"]
    print(f"      {started['message']} on the last {lookback:g} minutes: {points} data points")
    done = follow(api, headers, a.asset_id, before, a.timeout)
    st = asset_status(api, headers, a.asset_id)
    if done:
        print(f"{mark(True)} Calibration complete!")
        print(f"[OK] {st.get('reason', '')}")
        for kind, version in st.get("models", {}).items():
            print(f"     {kind}: {version}")
        print(json.dumps({k: st.get(k) for k in ("state", "models", "calibration", "baseline_summary")}))
        return 0
    print(f"{mark(False)} Calibration failed!")
    reason = st.get("reason", "") if done is False else f"not finished within {a.timeout:g} s"
    print(f"[FAIL] {reason}")
    return 1


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.duration <= 0 or a.interval <= 0:
        print("[FAIL] --duration and --interval must be positive")
        return 2
    api = a.api.rstrip("/")
    key = script_api_key(a.api_key)
    headers = auth_headers(key)
    try:
        httpx.get(f"{api}/healthz", timeout=5)
    except httpx.HTTPError as exc:
        print(f"[FAIL] gateway not reachable at {api}: {exc}")
        return 2
    expected = round(a.duration / a.interval)
    print(f"[1/3] Generating healthy data... ({expected} readings for {a.asset_id})", flush=True)
    if not generate(a, api, key):
        return 1
    print("[2/3] Waiting for data to propagate...", flush=True)
    if not wait_stored(a, api, headers, expected):
        return 1
    print("[3/3] Starting calibration...", flush=True)
    return calibrate(a, api, headers)


if __name__ == "__main__":
    raise SystemExit(main())
