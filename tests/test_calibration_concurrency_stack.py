"""Issue 17: 8 calibrations started at once on the real stack (``python -m deploy.run`` on a real Mosquitto
and a real InfluxDB) all succeed, and give the very models (ONNX bytes, thresholds) of the same
calibrations run one by one afterwards (same data, same seed). ``CALIBRATION_WORKERS=3``: 3 run at once
in threads, the others wait their turn, CALIBRATING "Waiting for a calibration worker".

Each asset sends its own seeded healthy data: 320 simple readings (legacy and batch forests) and 300
vibration windows (autoencoder), so every model kind trains concurrently.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from shared import topics
from shared.learning import registry
from tests.support.pipeline import Collector, publish, simple_payloads, window_payloads
from tests.support.servers import InfluxServer, MosquittoServer
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

ASSETS = [f"conc_{i}" for i in range(8)]
READINGS, WINDOWS = 320, 300
T0 = time.time() - 3 * 3600  # data time: three hours ago
READING_DT, WINDOW_S = 0.5, 256 / 500.0
END = datetime.fromtimestamp(T0 + max(READINGS * READING_DT, WINDOWS * WINDOW_S), UTC)


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, mosquitto: MosquittoServer, influxd: InfluxServer
) -> Iterator[Stack]:
    s = Stack(
        tmp_path_factory.mktemp("concurrency"),
        mqtt_url=mosquitto.url,
        influx_url=influxd.url,
        extra_env={"CALIBRATION_WORKERS": "3", "CALIBRATION_STORE_WAIT_S": "120"},
    ).start()
    yield s
    s.stop()


async def _send(stack: Stack, i: int, asset: str) -> None:
    url = stack.broker_url
    await publish(url, topics.raw_simple(asset), simple_payloads(asset, READINGS, T0, READING_DT, seed=i))
    await publish(url, topics.raw_vibration(asset), window_payloads(asset, WINDOWS, T0, seed=100 + i))


async def _calibrate(client: httpx.AsyncClient, asset: str) -> dict[str, Any]:
    body = {"asset_id": asset, "lookback_minutes": 30.0, "end": END.isoformat()}
    r = await client.post("/api/v1/calibration/start", params={"wait": "true"}, json=body)
    assert r.status_code == 200, f"{asset}: {r.status_code} {r.text}"
    return r.json()


def _models(stack: Stack, asset: str, version: str) -> dict[str, tuple[bytes, float]]:
    """Per model kind of ``version``: its ONNX bytes and threshold."""
    model_dir = stack.data_dir / "models"
    entries = registry.model_entries(registry.load_manifest(model_dir, asset, version))
    return {
        kind: (registry.read_model_bytes(model_dir, asset, version, kind), entry.threshold)
        for kind, entry in entries.items()
    }


async def test_eight_calibrations_at_once_succeed_with_the_models_of_one_by_one(stack: Stack) -> None:
    t0 = time.monotonic()
    await asyncio.gather(*(_send(stack, i, a) for i, a in enumerate(ASSETS)))
    t1 = time.monotonic()
    async with (
        httpx.AsyncClient(base_url=stack.api, headers=stack.headers, timeout=300) as client,
        Collector(stack.broker_url, [topics.STATE_FILTER]) as states,
    ):
        together = await asyncio.gather(*(_calibrate(client, a) for a in ASSETS))
        t2 = time.monotonic()
        one_by_one = [await _calibrate(client, a) for a in ASSETS]
    t3 = time.monotonic()
    print(f"sent in {t1 - t0:.1f} s, 8 at once in {t2 - t1:.1f} s, one by one in {t3 - t2:.1f} s")
    for first, again in zip(together, one_by_one, strict=True):
        assert set(first["models"]) == {"legacy", "batch", "autoencoder"}, first
        assert first["data_points_collected"] == again["data_points_collected"] > 0
    waited = {p["asset_id"] for p in states.on(topics.STATE_FILTER) if "calibration worker" in p["reason"]}
    assert len(waited) >= 1, "with 3 workers, some of the 8 calibrations waited for one"
    for asset, first, again in zip(ASSETS, together, one_by_one, strict=True):
        concurrent = _models(stack, asset, next(iter(first["models"].values())))
        sequential = _models(stack, asset, next(iter(again["models"].values())))
        assert first["models"] != again["models"]  # two versions were saved ...
        assert concurrent == sequential, f"{asset}: models differ"  # ... with the same models
    versions = [next(iter(r["models"].values())) for r in together]
    blobs = {_models(stack, a, v)["autoencoder"][0] for a, v in zip(ASSETS, versions, strict=True)}
    assert len(blobs) == len(ASSETS)  # each asset's own data gave its own model
