"""Message <-> point conversion (pure, no servers)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shared import records, topics
from shared.messages import FeatureVector, Reading, Score, StateChange, Window, ts_ns
from shared.store.base import Point

TS = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
TS_NS = 1_714_566_615_123_456_000  # 2024-05-01T12:30:15.123456Z
EID = "0123456789abcdef0123456789abcdef"


def reading(**kw) -> Reading:
    base = dict(
        event_id=EID,
        asset_id="m1",
        ts=TS,
        voltage_v=400.0,
        current_a=12.5,
        power_factor=0.9,
        vibration_g=0.25,
    )
    return Reading(**(base | kw))


def test_timestamp_constant_is_right() -> None:
    assert ts_ns(TS) == TS_NS


def test_reading_to_point_and_back() -> None:
    r = reading(is_faulty=True)
    pt = records.reading_to_point(r)
    assert pt == Point(
        "readings",
        "m1",
        TS_NS,
        {
            "voltage_v": 400.0,
            "current_a": 12.5,
            "power_factor": 0.9,
            "vibration_g": 0.25,
            "event_id": EID,
            "is_faulty": True,
        },
    )
    assert records.point_to_reading(pt) == r


def test_reading_without_label_has_no_is_faulty_field() -> None:
    pt = records.reading_to_point(reading())
    assert "is_faulty" not in pt.fields
    assert records.point_to_reading(pt).is_faulty is None


def test_point_to_reading_refuses_other_points() -> None:
    with pytest.raises(ValueError, match="readings"):
        records.point_to_reading(Point("scores", "m1", 1, {"v": 1.0}))
    with pytest.raises(ValueError, match="voltage_v"):
        records.point_to_reading(Point("readings", "m1", 1, {"event_id": EID}))


def test_window_is_summarised_by_rms_per_axis() -> None:
    # x: constant 0.5 g -> rms 0.5; y: +-2 g square wave -> rms 2; z: [3, 4] repeated -> sqrt(12.5)
    n = 16
    w = Window(
        event_id=EID,
        asset_id="m1",
        ts=TS,
        fs_hz=1000.0,
        n=n,
        axes=["x", "y", "z"],
        x=[0.5] * n,
        y=[2.0, -2.0] * (n // 2),
        z=[3.0, 4.0] * (n // 2),
    )
    pt = records.window_to_point(w)
    assert pt.measurement == "windows" and pt.ts_ns == TS_NS and pt.asset_id == "m1"
    assert set(pt.fields) == {"event_id", "fs_hz", "n", "axes", "rms_x", "rms_y", "rms_z"}
    assert pt.fields["axes"] == "xyz" and pt.fields["n"] == 16.0 and pt.fields["fs_hz"] == 1000.0
    assert pt.fields["rms_x"] == pytest.approx(0.5)
    assert pt.fields["rms_y"] == pytest.approx(2.0)
    assert pt.fields["rms_z"] == pytest.approx(math.sqrt(12.5))


def test_single_axis_window() -> None:
    w = Window(event_id=EID, asset_id="m1", ts=TS, fs_hz=500.0, n=16, axes=["x"], x=[1.0, -1.0] * 8)
    pt = records.window_to_point(w)
    assert pt.fields["axes"] == "x" and pt.fields["rms_x"] == pytest.approx(1.0)
    assert "rms_y" not in pt.fields


def test_window_listing_a_missing_axis_is_refused() -> None:
    w = Window(event_id=EID, asset_id="m1", ts=TS, fs_hz=500.0, n=16, axes=["x", "y"], x=[1.0] * 16)
    with pytest.raises(ValueError, match="axis 'y'"):
        records.window_to_point(w)


def test_rms_checks_input() -> None:
    assert records.rms([3.0, 4.0]) == pytest.approx(math.sqrt(12.5))
    with pytest.raises(ValueError):
        records.rms([])


def fv(**kw) -> FeatureVector:
    base = dict(
        event_id=EID,
        asset_id="m1",
        ts=TS,
        kind="vibration",
        names=["rms_g", "kurtosis", "crest_factor"],
        values=[0.5, 3.0, 1.5],
        extras={"bpfo_amp": 0.01},
    )
    return FeatureVector(**(base | kw))


def test_features_to_point_and_back_keeps_name_order() -> None:
    pt = records.features_to_point(fv())
    assert pt.measurement == "features_vibration"
    assert dict(pt.fields) == {
        "rms_g": 0.5,
        "kurtosis": 3.0,
        "crest_factor": 1.5,
        "e_bpfo_amp": 0.01,
        "event_id": EID,
        "feature_names": "rms_g,kurtosis,crest_factor",
    }
    # fields come back from InfluxDB in column (alphabetical) order: the order must not matter
    shuffled = Point(pt.measurement, pt.asset_id, pt.ts_ns, dict(sorted(pt.fields.items())))
    assert records.point_to_features(shuffled) == (
        ["rms_g", "kurtosis", "crest_factor"],
        [0.5, 3.0, 1.5],
        {"bpfo_amp": 0.01},
    )


def test_features_without_name_order_come_back_sorted() -> None:
    pt = Point("features_legacy", "m1", 1, {"b": 2.0, "a": 1.0, "e_x": 5.0, "event_id": EID})
    assert records.point_to_features(pt) == (["a", "b"], [1.0, 2.0], {"x": 5.0})


def test_features_with_unstorable_names_are_refused() -> None:
    with pytest.raises(ValueError):
        records.features_to_point(fv(names=["bad name", "k", "c"]))
    with pytest.raises(ValueError, match="repeated or reserved"):
        records.features_to_point(fv(names=["a", "a", "c"]))
    with pytest.raises(ValueError, match="repeated or reserved"):
        records.features_to_point(fv(names=["event_id", "k", "c"]))
    with pytest.raises(ValueError, match="collides"):
        records.features_to_point(fv(names=["e_x", "k", "c"], extras={"x": 1.0}))


def test_score_to_point() -> None:
    s = Score(
        event_id=EID,
        asset_id="m1",
        ts=TS,
        model="autoencoder",
        model_version="v3",
        anomaly_score=0.75,
        raw_score=0.012,
        threshold=0.5,
        is_anomaly=True,
        severity="WARNING",
    )
    assert records.score_to_point(s) == Point(
        "scores",
        "m1",
        TS_NS,
        {
            "anomaly_score": 0.75,
            "raw_score": 0.012,
            "threshold": 0.5,
            "is_anomaly": True,
            "severity": "WARNING",
            "model_version": "v3",
            "event_id": EID,
        },
        {"model": "autoencoder"},
    )


def test_state_to_point() -> None:
    sc = StateChange(asset_id="m1", state="CALIBRATED", previous="CALIBRATING", reason="done", ts=TS)
    assert records.state_to_point(sc) == Point(
        "states", "m1", TS_NS, {"state": "CALIBRATED", "reason": "done", "previous": "CALIBRATING"}
    )
    first = records.state_to_point(StateChange(asset_id="m1", state="IDLE", ts=TS))
    assert dict(first.fields) == {"state": "IDLE", "reason": ""}


def test_point_to_dict() -> None:
    pt = Point("scores", "m1", TS_NS, {"anomaly_score": 0.5}, {"model": "batch"})
    d = records.point_to_dict(pt)
    assert d == {
        "ts": "2024-05-01T12:30:15.123456+00:00",
        "ts_ns": TS_NS,
        "asset_id": "m1",
        "model": "batch",
        "anomaly_score": 0.5,
    }
    json.dumps(d)


# --- registry ---------------------------------------------------------------------------------------
def test_registry_covers_every_family() -> None:
    filters = [f for f, _ in records.CONVERTERS]
    assert filters == [
        topics.READING_FILTER,
        topics.WINDOW_FILTER,
        topics.features_filter(),
        topics.SCORE_FILTER,
        topics.STATE_FILTER,
    ]


def test_convert_by_topic() -> None:
    r = reading()
    [pt] = records.convert(topics.reading("m1"), r.model_dump_json().encode())
    assert pt == records.reading_to_point(r)
    f = fv(kind="batch")
    [pt] = records.convert(topics.features("m1", "batch"), f.model_dump_json().encode())
    assert pt.measurement == "features_batch"
    sc = StateChange(asset_id="m1", state="IDLE", ts=TS)
    [pt] = records.convert(topics.state("m1"), sc.model_dump_json().encode())
    assert pt.fields["state"] == "IDLE"
    assert records.convert(topics.state("m1"), b"") == []  # a cleared retained state


def test_convert_refuses_bad_input() -> None:
    good = reading().model_dump_json().encode()
    with pytest.raises(ValueError, match="no converter"):
        records.convert("rotorwatch/v1/other/m1", good)
    with pytest.raises(ValueError, match="does not match topic"):
        records.convert(topics.reading("m2"), good)
    with pytest.raises(ValidationError):
        records.convert(topics.reading("m1"), b'{"event_id": "x"}')
    with pytest.raises(ValueError):
        records.convert(topics.reading("m1"), b"not json")
    with pytest.raises(ValidationError):  # NaN is refused by the schema
        records.convert(topics.reading("m1"), good.replace(b'"vibration_g":0.25', b'"vibration_g":NaN'))
    f = fv(kind="batch").model_dump_json().encode()
    with pytest.raises(ValueError, match="kind"):
        records.convert(topics.features("m1", "legacy"), f)
