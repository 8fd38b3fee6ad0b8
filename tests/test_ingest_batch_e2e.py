"""``POST /data/simple/batch`` end to end (issue 14): the whole system (``deploy.run``) on the real
Mosquitto, SQLite store; a batch of 500 readings is stored exactly once, and so is a retry of it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import MosquittoServer
from tests.support.stack import Stack, api

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
N = 500
NDJSON = {"content-type": "application/x-ndjson"}


@pytest.fixture
def stack(tmp_path: Path, mosquitto: MosquittoServer) -> Iterator[Stack]:
    s = Stack(tmp_path, mqtt_url=mosquitto.url).start()
    yield s
    code = s.stop()
    assert code == 0, f"launcher did not stop cleanly ({code}):\n{s.tail()}"


def reading(i: int, asset: str) -> dict[str, Any]:
    return {
        "asset_id": asset,
        "timestamp": (T0 + timedelta(seconds=i)).isoformat(),
        "voltage_v": 400.0 + i % 7,
        "current_a": 10.0 + (i % 3) * 0.1,
        "power_factor": 0.9,
        "vibration_g": 0.2 + (i % 5) * 0.01,
    }


def stored(stack: Stack, asset: str, until: Any, timeout: float = 60.0) -> list[dict[str, Any]]:
    """The asset's stored readings once ``until(readings)`` holds (bounded in time)."""
    deadline = time.monotonic() + timeout
    got: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        r = api(stack, "GET", f"/assets/{asset}/readings", params={"minutes": 60, "limit": 10_000})
        if r.status_code == 200:
            got = r.json()["readings"]
            if until(got):
                return got
        time.sleep(0.2)
    raise AssertionError(f"{len(got)} readings stored after {timeout} s\n{stack.tail()}")


def test_a_batch_of_500_readings_is_stored_exactly_once_and_a_retry_adds_nothing(stack: Stack) -> None:
    asset = "bulk-1"
    batch = [reading(i, asset) for i in range(N)]
    r = api(stack, "POST", "/data/simple/batch", json=batch)
    assert r.status_code == 202, r.text
    items = r.json()["items"]
    assert r.json()["accepted"] == N and len({i["event_id"] for i in items}) == N
    got = stored(stack, asset, lambda rs: len(rs) >= N)
    assert sorted(x["event_id"] for x in got) == sorted(i["event_id"] for i in items)
    assert [x["ts"] for x in got] == sorted(x["ts"] for x in got)
    # The client retries the whole batch with the returned identities (e.g. after a lost answer), then
    # sends one more reading: once that one is stored, the retry (published before it on the same
    # topic, handled in order) has been through every stage.
    retry = [{**b, "event_id": i["event_id"]} for b, i in zip(batch, items, strict=True)]
    assert api(stack, "POST", "/data/simple/batch", content=_ndjson(retry), headers=NDJSON).status_code == 202
    last = api(stack, "POST", "/data/simple", json=reading(N, asset))
    assert last.status_code == 202, last.text
    marker = last.json()["event_id"]
    got = stored(stack, asset, lambda rs: any(x["event_id"] == marker for x in rs))
    assert len(got) == N + 1 and len({x["event_id"] for x in got}) == N + 1


def _ndjson(items: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(i) + "\n" for i in items).encode()
