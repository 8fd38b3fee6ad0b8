"""Issue 11, timestamps: a burst of readings over HTTP without device timestamps, then at once a
calibration. The whole stack (``python -m deploy.run``) on a real Mosquitto and a real InfluxDB.

- The gateway stamps each reading's arrival: every stored reading's time lies between its request's
  send and its 202 (ingest stamped them up to 47 s late under a burst before).
- The calibration finds every reading of the burst: the calibrator waits until the store holds the
  data up to the request's time (the historian was still behind and it found 0 before).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.support.pipeline import simple_payloads
from tests.support.servers import InfluxServer, MosquittoServer
from tests.support.stack import Stack, api

pytestmark = pytest.mark.integration

BURST = 600
CONCURRENCY = 16
ASSET = "burst_1"


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, mosquitto: MosquittoServer, influxd: InfluxServer
) -> Iterator[Stack]:
    s = Stack(
        tmp_path_factory.mktemp("burst"),
        mqtt_url=mosquitto.url,
        influx_url=influxd.url,
        extra_env={"BATCH_WINDOW": "10"},
    ).start()
    yield s
    s.stop()


async def _post_burst(stack: Stack, n: int) -> dict[str, tuple[datetime, datetime, datetime]]:
    """``n`` readings without timestamps, ``CONCURRENCY`` at a time; event id -> (sent, stamped, 202)."""
    sem = asyncio.Semaphore(CONCURRENCY)
    out: dict[str, tuple[datetime, datetime, datetime]] = {}
    # healthy synthetic readings (the calibration must pass its validation), without their timestamps
    bodies = [{k: v for k, v in p.items() if k != "timestamp"} for p in simple_payloads(ASSET, n, 0.0, 0.0)]

    async def one(client: httpx.AsyncClient, i: int) -> None:
        async with sem:
            sent = datetime.now(UTC)
            r = await client.post("/api/v1/data/simple", json=bodies[i])
            acked = datetime.now(UTC)
        assert r.status_code == 202, r.text
        out[r.json()["event_id"]] = (sent, datetime.fromisoformat(r.json()["timestamp"]), acked)

    async with httpx.AsyncClient(base_url=stack.api, headers=stack.headers, timeout=60) as client:
        await asyncio.gather(*(one(client, i) for i in range(n)))
    return out


def _stored_readings(stack: Stack, start: datetime) -> list[dict[str, Any]]:
    """Every stored reading of the asset from ``start`` on, page by page (``after`` = ``next``)."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"from": start.isoformat(), "limit": 250}
    for _ in range(100):
        r = api(stack, "GET", f"/assets/{ASSET}/readings", params=params)
        assert r.status_code == 200, r.text
        items += r.json()["readings"]
        if r.json()["next"] is None:
            return items
        params["after"] = r.json()["next"]
    raise AssertionError("paging did not end")


def test_burst_then_calibration_at_once_finds_every_reading_stamped_on_arrival(stack: Stack) -> None:
    begin = datetime.now(UTC)
    accepted = asyncio.run(_post_burst(stack, BURST))
    r = api(stack, "POST", "/calibration/start?wait=true", json={"asset_id": ASSET, "lookback_minutes": 60})
    assert r.status_code == 200, r.text
    assert r.json()["data_points_collected"] == BURST, r.json()  # every reading of the burst

    assert all(sent <= stamped <= acked for sent, stamped, acked in accepted.values())
    stored = _stored_readings(stack, begin)
    assert sorted(x["event_id"] for x in stored) == sorted(accepted)  # each once
    late = [
        (x["event_id"], x["ts"])
        for x in stored
        if not accepted[x["event_id"]][0] <= datetime.fromisoformat(x["ts"]) <= accepted[x["event_id"]][2]
    ]
    assert late == [], f"{len(late)} stored readings stamped outside their request: {late[:3]}"
    assert all(datetime.fromisoformat(x["ts"]) == accepted[x["event_id"]][1] for x in stored)
