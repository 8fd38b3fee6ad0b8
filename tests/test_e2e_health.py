"""Issue 4 acceptance on real Mosquitto + real InfluxDB with every service running: an hour of healthy
data keeps health >= 95 with no alarm; a severe fault drives health below 50 and raises exactly one
persistent alarm within 2 s of its first reading; the alarm can be acknowledged through the API; after the
fault it clears by itself, health recovers and the degradation index remembers; a mild fault moves
health less than the severe one. Data time is accelerated (1 reading per data second)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from shared import topics
from tests.support.pipeline import Collector, publish, settle, simple_payloads
from tests.support.servers import InfluxServer, MosquittoServer
from tests.support.stack import Stack, api
from tests.support.stored import wait_features_caught_up, wait_stored

pytestmark = pytest.mark.integration
ASSET = "e2e_health"


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, mosquitto: MosquittoServer, influxd: InfluxServer
) -> Iterator[Stack]:
    s = Stack(
        tmp_path_factory.mktemp("stack"),
        mqtt_url=mosquitto.url,
        influx_url=influxd.url,
        extra_env={"BATCH_WINDOW": "10"},
    ).start()
    yield s
    s.stop()


async def caught_up(col: Collector, data_ts: float, stall: float = 120, limit: float = 900) -> None:
    """Wait until the health stage has published an assessment at data time >= ``data_ts``: fail when
    its data time stops advancing for ``stall`` s (stuck), or after ``limit`` s in all (a loaded
    machine is slow, not stuck: a CI run beside other jobs fell behind a fixed 120 s)."""
    from datetime import datetime

    def latest() -> float:
        h = col.on(topics.health(ASSET))
        return datetime.fromisoformat(h[-1]["ts"]).timestamp() if h else 0.0

    start = moved = time.monotonic()
    seen = latest()
    while (now := latest()) < data_ts:
        if now > seen:
            seen, moved = now, time.monotonic()
        assert time.monotonic() - moved < stall, f"health stuck at {now} < {data_ts} for {stall} s"
        assert time.monotonic() - start < limit, f"health at {now} < {data_ts} after {limit} s"
        await asyncio.sleep(0.2)


async def test_health_alarm_lifecycle(stack: Stack) -> None:
    url, raw = stack.broker_url, topics.raw_simple(ASSET)
    t = time.time() - 3 * 3600
    # 65 minutes to calibrate on: the legacy model's 1 h rolling voltage mean must have settled
    await publish(url, raw, simple_payloads(ASSET, 3900, t, 1.0, seed=1))
    t += 3900
    await wait_stored(stack, ASSET, "readings", 3900)
    await wait_features_caught_up(stack, ASSET, "legacy")  # what calibration reads
    r = api(stack, "POST", "/calibration/start?wait=true", json={"asset_id": ASSET, "lookback_minutes": 65})
    assert r.status_code == 200, r.text

    async with Collector(url, [topics.health(ASSET), topics.alarm(ASSET), topics.SCORE_FILTER]) as col:
        # one hour of healthy operation
        await publish(url, raw, simple_payloads(ASSET, 3600, t, 1.0, seed=2))
        t += 3600
        await caught_up(col, t - 1.5)
        healthy = col.on(topics.health(ASSET))
        assert len(healthy) >= 1000  # at most one per data second; scores of two models interleave
        assert min(h["health_score"] for h in healthy) >= 95, min(h["health_score"] for h in healthy)
        assert col.on(topics.alarm(ASSET)) == []
        assert healthy[-1]["degradation_index"] == 0

        # severe fault, paced like a live device (10 readings per wall second)
        n_before = len(col.messages)
        severe = simple_payloads(ASSET, 120, t, 1.0, faulty=True, fault="voltage_spike", seed=3)
        t += 120
        loop = asyncio.get_running_loop()
        sent_at = loop.time()
        await publish(url, raw, severe, pace=0.1)
        _, opened, arrived = await col.wait_for(
            lambda tp, p: tp == topics.alarm(ASSET) and p["state"] == "ACTIVE", timeout=30
        )
        latency = arrived - sent_at
        print(f"first faulty reading -> alarm: {latency:.2f} s")
        assert latency < 2.0
        await settle(col, topics.health(ASSET), 0, quiet=2)
        fault_health = [p for tp, p, _ in col.messages[n_before:] if tp == topics.health(ASSET)]
        severe_min = min(h["health_score"] for h in fault_health)
        assert severe_min < 50
        opened_ids = {
            p["alarm_id"]
            for tp, p, _ in col.messages[n_before:]
            if tp == topics.alarm(ASSET) and p["state"] == "ACTIVE"
        }
        assert opened_ids == {opened["alarm_id"]}, "exactly one persistent alarm"
        assert any(i["signal"].startswith("voltage") for i in fault_health[-1]["insights"])

        # acknowledge through the API (and bad requests rejected clearly)
        alarm_id = opened["alarm_id"]
        ack = api(stack, "POST", f"/alarms/{alarm_id}/ack", json={"who": "ana", "note": "on my way"})
        assert ack.status_code == 200 and ack.json()["state"] == "ACKNOWLEDGED", ack.text
        assert api(stack, "POST", "/alarms/not-an-id/ack", json={"who": "ana"}).status_code == 422
        assert api(stack, "POST", f"/alarms/{'0' * 32}/ack", json={"who": "ana"}).status_code == 404

        # healthy again: the alarm clears by itself, health recovers, the degradation index remembers
        await publish(url, raw, simple_payloads(ASSET, 600, t, 1.0, seed=4))
        t += 600
        await caught_up(col, t - 1.5)
        cleared = [p for tp, p, _ in col.messages if tp == topics.alarm(ASSET) and p["state"] == "RESOLVED"]
        assert cleared and cleared[-1]["auto_cleared"] and cleared[-1]["alarm_id"] == alarm_id
        last = col.on(topics.health(ASSET))[-1]
        # Back to LOW risk with no alarm. Not yet 100: the guide's 1 h rolling voltage mean still holds
        # the clipped burst (~0.4 V, outside the few 0.1 V its calibration saw), so the legacy forest
        # scores healthy readings at ~0.8x its threshold until the fault leaves the hour (measured:
        # health 83-90 over these 10 minutes; 96.5 with the pre-guide legacy features).
        assert last["health_score"] >= 80 and last["risk_level"] == "LOW" and last["active_alarms"] == 0
        di_after_severe = last["degradation_index"]
        assert di_after_severe > 0
        again = api(
            stack,
            "POST",
            f"/alarms/{alarm_id}/resolve",
            json={"who": "ana", "note": "x", "action_code": "false_alarm"},
        )
        assert again.status_code == 409, again.text

        # a mild fault (voltage 3-4 sigma high) moves health less than the severe one
        mild = simple_payloads(ASSET, 120, t, 1.0, seed=5)
        for p in mild:
            p["voltage_v"] += 7.0
        n_before = len(col.messages)
        await publish(url, raw, mild)
        t += 120
        await caught_up(col, t - 1.5)
        mild_health = [p for tp, p, _ in col.messages[n_before:] if tp == topics.health(ASSET)]
        assert min(h["health_score"] for h in mild_health) > severe_min
        assert mild_health[-1]["degradation_index"] >= di_after_severe

    status = api(stack, "GET", "/monitoring/status").json()["assets"][ASSET]
    for key in ("health_score", "risk_level", "maintenance_window_days", "degradation_index", "insights"):
        assert key in status
    hist = api(stack, "GET", f"/assets/{ASSET}/health", params={"minutes": 600}).json()
    assert hist["count"] > 0
    alarms = api(stack, "GET", "/alarms", params={"asset_id": ASSET}).json()["alarms"]
    assert any(a["alarm_id"] == alarm_id and a["state"] == "RESOLVED" for a in alarms)
