"""Fault injection on a full stack: a durable Mosquitto, service processes found and killed, an HTTP
sender that retries until each reading is accepted, and the accounting of what was stored and scored.

Everything stays on loopback; every loop is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import numpy as np

from shared.settings import parse_mqtt_url
from shared.synth import simple_reading
from tests.support import servers
from tests.support.servers import free_port, require_binary, wait_port


class DurableMosquitto:
    """Mosquitto with persistence on (autosave every second), killable with SIGKILL and restartable on
    the same port and data; in-flight window and queues large enough for acknowledgement batches."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.binary = require_binary("mosquitto")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> DurableMosquitto:
        servers.check_may_start("mosquitto")
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\nuser root\n"
            f"persistence true\npersistence_location {self.workdir}/\nautosave_interval 1\n"
            "max_inflight_messages 1000\nmax_queued_messages 1000000\nmessage_size_limit 0\n"
        )
        log = open(self.workdir / "mosquitto.log", "ab")
        self.proc = subprocess.Popen([self.binary, "-c", str(conf)], stdout=log, stderr=log)
        wait_port(self.port)
        return self

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None


def children(parent: int) -> dict[int, list[str]]:
    """``{pid: argv}`` of the live child processes of ``parent`` (from /proc)."""
    out: dict[int, list[str]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == parent:
                out[int(d.name)] = (d / "cmdline").read_bytes().decode().split("\0")
        except (OSError, ValueError, IndexError):
            continue
    return out


def service_pid(launcher_pid: int, name: str) -> int | None:
    """The pid of the launcher's child process ``name`` (a name of ``deploy.run.SERVICES``)."""
    from deploy.run import SERVICES

    module, args = next((m, a) for n, m, a in SERVICES if n == name)
    for pid, argv in children(launcher_pid).items():
        if module in argv and all(a in argv for a in args):
            return pid
    return None


def kill9(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------------------------------------------
# The sender: every reading until it is accepted, in order (the legacy features need time order).
# ---------------------------------------------------------------------------------------------------
@dataclass
class Sent:
    """What the sender saw: accepted event ids in order, attempts and refusals."""

    accepted: list[str] = field(default_factory=list)
    attempts: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    #: Event ids assigned by the gateway to attempts that got no answer (maybe stored, not accepted).
    unanswered: list[str] = field(default_factory=list)


def payloads(asset: str, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` healthy readings; every other one carries a client event id (the rest get one at the edge);
    none carries a timestamp (the gateway stamps the arrival time)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        d = simple_reading(rng, False, None)
        p = {
            "asset_id": asset,
            **{k: d[k] for k in ("voltage_v", "current_a", "power_factor", "vibration_g")},
        }
        if i % 2 == 0:
            p["event_id"] = f"{seed:08x}{i:024x}"
        out.append(p)
    return out


async def send_all(
    api: str,
    headers: dict[str, str],
    items: list[dict[str, Any]],
    *,
    rate_hz: float = 100.0,
    on_sent: Callable[[int], None] | None = None,
    deadline_s: float = 240.0,
    into: Sent | None = None,
) -> Sent:
    """POST each reading until it is accepted (202), pacing at ``rate_hz``. A 503 names the event id and
    timestamp to retry with; an attempt without an answer (gateway gone) is retried as it was sent."""
    sent = into if into is not None else Sent()
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with httpx.AsyncClient(base_url=api, headers=headers, timeout=10) as client:
        for i, body in enumerate(items):
            await asyncio.sleep(max(0.0, start + i / rate_hz - loop.time()))
            await _until_accepted(client, body, sent, start + deadline_s)
            if on_sent is not None:
                on_sent(i + 1)
    return sent


async def _until_accepted(client: httpx.AsyncClient, body: dict[str, Any], sent: Sent, end: float) -> None:
    loop = asyncio.get_running_loop()
    while loop.time() < end:
        sent.attempts += 1
        try:
            r = await client.post("/api/v1/data/simple", json=body)
        except httpx.HTTPError as exc:
            sent.refused[type(exc).__name__] += 1
            await asyncio.sleep(0.2)
            continue
        if r.status_code == 202:
            sent.accepted.append(r.json()["event_id"])
            return
        if r.status_code != 503:
            raise AssertionError(f"unexpected {r.status_code}: {r.text}")
        sent.refused["503"] += 1
        retry = r.json()  # the identity to retry with (a gateway before issue 10 gave none)
        body = {**body, **{k: retry[k] for k in ("event_id", "timestamp") if k in retry}}
        await asyncio.sleep(min(float(r.headers.get("Retry-After", "1")), 0.5))
    raise AssertionError("a reading was not accepted in time")


# ---------------------------------------------------------------------------------------------------
# Watching the scores on the bus (a second score of one event with other content = scored twice).
# ---------------------------------------------------------------------------------------------------
@dataclass
class ScoreWatch:
    url: str
    asset: str
    seen: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))

    async def run(self, ready: asyncio.Event) -> None:
        b = parse_mqtt_url(self.url)
        topic = f"rotorwatch/v1/scores/{self.asset}/+"
        for _ in range(10_000):  # reconnects across broker restarts, bounded
            try:
                async with aiomqtt.Client(b.host, b.port) as c:
                    await c.subscribe(topic, qos=1)
                    ready.set()
                    async for m in c.messages:
                        s = json.loads(bytes(m.payload or b"{}"))
                        content = {k: v for k, v in s.items() if k != "ts"}
                        key = (s["event_id"], s["model"])
                        self.seen[key].add(json.dumps(content, sort_keys=True))
            except aiomqtt.MqttError:
                await asyncio.sleep(0.2)

    def twice(self) -> int:
        return sum(1 for v in self.seen.values() if len(v) > 1)


def log_events(path: Path, event: str, after: float) -> list[dict[str, Any]]:
    """JSON log lines of ``event`` logged after the Unix time ``after``."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if f'"{event}"' not in line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        ts = datetime.fromisoformat(rec.get("timestamp", "1970-01-01T00:00:00+00:00")).timestamp()
        if rec.get("event") == event and ts >= after:
            out.append({**rec, "_t": ts})
    return out


async def wait_for(check: Callable[[], bool], timeout: float, what: str, poll_s: float = 0.1) -> None:
    """Return once ``check()`` holds (looked at every ``poll_s`` s); AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(poll_s)
