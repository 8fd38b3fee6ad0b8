"""One strict validation (issue 10): the contract's models refuse coerced types over HTTP and MQTT alike,
bound every physical quantity of raw input *and* internal events, bound every timestamp (ISO strings and
epochs alike: not before 2000, at most ``MAX_FUTURE_SKEW_S`` ahead, inside the store's range), and refuse
asset ids that do not start with a letter or digit. A refused reading never poisons later ones."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.features.service import build as build_features
from services.health.service import build as build_health
from services.historian.service import SERVICE as HISTORIAN
from services.ingest.service import build as build_ingest
from shared import raw, topics
from shared.bus import MemoryBus, Rejected
from shared.messages import (
    AssetCommand,
    DeadLetter,
    FeatureVector,
    Reading,
    SimpleReadingIn,
    VibrationBatchIn,
    Window,
    check_time,
    utcnow,
)
from shared.messages.base import max_future_skew, set_max_future_skew
from shared.service import deliver
from shared.settings import Settings
from tests.support.gateway import memory_gateway, memory_settings
from tests.support.signing import VERIFY_KEY

NOW = utcnow()
GOOD: dict[str, Any] = {
    "asset_id": "m1",
    "voltage_v": 230.0,
    "current_a": 12.5,
    "power_factor": 0.9,
    "vibration_g": 0.3,
}
FAR_FUTURE_ISO = "9999-12-31T23:59:59Z"
FAR_FUTURE_EPOCH = 253_402_300_799  # 9999-12-31T23:59:59Z in seconds


def simple(**over: Any) -> bytes:
    return json.dumps({**GOOD, **over}).encode()


def batch(**over: Any) -> dict[str, Any]:
    return {"motor_id": "m1", "fs_hz": 1000.0, "x": [0.1] * 32, **over}


@pytest.fixture
def skew() -> Iterator[None]:
    before = max_future_skew()
    yield
    set_max_future_skew(before)


# ---------------------------------------------------------------------------------------------
# Types: strict everywhere (raw parser and models, MQTT and HTTP)
# ---------------------------------------------------------------------------------------------
COERCED = [
    ({"voltage_v": "230"}, "voltage_v"),
    ({"current_a": True}, "current_a"),
    ({"power_factor": [0.9]}, "power_factor"),
    ({"is_faulty": "false"}, "is_faulty"),
    ({"is_faulty": 0}, "is_faulty"),
    ({"timestamp": True}, "timestamp"),
    ({"event_id": 12345}, "event_id"),
    ({"asset_id": 7}, "asset_id"),
]


@pytest.mark.parametrize(("change", "field"), COERCED, ids=[f for _, f in COERCED])
def test_simple_reading_types_are_strict_in_the_parser_and_the_model(
    change: dict[str, Any], field: str
) -> None:
    payload = simple(**change)
    with pytest.raises((Rejected, ValidationError), match=field):
        raw.parse_simple(payload, "m1")
    with pytest.raises(ValidationError, match=field):
        SimpleReadingIn.model_validate_json(payload)
    with pytest.raises(ValidationError, match=field):
        SimpleReadingIn.model_validate(json.loads(payload))  # python mode (a decoded HTTP body) too


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"x": ["0.1"] * 32}, "x"),
        ({"fs_hz": "1000"}, "fs_hz"),
        ({"x": [True] * 32}, "x"),
        ({"ts": False}, "ts"),
    ],
)
def test_vibration_types_are_strict(change: dict[str, Any], field: str) -> None:
    payload = json.dumps(batch(**change)).encode()
    with pytest.raises((Rejected, ValidationError), match=field):
        raw.parse_vibration(payload, "m1")
    with pytest.raises(ValidationError, match=field):
        VibrationBatchIn.model_validate_json(payload)


async def test_http_refuses_what_mqtt_refuses(tmp_path: Path) -> None:
    async with memory_gateway(memory_settings(tmp_path)) as gw:
        for body, field in [
            ({**GOOD, "voltage_v": "230"}, "voltage_v"),
            ({**GOOD, "power_factor": True}, "power_factor"),
            ({**GOOD, "timestamp": FAR_FUTURE_ISO}, "timestamp"),
            ({**GOOD, "asset_id": ".."}, "asset_id"),
        ]:
            r = await gw.api.post("/data/simple", json=body)
            assert r.status_code == 422 and field in r.json()["detail"], (body, r.text)
        r = await gw.api.post("/data/batch", json=batch(x=["0.1"] * 32))
        assert r.status_code == 422 and "x" in r.json()["detail"]
        assert gw.bus.on(topics.RAW_SIMPLE_FILTER) == [] and gw.bus.on(topics.RAW_VIBRATION_FILTER) == []


# ---------------------------------------------------------------------------------------------
# Ranges: internal events are bounded like raw input
# ---------------------------------------------------------------------------------------------
def reading(**over: Any) -> dict[str, Any]:
    return {"event_id": "e1", "ts": NOW.isoformat(), **GOOD, **over}


@pytest.mark.parametrize(
    "change",
    [
        {"voltage_v": -1e300},
        {"voltage_v": 40_000.0},
        {"current_a": -0.1},
        {"power_factor": 99.0},
        {"vibration_g": 501.0},
        {"event_id": ""},
        {"event_id": "a b"},
        {"asset_id": ".."},
    ],
)
def test_reading_events_have_the_ranges_of_raw_readings(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match=next(iter(change))):
        Reading.model_validate_json(json.dumps(reading(**change)))


def test_window_events_are_bounded() -> None:
    base = {"event_id": "w1", "asset_id": "m1", "ts": NOW.isoformat(), "fs_hz": 500.0, "n": 32, "axes": ["x"]}
    ok = Window.model_validate({**base, "x": [0.1] * 32})
    assert ok.n == 32
    for change, reason in [
        ({"x": [0.1] * 31 + [600.0]}, "exceeds"),
        ({"x": [0.1] * 8, "n": 8}, "at least 16"),
        ({"x": [0.1] * 32, "n": 33}, "n is 33 but the axes hold 32"),
        ({"x": [0.1] * 32, "fs_hz": 0.0}, "fs_hz"),
        ({"x": [0.1] * 32, "fs_hz": 1e9}, "fs_hz"),
        ({"x": [0.1] * 32, "axes": ["x", "y", "z"]}, "do not name the axes"),
        ({"x": [0.1] * 32, "y": [0.1] * 32, "z": [0.1] * 31, "axes": ["x", "y", "z"]}, "axis lengths differ"),
    ]:
        with pytest.raises(ValidationError, match=reason):
            Window.model_validate({**base, **change})


async def test_out_of_range_events_are_not_stored_or_used(tmp_path: Path) -> None:
    """A voltage of −1e300 and a power factor of 99 published directly on events/ are dead letters at
    the historian, the features stage and the health stage."""
    from services.historian.service import build as build_historian

    s = Settings(data_dir=tmp_path, model_verify_key=VERIFY_KEY, rotorwatch_env="development")
    bus = MemoryBus()
    services = [build_historian(s), build_features(s), build_health(s)]
    for bad in (reading(voltage_v=-1e300), reading(power_factor=99.0)):
        for svc in services:
            await deliver(svc, bus, topics.reading("m1"), json.dumps(bad))
    for name in (HISTORIAN, "features", "health"):
        reasons = [DeadLetter.model_validate_json(m.payload).reason for m in bus.on(topics.dead_letter(name))]
        assert len(reasons) == 2 and "voltage_v" in reasons[0] and "power_factor" in reasons[1], name


# ---------------------------------------------------------------------------------------------
# Timestamps: ISO strings and epochs alike
# ---------------------------------------------------------------------------------------------
#: Stands for "now + 900 s" in the parameters below (computed when the test runs, not at collection).
AHEAD_900_S = object()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (FAR_FUTURE_ISO, "in the future"),
        (4_102_444_800, "in the future"),  # 2100-01-01 in seconds
        (4_102_444_800_000, "in the future"),  # ... in milliseconds
        (FAR_FUTURE_EPOCH * 1000, "outside"),  # 9999 in milliseconds: past the store's range
        (FAR_FUTURE_EPOCH, "outside"),  # > 1e11, so milliseconds: 1978
        ("2262-04-12T00:00:00Z", "in the future"),
        ("1999-12-31T23:59:59Z", "before 2000-01-01"),
        (946_684_799, "outside 2000-01-01"),
        (0, "outside 2000-01-01"),
        (AHEAD_900_S, "in the future"),  # now + 900 s, taken when the test runs
        ("yesterday", "valid datetime"),
    ],
)
def test_timestamps_are_bounded_for_iso_strings_and_epochs(value: Any, reason: str) -> None:
    if value is AHEAD_900_S:  # a time at collection would be past by the time a long run gets here
        value = (utcnow() + timedelta(seconds=900)).isoformat()
    with pytest.raises((Rejected, ValidationError), match=reason):
        raw.parse_simple(simple(timestamp=value), "m1")
    with pytest.raises(ValidationError, match=reason):
        Reading.model_validate_json(json.dumps(reading(ts=value)))


def test_the_future_skew_is_configurable(skew: None) -> None:
    ahead = (utcnow() + timedelta(seconds=900)).isoformat()
    with pytest.raises(ValueError, match="MAX_FUTURE_SKEW_S = 300 s"):
        check_time(datetime.fromisoformat(ahead))
    set_max_future_skew(3600)
    assert raw.parse_simple(simple(timestamp=ahead), "m1").timestamp == datetime.fromisoformat(ahead)
    set_max_future_skew(0)
    with pytest.raises(ValueError, match="in the future"):
        check_time(utcnow() + timedelta(seconds=1))
    assert Settings(max_future_skew_s=42).max_future_skew_s == 42
    with pytest.raises(ValueError):
        set_max_future_skew(-1)


def test_naive_and_offset_times_become_utc() -> None:
    r = Reading.model_validate_json(json.dumps(reading(ts="2024-05-01T14:00:00+02:00")))
    assert r.ts == datetime(2024, 5, 1, 12, tzinfo=UTC) and r.ts.utcoffset() == timedelta(0)
    r = Reading.model_validate_json(json.dumps(reading(ts="2024-05-01T12:00:00")))
    assert r.ts == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert Reading.model_validate_json(json.dumps(reading(ts=1_714_564_800_000))).ts == r.ts


# ---------------------------------------------------------------------------------------------
# Asset ids
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("asset", [".", "..", ".hidden", "_x", "-x", "", "a/b", "a" * 65])
def test_asset_ids_start_with_a_letter_or_digit(asset: str) -> None:
    assert not topics.valid_asset_id(asset)
    with pytest.raises(ValueError):
        topics.reading(asset)
    with pytest.raises(ValidationError, match="asset_id"):
        AssetCommand(correlation_id="c", reply_to="r", asset_id=asset)
    with pytest.raises(Rejected, match="invalid asset id"):
        raw.parse_simple(simple(asset_id=asset))


@pytest.mark.parametrize("asset", ["m1", "0", "Motor_01.a-b", "a" * 64])
def test_ordinary_asset_ids_stay_valid(asset: str) -> None:
    assert topics.valid_asset_id(asset) and topics.reading(asset).endswith(f"/{asset}/reading")


# ---------------------------------------------------------------------------------------------
# A bad reading never poisons later ones
# ---------------------------------------------------------------------------------------------
async def test_a_refused_far_future_reading_does_not_poison_later_ones(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, model_verify_key=VERIFY_KEY, batch_window=5, legacy_warmup=2)
    bus = MemoryBus()
    ingest, features, health = build_ingest(s), build_features(s), build_health(s)

    # 1. Through ingest (MQTT raw input, as from a device): refused with the reason.
    await deliver(ingest, bus, topics.raw_simple("m1"), simple(timestamp=FAR_FUTURE_ISO))
    [dl] = [DeadLetter.model_validate_json(m.payload) for m in bus.on(topics.dead_letter("ingest"))]
    assert "timestamp" in dl.reason and "in the future" in dl.reason
    assert bus.on(topics.READING_FILTER) == []
    # 2. Published directly on events/ (a forged or buggy producer): refused by features and health.
    for svc in (features, health):
        await deliver(svc, bus, topics.reading("m1"), json.dumps(reading(ts=FAR_FUTURE_ISO)))
        assert len(bus.on(topics.dead_letter(svc.name))) == 1, svc.name

    # 3. Later good readings of the asset flow through ingest, features and health.
    t0 = NOW - timedelta(minutes=5)
    for i in range(12):
        ts = (t0 + timedelta(seconds=i)).isoformat()
        await deliver(ingest, bus, topics.raw_simple("m1"), simple(timestamp=ts, event_id=f"{i:032x}"))
    events = bus.on(topics.READING_FILTER)
    assert len(events) == 12 and len(bus.on(topics.dead_letter("ingest"))) == 1
    for m in events:
        for svc in (features, health):
            await deliver(svc, bus, m.topic, m.payload)
    vectors = [FeatureVector.model_validate_json(m.payload) for m in bus.on(topics.features_filter())]
    assert {v.kind for v in vectors} == {"legacy", "batch"} and len(vectors) > 12
    for svc in (features, health):
        assert len(bus.on(topics.dead_letter(svc.name))) == 1, f"{svc.name} refused a good reading"
    for v in vectors:
        await deliver(health, bus, topics.features("m1", v.kind), v)
    assert len(bus.on(topics.dead_letter("health"))) == 1
