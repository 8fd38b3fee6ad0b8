"""Pure conversion between bus messages (:mod:`shared.messages`) and store :class:`Point` s.

Point layout: the point's ``asset_id`` is the message's asset (a tag in InfluxDB), its time the message's
``ts`` (ns since the Unix epoch, UTC); for messages that carry an ``event_id`` (readings, windows, feature
vectors, scores) the time is :func:`~shared.store.identity.event_ts_ns` (the timestamp plus 0..999 ns from the
event id: one point per event, see :mod:`shared.store.base`). Fields are floats, bools or strings; those
marked ``?`` are written only when known, so a field never changes type between points. Units in brackets.

- ``readings`` (``Reading``): voltage_v [V], current_a [A], power_factor [0..1], vibration_g [g],
  event_id, is_faulty? (bool label).
- ``windows`` (``Window``): event_id, fs_hz [Hz], n [samples], axes (e.g. ``"xyz"``), rms_x / rms_y /
  rms_z [g] (RMS of each listed axis; the raw samples are not stored).
- ``features_<kind>`` (``FeatureVector``): one field per feature [feature units], extras as ``e_<name>``,
  event_id, feature_names (the names in order, comma-joined), frames? (JSON rows), frame_samples?.
- ``scores`` (``Score``), tag ``model``: anomaly_score, raw_score, threshold [model units], is_anomaly,
  severity, model_version, event_id.
- ``states`` (``StateChange``): state, reason, previous?.
- ``health`` (``HealthUpdate``): health_score [0..100], risk_level, grade, degradation_index [0..1],
  active_alarms [count], insights, model_ratios, maintenance_window_days? [days] (always in old records),
  maintenance_reason, iso_zone?, velocity_rms_mm_s? [mm/s], zone_basis(_text)?, rul?: see health_to_point.
- ``alarms`` (``AlarmEvent``), tags ``alarm_id`` and ``transition`` (its kind; the new state before events
  had one): state, source, severity, reason, opened_at (ISO-8601 UTC), auto_cleared, previous?, who?,
  note?, action_code?, shelved_until? (ISO-8601 UTC), shelved_by?, shelve_reason?, peak?, reopens?.
- ``oplogs`` (``OperatorLog``), tag ``log_id``: event_type, severity, description, author?.
- ``sensor`` (``SensorStatus``, on each change): status (ok | fault), since (ISO-8601 UTC), findings (JSON).

:data:`FAMILIES` declares one row per stored topic family: topic filter -> message model -> point. The
historian subscribes to every filter in it, so storing a new family is one appended row. Conversions raise
``ValueError`` (pydantic's ``ValidationError`` is one) for messages they refuse: points the store would
refuse, a message whose asset (feature kind, score model) differs from its topic's. So a bad message is
dead-lettered instead of poisoning a write batch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Generic, TypeVar

import numpy as np
from pydantic_core import to_jsonable_python

from shared import topics
from shared.bus import topic_matches
from shared.messages import (
    AlarmEvent,
    FeatureVector,
    HealthUpdate,
    Message,
    OperatorLog,
    Reading,
    Score,
    SensorStatus,
    StateChange,
    Window,
    from_ns,
    to_utc,
    ts_ns,
)
from shared.store.base import FieldValue, Point, StoreError
from shared.store.checks import normalise_fields
from shared.store.identity import event_ts_ns

READINGS, WINDOWS, SCORES, STATES = "readings", "windows", "scores", "states"
HEALTH, ALARMS, OPLOGS, SENSOR = "health", "alarms", "oplogs", "sensor"
FEATURES_PREFIX, EXTRA_PREFIX = "features_", "e_"
#: Field holding a feature vector's names in order (fields themselves are unordered in InfluxDB).
FEATURE_NAMES_FIELD = "feature_names"
_FRAMES = "frames frame_samples"
_FEATURE_META = ("event_id", FEATURE_NAMES_FIELD, *_FRAMES.split())

M = TypeVar("M", bound=Message)


def features_measurement(kind: str) -> str:
    """Measurement name of one feature family, e.g. ``features_vibration``."""
    if kind not in topics.FEATURE_KINDS:
        raise ValueError(f"unknown feature kind {kind!r}")
    return FEATURES_PREFIX + kind


def rms(samples: Sequence[float] | np.ndarray) -> float:
    """Root mean square of a signal, ``sqrt(mean(x_i**2))``, in the samples' unit (g for windows),
    including any DC offset (e.g. gravity on a vertical axis). ValueError for an empty signal."""
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"rms needs a non-empty 1-D signal, got shape {x.shape}")
    return float(np.sqrt(np.mean(np.square(x))))


# --- message -> point -----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Layout(Generic[M]):
    """How a message family is stored, both ways: ``fields`` always, ``optional`` ones only when not ``None``
    (when missing, the message's default applies), ``tag`` as a tag; names space-separated."""

    measurement: str
    model: type[M]
    fields: str
    optional: str = ""
    tag: str | None = None


_READING = _Layout(READINGS, Reading, "event_id voltage_v current_a power_factor vibration_g", "is_faulty")
_WINDOW = _Layout(WINDOWS, Window, "event_id fs_hz n")
_SCORE_FIELDS = "anomaly_score raw_score threshold is_anomaly severity model_version event_id"
_SCORE = _Layout(SCORES, Score, _SCORE_FIELDS, tag="model")
_STATE = _Layout(STATES, StateChange, "state reason", "previous")
_HEALTH_FIELDS = "health_score risk_level grade degradation_index active_alarms insights model_ratios"
_HEALTH_OPT = "maintenance_reason iso_zone velocity_rms_mm_s zone_basis zone_basis_text rul"
_HEALTH = _Layout(HEALTH, HealthUpdate, _HEALTH_FIELDS, "maintenance_window_days " + _HEALTH_OPT)
_RUL_FLAT, IND_PREFIX = ("status", "indicator", "median_s", "low_s", "high_s", "threshold"), "ind_"
_ALARM_OPT = "auto_cleared previous who note action_code shelved_until shelved_by shelve_reason peak reopens"
_ALARM = _Layout(ALARMS, AlarmEvent, "state source severity reason opened_at", _ALARM_OPT, "alarm_id")
_OPLOG = _Layout(OPLOGS, OperatorLog, "event_type severity", "description author", "log_id")
_SENSOR = _Layout(SENSOR, SensorStatus, "status since findings")
_FEATURES = {k: _Layout(f"features_{k}", FeatureVector, "event_id", _FRAMES) for k in topics.FEATURE_KINDS}


def _stored(value: Any) -> FieldValue:
    """A message attribute as a field: bool, str, float; times in ISO-8601 UTC; the rest compact JSON."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime):
        return to_utc(value).isoformat()
    return json.dumps(to_jsonable_python(value), separators=(",", ":"), allow_nan=False)


def _fields(msg: Any, *names: str) -> dict[str, FieldValue]:
    """The named attributes of ``msg`` that are set (not ``None``), as fields."""
    return {n: _stored(v) for n in names if (v := getattr(msg, n)) is not None}


def _write(layout: _Layout[Any], msg: Any, fields: dict[str, FieldValue] | None = None, **tags: str) -> Point:
    """The point of ``msg`` (its asset and time; ``fields`` and the layout's, which win; the layout's tag
    and ``tags``), validated as the store will validate it (names, tag values, finite numbers)."""
    fields = (fields or {}) | _fields(msg, *layout.fields.split(), *layout.optional.split())
    tags = ({layout.tag: getattr(msg, layout.tag)} if layout.tag else {}) | tags
    for name, value in tags.items():
        if not topics.valid_asset_id(value):
            raise ValueError(f"{name} {value!r} cannot be a tag: must match {topics.ASSET_ID_PATTERN}")
    event_id = getattr(msg, "event_id", None)
    when = ts_ns(msg.ts) if event_id is None else event_ts_ns(msg.ts, event_id)
    point = Point(layout.measurement, msg.asset_id, when, fields, tags)
    try:
        normalise_fields(point)
    except StoreError as exc:
        raise ValueError(f"cannot store {layout.measurement} point: {exc}") from exc
    return point


#: Readings, scores, state changes and sensor statuses (one point per change: the retained status seen
#: again is the same point) as points: their layouts say everything.
reading_to_point: Callable[[Reading], Point] = partial(_write, _READING)
score_to_point: Callable[[Score], Point] = partial(_write, _SCORE)
state_to_point: Callable[[StateChange], Point] = partial(_write, _STATE)
sensor_to_point: Callable[[SensorStatus], Point] = partial(_write, _SENSOR)


def window_to_point(w: Window) -> Point:
    """Summary of a vibration window: rate, length, axes and per-axis RMS (g); not the raw samples."""
    fields: dict[str, FieldValue] = {"axes": "".join(w.axes)}
    for axis in w.axes:
        samples = getattr(w, axis)
        if samples is None:
            raise ValueError(f"window lists axis {axis!r} but carries no samples for it")
        fields[f"rms_{axis}"] = rms(samples)
    return _write(_WINDOW, w, fields)


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
    # Names match NAME_RE (checked by _write), so they contain no comma and the join is reversible.
    fields[FEATURE_NAMES_FIELD] = ",".join(fv.names)
    return _write(_FEATURES[fv.kind], fv, fields)


def health_to_point(h: HealthUpdate) -> Point:
    """A ``health`` point; ``insights``, ``model_ratios``, ``rul`` as compact JSON; for queries also flat:
    rul_status?, rul_indicator?, rul_median_s?/rul_low_s?/rul_high_s? [s], rul_threshold? [Np], and
    ind_<name> per indicator (rms_log, hf_energy_log [Np], kurtosis_z [robust σ], cusum [Np·s])."""
    rul = {f"rul_{k}": v for k, v in (_fields(h.rul, *_RUL_FLAT) if h.rul else {}).items()}
    return _write(_HEALTH, h, rul | {IND_PREFIX + k: float(v) for k, v in h.indicators.items()})


def alarm_to_point(a: AlarmEvent) -> Point:
    """An ``alarms`` point tagged ``alarm_id`` and ``transition`` (its kind, else state): one per change."""
    bare = a if a.reopens else a.model_copy(update={"reopens": None})  # 0, the default, is not written
    return _write(_ALARM, bare, transition=a.transition or a.state)


def oplog_to_point(log: OperatorLog) -> Point:
    """An ``oplogs`` point tagged ``log_id``."""
    return _write(_OPLOG, log)


# --- the families: topic filter -> message model -> point -------------------------------------------
def check_topic_asset(topic: str, asset_id: str) -> None:
    """Raise ValueError unless ``topic`` names the asset ``asset_id`` (the payload's own)."""
    if topics.asset_from_topic(topic) != asset_id:
        raise ValueError(f"payload asset_id {asset_id!r} does not match topic {topic!r}")


@dataclass(frozen=True)
class Family(Generic[M]):
    """One stored topic family: messages of ``model`` on ``filter`` become points by ``to_point``."""

    filter: str
    model: type[M]
    to_point: Callable[[M], Point]
    #: An empty payload is a cleared retained message: no points (cf. ``shared.service.Route.clears``).
    clears: bool = False
    #: Message attribute the topic's last level must equal (``kind`` of features, ``model`` of scores).
    leaf: str | None = None

    def convert(self, topic: str, payload: bytes) -> list[Point]:
        """Validate a payload against ``model`` and convert it (the message must belong on ``topic``)."""
        if self.clears and not payload:
            return []
        return to_points(self, self.model.model_validate_json(payload), topic)


def to_points(family: Family[M], msg: M | None, topic: str | None = None) -> list[Point]:
    """The points of one validated message: none for ``None`` (a cleared retained message), else one.
    With ``topic``, first checks that the message belongs there (same asset, feature kind, score model)."""
    if msg is None:
        return []
    if topic is not None:
        check_topic_asset(topic, msg.asset_id)  # type: ignore[attr-defined]  # every family has one
        if family.leaf and topic.rsplit("/", 1)[-1] != (value := getattr(msg, family.leaf)):
            raise ValueError(f"payload {family.leaf} {value!r} does not match topic {topic!r}")
    return [family.to_point(msg)]


#: Every stored family, in subscription order. Append a row to store a new message family.
FAMILIES: tuple[Family[Any], ...] = (
    Family(topics.READING_FILTER, Reading, reading_to_point),
    Family(topics.WINDOW_FILTER, Window, window_to_point),
    Family(topics.features_filter(), FeatureVector, features_to_point, leaf="kind"),
    Family(topics.SCORE_FILTER, Score, score_to_point, leaf="model"),
    Family(topics.STATE_FILTER, StateChange, state_to_point, clears=True),
    Family(topics.HEALTH_FILTER, HealthUpdate, health_to_point, clears=True),
    Family(topics.ALARM_FILTER, AlarmEvent, alarm_to_point),
    Family(topics.OPLOG_FILTER, OperatorLog, oplog_to_point),
    Family(topics.SENSOR_FILTER, SensorStatus, sensor_to_point, clears=True),
)


def convert(topic: str, payload: bytes) -> list[Point]:
    """Points for one message from every family matching ``topic`` (ValueError: none, or one refuses it)."""
    matched = [f for f in FAMILIES if topic_matches(f.filter, topic)]
    if not matched:
        raise ValueError(f"no converter for topic {topic!r}")
    return [p for f in matched for p in f.convert(topic, payload)]


# --- point -> message / plain data -----------------------------------------------------------------
def _field(point: Point, name: str) -> Any:
    try:
        return point.fields[name]
    except KeyError:
        raise ValueError(f"{point.measurement} point at {point.ts_ns} has no field {name!r}") from None


def _from_json(raw: Any) -> Any:
    try:
        return json.loads(raw)
    except (TypeError, ValueError) as exc:  # not a string, or not JSON
        raise ValueError(f"must be a JSON string, got {raw!r}: {exc}") from None


def _from_iso(v: Any) -> datetime:
    try:
        return to_utc(datetime.fromisoformat(v))
    except (TypeError, ValueError):
        raise ValueError(f"must be an ISO-8601 string, got {v!r}") from None


#: Fields read back through a conversion (the inverse of :func:`_stored`); the model validates the rest
#: as stored (e.g. ``active_alarms``, stored as a float, must be whole).
_READ_AS = {"insights": _from_json, "model_ratios": _from_json, "rul": _from_json, "opened_at": _from_iso}
_READ_AS |= {"findings": _from_json, "since": _from_iso, "shelved_until": _from_iso, "reopens": int}


def _read(point: Point, layout: _Layout[M], **extra: Any) -> M:
    """The message a point of ``layout`` was made from (asset and time are the point's; plus ``extra``)."""
    m = layout.measurement
    if point.measurement != m:
        raise ValueError(f"expected a {m!r} point, got {point.measurement!r}")
    values: dict[str, Any] = {"asset_id": point.asset_id, "ts": from_ns(point.ts_ns)}
    if layout.tag is not None:
        if layout.tag not in point.tags:
            raise ValueError(f"{m} point at {point.ts_ns} has no {layout.tag!r} tag")
        values[layout.tag] = point.tags[layout.tag]
    present = [n for n in layout.optional.split() if n in point.fields]
    for name in layout.fields.split() + present:
        value, read = _field(point, name), _READ_AS.get(name)
        try:
            values[name] = value if read is None else read(value)
        except ValueError as exc:
            raise ValueError(f"{m} field {name!r} {exc}") from None
    return layout.model(**values, **extra)


#: The :class:`Reading`, :class:`Score` (its model: the point's ``model`` tag) or :class:`SensorStatus` a
#: ``readings``, ``scores`` or ``sensor`` point was made from.
point_to_reading: Callable[[Point], Reading] = partial(_read, layout=_READING)
point_to_score: Callable[[Point], Score] = partial(_read, layout=_SCORE)
point_to_sensor: Callable[[Point], SensorStatus] = partial(_read, layout=_SENSOR)


def point_to_health(point: Point) -> HealthUpdate:
    """The :class:`HealthUpdate` a ``health`` point was made from (indicators from ``ind_<name>``)."""
    ind = {k[len(IND_PREFIX) :]: v for k, v in point.fields.items() if k.startswith(IND_PREFIX)}
    return _read(point, _HEALTH, indicators=ind)


def point_to_alarm(point: Point) -> AlarmEvent:
    """The :class:`AlarmEvent` of an ``alarms`` point (an old one, tagged with its state: no transition)."""
    kind = point.tags.get("transition", "")
    return _read(point, _ALARM, transition=kind if kind.islower() else None)


def point_to_oplog(point: Point) -> OperatorLog:
    """The :class:`OperatorLog` an ``oplogs`` point was made from."""
    return _read(point, _OPLOG)


def point_to_features(point: Point) -> tuple[list[str], list[float], dict[str, float]]:
    """``(names, values, extras)`` of a ``features_<kind>`` point, names in their original order (in
    sorted order for points written without ``feature_names``)."""
    if not point.measurement.startswith(FEATURES_PREFIX):
        raise ValueError(f"expected a {FEATURES_PREFIX}<kind> point, got {point.measurement!r}")
    order = point.fields.get(FEATURE_NAMES_FIELD)
    stored = sorted(k for k in point.fields if k not in _FEATURE_META and not k.startswith(EXTRA_PREFIX))
    names = (order.split(",") if order else []) if isinstance(order, str) else stored
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


def point_to_frames(point: Point) -> tuple[int, list[list[float]]] | None:
    """``(frame_samples, rows)`` of a ``features_<kind>`` point whose vector carried frames, else None."""
    if "frames" not in point.fields:
        return None
    return int(_field(point, "frame_samples")), _from_json(point.fields["frames"])


_ALARM_STATE_RANK = {"ACTIVE": 0, "ACKNOWLEDGED": 1, "RESOLVED": 2}
_TIE = {"opened": 0, "unshelved": 1, "escalated": 2}, {"acknowledged": 0, "shelved": 1, "unshelved": 2}


def _at_tie(e: AlarmEvent) -> tuple[int, ...]:
    """Rank of ``e`` among its alarm's transitions at one data time: a resolve ends it; the book's own (at an
    observation) precede an operator's (at the latest data time observed); old events: by state."""
    state = _ALARM_STATE_RANK[e.state]
    op = int(e.who not in (None, "system") if e.transition else state == 1)  # an operator's
    return state // 2, op, state * op, _TIE[op].get(e.transition or "", 0)


def latest_alarms(events: Sequence[AlarmEvent]) -> list[AlarmEvent]:
    """The latest transition per alarm (ties: :func:`_at_tie`); newest ``opened_at``, ``ts``, id first."""
    latest: dict[str, AlarmEvent] = {}
    for e in events:
        cur = latest.get(e.alarm_id)
        if cur is None or (e.ts, _at_tie(e)) > (cur.ts, _at_tie(cur)):
            latest[e.alarm_id] = e
    return sorted(latest.values(), key=lambda a: (to_utc(a.opened_at), a.ts, a.alarm_id), reverse=True)


def point_to_dict(point: Point) -> dict[str, Any]:
    """A flat, JSON-ready row: ``ts`` (ISO-8601 UTC), ``ts_ns``, ``asset_id``, the tags, then the
    fields (a tag or field named ``ts``/``ts_ns`` would be overwritten by the later one)."""
    head = {"ts": from_ns(point.ts_ns).isoformat(), "ts_ns": point.ts_ns, "asset_id": point.asset_id}
    return {**head, **point.tags, **point.fields}
