"""Alarm priorities, first-out in a flood, and alarm-system performance metrics (pure: no I/O).

The input is the alarm history as the historian stores it: :class:`~shared.messages.AlarmEvent`
transitions (``ACTIVE`` when opened or escalated, ``ACKNOWLEDGED``, ``RESOLVED``), any number of
assets, in any order. :func:`alarm_records` folds them into one :class:`AlarmRecord` per alarm id.
Times are data time (UTC); durations are seconds.

**Priority** (:func:`priority_of`), after ISA-18.2 / IEC 62682 and EEMUA 191: a priority ranks how
soon and how badly the operator must act (consequence, time to respond), in few levels; here three:

- ``1 high``: severity ``CRITICAL`` (damage zone, a model far above its threshold: act now);
- ``2 medium``: severity ``WARNING`` of a machine-condition source (``anomaly``, ``iso20816``);
- ``3 low``: a ``WARNING`` from the trend early warning (``trend``: days to weeks to respond) or a
  sensor's own fault (``sensor``: a maintenance/diagnostic alarm about the instrument, not the
  machine). A ``CRITICAL`` always ranks high whatever its source.

An alarm's priority is that of the highest severity it reached (an escalation raises it).

**First-out** (:func:`floods`). A flood on one machine (assets grouped by ``AssetConfig.machine``;
an asset without one is its own machine): at least :attr:`MetricParams.flood_min_alarms` (3) alarms
opened within :attr:`MetricParams.flood_window_s` (600 s) on that machine. EEMUA 191's flood is more
than 10 alarms per 10 minutes for one operator who watches many machines; one machine raises a handful
of alarms at most (4 sources per asset), so 3 in 10 minutes there already is one event cascading.
Every window of that length holding at least that many openings is flooded; windows sharing an
alarm join into one flood. Its earliest alarm (``opened_at``, then ``alarm_id``) is the *first-out*
— the likely initiating event — and every alarm of the flood references it.

**Metrics** (:func:`compute_metrics`) over a period ``[start, end)``, on the alarms *opened* in it
unless said otherwise:

- alarm rate: openings per 10 minutes, mean (``count / (duration / 600 s)``) and peak (most openings
  in one 10-minute bucket; buckets start at ``start``, the last may be shorter, and one shorter
  than 1 ms joins the bucket before it);
- % of 10-minute buckets in flood: buckets with more than :attr:`MetricParams.operator_flood_above`
  (10, EEMUA 191's operator flood) openings, and the number of machine floods (above) in the period;
- standing alarms: open for at least :attr:`MetricParams.standing_s` (24 h) at some instant of the
  period (alarms opened before the period count), and how many of them are still open at its end;
- chattering sources: an ``(asset, source)`` that opened at least :attr:`MetricParams.chatter_min_opens`
  (3) times within :attr:`MetricParams.chatter_window_s` (600 s);
- time to acknowledge: from opening to the first operator response (an ``ACKNOWLEDGED``, or a
  ``RESOLVED`` by a person — not auto-cleared — that came first) before ``end``; median and 90th
  percentile (linear interpolation between order statistics, numpy's default); alarms without a
  response by ``end`` are counted as unacknowledged (still open / cleared by themselves);
- the ten most frequent sources (openings per ``(asset, source)``).

Every result carries its basis: the period, its duration and the number of alarms it rests on.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from shared.messages import AlarmEvent, to_utc

BUCKET_S = 600.0
#: Severity -> priority for machine-condition sources; ``(number, name)``.
PRIORITIES: dict[int, str] = {1: "high", 2: "medium", 3: "low"}
#: Sources whose WARNING is low priority: the trend early warning and the sensor's own faults
#: (``shared.health.policy.SOURCE_TREND`` and ``shared.health.assessor.SOURCE_SENSOR``).
LOW_PRIORITY_SOURCES = frozenset({"trend", "sensor"})
_RANK = {"WARNING": 1, "CRITICAL": 2}
_STATE_RANK = {"ACTIVE": 0, "ACKNOWLEDGED": 1, "RESOLVED": 2}
TOP_SOURCES = 10


@dataclass(frozen=True)
class MetricParams:
    """Thresholds of the metrics and of first-out (module doc)."""

    flood_min_alarms: int = 3
    flood_window_s: float = 600.0
    operator_flood_above: int = 10
    standing_s: float = 24 * 3600.0
    chatter_min_opens: int = 3
    chatter_window_s: float = 600.0

    def __post_init__(self) -> None:
        for name in ("flood_min_alarms", "operator_flood_above", "chatter_min_opens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("flood_window_s", "standing_s", "chatter_window_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive seconds, got {getattr(self, name)}")


@dataclass(frozen=True)
class Priority:
    level: int  # 1 high, 2 medium, 3 low
    name: str


def priority_of(severity: str, source: str) -> Priority:
    """The priority of an alarm of ``severity`` from ``source`` (module doc): CRITICAL 1 high; WARNING
    2 medium, or 3 low for the trend early warning and sensor faults."""
    if severity == "CRITICAL":
        level = 1
    elif source in LOW_PRIORITY_SOURCES:
        level = 3
    else:
        level = 2
    return Priority(level, PRIORITIES[level])


@dataclass
class AlarmRecord:
    """One alarm folded from its transitions (times aware UTC; ``None``: not (yet) happened)."""

    alarm_id: str
    asset_id: str
    source: str
    severity: str
    opened_at: datetime
    acknowledged_at: datetime | None = None
    #: First operator response: the first ACKNOWLEDGED, or a RESOLVED by a person if earlier.
    responded_at: datetime | None = None
    resolved_at: datetime | None = None
    auto_cleared: bool = False

    @property
    def priority(self) -> Priority:
        return priority_of(self.severity, self.source)

    def open_at(self, t: datetime) -> bool:
        """Open at instant ``t`` (opened at or before it, not resolved at or before it)."""
        return self.opened_at <= t and (self.resolved_at is None or self.resolved_at > t)


def _apply(rec: AlarmRecord, e: AlarmEvent, ts: datetime) -> None:
    if _RANK.get(e.severity, 0) > _RANK.get(rec.severity, 0):
        rec.severity = e.severity
    if e.state == "ACKNOWLEDGED" and rec.acknowledged_at is None:
        rec.acknowledged_at = ts
    if e.state == "RESOLVED" and rec.resolved_at is None:
        rec.resolved_at, rec.auto_cleared = ts, e.auto_cleared
    person_resolved = e.state == "RESOLVED" and not e.auto_cleared
    if (e.state == "ACKNOWLEDGED" or person_resolved) and (rec.responded_at is None or ts < rec.responded_at):
        rec.responded_at = ts


def alarm_records(events: Iterable[AlarmEvent], until: datetime | None = None) -> list[AlarmRecord]:
    """One record per alarm id from its transitions with ``ts < until`` (all when ``None``), sorted by
    ``opened_at`` then ``alarm_id``. Transitions are applied in data-time order (a later lifecycle step
    wins a tie), so the history may come in any order."""
    end = None if until is None else to_utc(until)
    timed = [(to_utc(e.ts), _STATE_RANK[e.state], e) for e in events]
    chosen = sorted((x for x in timed if end is None or x[0] < end), key=lambda x: (x[0], x[1]))
    out: dict[str, AlarmRecord] = {}
    for ts, _, e in chosen:
        rec = out.get(e.alarm_id)
        if rec is None:
            rec = out[e.alarm_id] = AlarmRecord(
                e.alarm_id, e.asset_id, e.source, e.severity, to_utc(e.opened_at)
            )
        _apply(rec, e, ts)
    return sorted(out.values(), key=lambda r: (r.opened_at, r.alarm_id))


# --- first-out ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Flood:
    """Alarms of one machine that flooded (module doc); ``alarm_ids`` in opening order, the first is
    the first-out."""

    machine: str
    start: datetime
    end: datetime
    alarm_ids: tuple[str, ...]

    @property
    def first_out(self) -> str:
        return self.alarm_ids[0]


def machine_of(asset_id: str, machines: Mapping[str, str | None]) -> str:
    """The machine an asset belongs to (its own id when none is configured)."""
    return machines.get(asset_id) or asset_id


def _flood_runs(recs: Sequence[AlarmRecord], p: MetricParams) -> list[tuple[int, int]]:
    """Index ranges ``[i, j]`` of ``recs`` (sorted by opening) that flooded, windows sharing an alarm
    merged."""
    runs: list[tuple[int, int]] = []
    j = 0
    for i, r in enumerate(recs):
        j = max(j, i)
        while j + 1 < len(recs) and (recs[j + 1].opened_at - r.opened_at).total_seconds() < p.flood_window_s:
            j += 1
        if j - i + 1 < p.flood_min_alarms:
            continue
        if runs and i <= runs[-1][1]:
            runs[-1] = (runs[-1][0], j)
        else:
            runs.append((i, j))
    return runs


def floods(
    records: Sequence[AlarmRecord], machines: Mapping[str, str | None], params: MetricParams | None = None
) -> list[Flood]:
    """The floods of every machine (module doc), by start time. ``machines``: asset id -> machine id."""
    p = params or MetricParams()
    by_machine: dict[str, list[AlarmRecord]] = defaultdict(list)
    for r in records:
        by_machine[machine_of(r.asset_id, machines)].append(r)
    out = []
    for machine, recs in by_machine.items():
        recs.sort(key=lambda r: (r.opened_at, r.alarm_id))
        for i, j in _flood_runs(recs, p):
            members = recs[i : j + 1]
            ids = tuple(r.alarm_id for r in members)
            out.append(Flood(machine, members[0].opened_at, members[-1].opened_at, ids))
    return sorted(out, key=lambda f: (f.start, f.machine))


def first_out_map(flood_list: Iterable[Flood]) -> dict[str, str]:
    """Alarm id -> the first-out alarm id of its flood (the first-out maps to itself)."""
    return {a: f.first_out for f in flood_list for a in f.alarm_ids}


# --- metrics -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Basis:
    """What a metric rests on: the period ``[start, end)``, its length (s) and the alarms counted."""

    start: datetime
    end: datetime
    duration_s: float
    alarms: int


@dataclass(frozen=True)
class RateMetrics:
    mean_per_10min: float
    peak_per_10min: int
    peak_bucket_start: datetime | None
    buckets: int
    flood_buckets: int
    flood_pct: float
    machine_floods: int


@dataclass(frozen=True)
class AckMetrics:
    acknowledged: int
    median_s: float | None
    p90_s: float | None
    unacknowledged_open: int
    cleared_unacknowledged: int


@dataclass(frozen=True)
class Chatter:
    asset_id: str
    source: str
    max_opens_in_window: int
    window_start: datetime
    opens: int


@dataclass(frozen=True)
class Standing:
    alarm_id: str
    asset_id: str
    source: str
    opened_at: datetime
    open_s: float
    open_at_end: bool


@dataclass(frozen=True)
class SourceCount:
    asset_id: str
    source: str
    opens: int


@dataclass(frozen=True)
class AlarmMetrics:
    basis: Basis
    by_priority: dict[str, int]
    rate: RateMetrics
    standing: list[Standing]
    chattering: list[Chatter]
    ack: AckMetrics
    top_sources: list[SourceCount]
    params: MetricParams = field(default_factory=MetricParams)


def _rate(
    opened: Sequence[AlarmRecord], start: datetime, end: datetime, n_floods: int, p: MetricParams
) -> RateMetrics:
    duration = (end - start).total_seconds()
    # A last bucket under 1 ms (a closed period taken as [start, end + 1 µs)) joins the one before.
    n_buckets = max(1, int(np.ceil((duration - 1e-3) / BUCKET_S)))
    counts = np.zeros(n_buckets, dtype=np.int64)
    for r in opened:
        counts[min(int((r.opened_at - start).total_seconds() // BUCKET_S), n_buckets - 1)] += 1
    peak = int(counts.max())
    flooded = int(np.sum(counts > p.operator_flood_above))
    return RateMetrics(
        mean_per_10min=len(opened) / (duration / BUCKET_S),
        peak_per_10min=peak,
        peak_bucket_start=start + timedelta(seconds=BUCKET_S * int(counts.argmax())) if peak else None,
        buckets=n_buckets,
        flood_buckets=flooded,
        flood_pct=100.0 * flooded / n_buckets,
        machine_floods=n_floods,
    )


def _chattering(opened: Sequence[AlarmRecord], p: MetricParams) -> list[Chatter]:
    by_source: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for r in opened:
        by_source[(r.asset_id, r.source)].append(r.opened_at)
    out = []
    for (asset, source), times in sorted(by_source.items()):
        times.sort()
        best, best_at, j = 0, times[0], 0
        for i, t in enumerate(times):
            j = max(j, i)
            while j + 1 < len(times) and (times[j + 1] - t).total_seconds() < p.chatter_window_s:
                j += 1
            if j - i + 1 > best:
                best, best_at = j - i + 1, t
        if best >= p.chatter_min_opens:
            out.append(Chatter(asset, source, best, best_at, len(times)))
    return sorted(out, key=lambda c: (-c.max_opens_in_window, c.asset_id, c.source))


def _standing(
    records: Sequence[AlarmRecord], start: datetime, end: datetime, p: MetricParams
) -> list[Standing]:
    """Alarms open for at least ``standing_s`` at some instant of ``[start, end)``: ``max(start,
    opened_at + standing_s) < min(resolved_at, end)``; ``open_s`` is how long each was open by then."""
    out = []
    for r in records:
        until = end if r.resolved_at is None else min(r.resolved_at, end)
        if max(start, r.opened_at + timedelta(seconds=p.standing_s)) < until:
            open_s = (until - r.opened_at).total_seconds()
            at_end = r.resolved_at is None or r.resolved_at >= end
            out.append(Standing(r.alarm_id, r.asset_id, r.source, r.opened_at, open_s, at_end))
    return sorted(out, key=lambda s: (-s.open_s, s.alarm_id))


def _ack(opened: Sequence[AlarmRecord], end: datetime) -> AckMetrics:
    delays = [(r.responded_at - r.opened_at).total_seconds() for r in opened if r.responded_at is not None]
    silent = [r for r in opened if r.responded_at is None]
    still_open = sum(1 for r in silent if r.resolved_at is None or r.resolved_at >= end)
    return AckMetrics(
        acknowledged=len(delays),
        median_s=float(np.median(delays)) if delays else None,
        p90_s=float(np.percentile(delays, 90)) if delays else None,
        unacknowledged_open=still_open,
        cleared_unacknowledged=len(silent) - still_open,
    )


def compute_metrics(
    events: Iterable[AlarmEvent],
    start: datetime,
    end: datetime,
    machines: Mapping[str, str | None] | None = None,
    params: MetricParams | None = None,
    machine_floods: Sequence[Flood] | None = None,
) -> AlarmMetrics:
    """The metrics of the alarms in ``events`` over ``[start, end)`` (module doc). ``events`` may hold
    transitions before ``start`` (needed for standing alarms) and after ``end`` (ignored).
    ``machine_floods``: the floods of the whole machines (their other assets' alarms included), of
    which those holding one of these alarms are counted; by default the floods among these alarms.
    ValueError unless ``start < end``."""
    p = params or MetricParams()
    start, end = to_utc(start), to_utc(end)
    if not start < end:
        raise ValueError(f"start ({start.isoformat()}) must be before end ({end.isoformat()})")
    records = alarm_records(events, until=end)
    opened = [r for r in records if start <= r.opened_at < end]
    if machine_floods is None:
        n_floods = len(floods(opened, machines or {}, p))
    else:
        mine = {r.alarm_id for r in opened}
        n_floods = sum(1 for f in machine_floods if mine.intersection(f.alarm_ids))
    counts = Counter(r.priority.name for r in opened)
    sources = Counter((r.asset_id, r.source) for r in opened)
    top = sorted(sources.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_SOURCES]
    return AlarmMetrics(
        basis=Basis(start, end, (end - start).total_seconds(), len(opened)),
        by_priority={name: counts.get(name, 0) for name in PRIORITIES.values()},
        rate=_rate(opened, start, end, n_floods, p),
        standing=_standing(records, start, end, p),
        chattering=_chattering(opened, p),
        ack=_ack(opened, end),
        top_sources=[SourceCount(a, s, n) for (a, s), n in top],
        params=p,
    )
