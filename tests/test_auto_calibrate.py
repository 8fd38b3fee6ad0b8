"""scripts/auto_calibrate.py against the whole system on embedded defaults (amqtt + SQLite)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.stack import ROOT, Stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("auto")).start()  # make run's defaults
    yield s
    s.stop()


def run(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scripts/auto_calibrate.py", "--api", stack.api, *args],
        cwd=ROOT,
        env={**stack.script_env(), "PYTHONIOENCODING": "utf-8"},  # the key: the stack's DATA_DIR/admin.key
        capture_output=True,
        text=True,
        timeout=300,
    )


def steps(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("[") and "/3]" in line]


def test_auto_calibrate_succeeds_and_reports_models(stack: Stack) -> None:
    """The guide's steps; the calibration (202) is followed in the status until it completed."""
    out = run(stack, "--asset_id", "auto_1", "--duration", "120", "--interval", "0.1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert [s.split("...")[0] for s in steps(out.stdout)] == [
        "[1/3] Generating healthy data",
        "[2/3] Waiting for data to propagate",
        "[3/3] Starting calibration",
    ]
    assert "[COMPLETE] Sent 1200 events, 0 failed" in out.stdout
    assert "Baseline calibration in progress on the last 2.5 minutes: 1200 data points" in out.stdout
    assert "\u2705 Calibration complete!" in out.stdout
    assert "[OK] Calibrated from 1200 data points" in out.stdout
    assert "legacy: v" in out.stdout and "batch: v" in out.stdout
    status = json.loads(out.stdout.strip().splitlines()[-1])
    assert status["state"] == "CALIBRATED" and status["calibration"]["phase"] == "completed"


def test_auto_calibrate_too_little_data_fails_with_reason(stack: Stack) -> None:
    out = run(stack, "--asset_id", "auto_2", "--duration", "5", "--interval", "0.1")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "\u274c Calibration failed!" in out.stdout
    assert "HTTP 400: Insufficient data for calibration: found 50 readings (need 100)" in out.stdout


def test_auto_calibrate_unreachable_gateway(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "scripts/auto_calibrate.py", "--api", "http://127.0.0.1:9"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "gateway not reachable" in out.stdout
