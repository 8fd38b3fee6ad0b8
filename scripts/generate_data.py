#!/usr/bin/env python
"""Send synthetic sensor data to a running Rotorwatch.

Simple mode POSTs readings (V, A, power factor, g) to ``{api}/api/v1/data/simple``; vibration mode
publishes 3-axis accelerometer windows (g) to MQTT. The data come from :mod:`shared.synth`.

Examples (from the repository root)::

    python scripts/generate_data.py --duration 30 --interval 0.2
    python scripts/generate_data.py --faulty --fault pf_drop --duration 10
    python scripts/generate_data.py --fast --duration 600 --interval 1 --seed 7
    python scripts/generate_data.py --mode vibration --fault bearing_outer --severity severe \\
        --topic factory/motor_01/vibration/raw

The default endpoint follows ``make run``'s settings: ``http://localhost:$GATEWAY_PORT`` (8000) and
``$MQTT_URL``, else ``mqtt://localhost:$EMBEDDED_MQTT_PORT`` (1883). Any Python runs it: without the
packages it re-runs itself with the repository's ``.venv`` (``scripts/_bootstrap.py``).

Exit code: 0 when every event was sent, 1 when some failed, 2 for bad arguments, 130 on Ctrl+C.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # any Python: the repository's .venv when this one lacks the packages
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _bootstrap

    _bootstrap.ensure()

import argparse
import asyncio
import contextlib
import json
import math
import signal
import ssl
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from shared import synth, topics  # noqa: E402
from shared.apikey import API_KEY_HELP, auth_headers, script_api_key  # noqa: E402
from shared.messages import (  # noqa: E402
    FS_MAX_HZ,
    FS_MIN_HZ,
    MAX_WINDOW,
    MIN_WINDOW,
    SimpleReadingIn,
    VibrationBatchIn,
)
from shared.secrets import with_device_login  # noqa: E402
from shared.settings import BrokerAddress, Settings, parse_mqtt_url  # noqa: E402

SIMPLE_PATH = "/api/v1/data/simple"
RULE = "=" * 60
HTTP_TIMEOUT_S = 5.0
MQTT_TIMEOUT_S = 5.0
EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


@dataclass
class Stats:
    total: int
    sent: int = 0
    failed: int = 0


def say(line: str) -> None:
    print(line, flush=True)


# ---------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------
def default_api(settings: Settings) -> str:
    """The gateway ``make run`` starts with these settings: ``http://localhost:<GATEWAY_PORT>`` (its
    host when bound to a specific non-loopback address)."""
    host = settings.gateway_host
    host = "localhost" if host in ("", "0.0.0.0", "::", "127.0.0.1", "::1") else host
    return f"http://{'[' + host + ']' if ':' in host else host}:{settings.gateway_port}"


def default_mqtt(settings: Settings) -> str:
    """``MQTT_URL``, else the embedded broker ``make run`` starts (``EMBEDDED_MQTT_PORT``)."""
    return settings.mqtt_url or f"mqtt://localhost:{settings.embedded_mqtt_port}"


def build_parser() -> argparse.ArgumentParser:
    settings = Settings()
    p = argparse.ArgumentParser(
        prog="generate_data.py",
        description="Send synthetic healthy or faulty sensor data to Rotorwatch (REST or MQTT).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--asset_id", default="motor_01", help="asset id (motor id in vibration mode)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of data")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between events (0.1 = 10 Hz)")
    health = p.add_mutually_exclusive_group()
    health.add_argument("--healthy", dest="faulty", action="store_false", help="healthy machine (default)")
    health.add_argument("--faulty", dest="faulty", action="store_true", help="every event is faulty")
    p.set_defaults(faulty=None)
    p.add_argument(
        "--fault",
        default=None,
        help=(
            "force one fault kind (implies --faulty); without it a kind is drawn per event. "
            f"simple: {', '.join(synth.FAULT_KINDS_SIMPLE)}; "
            f"vibration: {', '.join(synth.FAULT_KINDS_VIBRATION)}"
        ),
    )
    p.add_argument(
        "--api",
        default=default_api(settings),
        help="gateway base URL (simple mode; default: $GATEWAY_PORT)",
    )
    p.add_argument("--api-key", default=None, help=API_KEY_HELP)
    p.add_argument("--seed", type=int, default=None, help="random seed (reproducible values)")
    p.add_argument("--mode", choices=("simple", "vibration"), default="simple")
    p.add_argument(
        "--fast",
        action="store_true",
        help="accelerated time: no sleeping; timestamps advance by --interval from --start",
    )
    p.add_argument(
        "--start", default=None, help="ISO-8601 time of the first event with --fast (default: now - duration)"
    )
    p.add_argument(
        "--mqtt",
        default=default_mqtt(settings),
        help="broker URL (vibration mode; default $MQTT_URL, else the embedded broker's $EMBEDDED_MQTT_PORT)",
    )
    p.add_argument("--topic", default=None, help="MQTT topic (default rotorwatch/v1/raw/<asset>/vibration)")
    p.add_argument("--fs", type=float, default=500.0, help="sample rate, Hz (vibration mode)")
    p.add_argument("--samples", type=int, default=256, help="samples per window (vibration mode)")
    p.add_argument("--rpm", type=float, default=1800.0, help="shaft speed, rev/min (vibration mode)")
    p.add_argument("--severity", choices=synth.SEVERITIES, default="medium", help="fault severity")
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse and cross-check arguments; exits with code 2 and a precise message on bad input."""
    p = build_parser()
    a = p.parse_args(argv)
    if not topics.valid_asset_id(a.asset_id):
        p.error(f"--asset_id {a.asset_id!r} must match {topics.ASSET_ID_PATTERN}")
    if not (math.isfinite(a.duration) and a.duration > 0):
        p.error(f"--duration must be > 0 seconds, got {a.duration:g}")
    if not (math.isfinite(a.interval) and a.interval > 0):
        p.error(f"--interval must be > 0 seconds, got {a.interval:g}")
    a.count = round(a.duration / a.interval)
    if a.count < 1:
        p.error(f"--duration {a.duration:g} / --interval {a.interval:g} gives no events")
    kinds = synth.FAULT_KINDS_SIMPLE if a.mode == "simple" else synth.FAULT_KINDS_VIBRATION
    if a.fault is not None:
        if a.fault not in kinds:
            p.error(f"--fault {a.fault!r} is not a {a.mode} fault; choose from {', '.join(kinds)}")
        if a.faulty is False:
            p.error("--fault contradicts --healthy")
        a.faulty = True
    a.faulty = bool(a.faulty)
    if a.start is not None:
        if not a.fast:
            p.error("--start needs --fast (real-time runs use the current time)")
        try:
            start = datetime.fromisoformat(a.start)
        except ValueError:
            p.error(f"--start {a.start!r} is not an ISO-8601 time")
        a.start = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
    if a.mode == "simple":
        if not a.api.startswith(("http://", "https://")):
            p.error(f"--api must be an http:// or https:// URL, got {a.api!r}")
        a.api = a.api.rstrip("/")
    else:
        try:
            # No user in the URL: MQTT_USERNAME/MQTT_PASSWORD, else make run's development device user.
            a.broker = with_device_login(parse_mqtt_url(a.mqtt), Settings().data_dir)
        except ValueError as exc:
            p.error(f"--mqtt: {exc}")
        if a.topic is None:
            a.topic = topics.raw_vibration(a.asset_id)
        elif not a.topic or any(c in a.topic for c in "+#") or "\x00" in a.topic:
            p.error(f"--topic {a.topic!r} must be a non-empty topic name without wildcards")
        if not (math.isfinite(a.fs) and FS_MIN_HZ <= a.fs <= FS_MAX_HZ):
            p.error(f"--fs must be in {FS_MIN_HZ:g}..{FS_MAX_HZ:g} Hz, got {a.fs:g}")
        if not MIN_WINDOW <= a.samples <= MAX_WINDOW:
            p.error(f"--samples must be in {MIN_WINDOW}..{MAX_WINDOW}, got {a.samples}")
        if not (math.isfinite(a.rpm) and 0 < a.rpm / 60 < a.fs / 2):
            p.error(f"--rpm must be > 0 with rpm/60 below Nyquist {a.fs / 2:g} Hz, got {a.rpm:g}")
    return a


class Clock:
    """Event times. Real time: event i is due at start + i·interval on the monotonic clock (no drift)
    and stamped with the wall clock; ``--fast``: no waiting, stamps are start + i·interval."""

    def __init__(self, a: argparse.Namespace) -> None:
        self.fast: bool = a.fast
        self.interval: float = a.interval
        self.mono0 = time.monotonic()
        if a.fast:
            self.start = a.start or (datetime.now(UTC) - timedelta(seconds=a.duration))
        else:
            self.start = datetime.now(UTC)

    def delay(self, i: int) -> float:
        """Seconds to wait before event ``i`` (0 when fast or late)."""
        return 0.0 if self.fast else max(0.0, self.mono0 + i * self.interval - time.monotonic())

    def stamp(self, i: int) -> datetime:
        return self.start + timedelta(seconds=i * self.interval) if self.fast else datetime.now(UTC)


# ---------------------------------------------------------------------------------------------
# Simple mode (REST)
# ---------------------------------------------------------------------------------------------
def simple_body(a: argparse.Namespace, rng: np.random.Generator, ts: datetime) -> dict[str, Any]:
    """One validated request body for ``POST /api/v1/data/simple``."""
    r = synth.simple_reading(rng, a.faulty, a.fault)
    body = {
        "asset_id": a.asset_id,
        "voltage_v": round(r["voltage_v"], 2),
        "current_a": round(r["current_a"], 3),
        "power_factor": round(r["power_factor"], 4),
        "vibration_g": round(r["vibration_g"], 4),
        "is_faulty": r["is_faulty"],
        "timestamp": ts.isoformat(),
        "event_id": uuid.uuid4().hex,
    }
    SimpleReadingIn.model_validate(body)
    return body


def _event_id(resp: httpx.Response, sent: str) -> str:
    try:
        data = resp.json()
    except ValueError:
        return sent
    if isinstance(data, dict):
        for key in ("event_id", "id"):
            if isinstance(data.get(key), str) and data[key]:
                return data[key]
    return sent


def run_simple(a: argparse.Namespace, stats: Stats) -> None:
    rng = np.random.default_rng(a.seed)
    clock = Clock(a)
    url = a.api + SIMPLE_PATH
    headers = auth_headers(script_api_key(a.api_key))
    with httpx.Client(timeout=HTTP_TIMEOUT_S, headers=headers) as client:
        for i in range(a.count):
            if (d := clock.delay(i)) > 0:
                time.sleep(d)
            body = simple_body(a, rng, clock.stamp(i))
            try:
                resp = client.post(url, json=body)
            except httpx.HTTPError as exc:
                stats.failed += 1
                say(f"[FAIL] Event {i + 1}/{a.count} | {type(exc).__name__}: {exc or 'no detail'} ({url})")
                continue
            if not resp.is_success:
                stats.failed += 1
                detail = " ".join(resp.text.split())[:200]
                say(f"[FAIL] Event {i + 1}/{a.count} | HTTP {resp.status_code}: {detail}")
                continue
            stats.sent += 1
            eid = _event_id(resp, body["event_id"])
            say(
                f"[OK] Sent event {eid[:8]}... | V={body['voltage_v']:.1f}V, I={body['current_a']:.1f}A, "
                f"PF={body['power_factor']:.2f}, Vib={body['vibration_g']:.3f}g"
            )


# ---------------------------------------------------------------------------------------------
# Vibration mode (MQTT)
# ---------------------------------------------------------------------------------------------
def vibration_payload(
    a: argparse.Namespace, rng: np.random.Generator, ts: datetime, t0_s: float
) -> tuple[dict[str, Any], np.ndarray]:
    """One validated window payload ``{motor_id, ts, x, y, z, fs_hz}`` (ts: epoch seconds) and its RMS (g)."""
    kinds = synth.FAULT_KINDS_VIBRATION
    fault = (a.fault or kinds[int(rng.integers(len(kinds)))]) if a.faulty else None
    w = synth.vibration_window(rng, a.fs, a.samples, rpm=a.rpm, fault=fault, severity=a.severity, t0_s=t0_s)
    w = np.round(w, 6)
    payload = {
        "motor_id": a.asset_id,
        "ts": ts.timestamp(),
        "x": w[0].tolist(),
        "y": w[1].tolist(),
        "z": w[2].tolist(),
        "fs_hz": a.fs,
    }
    VibrationBatchIn.model_validate(payload)
    return payload, synth.rms(w)


def _mqtt_client(b: BrokerAddress) -> aiomqtt.Client:
    return aiomqtt.Client(
        b.host,
        b.port,
        username=b.username,
        password=b.password,
        tls_context=ssl.create_default_context() if b.tls else None,
        keepalive=30,
        timeout=MQTT_TIMEOUT_S,
    )


async def run_vibration(a: argparse.Namespace, stats: Stats) -> None:
    """Publish ``count`` windows with QoS 1; reconnects when the broker goes away (that window fails)."""
    rng = np.random.default_rng(a.seed)
    clock = Clock(a)
    where = f"{a.broker.host}:{a.broker.port}"
    client: aiomqtt.Client | None = None
    try:
        for i in range(a.count):
            if (d := clock.delay(i)) > 0:
                await asyncio.sleep(d)
            ts = clock.stamp(i)
            payload, r = vibration_payload(a, rng, ts, (ts - clock.start).total_seconds())
            try:
                if client is None:
                    fresh = _mqtt_client(a.broker)
                    await fresh.__aenter__()  # a failed connect needs no __aexit__
                    client = fresh
                await client.publish(a.topic, json.dumps(payload, allow_nan=False), qos=1)
            except aiomqtt.MqttError as exc:
                stats.failed += 1
                say(f"[FAIL] Window {i + 1}/{a.count} | MQTT {where}: {exc}")
                if client is not None:
                    with contextlib.suppress(Exception):
                        await client.__aexit__(None, None, None)
                    client = None
                continue
            stats.sent += 1
            say(
                f"[OK] Sent window {i + 1}/{a.count} | fs={a.fs:g}Hz n={a.samples} "
                f"rms=({r[0]:.2f}, {r[1]:.2f}, {r[2]:.2f})g"
            )
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(MQTT_TIMEOUT_S):
                    await client.__aexit__(None, None, None)


# ---------------------------------------------------------------------------------------------
def banner(a: argparse.Namespace) -> list[str]:
    """The run's header: asset, duration, interval, mode, endpoint (then what else the run does)."""
    if a.faulty:
        mode = f"FAULTY ({a.fault or 'fault kind drawn per event'}"
        mode += f", severity {a.severity})" if a.mode == "vibration" else ")"
    else:
        mode = "HEALTHY (normal operation)"
    target = f"{a.api}{SIMPLE_PATH}" if a.mode == "simple" else f"{a.mqtt} topic {a.topic}"
    timing = "accelerated (--fast: no waiting, timestamps one interval apart)" if a.fast else "real time"
    return [
        RULE,
        "PREDICTIVE MAINTENANCE - DATA GENERATOR",
        RULE,
        f"Asset ID: {a.asset_id}",
        f"Duration: {a.duration:g} seconds",
        f"Interval: {a.interval} seconds",
        f"Mode: {mode}",
        f"Endpoint: {target}",
        f"Events: {a.count} ({'readings' if a.mode == 'simple' else 'vibration windows'}), {timing}",
        RULE,
    ]


def main(argv: list[str] | None = None) -> int:
    # A parent shell may have started us with SIGINT ignored; Ctrl+C must always stop the run cleanly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    a = parse_args(argv)
    stats = Stats(total=a.count)
    for line in banner(a):
        say(line)
    interrupted = False
    try:
        if a.mode == "simple":
            run_simple(a, stats)
        else:
            asyncio.run(run_vibration(a, stats))
    except KeyboardInterrupt:
        interrupted = True
        say(f"[INTERRUPTED] Stopped after {stats.sent + stats.failed} of {stats.total} events")
    for line in (RULE, f"[COMPLETE] Sent {stats.sent} events, {stats.failed} failed", RULE):
        say(line)
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if stats.failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
