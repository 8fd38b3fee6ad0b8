"""The data generator CLI, run as a subprocess against a real HTTP server and a real Mosquitto broker."""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from shared import synth, topics
from shared.messages import SimpleReadingIn, VibrationBatchIn
from tests.support.servers import MosquittoServer, free_port, wait_port

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "generate_data.py"
START = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
OK_SIMPLE = re.compile(
    r"^\[OK\] Sent event ([0-9a-f]{8})\.\.\. \| V=(\d+\.\d)V, I=(\d+\.\d)A, PF=(\d\.\d\d), Vib=(\d+\.\d{3})g$"
)
OK_WINDOW = re.compile(
    r"^\[OK\] Sent window (\d+)/(\d+) \| fs=(\d+)Hz n=(\d+) rms=\((\d+\.\d\d), (\d+\.\d\d), (\d+\.\d\d)\)g$"
)


class Recorder:
    """What the tiny API received; ``fail_every = k`` answers every k-th request with HTTP 500."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.auth: list[str | None] = []  # the Authorization header of each request
        self.returned_ids: list[str] = []
        self.fail_every = 0
        self.lock = threading.Lock()

    def reset(self, fail_every: int = 0) -> None:
        with self.lock:
            self.bodies.clear()
            self.auth.clear()
            self.returned_ids.clear()
            self.fail_every = fail_every


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[str, Recorder]]:
    rec = Recorder()
    app = FastAPI()

    @app.post("/api/v1/data/simple")
    async def simple(request: Request) -> JSONResponse:
        body = await request.json()
        with rec.lock:
            rec.bodies.append(body)
            rec.auth.append(request.headers.get("authorization"))
            if rec.fail_every and len(rec.bodies) % rec.fail_every == 0:
                return JSONResponse({"detail": "storage unavailable"}, status_code=500)
            event_id = uuid.uuid4().hex  # the server's id, not the one the client sent
            rec.returned_ids.append(event_id)
        return JSONResponse({"status": "accepted", "event_id": event_id}, status_code=202)

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_port(port)
    yield f"http://127.0.0.1:{port}", rec
    server.should_exit = True
    thread.join(10)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MQTT_URL"}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_cli(
    *args: str, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the script the way a user does: ``python scripts/generate_data.py ...`` from the repo root."""
    return subprocess.run(
        [sys.executable, "scripts/generate_data.py", *args],
        cwd=ROOT,
        env={**_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


RULE = "=" * 60
BANNER = (
    "{r}\nPREDICTIVE MAINTENANCE - DATA GENERATOR\n{r}\nAsset ID: {asset}\nDuration: {duration} seconds\n"
    "Interval: {interval} seconds\nMode: {mode}\nEndpoint: {endpoint}\n"
)


def tail(out: str) -> str:
    """The summary of the closing block (separator, ``[COMPLETE] ...``, separator), which it checks."""
    lines = out.splitlines()
    assert lines[-3] == RULE and lines[-1] == RULE, lines[-3:]
    return lines[-2]


def _lines(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def _ts(body: dict) -> datetime:
    return datetime.fromisoformat(body["timestamp"])


# ------------------------------------------------------------------------------------------
# Simple mode (REST)
# ------------------------------------------------------------------------------------------
def test_api_key_from_option_env_or_data_dir(api: tuple[str, Recorder], tmp_path: Path) -> None:
    """``--api-key`` > ``ROTORWATCH_API_KEY`` > ``$DATA_DIR/admin.key`` (what ``make run`` writes)."""
    url, rec = api
    (tmp_path / "admin.key").write_text("key-from-file\n")
    base = ("--duration", "0.4", "--interval", "0.2", "--fast", "--api", url)
    cases = [
        ({"DATA_DIR": str(tmp_path), "ROTORWATCH_API_KEY": ""}, (), "Bearer key-from-file"),
        ({"DATA_DIR": str(tmp_path), "ROTORWATCH_API_KEY": "key-from-env"}, (), "Bearer key-from-env"),
        ({"DATA_DIR": str(tmp_path)}, ("--api-key", "key-given"), "Bearer key-given"),
    ]
    for env, extra, expected in cases:
        rec.reset()
        res = run_cli(*base, *extra, env=env)
        assert res.returncode == 0, res.stderr
        assert rec.auth == [expected, expected]


def test_fast_run_sends_exactly_duration_over_interval_events(api: tuple[str, Recorder]) -> None:
    url, rec = api
    rec.reset()
    res = run_cli(
        "--duration",
        "2",
        "--interval",
        "0.2",
        "--fast",
        "--seed",
        "1",
        "--api",
        url,
        "--start",
        START.isoformat(),
    )
    assert res.returncode == 0, res.stderr
    assert len(rec.bodies) == 10
    for i, body in enumerate(rec.bodies):
        reading = SimpleReadingIn.model_validate(body)  # valid fields, nothing extra
        assert reading.asset_id == "motor_01" and reading.is_faulty is False
        assert _ts(body) == START + timedelta(seconds=0.2 * i)  # strictly increasing by --interval
        for name, mean in synth.HEALTHY_MEAN.items():
            assert abs(body[name] - mean) < 6 * synth.HEALTHY_SIGMA[name]
    ok = _lines(res.stdout, "[OK]")
    assert len(ok) == 10
    for line, body, returned in zip(ok, rec.bodies, rec.returned_ids, strict=True):
        m = OK_SIMPLE.match(line)
        assert m, line
        assert m.group(1) == returned[:8]  # the API's event id, not the client's
        assert m.group(2, 3, 4, 5) == (
            f"{body['voltage_v']:.1f}",
            f"{body['current_a']:.1f}",
            f"{body['power_factor']:.2f}",
            f"{body['vibration_g']:.3f}",
        )
    assert tail(res.stdout) == "[COMPLETE] Sent 10 events, 0 failed"


def test_thirty_seconds_at_5_hz_is_150_events_ending_before_now(api: tuple[str, Recorder]) -> None:
    url, rec = api
    rec.reset()
    before = datetime.now(UTC)
    res = run_cli("--duration", "30", "--interval", "0.2", "--fast", "--api", url)
    after = datetime.now(UTC)
    assert res.returncode == 0, res.stderr
    assert len(rec.bodies) == 150
    stamps = [_ts(b) for b in rec.bodies]
    assert all(b - a == timedelta(seconds=0.2) for a, b in zip(stamps, stamps[1:], strict=False))
    # default start: now - duration, so the run covers the 30 s before it started
    assert before - timedelta(seconds=30) <= stamps[0] <= after - timedelta(seconds=30)
    assert tail(res.stdout) == "[COMPLETE] Sent 150 events, 0 failed"


def test_forced_fault_makes_every_event_that_fault(api: tuple[str, Recorder]) -> None:
    url, rec = api
    rec.reset()
    res = run_cli(
        "--duration",
        "1",
        "--interval",
        "0.1",
        "--fast",
        "--fault",
        "pf_drop",
        "--api",
        url,
        "--asset_id",
        "pump_7",
    )
    assert res.returncode == 0, res.stderr
    assert len(rec.bodies) == 10
    assert all(b["is_faulty"] is True and b["asset_id"] == "pump_7" for b in rec.bodies)
    assert all(0.55 <= b["power_factor"] <= 0.75 for b in rec.bodies)


def test_server_errors_count_as_failures_and_the_run_continues(api: tuple[str, Recorder]) -> None:
    url, rec = api
    rec.reset(fail_every=2)
    res = run_cli("--duration", "2", "--interval", "0.2", "--fast", "--faulty", "--api", url)
    assert res.returncode == 1
    assert len(rec.bodies) == 10  # every event was attempted
    fails = _lines(res.stdout, "[FAIL]")
    assert len(fails) == 5 and all("HTTP 500" in f and "storage unavailable" in f for f in fails)
    assert len(_lines(res.stdout, "[OK]")) == 5
    assert tail(res.stdout) == "[COMPLETE] Sent 5 events, 5 failed"


def test_unreachable_api_fails_every_event_without_crashing() -> None:
    res = run_cli(
        "--duration", "0.6", "--interval", "0.2", "--fast", "--api", f"http://127.0.0.1:{free_port()}"
    )
    assert res.returncode == 1
    assert len(_lines(res.stdout, "[FAIL]")) == 3
    assert tail(res.stdout) == "[COMPLETE] Sent 0 events, 3 failed"
    assert "Traceback" not in res.stderr


def test_the_guides_banner_and_lines(api: tuple[str, Recorder]) -> None:
    """The guide's console output: banner (asset, duration, interval, mode, endpoint), one ``[OK] Sent
    event`` line per event, the ``[COMPLETE]`` block."""
    url, rec = api
    rec.reset()
    res = run_cli(
        "--asset_id", "motor_01", "--duration", "3", "--interval", "1.0", "--healthy", "--fast", "--api", url
    )
    assert res.returncode == 0, res.stderr
    head = BANNER.format(
        r=RULE,
        asset="motor_01",
        duration=3,
        interval=1.0,
        mode="HEALTHY (normal operation)",
        endpoint=f"{url}/api/v1/data/simple",
    )
    assert res.stdout.startswith(head), res.stdout
    lines = res.stdout.splitlines()
    assert lines[8].startswith("Events: 3 (readings), accelerated") and lines[9] == RULE
    assert [bool(OK_SIMPLE.match(line)) for line in lines[10:13]] == [True] * 3
    assert lines[13:] == [RULE, "[COMPLETE] Sent 3 events, 0 failed", RULE]
    faulty = run_cli("--duration", "1", "--fault", "jitter", "--fast", "--api", url).stdout.splitlines()
    assert faulty[6] == "Mode: FAULTY (jitter)"


def test_default_endpoints_follow_make_runs_settings() -> None:
    """No --api / --mqtt: the gateway and embedded broker ``make run`` starts with the same environment."""
    res = run_cli("--duration", "1", "--fast", env={"GATEWAY_PORT": str(free_port())})
    m = re.search(r"^Endpoint: (http://localhost:(\d+))/api/v1/data/simple$", res.stdout, re.M)
    assert m is not None, res.stdout
    assert (
        f"localhost:{m.group(2)}" in _lines(res.stdout, "[FAIL]")[0]
    )  # it really sent there (no one listens)
    res = run_cli("--mode", "vibration", "--duration", "1", "--fast", env={"EMBEDDED_MQTT_PORT": "18999"})
    assert "Endpoint: mqtt://localhost:18999 topic rotorwatch/v1/raw/motor_01/vibration" in res.stdout
    assert tail(res.stdout) == "[COMPLETE] Sent 0 events, 1 failed"
    res = run_cli(
        "--mode", "vibration", "--duration", "1", "--fast", env={"MQTT_URL": "mqtt://127.0.0.1:18998"}
    )
    assert "Endpoint: mqtt://127.0.0.1:18998 topic" in res.stdout


def test_a_python_without_the_packages_reruns_with_the_venv(api: tuple[str, Recorder]) -> None:
    """``python scripts/generate_data.py`` with an interpreter lacking the packages (here: ``-S``, no
    site-packages) runs it again with the repository's ``.venv``."""
    url, rec = api
    rec.reset()
    assert (ROOT / ".venv" / "bin" / "python").exists(), "no .venv: the make targets create it (make venv)"
    base = Path(sys.base_prefix) / "bin" / "python3"
    bare = subprocess.run([str(base), "-S", "-c", "import httpx"], capture_output=True)
    assert bare.returncode != 0  # the bare interpreter really lacks them
    res = subprocess.run(
        [str(base), "-S", "scripts/generate_data.py", "--duration", "2", "--fast", "--api", url],
        cwd=ROOT,
        env={k: v for k, v in _env().items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert tail(res.stdout) == "[COMPLETE] Sent 2 events, 0 failed" and len(rec.bodies) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--healthy", "--faulty"], "not allowed with argument"),
        (["--healthy", "--fault", "jitter"], "--fault contradicts --healthy"),
        (["--fault", "bearing_outer"], "not a simple fault"),
        (["--interval", "0"], "--interval must be > 0"),
        (["--mode", "vibration", "--samples", "8"], "--samples must be in 16..65536"),
    ],
)
def test_bad_arguments_exit_2_with_a_reason(args: list[str], message: str) -> None:
    res = run_cli(*args)
    assert res.returncode == 2
    assert message in res.stderr


def test_sigint_mid_run_prints_the_summary_and_exits_130(api: tuple[str, Recorder]) -> None:
    url, rec = api
    rec.reset()
    proc = subprocess.Popen(
        [sys.executable, "scripts/generate_data.py", "--duration", "60", "--interval", "0.2", "--api", url],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        seen: list[str] = []
        while len([s for s in seen if s.startswith("[OK]")]) < 2:  # real time: 5 events per second
            line = proc.stdout.readline()
            assert line, f"generator ended early: {proc.stderr.read() if proc.stderr else ''}"
            seen.append(line.rstrip("\n"))
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = seen + rest.splitlines()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    sent = len([s for s in lines if s.startswith("[OK]")])
    assert 2 <= sent < 300
    assert lines[-4].startswith("[INTERRUPTED] Stopped after")
    assert tail("\n".join(lines)) == f"[COMPLETE] Sent {sent} events, 0 failed"
    # real-time stamps are the wall clock at sending: increasing
    stamps = [_ts(b) for b in rec.bodies]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


# ------------------------------------------------------------------------------------------
# Vibration mode (MQTT)
# ------------------------------------------------------------------------------------------
async def _run_and_collect(
    mosquitto: MosquittoServer, topic: str, expected: int, *args: str
) -> tuple[int, str, list[tuple[str, dict]]]:
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
        await client.subscribe(topic, qos=1)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "scripts/generate_data.py",
            "--mode",
            "vibration",
            "--mqtt",
            mosquitto.url,
            *args,
            cwd=ROOT,
            env=_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        received: list[tuple[str, dict]] = []

        async def collect() -> None:
            async for m in client.messages:
                received.append((m.topic.value, json.loads(bytes(m.payload))))
                if len(received) == expected:
                    return

        await asyncio.wait_for(collect(), 15)
    return proc.returncode, out.decode(), received


@pytest.mark.integration
async def test_vibration_windows_arrive_on_a_custom_topic(mosquitto: MosquittoServer) -> None:
    topic = "factory/motor_01/vibration/raw"
    _, out, received = await _run_and_collect(
        mosquitto,
        topic,
        5,
        "--topic",
        topic,
        "--fast",
        "--duration",
        "1",
        "--interval",
        "0.2",
        "--fs",
        "1000",
        "--samples",
        "128",
        "--faulty",
        "--fault",
        "imbalance",
        "--severity",
        "severe",
        "--seed",
        "3",
        "--start",
        START.isoformat(),
    )
    assert len(received) == 5
    ok = _lines(out, "[OK]")
    for i, ((t, payload), line) in enumerate(zip(received, ok, strict=True)):
        assert t == topic
        assert set(payload) == {"motor_id", "ts", "x", "y", "z", "fs_hz"}
        batch = VibrationBatchIn.model_validate(payload)
        assert batch.motor_id == "motor_01" and batch.fs_hz == 1000.0
        assert len(batch.x) == len(batch.y or []) == len(batch.z or []) == 128
        assert payload["ts"] == pytest.approx((START + timedelta(seconds=0.2 * i)).timestamp(), abs=1e-6)
        m = OK_WINDOW.match(line)
        assert m, line
        assert m.group(1, 2, 3, 4) == (str(i + 1), "5", "1000", "128")
        w = np.array([payload["x"], payload["y"], payload["z"]])
        r = synth.rms(w)
        assert [float(m.group(k)) for k in (5, 6, 7)] == pytest.approx(list(r), abs=0.006)
        # severe imbalance: 1x radial 0.05 + 2 × 0.25 g peak, ≈ 0.39 g RMS on x; axial z stays ≈ 0.02 g
        assert r[0] > 0.3 and r[2] < 0.05
    assert tail(out) == "[COMPLETE] Sent 5 events, 0 failed"


@pytest.mark.integration
async def test_vibration_default_topic_is_the_raw_vibration_topic(mosquitto: MosquittoServer) -> None:
    topic = topics.raw_vibration("pump_7")
    _, out, received = await _run_and_collect(
        mosquitto, topic, 2, "--asset_id", "pump_7", "--fast", "--duration", "0.5", "--interval", "0.25"
    )
    assert [t for t, _ in received] == [topic, topic]
    assert all(p["motor_id"] == "pump_7" and p["fs_hz"] == 500.0 and len(p["x"]) == 256 for _, p in received)
    assert received[1][1]["ts"] - received[0][1]["ts"] == pytest.approx(0.25, abs=1e-6)
    assert all(math.isfinite(v) for _, p in received for v in p["z"])
    assert tail(out) == "[COMPLETE] Sent 2 events, 0 failed"


def test_vibration_mode_with_no_broker_counts_failures() -> None:
    res = run_cli(
        "--mode",
        "vibration",
        "--mqtt",
        f"mqtt://127.0.0.1:{free_port()}",
        "--fast",
        "--duration",
        "0.4",
        "--interval",
        "0.2",
    )
    assert res.returncode == 1
    assert len(_lines(res.stdout, "[FAIL] Window")) == 2
    assert tail(res.stdout) == "[COMPLETE] Sent 0 events, 2 failed"
    assert "Traceback" not in res.stderr


@pytest.mark.integration
def test_vibration_sigint_mid_run_prints_the_summary_and_exits_130(mosquitto: MosquittoServer) -> None:
    proc = subprocess.Popen(
        [sys.executable, "scripts/generate_data.py", "--mode", "vibration", "--mqtt", mosquitto.url,
         "--duration", "60", "--interval", "0.1", "--faulty"],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        seen = [proc.stdout.readline().rstrip("\n") for _ in range(12)]  # the banner and two windows
        assert seen[1] == "PREDICTIVE MAINTENANCE - DATA GENERATOR", seen
        assert seen[9] == RULE and all(OK_WINDOW.match(s) for s in seen[10:]), seen
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = seen + rest.splitlines()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    sent = len([s for s in lines if s.startswith("[OK]")])
    assert tail("\n".join(lines)) == f"[COMPLETE] Sent {sent} events, 0 failed"
