"""Issue 17: windows with any subset of axes (1, 2 or 3 of x, y, z), by name or by position
(``channels``), through ingest (MQTT), the gateway (HTTP), the contract's models, the features and the
replay of multi-channel recordings. Every refused form is dead-lettered (422 over HTTP) with its reason.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from scripts import replay
from services.ingest.service import SERVICE, build
from shared import topics
from shared.bus import MemoryBus
from shared.features import VIBRATION_FEATURES, axes_features
from shared.features.engine import FeatureEngine
from shared.messages import DeadLetter, VibrationBatchIn, Window
from shared.recordings import Snapshot, channel_map
from shared.service import deliver
from shared.settings import Settings
from tests.support.gateway import memory_gateway, memory_settings

ROOT = Path(__file__).resolve().parent.parent
FEMTO = ROOT.parent / "shared" / "datasets" / "femto_pronostia" / "femto_Bearing1_1.npz"
TOPIC = topics.raw_vibration("m1")
N = 64


def samples(k: int, n: int = N) -> list[float]:
    """A distinct, recognisable signal per ``k`` (g)."""
    return [round(0.01 * k + 0.001 * (i % 17), 4) for i in range(n)]


def payload(**axes: Any) -> dict[str, Any]:
    return {"motor_id": "m1", "fs_hz": 1000.0, **axes}


async def ingest(body: dict[str, Any] | str, topic: str = TOPIC, **settings: Any) -> MemoryBus:
    s = Settings(mqtt_url="mqtt://127.0.0.1:1", data_dir=Path("/nonexistent"), **settings)
    bus = MemoryBus()
    raw = body if isinstance(body, str) else json.dumps(body)
    await deliver(build(s), bus, topic, raw.encode(), max_payload_bytes=s.max_payload_bytes)
    return bus


def windows(bus: MemoryBus) -> list[Window]:
    return [Window.model_validate_json(m.payload) for m in bus.on(topics.WINDOW_FILTER)]


def dead_letters(bus: MemoryBus) -> list[DeadLetter]:
    return [DeadLetter.model_validate_json(m.payload) for m in bus.on(topics.dead_letter(SERVICE))]


# ---------------------------------------------------------------------------------------------
# Accepted forms
# ---------------------------------------------------------------------------------------------
SUBSETS = ["x", "y", "z", "xy", "xz", "yz", "xyz"]


@pytest.mark.parametrize("axes", SUBSETS)
async def test_any_named_subset_gives_a_window_with_exactly_those_axes(axes: str) -> None:
    sent = {a: samples(i + 1) for i, a in enumerate(axes)}
    bus = await ingest(payload(**sent))
    assert dead_letters(bus) == []
    [w] = windows(bus)
    assert w.axes == list(axes) and w.n == N
    assert w.axis_data() == sent
    for a in "xyz":
        assert (getattr(w, a) is None) == (a not in axes)


@pytest.mark.parametrize("count", [1, 2, 3])
async def test_positional_channels_are_x_y_z_in_order(count: int) -> None:
    chans = [samples(k + 1) for k in range(count)]
    bus = await ingest(payload(channels=chans))
    [w] = windows(bus)
    assert w.axes == ["x", "y", "z"][:count]
    assert [getattr(w, a) for a in w.axes] == chans


async def test_named_axes_in_any_key_order_and_null_axes_are_absent() -> None:
    bus = await ingest(payload(z=samples(3), y=samples(2), x=None))
    [w] = windows(bus)
    assert w.axes == ["y", "z"] and (w.y, w.z) == (samples(2), samples(3))


async def test_esp32_device_payload_is_unchanged() -> None:
    """The device format (x, y, z on a ``factory/+/vibration/raw`` topic, asset in the payload) still
    gives the same 3-axis window; x alone still gives a 1-axis one."""
    body = {
        "motor_id": "pump-7",
        "ts": "2024-01-02T03:04:05Z",
        **{a: samples(i) for i, a in enumerate("xyz")},
    }
    topic = "factory/line1/vibration/raw"
    bus = await ingest(body, topic, vibration_topic_filter="factory/+/vibration/raw")
    [w] = windows(bus)
    assert (w.asset_id, w.axes, w.n, w.fs_hz) == ("pump-7", ["x", "y", "z"], N, 500.0)
    assert w.ts == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC) and w.z == samples(2)
    [w1] = windows(await ingest(payload(x=samples(1))))
    assert (w1.axes, w1.y, w1.z) == (["x"], None, None)


# ---------------------------------------------------------------------------------------------
# Refused forms: a dead letter with the reason, nothing published
# ---------------------------------------------------------------------------------------------
REFUSED: list[tuple[str, dict[str, Any] | str, str]] = [
    ("no axis", payload(), "no axis: give x, y and/or z (arrays of g), or channels (1 to 3 arrays"),
    ("only null axes", payload(x=None, y=None), "no axis: give x, y and/or z"),
    (
        "both forms",
        payload(channels=[samples(1)], y=samples(2)),
        "give the axes by name (x, y, z) or by position (channels), not both: found channels and y",
    ),
    (
        "four channels",
        payload(channels=[samples(k) for k in range(4)]),
        "channels: must be an array of 1 to 3 arrays of numbers (x, y, z), got 4 channels",
    ),
    (
        "no channel",
        payload(channels=[]),
        "channels: must be an array of 1 to 3 arrays of numbers (x, y, z), got 0",
    ),
    ("channels not an array", payload(channels="x,y"), "channels: must be an array of 1 to 3 arrays"),
    (
        "channel not an array",
        payload(channels=[samples(1), 0.5]),
        "channels[1] (y): must be an array of numbers, got number",
    ),
    (
        "unequal channels",
        payload(channels=[samples(1), samples(2, N - 1)]),
        f"axis lengths differ: channels[0] has {N} samples, channels[1] has {N - 1} samples",
    ),
    (
        "unequal y, z",
        payload(y=samples(1), z=samples(2, N + 1)),
        f"axis lengths differ: y has {N} samples, z has {N + 1} samples",
    ),
    (
        "unequal x, z",
        payload(x=samples(1, 20), z=samples(2)),
        f"axis lengths differ: x has 20 samples, z has {N} samples",
    ),
    (
        "short channel",
        payload(channels=[samples(1, 10)]),
        "channels[0] (x): has 10 samples; a window needs 16..65536",
    ),
    (
        "string sample in a channel",
        payload(channels=[samples(1), [*samples(2)[:5], "1.0", *samples(2)[6:]]]),
        "channels[1] (y)[5]: must be a number, got string",
    ),
    (
        "NaN in a channel",
        json.dumps(payload(channels=[samples(1), [*samples(2)[:-1], 123.5]])).replace("123.5", "NaN"),
        f"channels[1] (y)[{N - 1}]: must be a finite number, got nan",
    ),
    (
        "channel above 500 g",
        payload(channels=[samples(1), samples(2), [600.0] * N]),
        "channels[2] (z)[0]: 600.0 g is outside ±500.0 g",
    ),
    ("unknown axis name", payload(x=samples(1), w=samples(2)), "w: Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("body", "reason"), [(b, r) for _, b, r in REFUSED], ids=[i for i, _, _ in REFUSED])
async def test_refused_forms_are_dead_lettered_with_the_reason(
    body: dict[str, Any] | str, reason: str
) -> None:
    bus = await ingest(body)
    assert windows(bus) == []
    [dl] = dead_letters(bus)
    assert reason in dl.reason, dl.reason


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (payload(), "no axis"),
        (payload(channels=[samples(1)], x=samples(2)), "not both: found channels and x"),
        (payload(channels=[samples(k) for k in range(4)]), "at most 3 items"),
        (
            payload(channels=[samples(1), samples(2, N - 1)]),
            "axis lengths differ: x has 64 samples, y has 63",
        ),
        (payload(x=samples(1), z=samples(2, N - 2)), "axis lengths differ: x has 64 samples, z has 62"),
    ],
)
def test_the_model_refuses_what_ingest_refuses(body: dict[str, Any], reason: str) -> None:
    """``VibrationBatchIn`` itself (used by scripts and the gateway's schema) holds the same rules."""
    with pytest.raises(ValidationError, match=reason):
        VibrationBatchIn.model_validate(body)


def test_window_axes_name_exactly_the_axes_given_in_order() -> None:
    base: dict[str, Any] = {
        "event_id": "e1",
        "asset_id": "m1",
        "ts": datetime.now(UTC),
        "fs_hz": 1000.0,
        "n": N,
    }
    w = Window(**base, axes=["y", "z"], y=samples(1), z=samples(2))
    assert w.axis_data() == {"y": samples(1), "z": samples(2)}
    for axes, data, reason in [
        (["z", "y"], {"y": samples(1), "z": samples(2)}, r"axes \['z', 'y'\] do not name the axes given"),
        (["x", "y"], {"y": samples(1)}, "do not name the axes given"),
        ([], {}, "no axis"),
        (["y"], {"y": samples(1, N - 1)}, f"n is {N} but the axes hold {N - 1} samples"),
    ]:
        with pytest.raises(ValidationError, match=reason):
            Window(**base, axes=axes, **data)


async def test_gateway_accepts_every_form_and_refuses_mixed_forms(tmp_path: Path) -> None:
    async with memory_gateway(memory_settings(tmp_path)) as gw:
        for body in (payload(y=samples(1), z=samples(2)), payload(channels=[samples(1), samples(2)])):
            r = await gw.api.post("/data/batch", json=body)
            assert r.status_code == 202, r.text
        bad = await gw.api.post("/data/batch", json=payload(channels=[samples(1)], z=samples(2)))
        assert bad.status_code == 422 and "not both: found channels and z" in bad.json()["detail"]
        four = await gw.api.post("/data/batch", json=payload(channels=[samples(k) for k in range(4)]))
        assert four.status_code == 422 and "got 4 channels" in four.json()["detail"]
        sent = gw.bus.on(topics.RAW_VIBRATION_FILTER)
        assert len(sent) == 2
        # What the gateway hands over is what ingest turns into the same 2-axis windows.
        for m in sent:
            [w] = windows(await ingest(m.payload.decode()))
            assert w.axes in (["y", "z"], ["x", "y"]) and len(w.axis_data()) == 2


# ---------------------------------------------------------------------------------------------
# Features: named by exactly the axes sent
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("axes", SUBSETS)
def test_feature_vector_has_11_features_per_axis_sent(axes: str) -> None:
    rng = np.random.default_rng(7)
    data = {a: rng.normal(0, 0.3, 256).round(4).tolist() for a in axes}
    w = Window(
        event_id="e1", asset_id="m1", ts=datetime.now(UTC), fs_hz=2000.0, n=256, axes=list(axes), **data
    )
    fv = FeatureEngine().on_window(w)
    assert fv.names == [f"{a}_{f}" for a in axes for f in VIBRATION_FEATURES]
    names, values = axes_features({a: np.asarray(v) for a, v in data.items()})
    assert names == fv.names
    np.testing.assert_allclose(fv.values, values, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# Recordings: several channels of one recording as the axes of one asset
# ---------------------------------------------------------------------------------------------
def snap(signals: dict[str, list[float]]) -> Snapshot:
    return Snapshot(
        "s.csv",
        datetime(2025, 1, 1, tzinfo=UTC),
        100.0,
        {k: np.asarray(v, float) for k, v in signals.items()},
    )


def test_channel_specs_map_one_to_three_channels_to_axes_of_one_asset() -> None:
    three = snap({"0": [1, 2], "1": [3, 4], "2": [5, 6]})
    got = channel_map(["0,1=b1", "2=b2"], three, "m")
    assert {a: {k: v.tolist() for k, v in d.items()} for a, d in got.items()} == {
        "b1": {"x": [1, 2], "y": [3, 4]},
        "b2": {"x": [5, 6]},
    }
    named = channel_map(["2:z,1:y=pump"], three, "m")["pump"]
    assert list(named) == ["y", "z"] and named["z"].tolist() == [5, 6]
    assert list(channel_map(["1:z=p"], three, "m")["p"]) == ["z"]
    assert list(channel_map([], snap({"y": [1, 2], "z": [3, 4]}), "m")["m"]) == ["y", "z"]


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("0,1,2,0=b", r"expected CHANNEL=ASSET, .* \(1 to 3 channels per asset\)"),
        ("0:x,1=b", r"give every channel its axis \(CH:AXIS\) or none"),
        ("0:w=b", r"axes must be distinct names among x, y, z, got \['w'\]"),
        ("0:x,1:x=b", r"axes must be distinct names among x, y, z, got \['x', 'x'\]"),
        ("0,0=b", "a channel name is empty or given twice"),
        (":x=b", "a channel name is empty or given twice"),
        ("0,9=b", r"no channel '9' \(--channel '0,9=b'\); channels: 0, 1, 2"),
    ],
)
def test_bad_channel_specs_say_why(spec: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        channel_map([spec], snap({"0": [1, 2], "1": [3, 4], "2": [5, 6]}), "m")


async def test_femto_bearing_replays_as_one_two_axis_asset() -> None:
    """The real FEMTO file: channel 0 (horizontal) -> x, channel 1 (vertical) -> y of one asset; the
    payloads the replay sends are 2-axis windows with the recording's samples."""
    argv = [str(FEMTO), "--channel", "0,1=bearing1_1", "--window", "2560", "--limit", "3"]
    plan, _, desc = replay.load_plan(
        replay.parse_args([*argv, "--start", "2010-12-01T09:39:39Z", "--mqtt", "mqtt://h:1"])
    )
    assert list(plan) == ["bearing1_1"] and "for 1 asset(s) (bearing1_1)" in desc
    items = plan["bearing1_1"]
    assert len(items) == 3
    body = replay.item_body(items[1])
    assert set(body) == {"motor_id", "ts", "x", "y", "fs_hz", "event_id"} and body["fs_hz"] == 25600.0
    with np.load(FEMTO) as z:
        acc = z["acc"][1].astype(np.float64) * float(z["scale_g"])
    np.testing.assert_allclose(body["x"], acc[:, 0], atol=1e-7)
    np.testing.assert_allclose(body["y"], acc[:, 1], atol=1e-7)
    [w] = windows(await ingest({**body, "motor_id": "m1"}))
    assert w.axes == ["x", "y"] and w.n == 2560
