"""``POST /data/simple/batch`` (issue 14): bulk ingest of simple readings, per-item results.

The real gateway app on the in-memory bus (``tests.support.gateway``); what it publishes is read back
with the ingest service's own parser, as ingest would take it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from services.gateway.routers import data
from services.ingest.service import parse_simple
from shared import raw, topics
from shared.messages import ServiceStatus
from tests.support.gateway import DEVICE_ASSETS, MemoryGateway, memory_gateway, memory_settings, poll

GOOD: dict[str, Any] = {
    "asset_id": "m1",
    "voltage_v": 230.0,
    "current_a": 12.5,
    "power_factor": 0.9,
    "vibration_g": 0.3,
}
NDJSON = {"content-type": "application/x-ndjson"}
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[MemoryGateway]:
    async with memory_gateway(memory_settings(tmp_path)) as g:
        yield g


def ndjson(*items: dict[str, Any] | str) -> str:
    return "\n".join(i if isinstance(i, str) else json.dumps(i) for i in items) + "\n"


def published(gw: MemoryGateway) -> list[Any]:
    """What the gateway published on the raw simple topics, parsed as ingest parses it."""
    return [parse_simple(m) for m in gw.bus.on(topics.RAW_SIMPLE_FILTER)]


async def test_json_array_is_accepted_and_each_item_published_once_like_a_single_reading(
    gw: MemoryGateway,
) -> None:
    given = {**GOOD, "asset_id": "m2", "event_id": "a" * 32, "timestamp": T0.isoformat()}
    r = await gw.api.post("/data/simple/batch", json=[GOOD, given, {**GOOD, "is_faulty": True}])
    assert r.status_code == 202, r.text
    body = r.json()
    assert (body["status"], body["accepted"], body["refused"]) == ("accepted", 3, 0)
    assert [i["index"] for i in body["items"]] == [0, 1, 2]
    assert {i["status"] for i in body["items"]} == {"accepted"}
    sent = published(gw)
    assert [m.asset_id for m in sent] == ["m1", "m2", "m1"]
    assert [m.event_id for m in sent] == [i["event_id"] for i in body["items"]]
    assert [m.timestamp for m in sent] == [datetime.fromisoformat(i["timestamp"]) for i in body["items"]]
    assert sent[1].event_id == "a" * 32 and sent[1].timestamp == T0  # the client's identity is kept
    assert len(set(m.event_id for m in sent)) == 3
    # the same reading through /simple publishes the same bytes on the same topic
    single = await gw.api.post("/data/simple", json=given)
    assert single.status_code == 202
    msgs = gw.bus.on(topics.RAW_SIMPLE_FILTER)
    assert (msgs[-1].topic, msgs[-1].payload) == (msgs[1].topic, msgs[1].payload)
    assert msgs[1].topic == topics.raw_simple("m2")


async def test_ndjson_is_accepted_and_stamped_items_never_share_a_time(gw: MemoryGateway) -> None:
    content = ndjson(*({**GOOD, "vibration_g": 0.1 * i} for i in range(5))).replace("\n", "\n\n", 1)
    r = await gw.api.post("/data/simple/batch", content=content, headers=NDJSON)
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 5
    sent = published(gw)
    assert [m.vibration_g for m in sent] == [pytest.approx(0.1 * i) for i in range(5)]
    stamps = [m.timestamp for m in sent]
    assert stamps == sorted(stamps) and len(set(stamps)) == 5  # arrival time, 1 µs apart in item order
    assert stamps[-1] - stamps[0] == timedelta(microseconds=4)


async def test_invalid_items_are_refused_with_index_and_reason_and_do_not_block_valid_ones(
    gw: MemoryGateway,
) -> None:
    content = ndjson(
        GOOD,
        '{"asset_id": "m1", ',
        {**GOOD, "voltage_v": "230"},
        {**GOOD, "asset_id": "m1", "vibration_g": 0.7},
        {**GOOD, "rpm": 3000},
        "[1, 2]",
    )
    r = await gw.api.post("/data/simple/batch", content=content, headers=NDJSON)
    assert r.status_code == 202, r.text
    body = r.json()
    assert (body["accepted"], body["refused"]) == (2, 4)
    refused = {i["index"]: i["reason"] for i in body["items"] if i["status"] == "refused"}
    assert set(refused) == {1, 2, 4, 5}
    assert refused[1].startswith("malformed JSON")
    assert refused[2] == "voltage_v: must be a number, got string"
    assert "rpm: Extra inputs are not permitted" in refused[4]
    assert refused[5] == "payload must be a JSON object, got array"
    accepted = [i for i in body["items"] if i["status"] == "accepted"]
    assert [i["index"] for i in accepted] == [0, 3]
    sent = published(gw)
    assert [m.event_id for m in sent] == [i["event_id"] for i in accepted]
    assert [m.vibration_g for m in sent] == [0.3, 0.7]
    # the same in a JSON array: a non-object item is refused by index
    r = await gw.api.post("/data/simple/batch", json=[7, GOOD, None])
    assert r.status_code == 202
    reasons = [(i["index"], i["status"], i.get("reason")) for i in r.json()["items"]]
    assert reasons == [
        (0, "refused", "must be a JSON object, got number"),
        (1, "accepted", None),
        (2, "refused", "must be a JSON object, got null"),
    ]


async def test_no_valid_item_is_422_with_the_reasons_and_publishes_nothing(gw: MemoryGateway) -> None:
    r = await gw.api.post("/data/simple/batch", json=[{**GOOD, "power_factor": 2}, {"asset_id": "../x"}])
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["detail"].startswith("no valid reading in the batch: item 0: power_factor")
    assert [i["index"] for i in body["items"]] == [0, 1]
    assert "invalid asset id '../x'" in body["items"][1]["reason"]
    assert published(gw) == []


@pytest.mark.parametrize(
    ("content", "headers", "reason"),
    [
        ('[{"asset_id": "m1"', {}, "malformed JSON"),
        (json.dumps(GOOD), {}, "payload must be a JSON array of readings, got object"),
        ("[]", {}, "no readings: the batch is empty"),
        ("\n \n", NDJSON, "no readings: the batch is empty"),
        ("", {}, "malformed JSON: empty payload"),
    ],
    ids=["malformed", "object", "empty array", "blank ndjson", "empty body"],
)
async def test_a_body_that_is_not_a_batch_is_422(
    gw: MemoryGateway, content: str, headers: dict[str, str], reason: str
) -> None:
    r = await gw.api.post("/data/simple/batch", content=content, headers=headers)
    assert r.status_code == 422, r.text
    assert reason in r.json()["detail"]
    assert published(gw) == []


async def test_more_items_than_the_limit_is_413_with_the_reason(gw: MemoryGateway) -> None:
    assert raw.MAX_BULK_ITEMS == 10_000
    many = [GOOD] * (raw.MAX_BULK_ITEMS + 1)
    r = await gw.api.post("/data/simple/batch", json=many)
    assert r.status_code == 413, r.text
    assert r.json()["detail"] == "too many readings: 10001 > limit 10000 per request; split the batch"
    r = await gw.api.post("/data/simple/batch", content=ndjson(*many), headers=NDJSON)
    assert r.status_code == 413 and "10001 > limit 10000" in r.json()["detail"]
    assert published(gw) == []
    ok = await gw.api.post("/data/simple/batch", content=ndjson(*many[:-1]), headers=NDJSON)
    assert ok.status_code == 202 and ok.json()["accepted"] == raw.MAX_BULK_ITEMS
    assert len(published(gw)) == raw.MAX_BULK_ITEMS


async def test_auth_is_that_of_single_readings_and_devices_send_only_for_their_assets(
    gw: MemoryGateway,
) -> None:
    batch = [{**GOOD, "asset_id": DEVICE_ASSETS[0]}, {**GOOD, "asset_id": "m2"}]
    r = await gw.clients[None].post("/data/simple/batch", json=batch)
    assert r.status_code == 401
    for role in ("viewer", "operator"):
        r = await gw.clients[role].post("/data/simple/batch", json=batch)
        assert r.status_code == 403 and f"role {role} may not" in r.json()["detail"]
    assert published(gw) == []
    r = await gw.clients["device"].post("/data/simple/batch", json=batch)
    assert r.status_code == 202, r.text
    items = r.json()["items"]
    assert items[0]["status"] == "accepted"
    assert items[1] == {
        "index": 1,
        "status": "refused",
        "event_id": None,
        "timestamp": None,
        "reason": "device device may not send data for asset 'm2' (its assets: m1, motor_01)",
    }
    assert [m.asset_id for m in published(gw)] == [DEVICE_ASSETS[0]]


async def test_no_ingest_online_is_503_with_identities_and_a_retry_with_them_publishes_the_same(
    gw: MemoryGateway,
) -> None:
    await gw.retain(topics.service_status("ingest"), ServiceStatus(service="ingest", state="offline"))
    await poll(lambda: gw.view.services["ingest"].state == "offline")
    batch = [GOOD, {**GOOD, "asset_id": "m2"}]
    r = await gw.api.post("/data/simple/batch", json=batch)
    assert r.status_code == 503 and r.headers["Retry-After"]
    body = r.json()
    assert "no ingest service online" in body["detail"]
    assert published(gw) == []
    retry = [
        {**item, "event_id": res["event_id"], "timestamp": res["timestamp"]}
        for item, res in zip(batch, body["items"], strict=True)
    ]
    await gw.retain(topics.service_status("ingest"), ServiceStatus(service="ingest", state="online"))
    await poll(lambda: gw.view.services["ingest"].state == "online")
    r1 = await gw.api.post("/data/simple/batch", json=retry)
    r2 = await gw.api.post("/data/simple/batch", json=retry)  # a retry of a retry
    assert (r1.status_code, r2.status_code) == (202, 202)
    assert [i["event_id"] for i in r1.json()["items"]] == [i["event_id"] for i in body["items"]]
    msgs = gw.bus.on(topics.RAW_SIMPLE_FILTER)
    assert [m.payload for m in msgs[:2]] == [m.payload for m in msgs[2:]]  # one event each, twice sent


async def test_publishes_are_pipelined_and_the_answer_waits_for_every_acknowledgement(
    gw: MemoryGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A window of BULK_IN_FLIGHT publishes is in flight before the first is acknowledged (a handler
    awaiting each PUBACK in turn would never get there: the test then fails on its timeout), never more,
    in item order, and the answer comes only after the last acknowledgement."""
    n, window = 200, data.BULK_IN_FLIGHT
    in_flight = peak = 0
    window_full, release = asyncio.Event(), asyncio.Event()
    order: list[float] = []
    publish = gw.bus.publish

    async def held(topic: str, payload: Any, **kw: Any) -> None:
        nonlocal in_flight, peak
        if not topic.startswith("rotorwatch/v1/raw/"):
            return await publish(topic, payload, **kw)
        order.append(json.loads(payload)["vibration_g"])  # handed to the client in this order
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight == window:
            window_full.set()
        await release.wait()  # the "PUBACK"
        in_flight -= 1
        await publish(topic, payload, **kw)

    monkeypatch.setattr(gw.bus, "publish", held)
    batch = [{**GOOD, "vibration_g": i / 1000} for i in range(n)]
    post = asyncio.create_task(gw.api.post("/data/simple/batch", json=batch))
    await asyncio.wait_for(window_full.wait(), timeout=10)
    assert not post.done() and published(gw) == []  # nothing acknowledged yet: no answer
    release.set()
    r = await asyncio.wait_for(post, timeout=10)
    assert r.status_code == 202 and r.json()["accepted"] == n
    assert peak == window and 1 < window < n
    assert order == [i / 1000 for i in range(n)]
    assert len(published(gw)) == n


async def test_a_failed_acknowledgement_is_503_for_the_batch(
    gw: MemoryGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish = gw.bus.publish
    calls = 0

    async def flaky(topic: str, payload: Any, **kw: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise aiomqtt.MqttError("broker connection lost before it acknowledged the message")
        await publish(topic, payload, **kw)

    monkeypatch.setattr(gw.bus, "publish", flaky)
    r = await gw.api.post("/data/simple/batch", json=[GOOD] * 3)
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["detail"].startswith("MQTT publish failed after ")
    assert body["detail"].endswith(
        " of 3 readings: broker connection lost before it acknowledged the message"
    )
    assert len(body["items"]) == 3 and all(len(i["event_id"]) == 32 for i in body["items"])


async def test_data_posts_resolve_their_dependencies_without_a_thread_hop(
    gw: MemoryGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastAPI runs a plain ``def`` dependency in its thread pool: on the ingest path every request paid
    a thread hop for the context look-up. (The API-key lookup's own ``asyncio.to_thread`` is apart.)"""
    import fastapi.dependencies.utils as fastapi_deps

    hops: list[Any] = []
    real = fastapi_deps.run_in_threadpool

    async def counting(func: Any, *args: Any, **kw: Any) -> Any:
        hops.append(func)
        return await real(func, *args, **kw)

    monkeypatch.setattr(fastapi_deps, "run_in_threadpool", counting)
    from fastapi import Depends

    def plain() -> None:  # a plain ``def`` dependency (no gateway route has one since issue 14's h6)
        return None

    async def probe() -> dict[str, str]:
        return {}

    gw.app.router.add_api_route("/api/v1/probe-sync", probe, dependencies=[Depends(plain)])
    assert (await gw.api.get("/probe-sync")).status_code == 200  # the counter sees sync deps
    assert hops, "the probe does not see FastAPI's thread-pool calls"
    hops.clear()
    for path, body in (("/data/simple", GOOD), ("/data/simple/batch", [GOOD])):
        r = await gw.api.post(path, json=body)
        assert r.status_code == 202, r.text
    assert hops == []


async def test_a_partitioned_ingest_takes_readings_only_with_every_replica_online(gw: MemoryGateway) -> None:
    """Ingest run as replicas (``status/ingest/p<i>of<n>``, shared.partition): data posts are accepted
    while every replica is online, as the gateway's readiness counts a partitioned stage."""
    await gw.retain(topics.service_status("ingest"), b"")
    for i in range(2):
        status = ServiceStatus(service="ingest", state="online")
        await gw.retain(topics.service_status("ingest") + f"/p{i}of2", status)
    await poll(lambda: "ingest" not in gw.view.services and len(gw.view.services) >= 2)
    assert (await gw.api.post("/data/simple/batch", json=[GOOD])).status_code == 202
    assert (await gw.api.post("/data/simple", json=GOOD)).status_code == 202
    offline = ServiceStatus(service="ingest", state="offline")
    await gw.retain(topics.service_status("ingest") + "/p1of2", offline)
    await poll(lambda: gw.view.services["ingest/p1of2"].state == "offline")
    for path, body in (("/data/simple/batch", [GOOD]), ("/data/simple", GOOD)):
        r = await gw.api.post(path, json=body)
        assert r.status_code == 503 and "no ingest service online" in r.json()["detail"]
    assert len(published(gw)) == 2
