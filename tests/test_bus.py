"""The bus: topic matching, dead letters, and serve() on a real Mosquitto (reconnect, status, shutdown)."""

from __future__ import annotations

import asyncio
import json

import aiomqtt
import pytest

from shared import topics
from shared.bus import (
    Incoming,
    MemoryBus,
    PipelineStopped,
    Rejected,
    ServeState,
    dispatch,
    encode,
    serve,
    topic_matches,
)
from shared.messages import Reading
from shared.settings import Settings, parse_mqtt_url
from tests.support.servers import MosquittoServer, free_port


@pytest.mark.parametrize(
    ("filt", "topic", "expected"),
    [
        ("a/+/c", "a/b/c", True),
        ("a/+/c", "a/b/d", False),
        ("a/#", "a/b/c", True),
        ("a/#", "a", True),
        ("a/+", "a/b/c", False),
        ("$share/g/a/+", "a/b", True),
        ("rotorwatch/v1/raw/+/simple", "rotorwatch/v1/raw/m1/simple", True),
        ("rotorwatch/v1/raw/+/simple", "rotorwatch/v1/raw/m1/vibration", False),
    ],
)
def test_topic_matches(filt: str, topic: str, expected: bool) -> None:
    assert topic_matches(filt, topic) is expected


def test_parse_mqtt_url() -> None:
    b = parse_mqtt_url("mqtt://user:p%40ss@broker.local:1884")
    assert (b.host, b.port, b.username, b.password, b.tls) == ("broker.local", 1884, "user", "p@ss", False)
    assert parse_mqtt_url("mqtts://h").port == 8883
    with pytest.raises(ValueError, match="scheme"):
        parse_mqtt_url("http://h:1883")


def test_topic_builders_reject_hostile_ids() -> None:
    for bad in ["a/b", "a+b", "#", "", "x" * 65, "../etc"]:
        with pytest.raises(ValueError, match="invalid asset id"):
            topics.reading(bad)
    assert topics.asset_from_topic(topics.reading("m-1.a_b")) == "m-1.a_b"


def test_encode_rejects_nan() -> None:
    with pytest.raises(ValueError):
        encode({"x": float("nan")})


async def test_dispatch_turns_failures_into_dead_letters() -> None:
    bus = MemoryBus()

    async def handler(b: MemoryBus, msg: Incoming) -> None:
        data = json.loads(msg.payload)
        if data.get("bad"):
            raise Rejected("bad flag set")
        if data.get("boom"):
            raise RuntimeError("bug")
        await b.publish("out", msg.payload)

    for payload in [b"{not json", b'{"bad": true}', b'{"boom": true}', b"x" * 2000, b'{"ok": 1}']:
        await dispatch("svc", bus, handler, Incoming("in", payload), max_payload_bytes=1000)
    reasons = [json.loads(m.payload)["reason"] for m in bus.on(topics.dead_letter("svc"))]
    assert reasons[0].startswith("malformed JSON")
    assert reasons[1] == "bad flag set"
    assert reasons[2] == "internal error: RuntimeError: bug"
    assert reasons[3] == "payload too large: 2000 bytes > limit 1000"
    assert [m.payload for m in bus.on("out")] == [b'{"ok": 1}']


async def test_memory_bus_retained_delivered_to_late_subscriber() -> None:
    bus = MemoryBus()
    await bus.publish("s/a", {"v": 1}, retain=True)
    await bus.publish("s/a", {"v": 2}, retain=True)
    q = bus.subscribe("s/+")
    assert json.loads((await q.get()).payload) == {"v": 2}
    await bus.publish("s/a", b"", retain=True)  # empty retained payload clears it
    assert "s/a" not in bus.retained


async def _collect(url: str, filt: str, n: int, timeout: float = 10.0) -> list[aiomqtt.Message]:
    b = parse_mqtt_url(url)
    out: list[aiomqtt.Message] = []
    async with aiomqtt.Client(b.host, b.port) as c:
        await c.subscribe(filt, qos=1)
        async with asyncio.timeout(timeout):
            async for m in c.messages:
                out.append(m)
                if len(out) >= n:
                    break
    return out


@pytest.mark.integration
async def test_serve_on_real_broker_status_and_dead_letter(mosquitto: MosquittoServer) -> None:
    settings = Settings(mqtt_url=mosquitto.url)
    got: list[Incoming] = []

    async def handler(bus: MemoryBus, msg: Incoming) -> None:
        got.append(msg)
        Reading.model_validate_json(msg.payload)

    st = ServeState()
    task = asyncio.create_task(serve("t1", settings, ["test/in/#"], handler, state=st))
    await asyncio.wait_for(st.ready.wait(), 10)
    status = await _collect(mosquitto.url, topics.service_status("t1"), 1)
    assert json.loads(status[0].payload)["state"] == "online"
    dl_task = asyncio.create_task(_collect(mosquitto.url, topics.dead_letter("t1"), 1))
    await asyncio.sleep(0.3)
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as c:
        await c.publish("test/in/x", b'{"asset_id": "bad id"}', qos=1)
    dl = await dl_task
    reason = json.loads(dl[0].payload)["reason"]
    assert "asset_id" in reason and "event_id" in reason
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    status = await _collect(mosquitto.url, topics.service_status("t1"), 1)
    assert json.loads(status[0].payload)["state"] == "offline"


@pytest.mark.integration
async def test_serve_reconnects_after_broker_restart(tmp_path) -> None:
    srv = MosquittoServer(tmp_path / "m").start()
    try:
        settings = Settings(mqtt_url=srv.url)
        got: list[bytes] = []

        async def handler(bus: MemoryBus, msg: Incoming) -> None:
            got.append(msg.payload)

        st = ServeState()
        task = asyncio.create_task(serve("t2", settings, ["re/#"], handler, state=st))
        await asyncio.wait_for(st.ready.wait(), 10)
        srv.stop()
        await asyncio.sleep(1.0)
        assert not st.connected
        srv.start()
        await asyncio.wait_for(st.ready.wait(), 20)
        assert st.reconnects >= 1
        async with aiomqtt.Client("127.0.0.1", srv.port) as c:
            await c.publish("re/1", b"after-restart", qos=1)
        async with asyncio.timeout(10):
            while not got:
                await asyncio.sleep(0.05)
        assert got == [b"after-restart"]
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        srv.stop()


async def test_a_publish_while_disconnected_is_an_mqtt_error_not_a_crash() -> None:
    """A QoS 1 publish while the broker connection is down (paho queues it, rc NO_CONN) fails fast with
    MqttError (the pipeline reconnects and redelivers), never paho's RuntimeError from is_published():
    that escaped the dead-letter path and stopped a scorer's pipeline after a broker restart."""
    from shared.session import SessionClient

    client = SessionClient("127.0.0.1", free_port())
    with pytest.raises(aiomqtt.MqttError, match="not connected"):
        await client.publish_acked("rotorwatch/v1/x", b"1", qos=1, fail_fast=True)


@pytest.mark.integration
async def test_serve_ends_when_its_pipeline_dies(mosquitto: MosquittoServer) -> None:
    """An error that escapes dispatch (here an MqttError raised by the handler, which dispatch passes
    on) ends the pipeline: serve() must then end with PipelineStopped, so the process exits and its
    supervisor restarts it, instead of staying up and consuming nothing."""
    settings = Settings(mqtt_url=mosquitto.url)

    async def handler(bus: MemoryBus, msg: Incoming) -> None:
        raise aiomqtt.MqttError("publish failed: the connection dropped")

    st = ServeState()
    task = asyncio.create_task(serve("t3", settings, ["die/#"], handler, state=st))
    async with asyncio.timeout(10):
        await st.ready.wait()
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as c:
        await c.publish("die/1", b"x", qos=1)
    async with asyncio.timeout(10):
        with pytest.raises(PipelineStopped, match="t3: message pipeline stopped") as info:
            await task
    assert isinstance(info.value.__cause__, aiomqtt.MqttError)
    status = await _collect(mosquitto.url, topics.service_status("t3"), 1)
    assert json.loads(status[0].payload)["state"] == "offline"
