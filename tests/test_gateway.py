"""Gateway: input posts, errors, readings, retained state and the bus view.

Most tests run the real app on the in-memory bus (``create_app(settings, bus=MemoryBus())``, SQLite
store, no server); the integration tests publish through the real Mosquitto broker, see the broker
down, and do one request/reply round trip over it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
from fastapi.testclient import TestClient

from services.gateway.app import create_app, describe_validation
from services.gateway.view import BusView, bus_side, system_state
from shared import records, topics
from shared.apikey import auth_headers, resolve_api_key
from shared.bus import MemoryBus
from shared.messages import (
    AssetConfig,
    CalibrationReply,
    CalibrationRequest,
    DeadLetter,
    ModelAnnouncement,
    Reading,
    ServiceStatus,
    SimpleReadingIn,
    StateChange,
    VibrationBatchIn,
)
from shared.service import deliver
from shared.settings import Settings
from shared.store import open_store
from tests.support.gateway import MemoryGateway, manifest, memory_gateway, memory_settings, poll
from tests.support.servers import MosquittoServer, free_port
from tests.support.signing import VERIFY_KEY, signed

GOOD: dict[str, Any] = {
    "asset_id": "m1",
    "voltage_v": 230.0,
    "current_a": 12.5,
    "power_factor": 0.9,
    "vibration_g": 0.3,
}
JSON = {"content-type": "application/json"}


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_until(check: Any, timeout: float = 10.0) -> Any:
    """Poll ``check()`` until it returns a truthy value (bounded in time)."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def gw(
    mosquitto: MosquittoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, Settings]]:
    s = Settings(mqtt_url=mosquitto.url, data_dir=tmp_path_factory.mktemp("gw"), model_verify_key=VERIFY_KEY)
    online = ServiceStatus(service="ingest", state="online").model_dump_json().encode()
    asyncio.run(_retain(mosquitto, topics.service_status("ingest"), online))  # data posts need an ingest
    with TestClient(create_app(s)) as client:
        client.headers.update(auth_headers(resolve_api_key(None, s.data_dir)))  # the first admin's key
        wait_until(lambda: client.get("/healthz").status_code == 200)
        # The retained ingest status may come after hundreds of retained messages from earlier tests
        # on this session's broker: data posts answer 503 until the gateway has seen ingest online.
        wait_until(lambda: _ingest_online(client), timeout=30.0)
        yield client, s
    asyncio.run(_retain(mosquitto, topics.service_status("ingest"), b""))


def _ingest_online(client: TestClient) -> bool:
    ingest = client.get("/readyz").json().get("services", {}).get("ingest")
    return bool(ingest and ingest.get("state") == "online")


async def _retain(broker: MosquittoServer, topic: str, payload: bytes) -> None:
    async with aiomqtt.Client("127.0.0.1", broker.port) as c:
        await c.publish(topic, payload, qos=1, retain=True)


@pytest.fixture
async def mgw(tmp_path: Path) -> AsyncIterator[MemoryGateway]:
    async with memory_gateway(memory_settings(tmp_path)) as g:
        yield g


@contextlib.asynccontextmanager
async def subscriber(broker: MosquittoServer, *filters: str) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client("127.0.0.1", broker.port) as c:
        for f in filters:
            await c.subscribe(f, qos=1)
        yield c


async def collect(client: aiomqtt.Client, n: int, timeout: float = 10.0) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    async with asyncio.timeout(timeout):
        async for m in client.messages:
            if m.retain:
                continue
            out.append((m.topic.value, bytes(m.payload)))  # type: ignore[arg-type]
            if len(out) == n:
                break
    return out


# ---------------------------------------------------------------------------------------------
# POST /data/*
# ---------------------------------------------------------------------------------------------
@pytest.mark.integration
async def test_post_simple_publishes_raw_with_event_id(
    gw: tuple[TestClient, Settings], mosquitto: MosquittoServer
) -> None:
    client, _ = gw
    async with subscriber(mosquitto, topics.RAW_SIMPLE_FILTER) as sub:
        r1 = client.post("/api/v1/data/simple", json={**GOOD, "is_faulty": False, "timestamp": 1_700_000_000})
        given = "0123456789abcdef0123456789abcdef"
        r2 = client.post("/api/v1/data/simple", json={**GOOD, "asset_id": "m2", "event_id": given})
        assert (r1.status_code, r2.status_code) == (202, 202), (r1.text, r2.text)
        got = await collect(sub, 2)
    body = r1.json()
    assert body["status"] == "accepted" and len(body["event_id"]) == 32
    assert (r2.json()["status"], r2.json()["event_id"]) == ("accepted", given)
    assert datetime.fromisoformat(r2.json()["timestamp"])  # stamped at arrival, given back to retry with
    assert [t for t, _ in got] == [topics.raw_simple("m1"), topics.raw_simple("m2")]
    sent = SimpleReadingIn.model_validate_json(got[0][1])
    assert sent.event_id == body["event_id"]
    assert (sent.voltage_v, sent.current_a, sent.power_factor, sent.vibration_g, sent.is_faulty) == (
        230.0,
        12.5,
        0.9,
        0.3,
        False,
    )
    assert sent.timestamp == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert SimpleReadingIn.model_validate_json(got[1][1]).event_id == given


@pytest.mark.integration
async def test_post_batch_publishes_raw(gw: tuple[TestClient, Settings], mosquitto: MosquittoServer) -> None:
    client, _ = gw
    x = [i / 100 for i in range(16)]
    async with subscriber(mosquitto, topics.RAW_VIBRATION_FILTER) as sub:
        r = client.post("/api/v1/data/batch", json={"motor_id": "pump-1", "x": x, "fs_hz": 2000})
        assert r.status_code == 202, r.text
        [(topic, payload)] = await collect(sub, 1)
    assert topic == topics.raw_vibration("pump-1")
    sent = VibrationBatchIn.model_validate_json(payload)
    assert (sent.x, sent.y, sent.fs_hz, sent.event_id) == (x, None, 2000.0, r.json()["event_id"])


def simple_text(**over: Any) -> str:
    return json.dumps({**GOOD, **over})


BAD_POSTS = [
    (
        "nan",
        "simple",
        simple_text(voltage_v=1.5).replace("1.5", "NaN"),
        "voltage_v: must be a finite number",
    ),
    (
        "infinity",
        "simple",
        simple_text(current_a=2.5).replace("2.5", "Infinity"),
        "current_a: must be a finite number",
    ),
    ("malformed", "simple", '{"asset_id": "m1", ', "malformed JSON"),
    ("path id", "simple", simple_text(asset_id="../x"), "asset_id: invalid asset id '../x'"),
    ("wildcard id", "simple", simple_text(asset_id="a+b"), "asset_id: invalid asset id 'a+b'"),
    ("long id", "simple", simple_text(asset_id="a" * 65), "asset_id: invalid asset id"),
    (
        "too high",
        "simple",
        simple_text(voltage_v=40_000),
        "voltage_v: Input should be less than or equal to 35000",
    ),
    (
        "missing",
        "simple",
        json.dumps({k: v for k, v in GOOD.items() if k != "vibration_g"}),
        "vibration_g: Field required",
    ),
    ("unknown field", "simple", simple_text(rpm=3000), "rpm: Extra inputs are not permitted"),
    ("empty body", "simple", "", "malformed JSON: empty payload"),
    (
        "short axis",
        "batch",
        json.dumps({"motor_id": "m1", "x": [0.0] * 8}),
        "axis x: has 8 samples; a window needs 16..65536",
    ),
    (
        "nan sample",
        "batch",
        json.dumps({"motor_id": "m1", "x": [0.0] * 3 + [7.5] + [0.0] * 12}).replace("7.5", "NaN"),
        "axis x[3]: must be a finite number",
    ),
    (
        "unequal axes",
        "batch",
        json.dumps({"motor_id": "m1", "x": [0.0] * 16, "y": [0.0] * 17, "z": [0.0] * 16}),
        "axis lengths differ: x has 16 samples, y has 17",
    ),
]


@pytest.mark.parametrize(
    ("kind", "content", "reason"), [b[1:] for b in BAD_POSTS], ids=[b[0] for b in BAD_POSTS]
)
async def test_invalid_post_is_422_with_reason_and_publishes_nothing(
    mgw: MemoryGateway, kind: str, content: str, reason: str
) -> None:
    r = await mgw.api.post(f"/data/{kind}", content=content, headers=JSON)
    ok = await mgw.api.post("/data/simple", json={**GOOD, "asset_id": "after-bad"})
    assert r.status_code == 422, r.text
    assert reason in r.json()["detail"]
    assert ok.status_code == 202
    # The bad request published nothing.
    assert [m.topic for m in mgw.bus.on("rotorwatch/v1/raw/#")] == [topics.raw_simple("after-bad")]


def test_describe_validation_names_fields() -> None:
    errors = [
        {"loc": ("body", "voltage_v"), "msg": "Input should be a finite number", "type": "finite_number"},
        {
            "loc": ("query", "minutes"),
            "msg": "Input should be greater than or equal to 1",
            "type": "greater_than_equal",
        },
        {
            "loc": ("body", 12),
            "msg": "JSON decode error",
            "type": "json_invalid",
            "ctx": {"error": "Expecting value"},
        },
    ]
    assert describe_validation(errors) == (
        "voltage_v: Input should be a finite number; "
        "query.minutes: Input should be greater than or equal to 1; "
        "malformed JSON: Expecting value at position 12"
    )


# ---------------------------------------------------------------------------------------------
# Broker down, body limit, store down
# ---------------------------------------------------------------------------------------------
@pytest.mark.integration
def test_broker_down_gives_503_and_body_limit_413(tmp_path: Path) -> None:
    s = Settings(
        mqtt_url=f"mqtt://127.0.0.1:{free_port()}",
        data_dir=tmp_path,
        max_payload_bytes=2000,
        model_verify_key=VERIFY_KEY,
    )
    with TestClient(create_app(s)) as client:
        client.headers.update(auth_headers(resolve_api_key(None, tmp_path)))  # the first admin's key
        r = client.post("/api/v1/data/simple", json=GOOD)
        assert r.status_code == 503
        assert r.json()["detail"].startswith("MQTT broker not connected (127.0.0.1:")
        h = client.get("/healthz")
        assert h.status_code == 503
        assert h.json() == {"status": "unavailable", "broker": False, "store": True, "detail": "broker down"}
        # Still validates first: a bad body is 422 even with the broker down.
        assert client.post("/api/v1/data/simple", json={**GOOD, "power_factor": 2}).status_code == 422
        big = json.dumps({"motor_id": "m1", "x": [0.123456] * 400})
        assert len(big) > 2000
        r = client.post("/api/v1/data/batch", content=big, headers=JSON)
        assert r.status_code == 413
        assert r.json() == {
            "detail": f"request body too large: {len(big)} bytes > limit 2000 bytes (MAX_PAYLOAD_BYTES)"
        }

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while streaming
            for i in range(0, len(big), 500):
                yield big[i : i + 500].encode()

        r = client.post("/api/v1/data/batch", content=chunks(), headers=JSON)
        assert r.status_code == 413
        assert "request body too large: more than 2000 bytes" in r.json()["detail"]


async def test_store_down_gives_503(tmp_path: Path) -> None:
    s = memory_settings(tmp_path, influx_url=f"http://127.0.0.1:{free_port()}")
    async with memory_gateway(s) as gw:
        h = await gw.root.get("/healthz")
        assert h.status_code == 503
        assert h.json() == {"status": "unavailable", "broker": True, "store": False, "detail": "store down"}
        r = await gw.api.get("/assets")
        assert r.status_code == 503
        assert r.json()["detail"].startswith("store unavailable: InfluxDB at http://127.0.0.1:")
        assert (await gw.api.get("/monitoring/status")).status_code == 200  # answers from the bus view


async def test_healthz_ok_and_docs(mgw: MemoryGateway) -> None:
    root = mgw.root
    assert (await root.get("/healthz")).json() == {"status": "ok", "broker": True, "store": True}
    assert (await root.get("/docs")).status_code == 200
    paths = (await root.get("/openapi.json")).json()["paths"]
    for p in (
        "/api/v1/data/simple",
        "/api/v1/data/batch",
        "/api/v1/assets",
        "/api/v1/assets/{asset_id}/readings",
        "/api/v1/monitoring/status",
        "/healthz",
    ):
        assert p in paths


# ---------------------------------------------------------------------------------------------
# Readings from the store
# ---------------------------------------------------------------------------------------------
def reading(asset: str, minutes_ago: float, v: float) -> Reading:
    ts = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).replace(microsecond=0)
    return Reading(
        event_id=uuid.uuid4().hex,
        asset_id=asset,
        ts=ts,
        voltage_v=v,
        current_a=1.0,
        power_factor=0.8,
        vibration_g=0.2,
        is_faulty=v > 300,
    )


async def test_readings_from_store(mgw: MemoryGateway) -> None:
    client = mgw.root
    asset, idle = uid("r"), uid("old")
    rows = [
        reading(asset, 90, 210.0),
        reading(asset, 30, 220.0),
        reading(asset, 5, 330.0),
        reading(idle, 200, 1.0),
    ]
    store = open_store(mgw.settings)
    try:
        store.write([records.reading_to_point(r) for r in rows])
    finally:
        store.close()

    r = await client.get(f"/api/v1/assets/{asset}/readings")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["asset_id"], body["minutes"], body["count"], body["truncated"]) == (asset, 60, 2, False)
    got = [Reading.model_validate(x) for x in body["readings"]]
    assert got == [rows[1], rows[2]]  # newest last, exact values round-trip

    body = (await client.get(f"/api/v1/assets/{asset}/readings", params={"minutes": 120})).json()
    assert [x["voltage_v"] for x in body["readings"]] == [210.0, 220.0, 330.0]
    body = (await client.get(f"/api/v1/assets/{asset}/readings", params={"minutes": 120, "limit": 1})).json()
    assert (body["count"], body["truncated"], body["readings"][0]["voltage_v"]) == (1, True, 330.0)

    # The default window ends at the asset's newest data, not the wall clock: an idle asset shows its
    # last hour of data. A known asset without readings in a range: 200 and empty; unknown asset: 404.
    assert (await client.get(f"/api/v1/assets/{idle}/readings")).json()["count"] == 1
    r = await client.get(f"/api/v1/assets/{idle}/readings", params={"to": rows[3].ts.isoformat()})
    assert (r.status_code, r.json()["count"]) == (200, 0)
    r = await client.get(f"/api/v1/assets/{uid('nobody')}/readings")
    assert r.status_code == 404 and "unknown asset" in r.json()["detail"]

    listed = {a["asset_id"]: a for a in (await client.get("/api/v1/assets")).json()["assets"]}
    assert listed[asset] == {"asset_id": asset, "state": "IDLE", "name": "", "type": None, "has_data": True}


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/api/v1/assets/a+b/readings", "path.asset_id: String should match pattern"),
        (f"/api/v1/assets/{'a' * 65}/readings", "path.asset_id: String should match pattern"),
        ("/api/v1/assets/bad$id/readings", "path.asset_id: String should match pattern"),
        ("/api/v1/assets/m1/readings?minutes=0", "query.minutes: Input should be greater than or equal to 1"),
        (
            "/api/v1/assets/m1/readings?minutes=43201",
            "query.minutes: Input should be less than or equal to 43200",
        ),
        ("/api/v1/assets/m1/readings?minutes=ten", "query.minutes: Input should be a valid integer"),
    ],
)
async def test_readings_bad_input_is_422(mgw: MemoryGateway, path: str, reason: str) -> None:
    r = await mgw.root.get(path)
    assert r.status_code == 422
    assert reason in r.json()["detail"]


# ---------------------------------------------------------------------------------------------
# Retained state/config -> /assets and /monitoring/status; request/reply on the real broker
# ---------------------------------------------------------------------------------------------
async def test_retained_state_and_config_reach_assets_and_status(mgw: MemoryGateway) -> None:
    mon, cal, cfg = uid("mon"), uid("cal"), uid("cfg")
    retained = [
        (
            topics.state(mon),
            StateChange(
                asset_id=mon, state="MONITORING", previous="CALIBRATED", reason="go", models={"legacy": "v1"}
            ),
        ),
        (topics.asset_config(cfg), AssetConfig(asset_id=cfg, name="Cooling fan", type="fan")),
        (
            topics.model_announce(mon, "batch"),
            signed(
                ModelAnnouncement(
                    asset_id=mon,
                    model="batch",
                    version="v7",
                    path="/m/b.onnx",
                    created_at=datetime.now(UTC),
                    manifest=manifest("batch"),
                    onnx_b64="",
                )
            ),
        ),
        (topics.service_status("calibrator"), ServiceStatus(service="calibrator", state="online")),
    ]
    for t, m in retained:
        await mgw.retain(t, m)

    async def status() -> dict[str, Any]:
        return (await mgw.api.get("/monitoring/status")).json()  # type: ignore[no-any-return]

    await poll(lambda: mgw.view.models.get(mon) and "calibrator" in mgw.view.services)
    st = await status()
    a = st["assets"][mon]
    assert (a["state"], a["previous"], a["reason"], a["models"]) == (
        "MONITORING",
        "CALIBRATED",
        "go",
        {"legacy": "v1", "batch": "v7"},
    )
    assert st["assets"][cfg]["state"] == "IDLE"
    assert st["system_state"] == "MONITORING"
    # ingest: the fixture's; gateway: its own bus side (in memory as on a broker)
    assert st["services"] == {"calibrator": "online", "gateway": "online", "ingest": "online"}

    listed = {x["asset_id"]: x for x in (await mgw.api.get("/assets")).json()["assets"]}
    assert listed[mon]["state"] == "MONITORING" and listed[mon]["has_data"] is False
    assert listed[cfg] == {
        "asset_id": cfg,
        "state": "IDLE",
        "name": "Cooling fan",
        "type": "fan",
        "has_data": False,
    }
    # An asset known only from the bus has readings endpoint 200 (empty), not 404.
    assert (await mgw.api.get(f"/assets/{cfg}/readings")).json()["count"] == 0

    await mgw.retain(topics.state(cal), StateChange(asset_id=cal, state="CALIBRATING"))
    await poll(lambda: cal in mgw.view.states)
    assert (await status())["system_state"] == "CALIBRATING"

    await mgw.retain(topics.state(cal), b"")  # clearing removes the state
    await poll(lambda: cal not in mgw.view.states)
    st = await status()
    assert cal not in st["assets"] and st["system_state"] == "MONITORING"


@pytest.mark.integration
async def test_request_reply_over_real_broker(
    gw: tuple[TestClient, Settings], mosquitto: MosquittoServer
) -> None:
    """POST /calibration/start → cmd/calibrate on Mosquitto → interim and final replies → HTTP 200."""
    client, _ = gw
    view: BusView = client.app.state.ctx.view  # type: ignore[attr-defined]
    seen: list[CalibrationRequest] = []

    async def responder(c: aiomqtt.Client) -> None:
        async for m in c.messages:
            req = CalibrationRequest.model_validate_json(bytes(m.payload))  # type: ignore[arg-type]
            seen.append(req)
            for status in ("accepted", "completed"):
                rep = CalibrationReply(
                    correlation_id=req.correlation_id,
                    asset_id=req.asset_id,
                    status=status,
                    data_points_collected=42,
                    models={"legacy": "v1"},
                )
                await c.publish(req.reply_to, rep.model_dump_json(), qos=1)

    async with subscriber(mosquitto, topics.command("calibrate")) as c:
        task = asyncio.create_task(responder(c))
        try:
            r = await asyncio.to_thread(
                client.post,
                "/api/v1/calibration/start?wait=true",
                json={"asset_id": "m1", "lookback_minutes": 5},
            )
        finally:
            # Re-cancel until done: on Python 3.11 a cancellation arriving just as an aiomqtt publish
            # completes can be swallowed, leaving the responder waiting for the next message forever.
            while not task.done():
                task.cancel()
                await asyncio.wait([task], timeout=0.2)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "status": "completed",
        "asset_id": "m1",
        "data_points_collected": 42,
        "message": "",
        "models": {"legacy": "v1"},
    }
    [req] = seen
    assert req.reply_to == topics.reply(view.requester, req.correlation_id) and req.lookback_minutes == 5
    assert view.requests.pending() == 0


# ---------------------------------------------------------------------------------------------
# Bus view units (in-memory bus)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([], "IDLE"),
        (["IDLE", "IDLE"], "IDLE"),
        (["IDLE", "CALIBRATED"], "CALIBRATED"),
        (["CALIBRATED", "MONITORING", "IDLE"], "MONITORING"),
        (["MONITORING", "CALIBRATING", "CALIBRATED"], "CALIBRATING"),
    ],
)
def test_system_state(states: list[Any], expected: str) -> None:
    assert system_state(states) == expected


async def test_view_tracks_state_and_rejects_mismatch() -> None:
    view, bus = BusView("gw-test"), MemoryBus()
    service = bus_side(view)
    assert topics.reply_filter("gw-test") in service.subscriptions

    async def feed(topic: str, payload: bytes) -> None:
        await deliver(service, bus, topic, payload, retain=True)

    await feed(topics.state("a1"), StateChange(asset_id="a1", state="CALIBRATED").model_dump_json().encode())
    assert view.state_of("a1") == "CALIBRATED" and view.state_of("zz") == "IDLE"
    await feed(topics.state("a2"), StateChange(asset_id="a1", state="MONITORING").model_dump_json().encode())
    await feed(topics.health("a3"), b'{"score": NaN}')
    await feed(topics.state("a4"), b'{"asset_id": "a4", "state": "BROKEN"}')
    await feed(topics.command("purge"), b"{}")  # no route
    reasons = [
        DeadLetter.model_validate_json(m.payload).reason for m in bus.on(topics.dead_letter("gateway"))
    ]
    assert reasons[0] == "topic asset 'a2' does not match payload asset_id 'a1'"
    assert reasons[1].startswith("malformed JSON")
    assert reasons[2].startswith("state: Input should be 'IDLE', 'CALIBRATING'")
    assert reasons[3] == f"no gateway route for topic {topics.command('purge')!r}"
    assert view.known_assets() == {"a1"}
    await feed(topics.state("a1"), b"")
    assert view.known_assets() == set() and view.state_of("a1") == "IDLE"


async def test_view_request_reply_and_timeout() -> None:
    view, bus = BusView("gw-test"), MemoryBus()
    service, requests = bus_side(view), view.requests
    commands = bus.subscribe(topics.command("purge"))

    async def responder() -> None:
        msg = await commands.get()
        req = json.loads(msg.payload)
        assert req["reply_to"] == topics.reply("gw-test", req["correlation_id"])
        await deliver(service, bus, topics.reply("gw-test", "someone-else"), b'{"status": "ok"}')
        await deliver(service, bus, req["reply_to"], b'{"status": "working"}')
        await deliver(service, bus, req["reply_to"], json.dumps({**req, "status": "ok"}).encode())

    task = asyncio.create_task(responder())
    reply = await requests.request(
        bus, topics.command("purge"), {"asset_id": "m1"}, 5, accept=lambda r: r["status"] == "ok"
    )
    await task
    assert reply["status"] == "ok" and reply["asset_id"] == "m1"
    assert requests.pending() == 0
    assert bus.on(topics.dead_letter("gateway")) == []

    with pytest.raises(TimeoutError):
        await requests.request(bus, topics.command("purge"), {"asset_id": "m1"}, 0.05)
    assert requests.pending() == 0
    with pytest.raises(ValueError, match="reply_to must be"):
        await requests.request(bus, "x", {"correlation_id": "abc", "reply_to": "elsewhere"}, 1)


# ---------------------------------------------------------------------------------------------
# python -m services.gateway: the declared service with the HTTP API as its state port
# ---------------------------------------------------------------------------------------------
@pytest.mark.integration
async def test_gateway_process_serves_and_stops_on_sigterm(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    """The real entry point: healthy on the broker, then SIGTERM with an SSE client still connected
    ends the process promptly (exit 0) and leaves the retained status ``offline``."""
    port = free_port()
    env = {
        **os.environ,
        "MQTT_URL": mosquitto.url,
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "DATA_DIR": str(tmp_path),
        "MODEL_VERIFY_KEY": VERIFY_KEY,
    }
    env.pop("INFLUX_URL", None)
    log = (tmp_path / "gateway.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "services.gateway"], env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as c:

            async def healthy() -> bool:
                try:
                    return (await c.get("/healthz")).status_code == 200
                except httpx.HTTPError:
                    return False

            deadline = time.monotonic() + 30
            while not await healthy():
                assert proc.poll() is None and time.monotonic() < deadline, "gateway did not become healthy"
                await asyncio.sleep(0.1)
            c.headers.update(auth_headers(resolve_api_key(None, tmp_path)))  # written on its first start
            async with c.stream("GET", "/api/v1/stream") as resp:
                assert resp.status_code == 200
                lines = resp.aiter_lines()
                assert await anext(lines) == "retry: 3000"
                t0 = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                rc = await asyncio.to_thread(proc.wait, 20)
        assert rc == 0 and time.monotonic() - t0 < 10
        async with subscriber(mosquitto, topics.service_status("gateway")) as sub:
            async with asyncio.timeout(10):
                m = await anext(aiter(sub.messages))
        assert ServiceStatus.model_validate_json(bytes(m.payload)).state == "offline"  # type: ignore[arg-type]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


async def test_view_keeps_the_first_of_two_scorers_monitoring() -> None:
    """Two scorers of one reading both move the asset to MONITORING; the broker retains whichever came
    last. The view keeps the first one's time (the state's ``since``, as the calibrator restores it)."""
    view, bus = BusView("gw-test"), MemoryBus()
    service = bus_side(view)
    t0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    legacy = StateChange(asset_id="a1", state="MONITORING", previous="CALIBRATED", reason="legacy", ts=t0)
    batch = legacy.model_copy(update={"ts": t0 + timedelta(microseconds=480), "reason": "batch"})
    for sc in (legacy, batch):
        await deliver(service, bus, topics.state("a1"), sc.model_dump_json().encode(), retain=True)
    assert view.states["a1"].ts == t0
    view.states.clear()
    for sc in (batch, legacy):  # the other arrival order
        await deliver(service, bus, topics.state("a1"), sc.model_dump_json().encode(), retain=True)
    assert view.states["a1"].ts == t0
    idle = StateChange(asset_id="a1", state="CALIBRATED", previous="CALIBRATING", ts=t0 + timedelta(hours=1))
    await deliver(service, bus, topics.state("a1"), idle.model_dump_json().encode(), retain=True)
    assert view.states["a1"].state == "CALIBRATED"
