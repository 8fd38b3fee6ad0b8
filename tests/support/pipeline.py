"""Helpers for end-to-end tests: publish device data with data timestamps, collect pipeline output."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
import numpy as np

from shared.settings import parse_mqtt_url
from shared.synth import simple_reading, vibration_window


def client(url: str) -> aiomqtt.Client:
    """A client for ``url`` (``mqtt://[user:pass@]host:port``: logged in when the URL has user info)."""
    b = parse_mqtt_url(url)
    return aiomqtt.Client(
        b.host, b.port, username=b.username, password=b.password, max_queued_outgoing_messages=None
    )


def simple_payloads(
    asset: str, n: int, t0: float, dt: float, *, faulty: bool = False, fault: str | None = None, seed: int = 0
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        d = simple_reading(rng, faulty, fault)
        out.append(
            {
                "asset_id": asset,
                "voltage_v": d["voltage_v"],
                "current_a": d["current_a"],
                "power_factor": d["power_factor"],
                "vibration_g": d["vibration_g"],
                "is_faulty": faulty,
                "timestamp": t0 + i * dt,
            }
        )
    return out


def window_payloads(
    asset: str,
    n: int,
    t0: float,
    *,
    fs: float = 500.0,
    samples: int = 256,
    rpm: float = 1800.0,
    fault: str | None = None,
    severity: str = "medium",
    seed: int = 0,
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    dur = samples / fs
    out = []
    for i in range(n):
        t = t0 + i * dur
        w = vibration_window(rng, fs, samples, rpm=rpm, fault=fault, severity=severity, t0_s=t)
        out.append(
            {
                "motor_id": asset,
                "ts": t,
                "x": w[0].tolist(),
                "y": w[1].tolist(),
                "z": w[2].tolist(),
                "fs_hz": fs,
            }
        )
    return out


async def publish(url: str, topic: str, payloads: Sequence[dict[str, Any]], *, pace: float = 0.0) -> None:
    async with client(url) as c:
        for p in payloads:
            await c.publish(topic, json.dumps(p), qos=1)
            if pace:
                await asyncio.sleep(pace)


@dataclass
class Collector:
    """Subscribes in the background and keeps every message (topic, decoded JSON, arrival time)."""

    url: str
    filters: Sequence[str]
    messages: list[tuple[str, dict[str, Any], float]] = field(default_factory=list)

    async def __aenter__(self) -> Collector:
        self._ready = asyncio.Event()
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._ready.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        async with client(self.url) as c:
            for f in self.filters:
                await c.subscribe(f, qos=1)
            self._ready.set()
            async for m in c.messages:
                if m.payload:
                    self.messages.append((m.topic.value, json.loads(m.payload), loop.time()))

    def on(self, filter_: str) -> list[dict[str, Any]]:
        from shared.bus import topic_matches

        return [p for t, p, _ in self.messages if topic_matches(filter_, t)]

    async def wait_for(self, pred: Any, timeout: float = 30.0) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            for t, p, at in self.messages:
                if pred(t, p):
                    return t, p, at
            await asyncio.sleep(0.05)
        raise TimeoutError("condition not met")


async def settle(
    col: Collector, filter_: str, at_least: int, timeout: float = 90.0, quiet: float = 2.0
) -> int:
    """Wait until ``at_least`` messages match ``filter_`` and then none arrive for ``quiet`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last_n, last_change = -1, loop.time()
    while loop.time() < deadline:
        n = len(col.on(filter_))
        if n != last_n:
            last_n, last_change = n, loop.time()
        elif n >= at_least and loop.time() - last_change >= quiet:
            return n
        await asyncio.sleep(0.1)
    return last_n
