"""Gateway, learning-core views: monitoring status and baselines, score and health history, alarms,
operator logs and the SSE stream (commands: tests/test_gateway_commands.py).

Views run the real app on the in-memory bus (``create_app(settings, bus=MemoryBus())``, SQLite store,
no server). The SSE stream runs under a real uvicorn server (thread, free port) on the real Mosquitto
broker: live events published through the broker reach a streaming HTTP client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from services.gateway.app import create_app
from services.gateway.stream import StreamClient, StreamHub, sse_event, sse_frames
from services.gateway.view import BusView, bus_side
from shared import records, topics
from shared.apikey import auth_headers, resolve_api_key
from shared.bus import MemoryBus
from shared.messages import (
    AlarmEvent,
    FeatureBaseline,
    FeatureStat,
    HealthUpdate,
    InsightItem,
    ModelAnnouncement,
    ModelManifest,
    OperatorLog,
    Reading,
    RulItem,
    Score,
    SignalStat,
    StateChange,
)
from shared.service import deliver
from shared.settings import Settings
from shared.store import Point, open_store
from tests.support.gateway import MemoryGateway, manifest, memory_gateway, memory_settings, poll
from tests.support.servers import MosquittoServer, free_port
from tests.support.signing import VERIFY_KEY, signed

API = "/api/v1"


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def hexid() -> str:
    return uuid.uuid4().hex


@pytest.fixture
async def mgw(tmp_path: Path) -> AsyncIterator[MemoryGateway]:
    async with memory_gateway(memory_settings(tmp_path)) as g:
        yield g


# ---------------------------------------------------------------------------------------------
# A gateway under uvicorn in a thread
# ---------------------------------------------------------------------------------------------
@dataclass
class Gateway:
    url: str
    app: FastAPI
    settings: Settings
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def view(self) -> BusView:
        return self.app.state.ctx.view  # type: ignore[no-any-return]

    @property
    def headers(self) -> dict[str, str]:
        """The first admin's API key (written on the gateway's first start)."""
        return auth_headers(resolve_api_key(None, self.settings.data_dir))

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def start_gateway(settings: Settings) -> Gateway:
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", log_config=None)
    )
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    gw = Gateway(f"http://127.0.0.1:{port}", app, settings, server, thread)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if httpx.get(gw.url + "/healthz", timeout=1).status_code == 200:
                return gw
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    gw.stop()
    raise AssertionError("gateway did not become healthy within 15 s")


@pytest.fixture(scope="module")
def gw(mosquitto: MosquittoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    s = Settings(
        mqtt_url=mosquitto.url,
        data_dir=tmp_path_factory.mktemp("gwm"),
        model_verify_key=VERIFY_KEY,
        sse_heartbeat_s=0.3,
        sse_queue_size=4096,
    )
    g = start_gateway(s)
    yield g
    g.stop()


@contextlib.asynccontextmanager
async def mqtt(broker: MosquittoServer) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client("127.0.0.1", broker.port) as c:
        yield c


@contextlib.asynccontextmanager
async def retained(broker: MosquittoServer, items: list[tuple[str, Any]]) -> AsyncIterator[aiomqtt.Client]:
    """Publish retained messages and clear them afterwards."""
    async with mqtt(broker) as c:
        try:
            for t, m in items:
                await c.publish(t, m.model_dump_json(), qos=1, retain=True)
            yield c
        finally:
            for t, _ in items:
                await c.publish(t, b"", qos=1, retain=True)


def write_points(settings: Settings, points: list[Point]) -> None:
    store = open_store(settings)
    try:
        store.write(points)
    finally:
        store.close()


def ago(**kw: float) -> datetime:
    return (datetime.now(UTC) - timedelta(**kw)).replace(microsecond=0)


# ---------------------------------------------------------------------------------------------
# Monitoring status and baselines from retained announcements / health
# ---------------------------------------------------------------------------------------------
def feature_baseline(names: list[str], n: int) -> FeatureBaseline:
    """``{"n", "features": [{"name", mean, std, min, max, median, mad}]}`` as the registry writes it."""
    return FeatureBaseline(
        n=n,
        features=[
            FeatureStat(name=f, mean=i + 1.0, std=0.5, min=i, max=i + 2.0, median=i + 1.0, mad=0.25)
            for i, f in enumerate(names)
        ],
    )


SIGNAL_BASELINE = {
    "voltage_v": {"mean": 230.0, "std": 2.5, "min": 224.0, "max": 236.0},
    "current_a": {"mean": 12.0, "std": 0.4, "min": 11.0, "max": 13.0},
    "power_factor": {"mean": 0.88, "std": 0.01, "min": 0.85, "max": 0.9},
    "vibration_g": {"mean": 0.3, "std": 0.05, "min": 0.2, "max": 0.45},
}
LEGACY_FEATURES = ["voltage_v", "current_a", "power_factor", "vibration_g", "apparent_power", "real_power"]
BATCH_FEATURES = [f"f{i}" for i in range(16)]


SIGNAL_STATS = {k: SignalStat.model_validate(v) for k, v in SIGNAL_BASELINE.items()}


def announcement(asset: str, model: str, manifest: ModelManifest) -> ModelAnnouncement:
    """Signed with the test key the gateway trusts."""
    return signed(
        ModelAnnouncement(
            asset_id=asset,
            model=model,  # type: ignore[arg-type]
            version="v20240501T120000Z-abcdef",
            path=f"/models/{asset}/{model}.onnx",
            created_at=datetime(2024, 5, 1, 12, tzinfo=UTC),
            manifest=manifest,
            onnx_b64="AAAA" * 100,
        )
    )


#: A remaining-life estimate whose 80 % interval's low end (21 days) is the maintenance window.
RUL = RulItem(
    status="estimate",
    reason="log-linear path of rms_log fitted to 40 points over 10 days of data",
    level=math.log(2.0),
    threshold=1.5,
    threshold_basis="median end-of-life level of 6 FEMTO/PRONOSTIA run-to-failure bearings",
    median_s=35 * 86400.0,
    low_s=21 * 86400.0,
    high_s=60 * 86400.0,
    interval=0.8,
    model="log_linear",
    window_s=10 * 86400.0,
    n_points=40,
    as_of=datetime(2024, 5, 1, 13, tzinfo=UTC),
)


def health_update(asset: str, ts: datetime | None = None, score: float = 81.5) -> HealthUpdate:
    return HealthUpdate(
        asset_id=asset,
        ts=ts or datetime(2024, 5, 1, 13, tzinfo=UTC),
        health_score=score,
        risk_level="MODERATE",
        grade="B",
        degradation_index=0.125,
        maintenance_window_days=21.0,  # the estimate's low end: 1,814,400 s
        maintenance_reason="slow vibration trend",
        rul=RUL,
        indicators={"rms_log": math.log(2.0), "cusum": 12.5},
        iso_zone="B",
        velocity_rms_mm_s=2.2,
        insights=[
            InsightItem(text="Vibration 1.8x baseline", severity="warning", signal="vibration_g", value=1.8)
        ],
        model_ratios={"legacy": 0.5},
        active_alarms=1,
    )


async def test_status_fields_and_baseline(mgw: MemoryGateway) -> None:
    asset, bare, vib = uid("st"), uid("bare"), uid("vib")
    legacy = manifest(
        "legacy",
        LEGACY_FEATURES,
        baseline=feature_baseline(LEGACY_FEATURES, 600),
        signal_baseline=SIGNAL_STATS,
    )
    batch = manifest(
        "batch", BATCH_FEATURES, baseline=feature_baseline(BATCH_FEATURES, 59), signal_baseline=SIGNAL_STATS
    )
    ae_features = ["rms_x", "kurtosis_x"]
    ae = manifest("autoencoder", ae_features, baseline=feature_baseline(ae_features, 120))
    items: list[tuple[str, Any]] = [
        (topics.model_announce(asset, "legacy"), announcement(asset, "legacy", legacy)),
        (topics.model_announce(asset, "batch"), announcement(asset, "batch", batch)),
        (topics.health(asset), health_update(asset)),
        (
            topics.state(asset),
            StateChange(asset_id=asset, state="CALIBRATING", reason="Training batch model..."),
        ),
        (topics.state(bare), StateChange(asset_id=bare, state="IDLE")),
        (topics.model_announce(vib, "autoencoder"), announcement(vib, "autoencoder", ae)),
    ]
    for t, m in items:
        await mgw.retain(t, m)
    c, gw = mgw.api, mgw

    def seen() -> bool:
        v = gw.view
        return (
            len(v.models.get(asset, {})) == 2 and asset in v.health and bare in v.states and vib in v.models
        )

    await poll(seen)
    st = (await c.get("/monitoring/status")).json()
    a = st["assets"][asset]
    assert st["system_state"] == "CALIBRATING"
    assert (a["state"], a["reason"], a["calibration_active"], a["baseline_established"]) == (
        "CALIBRATING",
        "Training batch model...",
        True,
        True,
    )
    assert a["models_loaded"] == {"legacy_model": True, "batch_model": True, "autoencoder": False}
    assert a["models"] == {"legacy": "v20240501T120000Z-abcdef", "batch": "v20240501T120000Z-abcdef"}
    assert a["baseline_summary"] == {
        "voltage": {"mean": 230.0, "std": 2.5},
        "current": {"mean": 12.0, "std": 0.4},
        "power_factor": {"mean": 0.88, "std": 0.01},
        "vibration": {"mean": 0.3, "std": 0.05},
    }
    got = {k: a[k] for k in ("health_score", "risk_level", "grade", "maintenance_window_days")}
    assert got == {
        "health_score": 81.5,
        "risk_level": "MODERATE",
        "grade": "B",
        "maintenance_window_days": 21.0,
    }
    assert (a["maintenance_reason"], a["degradation_index"], a["iso_zone"], a["velocity_rms_mm_s"]) == (
        "slow vibration trend",
        0.125,
        "B",
        2.2,
    )
    assert a["insights"] == [
        {"text": "Vibration 1.8x baseline", "severity": "warning", "signal": "vibration_g", "value": 1.8}
    ]
    assert a["active_alarms"] == 1 and a["health"]["health_score"] == 81.5
    # issue 15: the estimate the window comes from, and the trend indicators, at top level and in health
    assert RulItem.model_validate(a["rul"]) == RUL and a["rul"] == a["health"]["rul"]
    assert a["rul"]["low_s"] / 86400 == a["maintenance_window_days"]
    assert a["indicators"] == {"rms_log": pytest.approx(0.6931, abs=1e-4), "cusum": 12.5}
    b = st["assets"][bare]
    assert (b["calibration_active"], b["baseline_established"], b["health_score"], b["grade"]) == (
        False,
        False,
        None,
        None,
    )
    assert b["models_loaded"] == {"legacy_model": False, "batch_model": False, "autoencoder": False}
    assert b["baseline_summary"] == {
        "voltage": None,
        "current": None,
        "power_factor": None,
        "vibration": None,
    }
    v = st["assets"][vib]  # vibration-only: a model but no signal baseline
    assert v["baseline_established"] is True and v["models_loaded"]["autoencoder"] is True
    assert v["baseline_summary"]["vibration"] is None
    # The view keeps the manifest, not the ONNX bytes.
    info = gw.view.models[asset]["legacy"]
    assert info.manifest == legacy and not hasattr(info, "onnx_b64")

    r = await c.get("/monitoring/baseline", params={"asset_id": asset})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["asset_id"], body["version"]) == (asset, "v20240501T120000Z-abcdef")
    assert list(body["baseline"]) == LEGACY_FEATURES
    assert body["baseline"]["current_a"] == {
        "mean": 2.0,
        "std": 0.5,
        "min": 1.0,
        "max": 3.0,
        "median": 2.0,
        "mad": 0.25,
    }
    assert list(body["batch_baseline"]) == BATCH_FEATURES and len(body["batch_baseline"]) == 16
    assert body["vibration_baseline"] is None
    assert body["signal_baseline"] == SIGNAL_BASELINE
    assert body["samples"] == {"legacy": 600, "batch": 59}

    r = (await c.get("/monitoring/baseline", params={"asset_id": vib})).json()
    assert (r["baseline"], r["batch_baseline"], r["signal_baseline"]) == (None, None, None)
    assert list(r["vibration_baseline"]) == ["rms_x", "kurtosis_x"]

    r = await c.get("/monitoring/baseline", params={"asset_id": bare})
    assert r.status_code == 404 and "no model announced" in r.json()["detail"]
    r = await c.get("/monitoring/baseline", params={"asset_id": "a b"})
    assert r.status_code == 422
    r = await c.get("/monitoring/baseline")  # no asset id: the asset calibrated last (the only one)
    assert r.status_code == 200 and r.json()["asset_id"] in (asset, vib)

    # Cleared retained announcements and health remove what the view knew.
    for t, _ in items:
        await mgw.retain(t, b"")
    await poll(lambda: not gw.view.models.get(asset))
    await poll(lambda: asset not in gw.view.health)


# ---------------------------------------------------------------------------------------------
# Score and health history from the store
# ---------------------------------------------------------------------------------------------
def score(asset: str, ts: datetime, model: str, value: float) -> Score:
    return Score(
        event_id=hexid(),
        asset_id=asset,
        ts=ts,
        model=model,  # type: ignore[arg-type]
        model_version="v1",
        anomaly_score=value,
        raw_score=value,
        threshold=0.5,
        is_anomaly=value > 0.5,
        severity="WARNING" if value > 0.5 else "NORMAL",
    )


async def test_scores_and_health_history(mgw: MemoryGateway) -> None:
    c = mgw.api
    asset = uid("hist")
    scores = [
        score(asset, ago(minutes=90), "legacy", 0.1),
        score(asset, ago(minutes=30), "batch", 0.2),
        score(asset, ago(minutes=20), "legacy", 0.7),
        score(asset, ago(minutes=20), "autoencoder", 0.3),
    ]
    # One event scored by two models: one stored time (shared.store.identity), ordered by model tag.
    scores[3] = scores[3].model_copy(update={"event_id": scores[2].event_id, "ts": scores[2].ts})
    hist = [health_update(asset, ago(minutes=m), 100.0 - m / 2) for m in (120, 40, 10)]
    write_points(
        mgw.settings, [records.score_to_point(s) for s in scores] + [records.health_to_point(h) for h in hist]
    )
    base = f"/assets/{asset}"

    body = (await c.get(f"{base}/scores")).json()
    assert (body["asset_id"], body["count"], body["truncated"]) == (asset, 3, False)
    got = [Score.model_validate(x) for x in body["scores"]]
    assert got == [scores[1], scores[3], scores[2]]  # merged, oldest first; same time ordered by model tag
    body = (await c.get(f"{base}/scores", params={"minutes": 120, "model": "legacy"})).json()
    assert [x["anomaly_score"] for x in body["scores"]] == [0.1, 0.7]
    body = (await c.get(f"{base}/scores", params={"minutes": 120, "limit": 2})).json()
    assert (body["count"], body["truncated"]) == (2, True)

    body = (await c.get(f"{base}/health")).json()
    assert (body["asset_id"], body["count"]) == (asset, 2)
    assert [HealthUpdate.model_validate(x) for x in body["history"]] == hist[1:]
    assert (await c.get(f"{base}/health", params={"minutes": 180})).json()["count"] == 3

    r = await c.get(f"/assets/{uid('nobody')}/scores")
    assert r.status_code == 404 and "unknown asset" in r.json()["detail"]
    assert (await c.get(f"{base}/scores", params={"model": "forest"})).status_code == 422
    assert (await c.get("/assets/a+b/health")).status_code == 422


# ---------------------------------------------------------------------------------------------
# Alarms
# ---------------------------------------------------------------------------------------------
def alarm_event(
    alarm_id: str, asset: str, state: str, minutes_ago: float, opened_ago: float, **kw: Any
) -> AlarmEvent:
    return AlarmEvent(
        alarm_id=alarm_id,
        asset_id=asset,
        state=state,  # type: ignore[arg-type]
        source="legacy",
        severity="WARNING",
        reason="3 of 5 windows anomalous",
        opened_at=ago(minutes=opened_ago),
        ts=ago(minutes=minutes_ago),
        **kw,
    )


async def test_alarm_list_reduces_transitions(mgw: MemoryGateway) -> None:
    c = mgw.api
    a1, a2 = uid("al"), uid("al")
    x, y, z = hexid(), hexid(), hexid()
    events = [
        alarm_event(x, a1, "ACTIVE", 50, 50),
        alarm_event(x, a1, "ACKNOWLEDGED", 40, 50, previous="ACTIVE", who="ana"),
        alarm_event(x, a1, "RESOLVED", 30, 50, previous="ACKNOWLEDGED", who="ana", action_code="lubricated"),
        alarm_event(y, a1, "ACTIVE", 20, 20),
        alarm_event(z, a2, "ACTIVE", 35, 35),
        alarm_event(z, a2, "ACKNOWLEDGED", 10, 35, previous="ACTIVE", who="bo"),
    ]
    write_points(mgw.settings, [records.alarm_to_point(e) for e in events])
    url = "/alarms"

    body = (await c.get(url, params={"asset_id": a1})).json()
    assert body["count"] == 2
    # newest first; each item is the event plus its priority and first-out (GET /alarms)
    extra = ("priority", "priority_name", "first_out_id", "first_out")
    items = [
        AlarmEvent.model_validate({k: v for k, v in e.items() if k not in extra}) for e in body["alarms"]
    ]
    assert items == [events[3], events[2]]
    assert [(e["priority"], e["first_out_id"]) for e in body["alarms"]] == [(2, None), (2, None)]
    body = (await c.get(url, params={"asset_id": a1, "state": "RESOLVED"})).json()
    assert [(e["alarm_id"], e["action_code"]) for e in body["alarms"]] == [(x, "lubricated")]
    every = (await c.get(url)).json()["alarms"]
    mine = [(e["alarm_id"], e["state"]) for e in every if e["alarm_id"] in (x, y, z)]
    assert mine == [(y, "ACTIVE"), (z, "ACKNOWLEDGED"), (x, "RESOLVED")]
    acked = (await c.get(url, params={"state": "ACKNOWLEDGED"})).json()["alarms"]
    assert z in [e["alarm_id"] for e in acked] and all(e["state"] == "ACKNOWLEDGED" for e in acked)
    assert (await c.get(url, params={"state": "OPEN"})).status_code == 422
    assert (await c.get(url, params={"asset_id": "../x"})).status_code == 422


# ---------------------------------------------------------------------------------------------
# Operator logs
# ---------------------------------------------------------------------------------------------
async def test_logs_post_store_get(mgw: MemoryGateway) -> None:
    asset = uid("log")
    c = mgw.api
    r1 = await c.post(
        "/logs",
        json={
            "asset_id": asset,
            "event_type": "corrective_bearing_replacement",
            "severity": "high",
            "description": "replaced DE bearing",
            "author": "ana",
        },
    )
    old_ts = int((datetime.now(UTC) - timedelta(hours=30)).timestamp())
    r2 = await c.post("/logs", json={"asset_id": asset, "event_type": "observation", "ts": old_ts})
    got = [(m.topic, m.payload) for m in mgw.bus.on(topics.OPLOG_FILTER)]
    # The historian's path: topic + payload -> records converter -> store.
    write_points(mgw.settings, [p for t, pl in got for p in records.convert(t, pl)])

    assert r1.status_code == 202 and r2.status_code == 202
    ids = [r1.json()["log_id"], r2.json()["log_id"]]
    assert (r1.json()["status"], len(ids[0])) == ("accepted", 32)
    assert [t for t, _ in got] == [topics.oplog(asset)] * 2
    sent = [OperatorLog.model_validate_json(p) for _, p in got]
    assert [s.log_id for s in sent] == ids
    assert [OperatorLog.model_validate(r.json()["log"]) for r in (r1, r2)] == sent
    assert (sent[0].event_type, sent[0].severity, sent[0].description, sent[0].author) == (
        "corrective_bearing_replacement",
        "high",
        "replaced DE bearing",
        "ana",
    )
    assert sent[1].ts == datetime.fromtimestamp(old_ts, UTC)

    body = (await c.get("/logs", params={"asset_id": asset})).json()
    assert (body["hours"], body["count"]) == (24, 1)
    assert [OperatorLog.model_validate(x) for x in body["logs"]] == [sent[0]]
    body = (await c.get("/logs", params={"asset_id": asset, "hours": 48})).json()
    assert [x["log_id"] for x in body["logs"]] == ids  # newest first
    every = (await c.get("/logs", params={"hours": 48})).json()["logs"]
    assert [x["log_id"] for x in every if x["asset_id"] == asset] == ids

    bad = [
        await c.post("/logs", json={"asset_id": asset, "event_type": "party"}),
        await c.post("/logs", json={"event_type": "observation"}),
        await c.post("/logs", json={"asset_id": asset, "event_type": "observation", "severity": "meh"}),
        await c.post("/logs", json={"asset_id": asset, "event_type": "observation", "log_id": hexid()}),
        await c.get("/logs", params={"hours": 0}),
    ]
    assert [r.status_code for r in bad] == [422] * 5
    assert "event_type: Input should be 'preventive_lubrication'" in bad[0].json()["detail"]
    assert "log_id: Extra inputs are not permitted" in bad[3].json()["detail"]


# ---------------------------------------------------------------------------------------------
# SSE stream
# ---------------------------------------------------------------------------------------------
def reading_msg(asset: str, v: float) -> Reading:
    return Reading(
        event_id=hexid(),
        asset_id=asset,
        ts=datetime.now(UTC),
        voltage_v=v,
        current_a=1.0,
        power_factor=0.9,
        vibration_g=0.1,
    )


async def sse_events(
    resp: httpx.Response, until: Callable[[list[tuple[str, str]]], bool]
) -> list[tuple[str, str]]:
    """Parse ``(event, data)`` frames (and ``("comment", text)`` lines) until ``until(events)``."""
    events: list[tuple[str, str]] = []
    event = ""
    async with asyncio.timeout(15):
        async for line in resp.aiter_lines():
            if line.startswith(":"):
                events.append(("comment", line[1:].strip()))
            elif line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                events.append((event, line[6:]))
            if until(events):
                return events
    raise AssertionError("stream ended")


@pytest.mark.integration
async def test_stream_delivers_filtered_events(gw: Gateway, mosquitto: MosquittoServer) -> None:
    mine, other = uid("sse"), uid("sse")
    state = StateChange(asset_id=mine, state="MONITORING", previous="CALIBRATED")
    items: list[tuple[str, Any]] = [(topics.state(mine), state)]
    async with (
        retained(mosquitto, items) as pub,
        httpx.AsyncClient(base_url=gw.url, timeout=30, headers=gw.headers) as c,
    ):
        await poll(lambda: mine in gw.view.states)
        async with c.stream("GET", f"{API}/stream", params={"asset_id": mine}) as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            r_mine, r_other = reading_msg(mine, 231.0), reading_msg(other, 1.0)
            sc = score(mine, datetime.now(UTC), "batch", 0.9)
            h = health_update(mine)
            al = alarm_event(hexid(), mine, "ACTIVE", 0, 0)
            msgs = [
                (topics.reading(other), r_other),
                (topics.reading(mine), r_mine),
                (topics.score(mine, "batch"), sc),
                (topics.score(other, "batch"), score(other, datetime.now(UTC), "batch", 0.1)),
                (topics.health(mine), h),
                (topics.alarm(mine), al),
            ]
            for t, m in msgs:
                await pub.publish(t, m.model_dump_json(), qos=1)
            events = await sse_events(resp, lambda ev: any(e == "alarm" for e, _ in ev))
        await pub.publish(topics.health(mine), b"", qos=1, retain=True)
    data = [(e, json.loads(d)) for e, d in events if e != "comment"]
    assert data[0] == ("state", state.model_dump(mode="json"))  # the current state first
    assert [e for e, _ in data] == ["state", "reading", "score", "health", "alarm"]
    assert Reading.model_validate(data[1][1]) == r_mine
    assert Score.model_validate(data[2][1]) == sc
    assert HealthUpdate.model_validate(data[3][1]) == h
    assert AlarmEvent.model_validate(data[4][1]) == al
    assert all(d["asset_id"] == mine for _, d in data)
    await poll(lambda: len(gw.view.hub) == 0)  # the disconnected client is gone


@pytest.mark.integration
async def test_stream_heartbeat_and_bad_filter(gw: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gw.url, timeout=30, headers=gw.headers) as c:
        r = await c.get(f"{API}/stream", params={"asset_id": "a+b"})
        assert r.status_code == 422 and "query.asset_id" in r.json()["detail"]
        async with c.stream("GET", f"{API}/stream", params={"asset_id": uid("quiet")}) as resp:
            events = await sse_events(resp, lambda ev: any(e == "comment" for e, _ in ev))
    assert events == [("comment", "heartbeat dropped=0")]


@pytest.mark.integration
async def test_stream_keeps_up_with_20_assets_at_10_hz(gw: Gateway, mosquitto: MosquittoServer) -> None:
    """20 assets x 10 Hz for 2 s (400 readings) through the broker to one unfiltered SSE client."""
    assets = [uid("load") for _ in range(20)]
    n_per_asset = 20
    async with (
        mqtt(mosquitto) as pub,
        httpx.AsyncClient(base_url=gw.url, timeout=30, headers=gw.headers) as c,
    ):
        async with c.stream("GET", f"{API}/stream") as resp:
            t0 = time.perf_counter()

            async def produce() -> None:
                for i in range(n_per_asset):
                    tick = time.perf_counter()
                    for a in assets:
                        await pub.publish(
                            topics.reading(a), reading_msg(a, 200.0 + i).model_dump_json(), qos=1
                        )
                    await asyncio.sleep(max(0.0, 0.1 - (time.perf_counter() - tick)))

            prod = asyncio.create_task(produce())
            wanted = set(assets)
            events = await sse_events(
                resp,
                lambda ev: (
                    sum(1 for e, d in ev if e == "reading" and json.loads(d)["asset_id"] in wanted)
                    == len(assets) * n_per_asset
                ),
            )
            elapsed = time.perf_counter() - t0
            await prod
            dropped = gw.view.hub.dropped()
    got = [json.loads(d) for e, d in events if e == "reading" and json.loads(d)["asset_id"] in wanted]
    per_asset = {a: [r["voltage_v"] for r in got if r["asset_id"] == a] for a in assets}
    expected = [200.0 + i for i in range(n_per_asset)]
    assert all(v == expected for v in per_asset.values())  # in order, none lost
    assert dropped == 0
    rate = len(got) / elapsed
    print(f"\nSSE: {len(got)} readings from 20 assets in {elapsed:.2f} s ({rate:.0f}/s), dropped=0")


# ---------------------------------------------------------------------------------------------
# Stream hub and view units (no servers)
# ---------------------------------------------------------------------------------------------
async def test_hub_drops_oldest_for_slow_clients_and_filters() -> None:
    hub = StreamHub(queue_size=3)
    slow, m2 = hub.connect(), hub.connect("m2")
    for i in range(5):
        hub.publish("reading", "m1", f'{{"i":{i}}}')
    hub.publish("score", "m2", '{"s":1}')
    assert (slow.dropped, slow.pending()) == (3, 3)
    assert await slow.next_batch(1) == [("reading", '{"i":3}'), ("reading", '{"i":4}'), ("score", '{"s":1}')]
    assert (m2.dropped, await m2.next_batch(1)) == (0, [("score", '{"s":1}')])
    assert await m2.next_batch(0.01) == []  # nothing queued: empty after the timeout
    assert hub.dropped() == 3
    hub.disconnect(slow)
    hub.disconnect(m2)
    assert not hub.active()
    with pytest.raises(ValueError, match="unknown stream event"):
        hub.publish("gossip", "m1", "{}")
    with pytest.raises(ValueError, match="single line"):
        sse_event("reading", '{"a":\n1}')
    with pytest.raises(ValueError):
        StreamClient(0)


async def test_sse_frames_batch_and_heartbeat() -> None:
    client = StreamClient(10)
    gen = sse_frames(client, 0.01, [("state", '{"s":"IDLE"}')])
    assert await anext(gen) == "retry: 3000\n\n"
    assert await anext(gen) == 'event: state\ndata: {"s":"IDLE"}\n\n'
    client.push("reading", '{"a":1}')
    client.push("alarm", '{"b":2}')
    assert await anext(gen) == 'event: reading\ndata: {"a":1}\n\nevent: alarm\ndata: {"b":2}\n\n'
    assert await anext(gen) == ": heartbeat dropped=0\n\n"
    await gen.aclose()


async def test_view_streams_validated_messages_only_with_clients() -> None:
    view, bus = BusView("gw-unit"), MemoryBus()
    service = bus_side(view)

    async def feed(topic: str, payload: bytes) -> None:
        await deliver(service, bus, topic, payload)

    await feed(topics.reading("m1"), b'{"not": "checked without clients"}')
    client = view.hub.connect()
    await feed(topics.reading("m1"), b'{\n  "asset_id": "m1"\n}')  # re-serialised to one line
    await feed(topics.score("m1", "legacy"), b"[1, 2]")
    await feed(topics.alarm("m1"), b"{broken")
    await feed(topics.health("m1"), b'{"asset_id": "m1"}')  # not a HealthUpdate
    h = health_update("m1")
    await feed(topics.health("m1"), h.model_dump_json().encode())
    await feed(topics.health("m2"), h.model_dump_json().encode())  # topic/payload mismatch
    batch = await client.next_batch(1)
    assert batch == [("reading", '{"asset_id":"m1"}'), ("health", h.model_dump_json())]
    assert view.health["m1"] == h and "m2" not in view.health
    reasons = [json.loads(m.payload)["reason"] for m in bus.on(topics.dead_letter("gateway"))]
    assert reasons[0] == "payload must be a JSON object, got list"
    assert reasons[1].startswith("malformed JSON")
    assert reasons[2].startswith("ts: Field required")
    assert reasons[3] == "topic asset 'm2' does not match payload asset_id 'm1'"


async def test_openapi_lists_new_paths_and_dashboard_is_wired(mgw: MemoryGateway) -> None:
    paths = (await mgw.root.get("/openapi.json")).json()["paths"]
    for p in (
        "/calibration/start",
        "/monitoring/status",
        "/monitoring/baseline",
        "/system/purge",
        "/models/reload",
        "/assets/{asset_id}/scores",
        "/assets/{asset_id}/health",
        "/assets/{asset_id}/config",
        "/alarms",
        "/alarms/{alarm_id}/ack",
        "/alarms/{alarm_id}/resolve",
        "/logs",
        "/stream",
    ):
        assert API + p in paths, p
    assert (await mgw.root.get("/")).status_code == 200
    assert (await mgw.root.get("/reports")).status_code == 404


async def test_closing_the_hub_ends_every_stream() -> None:
    """On shutdown the hub closes: open streams end (after what was queued) and new ones end at once."""
    hub = StreamHub()
    client = hub.connect()
    gen = sse_frames(client, 30, None)
    assert await anext(gen) == "retry: 3000\n\n"
    hub.publish("reading", "m1", '{"a":1}')
    hub.close()
    assert [frame async for frame in gen] == ['event: reading\ndata: {"a":1}\n\n']
    late = sse_frames(hub.connect(), 30, None)
    assert [frame async for frame in late] == ["retry: 3000\n\n"]
