"""Issue 15 on real Mosquitto with every service running: a vibration sensor that gets stuck (every
sample the same value) raises a sensor alarm, and the machine's health stays where it was before the
fault (without the hold it would climb: a flat signal has no velocity, zone A). The asset is not
calibrated; its custom ISO zone limits put its healthy ~1.9 mm/s in zone C, which caps its health at 60,
so "unchanged" is a real claim. Once the sensor is fine again, the sensor alarm clears by itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from shared import topics
from tests.support.pipeline import Collector, publish, window_payloads
from tests.support.servers import MosquittoServer
from tests.support.stack import Stack, api

pytestmark = pytest.mark.integration
ASSET = "sensor_rig"
WINDOW_S = 256 / 500.0
#: Custom zone limits (mm/s): the synthetic healthy machine (~1.9 mm/s) is in zone C.
LIMITS = [0.5, 1.0, 4.0]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, mosquitto: MosquittoServer) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("sensor"), mqtt_url=mosquitto.url).start()
    yield s
    s.stop()


def data_ts(p: dict[str, Any]) -> float:
    return datetime.fromisoformat(p["ts"]).timestamp()


async def health_at(col: Collector, t: float, timeout: float = 60) -> dict[str, Any]:
    """The first health update at data time >= ``t``."""
    _, p, _ = await col.wait_for(lambda tp, p: tp == topics.health(ASSET) and data_ts(p) >= t, timeout)
    return p  # type: ignore[no-any-return]


def stuck(payloads: list[dict[str, Any]], value: float = 0.02) -> list[dict[str, Any]]:
    """The same windows with every sample of every axis at ``value`` g (a stuck sensor)."""
    return [p | {a: [value] * len(p[a]) for a in ("x", "y", "z")} for p in payloads]


async def test_a_stuck_sensor_raises_a_sensor_alarm_and_leaves_machine_health_unchanged(stack: Stack) -> None:
    url, raw = stack.broker_url, topics.raw_vibration(ASSET)
    filters = [topics.health(ASSET), topics.alarm(ASSET), topics.sensor(ASSET), topics.asset_config(ASSET)]
    async with Collector(url, filters) as col:
        cfg = {"name": "rig", "rpm": 1800, "iso": {"zone_limits_mm_s": LIMITS}}
        r = await asyncio.to_thread(api, stack, "PUT", f"/assets/{ASSET}/config", json=cfg)
        assert r.status_code == 200, r.text
        await col.wait_for(lambda tp, p: tp == topics.asset_config(ASSET))
        t = time.time() - 3600

        healthy = window_payloads(ASSET, 120, t, seed=1)  # ~61 s of data
        await publish(url, raw, healthy)
        t += 120 * WINDOW_S
        before = await health_at(col, t - 2 * WINDOW_S - 1.0)
        assert before["iso_zone"] == "C" and before["health_score"] <= 60 and before["sensor_fault"] is None
        assert col.on(topics.sensor(ASSET)) == []  # a healthy sensor is never told about

        n = len(col.messages)
        await publish(url, raw, stuck(window_payloads(ASSET, 80, t, seed=2)))  # ~41 s stuck
        fault_at = t
        t += 80 * WINDOW_S
        _, opened, _ = await col.wait_for(
            lambda tp, p: tp == topics.alarm(ASSET) and p["source"] == "sensor" and p["state"] == "ACTIVE"
        )
        assert "Axis x is flat" in opened["reason"], opened
        status = col.on(topics.sensor(ASSET))[-1]
        assert status["status"] == "fault"
        assert datetime.fromisoformat(status["since"]).timestamp() == pytest.approx(fault_at, abs=1e-3)
        await health_at(col, t - 2 * WINDOW_S - 1.0)
        last_healthy = [p for tp, p, _ in col.messages[:n] if tp == topics.health(ASSET)][-1]
        during = [p for tp, p, _ in col.messages[n:] if tp == topics.health(ASSET)]
        scores = sorted({h["health_score"] for h in during})
        assert scores == [last_healthy["health_score"]], scores  # without the hold it climbs from 60
        assert all(h["sensor_fault"] and "flat" in h["sensor_fault"] for h in during)
        machine = [
            p for tp, p, _ in col.messages[n:] if tp == topics.alarm(ASSET) and p["source"] != "sensor"
        ]
        assert [a for a in machine if a["state"] == "ACTIVE" and a["previous"] is None] == []

        await publish(url, raw, window_payloads(ASSET, 60, t, seed=3))  # the sensor works again
        t += 60 * WINDOW_S
        _, cleared, _ = await col.wait_for(
            lambda tp, p: tp == topics.alarm(ASSET) and p["source"] == "sensor" and p["state"] == "RESOLVED"
        )
        assert cleared["auto_cleared"] and cleared["alarm_id"] == opened["alarm_id"]
        assert col.on(topics.sensor(ASSET))[-1]["status"] == "ok"
        after = await health_at(col, t - 2 * WINDOW_S - 1.0)
        assert after["sensor_fault"] is None and after["iso_zone"] == "C"
