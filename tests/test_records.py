"""Message <-> point conversion (pure, no servers)."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shared import records, topics
from shared.messages import (
    AlarmEvent,
    FeatureVector,
    HealthUpdate,
    InsightItem,
    OperatorLog,
    Reading,
    RulItem,
    Score,
    SensorStatus,
    StateChange,
    Window,
    ts_ns,
)
from shared.store.base import Point
from shared.store.identity import event_slot
from shared.store.influx import InfluxStore
from shared.store.sqlite import SqliteStore

TS = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
TS_NS = 1_714_566_615_123_456_000  # 2024-05-01T12:30:15.123456Z
EID = "0123456789abcdef0123456789abcdef"
EV_NS = TS_NS + event_slot(EID)  # stored time of an event's point (shared.store.identity)


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
        EV_NS,
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
    assert pt.measurement == "windows" and pt.ts_ns == EV_NS and pt.asset_id == "m1"
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
    # The contract refuses it (issue 10: internal events are validated like raw input), before records.
    with pytest.raises(ValueError, match="do not name the axes given"):
        Window(event_id=EID, asset_id="m1", ts=TS, fs_hz=500.0, n=16, axes=["x", "y"], x=[1.0] * 16)


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
        EV_NS,
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
    filters = [f.filter for f in records.FAMILIES]
    assert filters == [
        topics.READING_FILTER,
        topics.WINDOW_FILTER,
        topics.features_filter(),
        topics.SCORE_FILTER,
        topics.STATE_FILTER,
        topics.HEALTH_FILTER,
        topics.ALARM_FILTER,
        topics.OPLOG_FILTER,
        topics.SENSOR_FILTER,
    ]


def test_families_declare_filter_model_and_point() -> None:
    models = [f.model for f in records.FAMILIES]
    assert models == [
        Reading,
        Window,
        FeatureVector,
        Score,
        StateChange,
        HealthUpdate,
        AlarmEvent,
        OperatorLog,
        SensorStatus,
    ]
    # Retained families: an empty retained message clears them (nothing stored).
    assert {f.filter for f in records.FAMILIES if f.clears} == {
        topics.STATE_FILTER,
        topics.HEALTH_FILTER,
        topics.SENSOR_FILTER,
    }
    family = dict(zip(models, records.FAMILIES, strict=True))
    r = reading()
    assert family[Reading].to_point(r) == records.reading_to_point(r)
    assert records.to_points(family[Reading], r, topics.reading("m1")) == [records.reading_to_point(r)]
    assert records.to_points(family[Reading], r) == [records.reading_to_point(r)]  # no topic: no check
    assert records.to_points(family[StateChange], None, topics.state("m1")) == []  # a cleared retained state
    with pytest.raises(ValueError, match="does not match topic"):
        records.to_points(family[Reading], r, topics.reading("m2"))
    with pytest.raises(ValueError, match="kind 'batch' does not match topic"):
        records.to_points(family[FeatureVector], fv(kind="batch"), topics.features("m1", "legacy"))


def test_check_topic_asset() -> None:
    records.check_topic_asset(topics.reading("m1"), "m1")
    with pytest.raises(ValueError, match="does not match topic"):
        records.check_topic_asset(topics.reading("m1"), "m2")
    with pytest.raises(ValueError, match="does not match topic"):
        records.check_topic_asset("rotorwatch/v1", "m1")


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
    s = Score(
        event_id=EID,
        asset_id="m1",
        ts=TS,
        model="batch",
        model_version="v1",
        anomaly_score=0.5,
        raw_score=0.5,
        threshold=1.0,
        is_anomaly=False,
        severity="NORMAL",
    )
    assert records.convert(topics.score("m1", "batch"), s.model_dump_json().encode()) == [
        records.score_to_point(s)
    ]
    with pytest.raises(ValueError, match="model 'batch' does not match topic"):
        records.convert(topics.score("m1", "legacy"), s.model_dump_json().encode())
    with pytest.raises(ValidationError):  # an empty payload clears only retained families
        records.convert(topics.reading("m1"), b"")


# --- health, alarms, operator logs, scores back ---------------------------------------------------
AID = "fedcba9876543210fedcba9876543210"
LID = "00112233445566778899aabbccddeeff"
OPENED = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def health(**kw) -> HealthUpdate:
    base = dict(
        asset_id="m1",
        ts=TS,
        health_score=72.5,
        risk_level="MODERATE",
        grade="C",
        degradation_index=0.25,
        maintenance_window_days=14.0,
        maintenance_reason="bearing wear trend",
        iso_zone="B",
        velocity_rms_mm_s=2.8,
        insights=[InsightItem(text="Vibration 2.1x baseline", severity="warning", signal="vib", value=2.1)],
        model_ratios={"legacy": 1.5, "batch": 0.75},
        active_alarms=2,
    )
    return HealthUpdate(**(base | kw))


def alarm(**kw) -> AlarmEvent:
    base = dict(
        alarm_id=AID,
        asset_id="m1",
        state="ACKNOWLEDGED",
        previous="ACTIVE",
        source="batch",
        severity="WARNING",
        reason="3 of 5 windows above threshold",
        opened_at=OPENED,
        ts=TS,
        who="ana",
        note="checking",
    )
    return AlarmEvent(**(base | kw))


def test_health_to_point_and_back() -> None:
    h = health()
    pt = records.health_to_point(h)
    assert (pt.measurement, pt.asset_id, pt.ts_ns, dict(pt.tags)) == ("health", "m1", TS_NS, {})
    assert dict(pt.fields) == {
        "health_score": 72.5,
        "risk_level": "MODERATE",
        "grade": "C",
        "degradation_index": 0.25,
        "maintenance_window_days": 14.0,
        "maintenance_reason": "bearing wear trend",
        "active_alarms": 2.0,
        "insights": '[{"text":"Vibration 2.1x baseline","severity":"warning","signal":"vib","value":2.1}]',
        "model_ratios": '{"legacy":1.5,"batch":0.75}',
        "iso_zone": "B",
        "velocity_rms_mm_s": 2.8,
    }
    assert records.point_to_health(pt) == h
    informative = health(zone_basis="information", zone_basis_text="information only: ISO not confirmed")
    pt = records.health_to_point(informative)
    assert (pt.fields["zone_basis"], pt.fields["zone_basis_text"]) == (
        "information",
        "information only: ISO not confirmed",
    )
    assert records.point_to_health(pt) == informative
    bare = health(iso_zone=None, velocity_rms_mm_s=None, insights=[], model_ratios={}, active_alarms=0)
    pt = records.health_to_point(bare)
    assert "iso_zone" not in pt.fields and "velocity_rms_mm_s" not in pt.fields
    assert (pt.fields["insights"], pt.fields["model_ratios"]) == ("[]", "{}")
    assert records.point_to_health(pt) == bare


RUL = RulItem(
    status="estimate",
    reason="exponential fit of rms_log over 1200 s (120 points), threshold 1.61 Np",
    level=0.9,
    threshold=1.61,
    threshold_basis="median end-of-life level of 6 FEMTO/PRONOSTIA run-to-failure bearings",
    median_s=5400.0,
    low_s=3600.0,
    high_s=9000.0,
    interval=0.8,
    model="exp_offset",
    window_s=1200.0,
    n_points=120,
    as_of=TS,
)


def test_health_with_prognostics_round_trips_with_flat_query_fields() -> None:
    h = health(
        maintenance_window_days=3600.0 / 86400,
        rul=RUL,
        indicators={"rms_log": 0.9, "hf_energy_log": 1.2, "kurtosis_z": 0.5, "cusum": 31.0},
    )
    pt = records.health_to_point(h)
    flat = {k: v for k, v in pt.fields.items() if k.startswith(("rul_", "ind_"))}
    assert flat == {
        "rul_status": "estimate",
        "rul_indicator": "rms_log",
        "rul_median_s": 5400.0,
        "rul_low_s": 3600.0,
        "rul_high_s": 9000.0,
        "rul_threshold": 1.61,
        "ind_rms_log": 0.9,
        "ind_hf_energy_log": 1.2,
        "ind_kurtosis_z": 0.5,
        "ind_cusum": 31.0,
    }
    assert json.loads(str(pt.fields["rul"]))["threshold_basis"].startswith("median end-of-life")
    assert records.point_to_health(pt) == h


def test_health_without_a_window_or_with_a_reason_only_rul() -> None:
    none = RulItem(
        status="no_degradation_trend", reason="no persistent rise of RMS above its calibrated level"
    )
    h = health(maintenance_window_days=None, maintenance_reason="no degradation trend: ...", rul=none)
    pt = records.health_to_point(h)
    assert "maintenance_window_days" not in pt.fields
    assert (pt.fields["rul_status"], pt.fields["rul_indicator"]) == ("no_degradation_trend", "rms_log")
    assert "rul_median_s" not in pt.fields and "rul_threshold" not in pt.fields
    assert records.point_to_health(pt) == h


def test_old_health_records_and_messages_still_read() -> None:
    old = Point(
        "health",
        "m1",
        TS_NS,
        {
            "health_score": 80.0,
            "risk_level": "LOW",
            "grade": "B",
            "degradation_index": 0.1,
            "maintenance_window_days": 17.2,
            "active_alarms": 0.0,
            "insights": "[]",
            "model_ratios": "{}",
        },
    )
    h = records.point_to_health(old)
    assert (h.maintenance_window_days, h.rul, h.indicators) == (17.2, None, {})
    retained = json.dumps(
        {k: v for k, v in h.model_dump(mode="json").items() if k not in ("rul", "indicators")}
    )
    assert HealthUpdate.model_validate_json(retained) == h  # a retained message from before prognostics
    with pytest.raises(ValidationError):  # indicator names become field names: no odd characters
        health(indicators={"rms log": 1.0})
    with pytest.raises(ValidationError):
        RulItem(status="estimate", reason="x", median_s=float("inf"))


def test_alarm_to_point_and_back() -> None:
    a = alarm()
    pt = records.alarm_to_point(a)
    assert (pt.measurement, pt.ts_ns) == ("alarms", TS_NS)
    assert dict(pt.tags) == {"alarm_id": AID, "transition": "ACKNOWLEDGED"}
    assert dict(pt.fields) == {
        "state": "ACKNOWLEDGED",
        "previous": "ACTIVE",
        "source": "batch",
        "severity": "WARNING",
        "reason": "3 of 5 windows above threshold",
        "opened_at": "2024-05-01T12:00:00+00:00",
        "auto_cleared": False,
        "who": "ana",
        "note": "checking",
    }
    assert records.point_to_alarm(pt) == a
    opened = alarm(state="ACTIVE", previous=None, who=None, note=None, ts=OPENED)
    pt = records.alarm_to_point(opened)
    assert {"previous", "who", "note", "action_code"}.isdisjoint(pt.fields)
    assert records.point_to_alarm(pt) == opened
    resolved = alarm(state="RESOLVED", action_code="bearing_replaced", auto_cleared=False)
    assert records.point_to_alarm(records.alarm_to_point(resolved)) == resolved


def test_alarm_transitions_at_one_time_are_distinct_points() -> None:
    ack = records.alarm_to_point(alarm())
    res = records.alarm_to_point(alarm(state="RESOLVED", previous="ACKNOWLEDGED", action_code="other"))
    other = records.alarm_to_point(alarm(alarm_id=LID))
    keys = {(p.ts_ns, tuple(sorted(p.tags.items()))) for p in (ack, res, other)}
    assert len(keys) == 3


def test_oplog_to_point_and_back() -> None:
    log = OperatorLog(
        log_id=LID,
        asset_id="m1",
        event_type="corrective_bearing_replacement",
        severity="high",
        description='replaced DE bearing "6205"\nline two',
        ts=TS,
        author="ana",
    )
    pt = records.oplog_to_point(log)
    assert (pt.measurement, pt.ts_ns, dict(pt.tags)) == ("oplogs", TS_NS, {"log_id": LID})
    assert dict(pt.fields) == {
        "event_type": "corrective_bearing_replacement",
        "severity": "high",
        "description": 'replaced DE bearing "6205"\nline two',
        "author": "ana",
    }
    assert records.point_to_oplog(pt) == log
    anon = log.model_copy(update={"author": None, "description": ""})
    assert "author" not in records.oplog_to_point(anon).fields
    assert records.point_to_oplog(records.oplog_to_point(anon)) == anon


def test_point_to_score_round_trip() -> None:
    s = Score(
        event_id=EID,
        asset_id="m1",
        ts=TS,
        model="autoencoder",
        model_version="v20240501T120000Z-abcdef",
        anomaly_score=0.8,
        raw_score=0.9,
        threshold=0.5,
        is_anomaly=True,
        severity="WARNING",
    )
    assert records.point_to_score(records.score_to_point(s)) == s
    with pytest.raises(ValueError, match="model"):
        records.point_to_score(Point("scores", "m1", TS_NS, {"anomaly_score": 1.0}))


def test_point_readers_refuse_other_points() -> None:
    other = Point("readings", "m1", TS_NS, {"v": 1.0})
    for fn, name in (
        (records.point_to_health, "health"),
        (records.point_to_alarm, "alarms"),
        (records.point_to_oplog, "oplogs"),
        (records.point_to_score, "scores"),
    ):
        with pytest.raises(ValueError, match=f"expected a '{name}' point"):
            fn(other)
    bad = records.health_to_point(health())
    broken = Point("health", "m1", TS_NS, {**bad.fields, "insights": "[{"})
    with pytest.raises(ValueError, match="insights"):
        records.point_to_health(broken)
    with pytest.raises(ValueError, match="alarm_id"):
        records.point_to_alarm(Point("alarms", "m1", TS_NS, dict(records.alarm_to_point(alarm()).fields)))


def test_convert_health_alarm_oplog_by_topic() -> None:
    h = health()
    assert records.convert(topics.health("m1"), h.model_dump_json().encode()) == [records.health_to_point(h)]
    assert records.convert(topics.health("m1"), b"") == []  # a cleared retained health
    a = alarm()
    assert records.convert(topics.alarm("m1"), a.model_dump_json().encode()) == [records.alarm_to_point(a)]
    log = OperatorLog(log_id=LID, asset_id="m1", event_type="observation", ts=TS)
    assert records.convert(topics.oplog("m1"), log.model_dump_json().encode()) == [
        records.oplog_to_point(log)
    ]
    with pytest.raises(ValueError, match="does not match topic"):
        records.convert(topics.alarm("m2"), a.model_dump_json().encode())
    with pytest.raises(ValueError, match="does not match topic"):
        records.convert(topics.health("m2"), h.model_dump_json().encode())
    with pytest.raises(ValueError, match="cannot be a tag"):
        records.convert(topics.alarm("m1"), alarm(alarm_id="bad/id").model_dump_json().encode())
    with pytest.raises(ValidationError):  # NaN is refused by the schema
        records.convert(topics.health("m1"), h.model_dump_json().replace("72.5", "NaN").encode())


def test_latest_alarms_reduces_to_the_latest_transition_newest_first() -> None:
    t = [datetime(2024, 5, 1, 12, m, tzinfo=UTC) for m in range(6)]
    a_id, b_id, c_id = "a" * 32, "b" * 32, "c" * 32
    events = [
        alarm(alarm_id=a_id, state="ACTIVE", previous=None, opened_at=t[0], ts=t[0]),
        alarm(alarm_id=b_id, state="ACTIVE", previous=None, opened_at=t[2], ts=t[2]),
        alarm(alarm_id=a_id, state="RESOLVED", opened_at=t[0], ts=t[3], action_code="realigned"),
        alarm(alarm_id=a_id, state="ACKNOWLEDGED", opened_at=t[0], ts=t[1]),
        # c: acknowledged and resolved at the same data time -> RESOLVED wins the tie
        alarm(alarm_id=c_id, state="RESOLVED", opened_at=t[1], ts=t[4], action_code="other"),
        alarm(alarm_id=c_id, state="ACKNOWLEDGED", opened_at=t[1], ts=t[4]),
    ]
    got = records.latest_alarms(events)
    assert [(x.alarm_id, x.state) for x in got] == [
        (b_id, "ACTIVE"),  # opened last
        (c_id, "RESOLVED"),
        (a_id, "RESOLVED"),
    ]
    assert got[2].action_code == "realigned"
    assert records.latest_alarms([]) == []


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("influx", marks=pytest.mark.integration)])
def test_new_families_round_trip_through_the_store(backend: str, tmp_path, request) -> None:
    if backend == "sqlite":
        store = SqliteStore(tmp_path / "r.db")
    else:
        store = InfluxStore(request.getfixturevalue("influxd").url, f"t_{uuid.uuid4().hex[:12]}")
    try:
        h = health(rul=RUL, indicators={"rms_log": 0.9, "cusum": 12.5})
        a1 = alarm()
        a2 = alarm(
            state="RESOLVED", previous="ACKNOWLEDGED", action_code="lubricated", note='multi\nline "q"'
        )
        log = OperatorLog(
            log_id=LID, asset_id="m1", event_type="observation", description='noisy, "loud"\nat DE', ts=TS
        )
        store.write([records.health_to_point(h), records.alarm_to_point(a1), records.alarm_to_point(a2)])
        store.write([records.oplog_to_point(log)])
        assert [records.point_to_health(p) for p in store.query(records.HEALTH, "m1")] == [h]
        got = [records.point_to_alarm(p) for p in store.query(records.ALARMS, "m1")]
        assert sorted(got, key=lambda x: x.state) == [a1, a2]
        assert records.latest_alarms(got) == [a2]
        assert [records.point_to_oplog(p) for p in store.query(records.OPLOGS, "m1")] == [log]
    finally:
        store.close()
