"""Gather one asset's stored data over one period into a :class:`~shared.reports.data.ReportData`.

Pure over the :class:`~shared.store.Store` port (no bus, no files): every measurement is walked forward
a page at a time (:mod:`shared.store.paging`), so memory holds the arrays of the report, never a whole
query result twice.

**Period.** ``[start, end]`` in data time, both inclusive at microsecond precision (a stored point's
time reads back at µs; its last three ns digits are the event slot, :mod:`shared.store.identity`). The
default ``end`` is the asset's newest stored reading, window or health update (data time, not the
wall clock: replayed history works), the default ``start`` 24 h before ``end``.

**Row cap.** A period holding more than ``max_rows`` readings (or scores of one model, or health
updates) keeps every ``k``-th point, ``k = ceil(total / max_rows)``, so the report still spans the whole
period with real stored values (never averages); ``ReportData.capped`` is then ``max_rows`` and
``readings_total`` the period's count. ``latest_health`` is always the newest stored update.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

import numpy as np
import structlog

from shared import records, topics
from shared.messages import (
    AlarmEvent,
    AssetConfig,
    HealthUpdate,
    ModelAnnouncement,
    OperatorLog,
    from_ns,
    ts_ns,
)
from shared.reports.data import ModelInfo, ReportData, Series
from shared.store import Store, paging
from shared.store.base import Point

log = structlog.get_logger()
T = TypeVar("T")

#: Default period: the last 24 h of the asset's data.
DEFAULT_PERIOD = timedelta(hours=24)
#: Points per store query while walking a measurement.
PAGE = 5000
#: Default row cap (REPORT_MAX_ROWS).
DEFAULT_MAX_ROWS = 100_000
#: Measurements whose newest point ends the default period (the asset's "data").
DATA_MEASUREMENTS = (records.READINGS, records.WINDOWS, records.HEALTH)

_READING_COLUMNS = ("voltage_v", "current_a", "power_factor", "vibration_g")
_SCORE_COLUMNS = ("anomaly_score", "raw_score", "threshold", "is_anomaly")
#: Stored health fields a report reads (:mod:`shared.records`): the summary, the trend indicators
#: (``ind_*``: rms_log, hf_energy_log [Np], kurtosis_z [robust σ], cusum and its decision level cusum_h
#: [Np·s]) and the remaining-life
#: estimate (``rul_*``: median and 80 % interval ends [s], threshold [Np]); NaN / "" where absent.
_HEALTH_COLUMNS = (
    "health_score",
    "degradation_index",
    "maintenance_window_days",
    "velocity_rms_mm_s",
    "ind_rms_log",
    "ind_hf_energy_log",
    "ind_kurtosis_z",
    "ind_cusum",
    "ind_cusum_h",
    "rul_median_s",
    "rul_low_s",
    "rul_high_s",
    "rul_threshold",
)
_HEALTH_LABELS = ("risk_level", "grade", "iso_zone", "zone_basis", "rul_status")
_WINDOW_COLUMNS = ("fs_hz", "n", "rms_x", "rms_y", "rms_z")


def end_ns_of(end: datetime) -> int:
    """Exclusive store bound of an inclusive ``end``: the whole microsecond of ``end`` included."""
    return ts_ns(end) + 1000


def newest_data(store: Store, asset_id: str, end: datetime | None = None) -> datetime | None:
    """Data time of the asset's newest stored reading, window or health update (not after ``end``);
    ``None`` when it has none."""
    bound = None if end is None else end_ns_of(end)
    found = [paging.newest_ns(store, m, asset_id, end_ns=bound) for m in DATA_MEASUREMENTS]
    newest = [n for n in found if n is not None]
    return from_ns(max(newest)) if newest else None


def resolve_period(
    store: Store, asset_id: str, start: datetime | None, end: datetime | None
) -> tuple[datetime, datetime] | None:
    """``(start, end)`` with the defaults filled in (module docstring); ``None`` when ``end`` is unset
    and the asset has no stored data at all."""
    if end is None:
        end = newest_data(store, asset_id)
        if end is None:
            return None
    return (end - DEFAULT_PERIOD if start is None else start), end


def walk(
    store: Store,
    measurement: str,
    asset_id: str,
    start_ns: int,
    end_ns: int,
    tags: Mapping[str, str] | None = None,
) -> Iterator[Point]:
    """Every point of ``[start_ns, end_ns)``, oldest first, a page at a time."""
    after: int | None = start_ns
    while after is not None:
        page = paging.forward(
            store, measurement, asset_id, start_ns=after, end_ns=end_ns, limit=PAGE, tags=tags
        )
        yield from page.points
        after = None if page.next_after_ns is None else page.next_after_ns + 1


def stride(total: int, max_rows: int) -> int:
    """Keep every ``stride``-th point so that at most ``max_rows`` of ``total`` remain (1: all)."""
    return max(1, math.ceil(total / max_rows)) if max_rows > 0 else 1


@dataclass
class SeriesBuilder:
    """Accumulates rows of one :class:`Series` (floats; NaN for a missing or non-numeric field)."""

    columns: tuple[str, ...]
    labels: tuple[str, ...] = ()
    ts: list[float] = field(default_factory=list)
    values: dict[str, list[float]] = field(default_factory=dict)
    texts: dict[str, list[str]] = field(default_factory=dict)

    def add(self, point: Point) -> None:
        self.ts.append(point.ts_ns / 1e9)
        for c in self.columns:
            self.values.setdefault(c, []).append(_number(point.fields.get(c)))
        for name in self.labels:
            v = point.fields.get(name, point.tags.get(name, ""))
            self.texts.setdefault(name, []).append("" if v is None else str(v))

    def build(self) -> Series:
        return Series(
            ts_s=np.asarray(self.ts, dtype=np.float64),
            columns={c: np.asarray(self.values.get(c, []), dtype=np.float64) for c in self.columns},
            labels={n: self.texts.get(n, []) for n in self.labels},
        )


def _number(v: object) -> float:
    """A stored field as a float (bools as 0/1); NaN when absent or text."""
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, int | float):
        return float(v)
    return math.nan


@dataclass
class Moments:
    """Streaming n / mean / population std / min / max of one column over finite values (chunks
    combined with Chan's parallel formula: ``M2 = M2_a + M2_b + delta**2 * n_a * n_b / n``)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = math.inf
    max: float = -math.inf

    def add(self, chunk: list[float]) -> None:
        x = np.asarray(chunk, dtype=np.float64)
        x = x[np.isfinite(x)]
        if not x.size:
            return
        nb, mb = int(x.size), float(x.mean())
        n = self.n + nb
        delta = mb - self.mean
        self.m2 += float(np.sum((x - mb) ** 2)) + delta * delta * self.n * nb / n
        self.mean += delta * nb / n
        self.n = n
        self.min, self.max = min(self.min, float(x.min())), max(self.max, float(x.max()))

    def summary(self) -> dict[str, float]:
        if not self.n:
            return {"n": 0.0}
        std = math.sqrt(self.m2 / self.n)
        return {"n": float(self.n), "mean": self.mean, "std": std, "min": self.min, "max": self.max}


@dataclass
class ColumnStats:
    """:class:`Moments` of named columns over every point added (buffered, a page at a time)."""

    columns: tuple[str, ...]
    moments: dict[str, Moments] = field(default_factory=dict)
    buffer: dict[str, list[float]] = field(default_factory=dict)

    def add(self, point: Point) -> None:
        for c in self.columns:
            self.buffer.setdefault(c, []).append(_number(point.fields.get(c)))
        if len(self.buffer[self.columns[0]]) >= PAGE:
            self.flush()

    def flush(self) -> None:
        for c, values in self.buffer.items():
            self.moments.setdefault(c, Moments()).add(values)
        self.buffer.clear()

    def summary(self) -> dict[str, dict[str, float]]:
        self.flush()
        return {c: m.summary() for c, m in self.moments.items() if m.n}


@dataclass(frozen=True)
class Window:
    """One gather request: the asset and its period as store bounds, and the row cap."""

    asset_id: str
    start_ns: int
    end_ns: int
    max_rows: int


def sampled_series(
    store: Store,
    w: Window,
    measurement: str,
    builder: SeriesBuilder,
    tags: Mapping[str, str] | None = None,
    stats: ColumnStats | None = None,
) -> tuple[Series, int, Point | None]:
    """The period's points of ``measurement`` (every ``k``-th when over the cap), their total, and the
    newest point (``None``: none); ``stats`` sees every point."""
    total = store.count(measurement, w.asset_id, start_ns=w.start_ns, end_ns=w.end_ns) if not tags else None
    if total is None:  # count() takes no tags: count while walking, then keep every k-th
        total = sum(1 for _ in walk(store, measurement, w.asset_id, w.start_ns, w.end_ns, tags))
    k, last = stride(total, w.max_rows), None
    for i, p in enumerate(walk(store, measurement, w.asset_id, w.start_ns, w.end_ns, tags)):
        if i % k == 0:
            builder.add(p)
        if stats is not None:
            stats.add(p)
        last = p
    return builder.build(), total, last


def _vibration(store: Store, w: Window) -> Series:
    """Stored vibration feature vectors: one column per feature and extra (an extra whose name is also a
    feature's is ``e_<name>``), NaN where a vector lacks one."""
    rows: list[tuple[float, dict[str, float]]] = []
    names: dict[str, None] = {}
    for p in walk(store, records.features_measurement("vibration"), w.asset_id, w.start_ns, w.end_ns):
        try:
            feats, values, extras = records.point_to_features(p)
        except ValueError as exc:
            log.warning("report_bad_point", measurement=p.measurement, ts_ns=p.ts_ns, error=str(exc))
            continue
        row = dict(zip(feats, values, strict=True))
        row |= {(records.EXTRA_PREFIX + k if k in row else k): v for k, v in extras.items()}
        names |= dict.fromkeys(row)
        rows.append((p.ts_ns / 1e9, row))
    return Series(
        ts_s=np.asarray([t for t, _ in rows], dtype=np.float64),
        columns={n: np.asarray([r.get(n, math.nan) for _, r in rows], dtype=np.float64) for n in names},
    )


def _messages(store: Store, w: Window, measurement: str, convert: Callable[[Point], T]) -> list[T]:
    """The period's points of ``measurement`` as messages (a point that does not convert is logged)."""
    out: list[T] = []
    for p in walk(store, measurement, w.asset_id, w.start_ns, w.end_ns):
        try:
            out.append(convert(p))
        except ValueError as exc:
            log.warning("report_bad_point", measurement=measurement, ts_ns=p.ts_ns, error=str(exc))
    return out


def alarm_order(a: AlarmEvent) -> tuple[datetime, tuple[int, ...], str]:
    """Sort key of alarm transitions: data time, then the lifecycle at one data time as the store's
    latest-alarm rule orders it (``shared.records``: the book's own transitions before an operator's,
    who may acknowledge, shelve and unshelve at the latest data time; a resolve last), then the alarm."""
    return a.ts, records._at_tie(a), a.alarm_id


def alarms_in(store: Store, w: Window) -> list[AlarmEvent]:
    """Every stored alarm transition in the period, oldest first (:func:`alarm_order`). A shelving or
    a return from the shelf is a transition of its alarm, never a new alarm: it keeps the alarm's
    ``opened_at`` and its state (the reports count alarms by id, :mod:`shared.reports.facts`)."""
    events = _messages(store, w, records.ALARMS, records.point_to_alarm)
    return sorted(events, key=alarm_order)


#: How far back before a period the gatherer looks for alarms still open when it began (ns).
OPEN_LOOKBACK_NS = 366 * 86_400 * 10**9


def alarms_open_before(store: Store, w: Window) -> list[AlarmEvent]:
    """For each alarm still open when the period began (its last transition in the year before the
    period is not ``RESOLVED``), that transition (so its shelf, when it was shelved); oldest first."""
    before = Window(w.asset_id, max(0, w.start_ns - OPEN_LOOKBACK_NS), w.start_ns - 1, w.max_rows)
    last: dict[str, AlarmEvent] = {}
    for a in alarms_in(store, before):
        last[a.alarm_id] = a
    return [a for a in last.values() if a.state != "RESOLVED"]


def logs_in(store: Store, w: Window) -> list[OperatorLog]:
    """Operator log entries in the period, oldest first."""
    entries = _messages(store, w, records.OPLOGS, records.point_to_oplog)
    return sorted(entries, key=lambda e: (e.ts, e.log_id))


def model_info(ann: ModelAnnouncement) -> ModelInfo:
    """What a report names of one announced model (manifest → :class:`ModelInfo`; ``baseline`` holds
    ``signals`` (the raw-signal baseline) and, when the manifest has one, ``features``)."""
    m = ann.manifest
    baseline: dict[str, object] = {
        "signals": {k: s.model_dump(mode="json") for k, s in m.signal_baseline.items()}
    }
    if m.baseline is not None:
        baseline["features"] = m.baseline.model_dump(mode="json")
    return ModelInfo(
        kind=ann.model,
        version=ann.version,
        created_at=ann.created_at,
        threshold=m.threshold,
        features=list(m.features),
        training=dict(m.training),
        baseline=baseline,
        frames=dict(m.frames) if m.frames is not None else None,
    )


def _latest_health(point: Point | None) -> HealthUpdate | None:
    if point is None:
        return None
    try:
        return records.point_to_health(point)
    except ValueError as exc:
        log.warning("report_bad_point", measurement=records.HEALTH, ts_ns=point.ts_ns, error=str(exc))
        return None


def gather(
    store: Store,
    asset_id: str,
    start: datetime,
    end: datetime,
    *,
    generated_at: datetime,
    config: AssetConfig | None = None,
    models: Mapping[str, ModelAnnouncement] | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> ReportData:
    """Everything the reports show of ``asset_id`` over ``[start, end]`` (module docstring)."""
    w = Window(asset_id, ts_ns(start), end_ns_of(end), max_rows)
    stats = ColumnStats(_READING_COLUMNS)
    builder = SeriesBuilder(_READING_COLUMNS, ("event_id",))
    readings, total, _ = sampled_series(store, w, records.READINGS, builder, stats=stats)
    health, _, newest = sampled_series(
        store, w, records.HEALTH, SeriesBuilder(_HEALTH_COLUMNS, _HEALTH_LABELS)
    )
    windows, _, _ = sampled_series(store, w, records.WINDOWS, SeriesBuilder(_WINDOW_COLUMNS, ("axes",)))
    scores = {}
    for kind in topics.MODEL_KINDS:
        builder = SeriesBuilder(_SCORE_COLUMNS, ("event_id", "severity", "model_version"))
        series, _, _ = sampled_series(store, w, records.SCORES, builder, {"model": kind})
        if len(series):
            scores[kind] = series
    return ReportData(
        asset_id=asset_id,
        start=start,
        end=end,
        generated_at=generated_at,
        config=config,
        models=[model_info(a) for _, a in sorted((models or {}).items())],
        readings=readings,
        readings_total=total,
        capped=max_rows if total > max_rows else None,
        reading_stats=stats.summary(),
        scores=scores,
        health=health,
        latest_health=_latest_health(newest),
        windows=windows,
        vibration=_vibration(store, w),
        alarms=alarms_in(store, w),
        open_before=alarms_open_before(store, w),
        logs=logs_in(store, w),
    )
