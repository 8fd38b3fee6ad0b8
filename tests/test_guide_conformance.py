"""The calibration guide, step by step, against the whole system as ``make run`` starts it (embedded
broker + SQLite, default settings; ``tests/support/stack.py``).

Every request is the guide's own: its ``curl`` command lines run as written (same method, body and
Content-Type; the multi-asset ``curl -d`` without a header sends form-urlencoded), and its ``python
scripts/generate_data.py ...`` with its exact arguments and no ``--api`` (the endpoint comes from
``GATEWAY_PORT`` as with ``make run``). Two departures, both stated: the URLs carry the test stack's
free port instead of 8000 and every curl adds ``Authorization: Bearer <DATA_DIR/admin.key>`` (the API
requires a key; the scripts read that file themselves); the generator also gets ``--fast`` (its
documented accelerated mode: the same 300 readings one interval apart, backfilled to end now, without
waiting 5 minutes). Each answer is checked field by field in the guide's order."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.stack import ROOT, Stack

pytestmark = pytest.mark.integration

GUIDE_URL = "http://localhost:8000"
RULE = "=" * 60
#: The guide's requests, as written.
STATUS = ["curl", f"{GUIDE_URL}/api/v1/monitoring/status"]
START = [
    "curl",
    "-X",
    "POST",
    f"{GUIDE_URL}/api/v1/calibration/start",
    "-H",
    "Content-Type: application/json",
]
BASELINE = ["curl", f"{GUIDE_URL}/api/v1/monitoring/baseline"]
PURGE = ["curl", "-X", "POST", f"{GUIDE_URL}/api/v1/system/purge"]
GENERATE = ["python", "scripts/generate_data.py", "--asset_id", "motor_01", "--duration", "300"]

LEGACY = [
    "voltage_rolling_mean_1h",
    "current_spike_count",
    "power_factor_efficiency_score",
    "vibration_intensity_rms",
    "voltage_stability",
    "power_vibration_ratio",
]
BATCH = [f"{s}_{t}" for s in ("voltage", "current", "power_factor", "vibration") for t in ("mean", "std")]
BATCH += [
    f"{s}_{t}" for s in ("voltage", "current", "power_factor", "vibration") for t in ("peak_to_peak", "rms")
]
#: Healthy means of the generator (the guide: 230 V, 15 A, 0.92 PF, 0.15 g) and how far the mean of 300
#: readings may be from them (several standard errors of the generator's noise).
HEALTHY = {"voltage_mean": (230.0, 1.5), "current_mean": (15.0, 0.3), "power_factor_mean": (0.92, 0.01)}
HEALTHY["vibration_mean"] = (0.15, 0.01)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # the guide's requests are curl commands (make test installs curl: scripts/install_system_deps.sh)
    assert shutil.which("curl") is not None, "curl is not installed: run scripts/install_system_deps.sh"
    s = Stack(tmp_path_factory.mktemp("guide")).start()
    yield s
    s.stop()


def curl(stack: Stack, argv: list[str], body: str | None = None) -> tuple[int, Any, str]:
    """Run a guide curl command (``-d body`` appended when given) on the stack's port, with the API key;
    the HTTP status, the JSON answer and curl's trace of the request headers (``-v``)."""
    args = [a.replace(GUIDE_URL, stack.api) for a in argv]
    args += ["-d", body] if body is not None else []
    key = ["-H", f"Authorization: Bearer {stack.api_key}"]
    out = subprocess.run(
        [*args, *key, "-sS", "-v", "-w", "\n%{http_code}"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    text, _, code = out.stdout.rpartition("\n")
    return int(code), json.loads(text), out.stderr


def generate(stack: Stack, argv: list[str]) -> list[str]:
    """The guide's generator command as written (with ``--fast``) under ``make run``'s environment."""
    env = {**stack.script_env(), "GATEWAY_PORT": str(stack.port), "EMBEDDED_MQTT_PORT": str(stack.mqtt_port)}
    cmd = [sys.executable, *argv[1:], "--fast"]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr
    return out.stdout.splitlines()


def wait(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (got := check()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.25)
    return got


def calibrated(stack: Stack, asset: str) -> dict[str, Any]:
    """The status once ``asset``'s calibration ended (completed or failed) and none runs."""

    def done() -> dict[str, Any] | None:
        st = curl(stack, STATUS)[1]
        cal = st["assets"].get(asset, {}).get("calibration") or {}
        return st if not st["calibration_active"] and cal.get("phase") in ("completed", "failed") else None

    st = wait(done, 300, f"calibration of {asset}")
    assert st["assets"][asset]["calibration"]["phase"] == "completed", st["assets"][asset]["reason"]
    return st  # type: ignore[no-any-return]


def check_generator(lines: list[str], stack: Stack, asset: str) -> None:
    """Step 1's console output: banner, one ``[OK] Sent event`` per reading, the summary block."""
    assert lines[:8] == [
        RULE,
        "PREDICTIVE MAINTENANCE - DATA GENERATOR",
        RULE,
        f"Asset ID: {asset}",
        "Duration: 300 seconds",
        "Interval: 1.0 seconds",
        "Mode: HEALTHY (normal operation)",
        f"Endpoint: http://localhost:{stack.port}/api/v1/data/simple",
    ]
    ok = [line for line in lines if line.startswith("[OK] Sent event ")]
    assert len(ok) == 300 and all(" | V=" in line and "V, I=" in line and "A, PF=" in line for line in ok)
    assert all(line.endswith("g") and ", Vib=" in line for line in ok)
    assert lines[-3:] == [RULE, "[COMPLETE] Sent 300 events, 0 failed", RULE]


def check_started(code: int, body: dict[str, Any], asset: str) -> None:
    assert code == 202, body
    assert list(body)[:4] == ["status", "message", "asset_id", "data_points_collected"]
    assert body["status"] == "calibration_started"
    assert body["message"] == "Baseline calibration in progress"
    assert body["asset_id"] == asset and body["data_points_collected"] == 300


def check_calibrated_status(st: dict[str, Any]) -> None:
    """Step 3's expected status, field by field in the guide's order."""
    guide = [
        "system_state",
        "calibration_active",
        "baseline_established",
        "models_loaded",
        "baseline_summary",
    ]
    assert list(st)[:5] == guide
    assert st["system_state"] == "CALIBRATED"
    assert st["calibration_active"] is False
    assert st["baseline_established"] is True
    assert list(st["models_loaded"])[:2] == ["legacy_model", "batch_model"]
    assert st["models_loaded"]["legacy_model"] is True
    assert st["models_loaded"]["batch_model"] is True, st["assets"]
    summary = st["baseline_summary"]
    assert list(summary)[:4] == list(HEALTHY)
    for name, (mean, tol) in HEALTHY.items():
        assert abs(summary[name] - mean) <= tol, (name, summary[name])


def check_baseline(code: int, body: dict[str, Any]) -> None:
    """Step 3's baseline: the six legacy features with mean/std/min/max, the batch features with
    mean/std, in the guide's order."""
    assert code == 200, body
    assert list(body)[:2] == ["baseline", "batch_baseline"]
    assert list(body["baseline"]) == LEGACY
    for name in LEGACY:
        assert list(body["baseline"][name])[:4] == ["mean", "std", "min", "max"], name
    assert abs(body["baseline"]["voltage_rolling_mean_1h"]["mean"] - 230.0) < 1.5
    assert abs(body["baseline"]["vibration_intensity_rms"]["mean"] - 0.15) < 0.02
    batch = body["batch_baseline"]
    assert list(batch)[:4] == ["voltage_mean", "voltage_std", "voltage_peak_to_peak", "voltage_rms"]
    assert set(batch) == set(BATCH)
    assert all(list(stats)[:2] == ["mean", "std"] for stats in batch.values())


def test_the_calibration_guide_step_by_step(stack: Stack) -> None:
    # Prerequisites: the system is IDLE.
    code, st, _ = curl(stack, STATUS)
    assert code == 200 and list(st)[:2] == ["system_state", "calibration_active"]
    assert (st["system_state"], st["calibration_active"]) == ("IDLE", False)

    # Step 1: five minutes of healthy 1 Hz data.
    check_generator(generate(stack, [*GENERATE, "--interval", "1.0", "--healthy"]), stack, "motor_01")

    # Step 2: start calibration (202 at once; it goes on in the background).
    code, body, sent = curl(stack, START, '{"asset_id": "motor_01"}')
    assert "> Content-Type: application/json" in sent
    check_started(code, body, "motor_01")

    # Step 3: verify the baseline.
    check_calibrated_status(calibrated(stack, "motor_01"))
    check_baseline(*curl(stack, BASELINE)[:2])

    # Incremental re-calibration (no data loss) on the last 10 minutes.
    code, body, _ = curl(stack, START, '{"asset_id": "motor_01", "lookback_minutes": 10}')
    check_started(code, body, "motor_01")
    st = calibrated(stack, "motor_01")
    check_calibrated_status(st)
    assert st["asset_id"] == "motor_01"

    # Multi-asset calibration: the pump's curl sends no Content-Type header (curl: form-urlencoded).
    pump = [
        "python",
        "scripts/generate_data.py",
        "--asset_id",
        "pump_alpha",
        "--duration",
        "300",
        "--healthy",
    ]
    check_generator(generate(stack, pump), stack, "pump_alpha")
    bare = ["curl", "-X", "POST", f"{GUIDE_URL}/api/v1/calibration/start"]
    code, body, sent = curl(stack, bare, '{"asset_id": "pump_alpha"}')
    assert "> Content-Type: application/x-www-form-urlencoded" in sent
    check_started(code, body, "pump_alpha")
    st = calibrated(stack, "pump_alpha")
    check_calibrated_status(st)
    assert st["asset_id"] == "pump_alpha" and st["state_counts"] == {"CALIBRATED": 2}
    code, body, _ = curl(stack, BASELINE)
    assert body["asset_id"] == "pump_alpha"

    # Full system reset: purge → IDLE, and the baseline is gone.
    code, body, _ = curl(stack, PURGE)
    assert code == 200, body
    st = wait(lambda: (s := curl(stack, STATUS)[1])["system_state"] == "IDLE" and s, 60, "IDLE after purge")
    assert (st["calibration_active"], st["baseline_established"], st["baseline_summary"]) == (
        False,
        False,
        None,
    )
    code, body, _ = curl(stack, BASELINE)
    assert code == 404 and "no asset is calibrated" in body["detail"]
