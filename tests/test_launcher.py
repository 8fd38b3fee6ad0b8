"""deploy/run.py: every service is its own process; a crashed one is reported and restarted; Ctrl+C
stops everything."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.support.stack import Stack


def children(pid: int) -> dict[str, int]:
    """Service name -> pid of the launcher's direct children (from /proc, Linux)."""
    out: dict[str, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) != pid:
                continue
            cmd = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        args = [c.decode() for c in cmd if c]
        if "-m" in args:
            mod = args[args.index("-m") + 1]
            name = mod.split(".")[-1] + (f"-{args[-1]}" if "--model" in args else "")
            out[name] = int(stat.parent.name)
    return out


@pytest.mark.integration
def test_crashed_service_is_reported_and_restarted(tmp_path: Path) -> None:
    stack = Stack(tmp_path).start()
    try:
        assert stack.proc is not None
        procs = children(stack.proc.pid)
        assert {
            "broker",
            "ingest",
            "historian",
            "features",
            "calibrator",
            "health",
            "gateway",
            "scorer-legacy",
            "scorer-batch",
            "scorer-autoencoder",
        } <= set(procs), procs
        old = procs["features"]
        os.kill(old, signal.SIGKILL)
        deadline = time.monotonic() + 30
        new = None
        while time.monotonic() < deadline:
            new = children(stack.proc.pid).get("features")
            if new and new != old and stack.all_online():
                break
            time.sleep(0.3)
        assert new and new != old, "features was not restarted"
        log = stack.log_path.read_text()
        assert '"event": "service_crashed"' in log and '"service": "features"' in log
        assert '"event": "service_restarted"' in log
        assert httpx.get(f"{stack.api}/healthz", timeout=5).status_code == 200
    finally:
        code = stack.stop()
    assert code == 0
    assert stack.proc is not None and not children(stack.proc.pid)
