"""Pure conversion between bus messages (:mod:`shared.messages`) and store :class:`Point` s.

Measurements (the asset id is always the point's ``asset_id``; the time is the message's ``ts``):

========================  =================  ==========================================================
message                   measurement        fields (tags)
========================  =================  ==========================================================
``Reading``               ``readings``       voltage_v, current_a, power_factor, vibration_g, event_id,
                                             is_faulty (only when known)
``Window``                ``windows``        event_id, fs_hz, n, axes (e.g. ``"xyz"``), rms_x/rms_y/rms_z
                                             in g (not the raw samples)
``FeatureVector``         ``features_<kind>`` one field per feature name, extras as ``e_<name>``,
                                             event_id, feature_names (the names in order, comma-joined)
``Score``                 ``scores``         anomaly_score, raw_score, threshold, is_anomaly, severity,
                                             model_version, event_id (tag ``model``)
``StateChange``           ``states``         state, previous (when known), reason
``HealthUpdate``          ``health``         health_score, risk_level, grade, degradation_index,
                                             maintenance_window_days, maintenance_reason, active_alarms,
                                             iso_zone / velocity_rms_mm_s (when known), insights and
                                             model_ratios (JSON strings)
``AlarmEvent``            ``alarms``         state, previous, source, severity, reason, opened_at (ISO),
                                             who / note / action_code (when given), auto_cleared
                                             (tags ``alarm_id``, ``state``: two transitions of one alarm
                                             at the same data time are both kept)
``OperatorLog``           ``oplogs``         event_type, severity, description, author (tag ``log_id``)
========================  =================  ==========================================================

:data:`CONVERTERS` maps each topic filter to a ``(topic, payload bytes) -> list[Point]`` function. The
historian subscribes to every filter in it, so a new measurement is one appended entry. Converters
raise ``ValueError`` (pydantic's ``ValidationError`` is one) for payloads they refuse, including points
the store would refuse, so that a bad message is dead-lettered instead of poisoning a write batch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from shared import topics
from shared.bus import topic_matches
from shared.messages import (
    AlarmEvent,
    FeatureVector,
    HealthUpdate,
    OperatorLog,
    Reading,
    Score,
    StateChange,
    Window,
    from_ns,
    to_utc,
    ts_ns,
)
from shared.store.base import FieldValue, Point, StoreError
from shared.store.checks import normalise_fields

READINGS = "readings"
WINDOWS = "windows"
SCORES = "scores"
STATES = "states"
HEALTH = "health"
ALARMS = "alarms"
OPLOGS = "oplogs"
FEATURES_PREFIX = "features_"
EXTRA_PREFIX = "e_"
#: Field holding a feature vector's names in order (fields themselves are unordered in InfluxDB).
FEATURE_NAMES_FIELD = "feature_names"
_FEATURE_META = ("event_id", FEATURE_NAMES_FIELD)
_READING_FIELDS = ("voltage_v", "current_a", "power_factor", "vibration_g")

Converter = Callable[[str, bytes], list[Point]]


def features_measurement(kind: str) -> str:
    """Measurement name of one feature family, e.g. ``features_vibration``."""
    if kind not in topics.FEATURE_KINDS:
        raise ValueError(f"unknown feature kind {kind!r}")
    return FEATURES_PREFIX + kind


def _checked(point: Point) -> Point:
    """Validate a point as the store will (names, finite values), raising ValueError."""
    try:
        normalise_fields(point)
    except StoreError as exc:
        raise ValueError(f"cannot store {point.measurement} point: {exc}") from exc
    return point


def rms(samples: Sequence[float] | np.ndarray) -> float:
    """Root mean square of a signal: ``sqrt(mean(x_i**2))``, in the samples' unit (g for windows).

    It includes any DC offset (e.g. gravity on a vertical axis). Raises ValueError for an empty signal.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"rms needs a non-empty 1-D signal, got shape {x.shape}")
    return float(np.sqrt(np.mean(np.square(x))))


# --- message -> point -----------------------------------------------------------------------------
def reading_to_point(r: Reading) -> Point:
    fields: dict[str, FieldValue] = {k: float(getattr(r, k)) for k in _READING_FIELDS}
    fields["event_id"] = r.event_id
    if r.is_faulty is not None:
        fields["is_faulty"] = r.is_faulty
    return _checked(Point(READINGS, r.asset_id, ts_ns(r.ts), fields))


def window_to_point(w: Window) -> Point:
    """Summary of a vibration window: rate, length, axes and per-axis RMS (g); not the raw samples."""
    fields: dict[str, FieldValue] = {
        "event_id": w.event_id,
        "fs_hz": float(w.fs_hz),
        "n": float(w.n),
        "axes": "".join(w.axes),
    }
    for axis in w.axes:
        samples = getattr(w, axis)
        if samples is None:
            raise ValueError(f"window lists axis {axis!r} but carries no samples for it")
        fields[f"rms_{axis}"] = rms(samples)
    return _checked(Point(WINDOWS, w.asset_id, ts_ns(w.ts), fields))


def features_to_point(fv: FeatureVector) -> Point:
    fields: dict[str, FieldValue] = {}
    for name, value in zip(fv.names, fv.values, strict=True):
        if name in fields or name in _FEATURE_META:
            raise ValueError(f"feature name {name!r} is repeated or reserved")
        fields[name] = float(value)
    for name, value in fv.extras.items():
        key = EXTRA_PREFIX + name
        if key in fields:
            raise ValueError(f"extra {name!r} collides with feature {key!r}")
        fields[key] = float(value)
    fields["event_id"] = fv.event_id
    # Names match NAME_RE (checked below), so they contain no comma and the join is reversible.
    fields[FEATURE_NAMES_FIELD] = ",".join(fv.names)
    return _checked(Point(features_measurement(fv.kind), fv.asset_id, ts_ns(fv.ts), fields))


def score_to_point(s: Score) -> Point:
    fields: dict[str, FieldValue] = {
        "anomaly_score": float(s.anomaly_score),
        "raw_score": float(s.raw_score),
        "threshold": float(s.threshold),
        "is_anomaly": s.is_anomaly,
        "severity": s.severity,
        "model_version": s.model_version,
        "event_id": s.event_id,
    }
    return _checked(Point(SCORES, s.asset_id, ts_ns(s.ts), fields, {"model": s.model}))


def state_to_point(sc: StateChange) -> Point:
    fields: dict[str, FieldValue] = {"state": sc.state, "reason": sc.reason}
    if sc.previous is not None:
        fields["previous"] = sc.previous
    return _checked(Point(STATES, sc.asset_id, ts_ns(sc.ts), fields))


def health_to_point(h: HealthUpdate) -> Point:
    """A ``health`` point; ``insights`` and ``model_ratios`` as compact JSON strings, optional values
    only when known (a field never changes type between points)."""
    fields: dict[str, FieldValue] = {
        "health_score": float(h.health_score),
        "risk_level": h.risk_level,
        "grade": h.grade,
        "degradation_index": float(h.degradation_index),
        "maintenance_window_days": float(h.maintenance_window_days),
        "maintenance_reason": h.maintenance_reason,
        "active_alarms": float(h.active_alarms),
        "insights": json.dumps(
            [i.model_dump(mode="json") for i in h.insights], separators=(",", ":"), allow_nan=False
        ),
        "model_ratios": json.dumps(h.model_ratios, separators=(",", ":"), allow_nan=False),
    }
    if h.iso_zone is not None:
        fields["iso_zone"] = h.iso_zone
    if h.velocity_rms_mm_s is not None:
        fields["velocity_rms_mm_s"] = float(h.velocity_rms_mm_s)
    return _checked(Point(HEALTH, h.asset_id, ts_ns(h.ts), fields))


def alarm_to_point(a: AlarmEvent) -> Point:
    """An ``alarms`` point tagged ``alarm_id`` and ``transition`` (the new state), so transitions of
    different alarms, and two transitions of one alarm, at the same data time are distinct points."""
    if not topics.valid_asset_id(a.alarm_id):
        raise ValueError(f"alarm_id {a.alarm_id!r} cannot be a tag: must match {topics.ASSET_ID_PATTERN}")
    fields: dict[str, FieldValue] = {
        "state": a.state,
        "source": a.source,
        "severity": a.severity,
        "reason": a.reason,
        "opened_at": to_utc(a.opened_at).isoformat(),
        "auto_cleared": a.auto_cleared,
    }
    for name in ("previous", "who", "note", "action_code"):
        value = getattr(a, name)
        if value is not None:
            fields[name] = value
    tags = {"alarm_id": a.alarm_id, "transition": a.state}
    return _checked(Point(ALARMS, a.asset_id, ts_ns(a.ts), fields, tags))


def oplog_to_point(log: OperatorLog) -> Point:
    """An ``oplogs`` point tagged ``log_id``."""
    if not topics.valid_asset_id(log.log_id):
        raise ValueError(f"log_id {log.log_id!r} cannot be a tag: must match {topics.ASSET_ID_PATTERN}")
    fields: dict[str, FieldValue] = {
        "event_type": log.event_type,
        "severity": log.severity,
        "description": log.description,
    }
    if log.author is not None:
        fields["author"] = log.author
    return _checked(Point(OPLOGS, log.asset_id, ts_ns(log.ts), fields, {"log_id": log.log_id}))


# --- topic + payload -> points (the historian's registry) -------------------------------------------
def _same_asset(topic: str, asset_id: str) -> None:
    from_topic = topics.asset_from_topic(topic)
    if from_topic != asset_id:
        raise ValueError(f"payload asset_id {asset_id!r} does not match topic {topic!r}")


def convert_reading(topic: str, payload: bytes) -> list[Point]:
    r = Reading.model_validate_json(payload)
    _same_asset(topic, r.asset_id)
    return [reading_to_point(r)]


def convert_window(topic: str, payload: bytes) -> list[Point]:
    w = Window.model_validate_json(payload)
    _same_asset(topic, w.asset_id)
    return [window_to_point(w)]


def convert_features(topic: str, payload: bytes) -> list[Point]:
    fv = FeatureVector.model_validate_json(payload)
    _same_asset(topic, fv.asset_id)
    if topic.rsplit("/", 1)[-1] != fv.kind:
        raise ValueError(f"payload kind {fv.kind!r} does not match topic {topic!r}")
    return [features_to_point(fv)]


def convert_score(topic: str, payload: bytes) -> list[Point]:
    s = Score.model_validate_json(payload)
    _same_asset(topic, s.asset_id)
    if topic.rsplit("/", 1)[-1] != s.model:
        raise ValueError(f"payload model {s.model!r} does not match topic {topic!r}")
    return [score_to_point(s)]


def convert_state(topic: str, payload: bytes) -> list[Point]:
    if not payload:  # a cleared retained message
        return []
    sc = StateChange.model_validate_json(payload)
    _same_asset(topic, sc.asset_id)
    return [state_to_point(sc)]


def convert_health(topic: str, payload: bytes) -> list[Point]:
    if not payload:  # a cleared retained message
        return []
    h = HealthUpdate.model_validate_json(payload)
    _same_asset(topic, h.asset_id)
    return [health_to_point(h)]


def convert_alarm(topic: str, payload: bytes) -> list[Point]:
    a = AlarmEvent.model_validate_json(payload)
    _same_asset(topic, a.asset_id)
    return [alarm_to_point(a)]


def convert_oplog(topic: str, payload: bytes) -> list[Point]:
    log = OperatorLog.model_validate_json(payload)
    _same_asset(topic, log.asset_id)
    return [oplog_to_point(log)]


#: (topic filter, converter). Append an entry to store a new message family.
CONVERTERS: list[tuple[str, Converter]] = [
    (topics.READING_FILTER, convert_reading),
    (topics.WINDOW_FILTER, convert_window),
    (topics.features_filter(), convert_features),
    (topics.SCORE_FILTER, convert_score),
    (topics.STATE_FILTER, convert_state),
    (topics.HEALTH_FILTER, convert_health),
    (topics.ALARM_FILTER, convert_alarm),
    (topics.OPLOG_FILTER, convert_oplog),
]


def convert(topic: str, payload: bytes) -> list[Point]:
    """Points for one message, from every converter whose filter matches ``topic``.

    Raises ValueError when no converter handles the topic or a converter refuses the payload.
    """
    matched = [fn for f, fn in CONVERTERS if topic_matches(f, topic)]
    if not matched:
        raise ValueError(f"no converter for topic {topic!r}")
    return [p for fn in matched for p in fn(topic, payload)]


# --- point -> message / plain data -----------------------------------------------------------------
def _field(point: Point, name: str) -> Any:
    try:
        return point.fields[name]
    except KeyError:
        raise ValueError(f"{point.measurement} point at {point.ts_ns} has no field {name!r}") from None


def point_to_reading(point: Point) -> Reading:
    """The :class:`Reading` a ``readings`` point was made from."""
    if point.measurement != READINGS:
        raise ValueError(f"expected a {READINGS!r} point, got {point.measurement!r}")
    is_faulty = point.fields.get("is_faulty")
    return Reading(
        event_id=str(_field(point, "event_id")),
        asset_id=point.asset_id,
        ts=from_ns(point.ts_ns),
        voltage_v=_field(point, "voltage_v"),
        current_a=_field(point, "current_a"),
        power_factor=_field(point, "power_factor"),
        vibration_g=_field(point, "vibration_g"),
        is_faulty=None if is_faulty is None else bool(is_faulty),
    )


def point_to_features(point: Point) -> tuple[list[str], list[float], dict[str, float]]:
    """``(names, values, extras)`` of a ``features_<kind>`` point, names in their original order.

    Points written without ``feature_names`` give their feature fields in sorted name order.
    """
    if not point.measurement.startswith(FEATURES_PREFIX):
        raise ValueError(f"expected a {FEATURES_PREFIX}<kind> point, got {point.measurement!r}")
    order = point.fields.get(FEATURE_NAMES_FIELD)
    if isinstance(order, str):
        names = order.split(",") if order else []
    else:
        names = sorted(k for k in point.fields if k not in _FEATURE_META and not k.startswith(EXTRA_PREFIX))
    values = []
    for n in names:
        v = _field(point, n)
        if isinstance(v, bool | str) or not math.isfinite(v):
            raise ValueError(f"feature {n!r} is not a finite number: {v!r}")
        values.append(float(v))
    name_set = set(names)
    extras = {
        k[len(EXTRA_PREFIX) :]: float(v)
        for k, v in point.fields.items()
        if k.startswith(EXTRA_PREFIX) and k not in name_set and not isinstance(v, bool | str)
    }
    return names, values, extras


def _expect(point: Point, measurement: str) -> None:
    if point.measurement != measurement:
        raise ValueError(f"expected a {measurement!r} point, got {point.measurement!r}")


def _optional(point: Point, name: str) -> Any:
    return point.fields.get(name)


def _json_field(point: Point, name: str) -> Any:
    raw = _field(point, name)
    if not isinstance(raw, str):
        raise ValueError(f"{point.measurement} field {name!r} must be a JSON string, got {raw!r}")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{point.measurement} field {name!r} is not valid JSON: {exc}") from None


def _count(point: Point, name: str) -> int:
    v = _field(point, name)
    if isinstance(v, bool | str) or not math.isfinite(v) or v != int(v):
        raise ValueError(f"{point.measurement} field {name!r} must be a whole number, got {v!r}")
    return int(v)


def point_to_score(point: Point) -> Score:
    """The :class:`Score` a ``scores`` point was made from (the model is the point's ``model`` tag)."""
    _expect(point, SCORES)
    try:
        model = point.tags["model"]
    except KeyError:
        raise ValueError(f"scores point at {point.ts_ns} has no 'model' tag") from None
    return Score(
        event_id=str(_field(point, "event_id")),
        asset_id=point.asset_id,
        ts=from_ns(point.ts_ns),
        model=model,  # type: ignore[arg-type]
        model_version=str(_field(point, "model_version")),
        anomaly_score=_field(point, "anomaly_score"),
        raw_score=_field(point, "raw_score"),
        threshold=_field(point, "threshold"),
        is_anomaly=bool(_field(point, "is_anomaly")),
        severity=_field(point, "severity"),
    )


def point_to_health(point: Point) -> HealthUpdate:
    """The :class:`HealthUpdate` a ``health`` point was made from."""
    _expect(point, HEALTH)
    return HealthUpdate(
        asset_id=point.asset_id,
        ts=from_ns(point.ts_ns),
        health_score=_field(point, "health_score"),
        risk_level=_field(point, "risk_level"),
        grade=_field(point, "grade"),
        degradation_index=_field(point, "degradation_index"),
        maintenance_window_days=_field(point, "maintenance_window_days"),
        maintenance_reason=str(_optional(point, "maintenance_reason") or ""),
        iso_zone=_optional(point, "iso_zone"),
        velocity_rms_mm_s=_optional(point, "velocity_rms_mm_s"),
        insights=_json_field(point, "insights"),
        model_ratios=_json_field(point, "model_ratios"),
        active_alarms=_count(point, "active_alarms"),
    )


def point_to_alarm(point: Point) -> AlarmEvent:
    """The :class:`AlarmEvent` an ``alarms`` point was made from."""
    _expect(point, ALARMS)
    try:
        alarm_id = point.tags["alarm_id"]
    except KeyError:
        raise ValueError(f"alarms point at {point.ts_ns} has no 'alarm_id' tag") from None
    opened = _field(point, "opened_at")
    if not isinstance(opened, str):
        raise ValueError(f"alarms field 'opened_at' must be an ISO-8601 string, got {opened!r}")
    return AlarmEvent(
        alarm_id=alarm_id,
        asset_id=point.asset_id,
        state=_field(point, "state"),
        previous=_optional(point, "previous"),
        source=str(_field(point, "source")),
        severity=_field(point, "severity"),
        reason=str(_field(point, "reason")),
        opened_at=to_utc(datetime.fromisoformat(opened)),
        ts=from_ns(point.ts_ns),
        who=_optional(point, "who"),
        note=_optional(point, "note"),
        action_code=_optional(point, "action_code"),
        auto_cleared=bool(_optional(point, "auto_cleared") or False),
    )


def point_to_oplog(point: Point) -> OperatorLog:
    """The :class:`OperatorLog` an ``oplogs`` point was made from."""
    _expect(point, OPLOGS)
    try:
        log_id = point.tags["log_id"]
    except KeyError:
        raise ValueError(f"oplogs point at {point.ts_ns} has no 'log_id' tag") from None
    return OperatorLog(
        log_id=log_id,
        asset_id=point.asset_id,
        event_type=_field(point, "event_type"),
        severity=_field(point, "severity"),
        description=str(_optional(point, "description") or ""),
        ts=from_ns(point.ts_ns),
        author=_optional(point, "author"),
    )


#: Order of alarm states within one data time (a later lifecycle step wins a tie).
_ALARM_STATE_RANK = {"ACTIVE": 0, "ACKNOWLEDGED": 1, "RESOLVED": 2}


def latest_alarms(events: Sequence[AlarmEvent]) -> list[AlarmEvent]:
    """Reduce alarm transitions to the latest per ``alarm_id``, newest alarm first.

    The latest transition of an alarm is the one with the greatest ``ts``; at equal ``ts`` the later
    lifecycle state wins (ACTIVE < ACKNOWLEDGED < RESOLVED). Alarms are ordered by ``opened_at``, then
    by the latest transition's ``ts``, both descending (ties by ``alarm_id`` for a stable order).
    """
    latest: dict[str, AlarmEvent] = {}
    for e in events:
        cur = latest.get(e.alarm_id)
        if cur is None or (e.ts, _ALARM_STATE_RANK[e.state]) > (cur.ts, _ALARM_STATE_RANK[cur.state]):
            latest[e.alarm_id] = e
    return sorted(latest.values(), key=lambda a: (to_utc(a.opened_at), a.ts, a.alarm_id), reverse=True)


def point_to_dict(point: Point) -> dict[str, Any]:
    """A flat, JSON-ready row: ``ts`` (ISO-8601 UTC), ``ts_ns``, ``asset_id``, the tags, then the
    fields (a tag or field named ``ts``/``ts_ns`` would be overwritten by the later one)."""
    return {
        "ts": from_ns(point.ts_ns).isoformat(),
        "ts_ns": point.ts_ns,
        "asset_id": point.asset_id,
        **point.tags,
        **point.fields,
    }
