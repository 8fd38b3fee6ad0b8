"""Ingest: every bad-input kind is dead-lettered with a reason naming the problem, and the next good
message still flows; one integration test on the real Mosquitto broker."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from services.ingest.service import SERVICE, build
from shared import topics
from shared.bus import MemoryBus
from shared.messages import DeadLetter, Reading, Window
from shared.service import deliver, run_service
from shared.settings import Settings

GOOD_SIMPLE: dict[str, Any] = {
    "asset_id": "m1",
    "voltage_v": 230.0,
    "current_a": 12.5,
    "power_factor": 0.9,
    "vibration_g": 0.3,
}
SIMPLE_TOPIC = topics.raw_simple("m1")
VIB_TOPIC = topics.raw_vibration("m1")


def ramp(n: int, scale: float = 0.01) -> list[float]:
    return [round((i % 100) * scale, 4) for i in range(n)]


def good_batch(n: int = 32, axes: str = "xyz") -> dict[str, Any]:
    out: dict[str, Any] = {"motor_id": "m1", "fs_hz": 1000.0}
    for a in axes:
        out[a] = ramp(n)
    return out


def settings(**kw: Any) -> Settings:
    return Settings(mqtt_url="mqtt://127.0.0.1:1", data_dir=Path("/nonexistent"), **kw)


async def feed(
    bus: MemoryBus,
    topic: str,
    payload: bytes | str | dict[str, Any],
    s: Settings | None = None,
    retain: bool = False,
) -> None:
    s = s or settings()
    if isinstance(payload, dict):
        payload = json.dumps(payload)
    if isinstance(payload, str):
        payload = payload.encode()
    await deliver(build(s), bus, topic, payload, retain=retain, max_payload_bytes=s.max_payload_bytes)


def dead_letters(bus: MemoryBus) -> list[DeadLetter]:
    return [DeadLetter.model_validate_json(m.payload) for m in bus.on(topics.dead_letter(SERVICE))]


def readings(bus: MemoryBus) -> list[Reading]:
    return [Reading.model_validate_json(m.payload) for m in bus.on(topics.READING_FILTER)]


def windows(bus: MemoryBus) -> list[Window]:
    return [Window.model_validate_json(m.payload) for m in bus.on(topics.WINDOW_FILTER)]


def simple(**over: Any) -> str:
    d = {**GOOD_SIMPLE, **over}
    return json.dumps({k: v for k, v in d.items() if v is not DROP})


DROP = object()

BAD_SIMPLE = [
    ("malformed", '{"asset_id": "m1", "voltage_v": ', "malformed JSON"),
    ("empty", "", "malformed JSON: empty payload"),
    ("not utf8", b"\xff\xfe\x00", "malformed JSON"),
    ("array", "[1, 2]", "payload must be a JSON object, got array"),
    ("nan token", simple(voltage_v=1.0).replace("1.0", "NaN"), "voltage_v: must be a finite number, got nan"),
    (
        "infinity token",
        simple(current_a=2.5).replace("2.5", "Infinity"),
        "current_a: must be a finite number, got inf",
    ),
    (
        "-infinity token",
        simple(vibration_g=0.25).replace("0.25", "-Infinity"),
        "vibration_g: must be a finite number, got -inf",
    ),
    ("string number", simple(voltage_v="230"), "voltage_v: must be a number, got string"),
    ("bool number", simple(power_factor=True), "power_factor: must be a number, got boolean"),
    ("null number", simple(current_a=None), "current_a: must be a number, got null"),
    ("bad is_faulty", simple(is_faulty="yes"), "is_faulty: must be true, false or null, got string"),
    ("voltage too high", simple(voltage_v=40_000), "voltage_v: Input should be less than or equal to 35000"),
    ("negative current", simple(current_a=-1), "current_a: Input should be greater than or equal to 0"),
    ("pf above 1", simple(power_factor=1.2), "power_factor: Input should be less than or equal to 1"),
    ("vibration too high", simple(vibration_g=501), "vibration_g: Input should be less than or equal to 500"),
    ("missing field", simple(vibration_g=DROP), "vibration_g: Field required"),
    ("unknown field", simple(temperature_c=40), "temperature_c: Extra inputs are not permitted"),
    ("missing id", simple(asset_id=DROP), "asset_id: field required"),
    ("numeric id", simple(asset_id=7), "asset_id: must be a string, got number"),
    ("path id", simple(asset_id="../x"), "asset_id: invalid asset id '../x'"),
    ("wildcard id", simple(asset_id="a+b"), "asset_id: invalid asset id 'a+b'"),
    ("long id", simple(asset_id="a" * 65), "(65 chars): must match"),
    ("asset mismatch", simple(asset_id="m2"), "topic asset 'm1' does not match payload asset_id 'm2'"),
    ("bad event id", simple(event_id="not-hex"), "event_id: String should match pattern"),
    ("timestamp 2200", simple(timestamp=7_258_118_400), "timestamp 2200-01-01T00:00:00+00:00 is"),
    ("timestamp text", simple(timestamp="yesterday"), "timestamp: Input should be a valid datetime"),
]


@pytest.mark.parametrize(
    ("payload", "reason"), [(p, r) for _, p, r in BAD_SIMPLE], ids=[i for i, _, _ in BAD_SIMPLE]
)
async def test_bad_simple_is_dead_lettered_and_next_good_flows(payload: str | bytes, reason: str) -> None:
    bus = MemoryBus()
    await feed(bus, SIMPLE_TOPIC, payload)
    dls = dead_letters(bus)
    assert len(dls) == 1, bus.published
    assert reason in dls[0].reason
    assert dls[0].source_topic == SIMPLE_TOPIC
    assert readings(bus) == []
    await feed(bus, SIMPLE_TOPIC, GOOD_SIMPLE)
    assert len(readings(bus)) == 1
    assert len(dead_letters(bus)) == 1


async def test_hostile_asset_in_topic_is_rejected() -> None:
    bus = MemoryBus()
    await feed(bus, "rotorwatch/v1/raw/a+b/simple", simple(asset_id="a+b"))
    await feed(bus, "rotorwatch/v1/raw/" + "a" * 65 + "/vibration", good_batch())
    reasons = [d.reason for d in dead_letters(bus)]
    assert "invalid asset id 'a+b' in topic" in reasons[0]
    assert "invalid asset id 'aaaa" in reasons[1] and "in topic" in reasons[1]


async def test_oversized_payload_is_dead_lettered() -> None:
    s = settings(max_payload_bytes=1000)
    bus = MemoryBus()
    big = good_batch(200)
    await feed(bus, VIB_TOPIC, big, s)
    size = len(json.dumps(big))
    assert size > 1000
    [dl] = dead_letters(bus)
    assert dl.reason == f"payload too large: {size} bytes > limit 1000"
    assert dl.payload_bytes == size
    await feed(bus, VIB_TOPIC, good_batch(16), s)
    assert len(windows(bus)) == 1


async def test_good_simple_is_normalised() -> None:
    bus = MemoryBus()
    eid = "0123456789abcdef0123456789abcdef"
    first = {**GOOD_SIMPLE, "event_id": eid, "timestamp": 1_700_000_000, "is_faulty": True}
    await feed(bus, SIMPLE_TOPIC, first)
    before = datetime.now(UTC)
    await feed(bus, SIMPLE_TOPIC, GOOD_SIMPLE)
    after = datetime.now(UTC)
    assert [m.topic for m in bus.published] == [topics.reading("m1")] * 2
    r1, r2 = readings(bus)
    assert r1.event_id == eid
    assert r1.ts == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert (r1.voltage_v, r1.current_a, r1.power_factor, r1.vibration_g, r1.is_faulty) == (
        230.0,
        12.5,
        0.9,
        0.3,
        True,
    )
    assert len(r2.event_id) == 32 and r2.event_id != eid
    assert before <= r2.ts <= after
    assert r2.is_faulty is None


async def test_iso_timestamp_with_offset_becomes_utc() -> None:
    bus = MemoryBus()
    await feed(bus, SIMPLE_TOPIC, {**GOOD_SIMPLE, "timestamp": "2024-03-01T12:00:00+02:00"})
    [r] = readings(bus)
    assert r.ts == datetime(2024, 3, 1, 10, 0, tzinfo=UTC)


def batch_text(**axes: Any) -> str:
    d = good_batch()
    d.update(axes)
    return json.dumps({k: v for k, v in d.items() if v is not DROP})


BAD_VIBRATION = [
    ("malformed", '{"motor_id": "m1", "x": [1, 2', "malformed JSON"),
    (
        "too short",
        batch_text(x=ramp(10), y=ramp(10), z=ramp(10)),
        "axis x: has 10 samples; a window needs 16..65536",
    ),
    (
        "too long",
        batch_text(x=[0.0] * 65_537, y=DROP, z=DROP),
        "axis x: has 65537 samples; a window needs 16..65536",
    ),
    (
        "nan token",
        batch_text(x=[0.0] * 3 + [123.5] + [0.0] * 28).replace("123.5", "NaN"),
        "axis x[3]: must be a finite number, got nan",
    ),
    (
        "infinity token",
        batch_text(y=[0.0] * 31 + [123.5]).replace("123.5", "-Infinity"),
        "axis y[31]: must be a finite number, got -inf",
    ),
    ("unequal lengths", batch_text(y=ramp(31)), "axis lengths differ: x has 32 samples, y has 31 samples"),
    (
        "string sample",
        batch_text(x=[0.0] * 5 + ["1.0"] + [0.0] * 26),
        "axis x[5]: must be a number, got string",
    ),
    ("null sample", batch_text(z=[None] + [0.0] * 31), "axis z[0]: must be a number, got null"),
    ("nested sample", batch_text(x=[[1.0]] * 32), "axis x[0]: must be a number, got array"),
    ("not an array", batch_text(x="1,2,3"), "axis x: must be an array of numbers, got string"),
    ("no axis", batch_text(x=DROP, y=DROP, z=DROP), "no axis: give x, y and/or z (arrays of g), or channels"),
    ("above 500 g", batch_text(z=[0.0] * 7 + [600.0] + [0.0] * 24), "axis z[7]: 600.0 g is outside ±500.0 g"),
    ("huge int", batch_text(x=[10**400] + [0] * 31), "axis x: not representable as 64-bit floats"),
    ("fs zero", batch_text(fs_hz=0), "fs_hz: Input should be greater than or equal to 1"),
    ("fs string", batch_text(fs_hz="1k"), "fs_hz: must be a number, got string"),
    ("fs nan", batch_text(fs_hz=777.5).replace("777.5", "NaN"), "fs_hz: must be a finite number, got nan"),
    ("missing motor", batch_text(motor_id=DROP), "motor_id: field required"),
    ("path motor", batch_text(motor_id="../x"), "motor_id: invalid asset id '../x'"),
    ("motor mismatch", batch_text(motor_id="m9"), "topic asset 'm1' does not match payload motor_id 'm9'"),
    ("unknown field", batch_text(temp=1), "temp: Extra inputs are not permitted"),
]


@pytest.mark.parametrize(
    ("payload", "reason"), [(p, r) for _, p, r in BAD_VIBRATION], ids=[i for i, _, _ in BAD_VIBRATION]
)
async def test_bad_vibration_is_dead_lettered_and_next_good_flows(payload: str, reason: str) -> None:
    bus = MemoryBus()
    await feed(bus, VIB_TOPIC, payload)
    dls = dead_letters(bus)
    assert len(dls) == 1, bus.published
    assert reason in dls[0].reason
    assert windows(bus) == []
    await feed(bus, VIB_TOPIC, good_batch())
    assert len(windows(bus)) == 1
    assert len(dead_letters(bus)) == 1


async def test_good_vibration_windows() -> None:
    bus = MemoryBus()
    await feed(bus, VIB_TOPIC, {**good_batch(16, "x"), "ts": "2024-01-02T03:04:05Z"})
    await feed(bus, VIB_TOPIC, {**good_batch(64), "fs_hz": 2000})
    w1, w2 = windows(bus)
    assert [m.topic for m in bus.published] == [topics.window("m1")] * 2
    assert (w1.axes, w1.n, w1.fs_hz, w1.y, w1.z) == (["x"], 16, 1000.0, None, None)
    assert w1.ts == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert w1.x == ramp(16)
    assert (w2.axes, w2.n, w2.fs_hz) == (["x", "y", "z"], 64, 2000.0)
    assert w2.z == ramp(64)


async def test_full_size_window_passes_unchanged() -> None:
    """The largest window (65,536 samples per axis) is accepted and every sample comes through as sent."""
    bus = MemoryBus()
    batch = good_batch(65_536)
    batch["x"][-1], batch["y"][0], batch["z"][40_000] = 499.5, -499.5, 0.125
    await feed(bus, VIB_TOPIC, json.dumps(batch).encode())
    [w] = windows(bus)
    assert dead_letters(bus) == []
    assert (w.n, w.axes, w.fs_hz) == (65_536, ["x", "y", "z"], 1000.0)
    assert (w.x, w.y, w.z) == (batch["x"], batch["y"], batch["z"])


async def test_retained_raw_is_ignored() -> None:
    bus = MemoryBus()
    await feed(bus, SIMPLE_TOPIC, GOOD_SIMPLE, retain=True)
    await feed(bus, VIB_TOPIC, "garbage", retain=True)
    assert bus.published == []


async def test_custom_vibration_filter_takes_asset_from_payload() -> None:
    s = settings(vibration_topic_filter="factory/+/vibration/raw, plant/#")
    assert build(s).subscriptions == [
        topics.RAW_SIMPLE_FILTER,
        topics.RAW_VIBRATION_FILTER,
        "factory/+/vibration/raw",
        "plant/#",
    ]
    bus = MemoryBus()
    await feed(bus, "factory/line1/vibration/raw", {**good_batch(), "motor_id": "pump-7"}, s)
    await feed(bus, "plant/a/b", {**good_batch(), "motor_id": "fan.2"}, s)
    await feed(bus, "factory/line1/vibration/raw", {**good_batch(), "motor_id": "a/b"}, s)
    assert [w.asset_id for w in windows(bus)] == ["pump-7", "fan.2"]
    [dl] = dead_letters(bus)
    assert "motor_id: invalid asset id 'a/b'" in dl.reason


# ---------------------------------------------------------------------------------------------
# Integration: the real broker
# ---------------------------------------------------------------------------------------------
async def collect(client: aiomqtt.Client, n: int, timeout: float = 10.0) -> list[aiomqtt.Message]:
    out: list[aiomqtt.Message] = []
    async with asyncio.timeout(timeout):
        async for m in client.messages:
            if m.retain:
                continue
            out.append(m)
            if len(out) == n:
                return out
    return out


@pytest.mark.integration
async def test_ingest_on_real_broker(mosquitto: Any, tmp_path: Path) -> None:
    s = Settings(mqtt_url=mosquitto.url, data_dir=tmp_path, vibration_topic_filter="factory/+/vibration/raw")
    svc = build(s)
    state = svc.serve_state
    task = asyncio.create_task(run_service(svc, s))
    try:
        async with asyncio.timeout(10):
            await state.ready.wait()
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
            await client.subscribe(topics.READING_FILTER, qos=1)
            await client.subscribe(topics.WINDOW_FILTER, qos=1)
            await client.subscribe(topics.dead_letter(SERVICE), qos=1)
            await client.publish(SIMPLE_TOPIC, json.dumps(GOOD_SIMPLE), qos=1)
            await client.publish(SIMPLE_TOPIC, '{"asset_id": "m1", "voltage_v": NaN}', qos=1)
            await client.publish(SIMPLE_TOPIC, json.dumps({**GOOD_SIMPLE, "voltage_v": 231.0}), qos=1)
            await client.publish(
                "factory/line1/vibration/raw", json.dumps({**good_batch(), "motor_id": "pump-7"}), qos=1
            )
            got = await collect(client, 4)
        by_topic = [(str(m.topic), json.loads(bytes(m.payload))) for m in got]  # type: ignore[arg-type]
        assert [t for t, _ in by_topic] == [
            topics.reading("m1"),
            topics.dead_letter(SERVICE),
            topics.reading("m1"),
            topics.window("pump-7"),
        ]
        assert by_topic[0][1]["voltage_v"] == 230.0
        assert "voltage_v: must be a finite number, got nan" in by_topic[1][1]["reason"]
        assert by_topic[2][1]["voltage_v"] == 231.0
        assert by_topic[3][1]["n"] == 32 and by_topic[3][1]["axes"] == ["x", "y", "z"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
