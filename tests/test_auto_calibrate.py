"""scripts/auto_calibrate.py against the whole system on embedded defaults (amqtt + SQLite)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.stack import ROOT, Stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("auto"), extra_env={"BATCH_WINDOW": "10"}).start()
    yield s
    s.stop()


def run(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scripts/auto_calibrate.py", "--api", stack.api, *args],
        cwd=ROOT,
        env=stack.script_env(),  # the key comes from the stack's DATA_DIR/admin.key
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_auto_calibrate_succeeds_and_reports_models(stack: Stack) -> None:
    out = run(stack, "--asset_id", "auto_1", "--duration", "120", "--interval", "0.1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "[COMPLETE] Sent 1200 events, 0 failed" in out.stdout
    assert "[OK] Calibrated from" in out.stdout
    assert "legacy: v" in out.stdout and "batch: v" in out.stdout


def test_auto_calibrate_too_little_data_fails_with_reason(stack: Stack) -> None:
    out = run(stack, "--asset_id", "auto_2", "--duration", "5", "--interval", "0.1")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Insufficient data for calibration: found 50 readings (need 100)" in out.stdout


def test_auto_calibrate_unreachable_gateway(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "scripts/auto_calibrate.py", "--api", "http://127.0.0.1:9"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "gateway not reachable" in out.stdout
