"""The numbers the PDF reports show, computed from :class:`~shared.reports.data.ReportData` (pure).

Every value here is read from the data or is direct arithmetic of it; nothing is estimated:

* **signal statistics** (``n``, ``mean``, population ``std``, ``min``, ``max`` per reading column, its
  unit): ``ReportData.reading_stats`` when the gatherer gave them (readings capped), else computed
  over ``readings`` ignoring NaN.
* **availability of data** (%): ``100 * slots_with_data / slots_in_period``, the period cut from
  ``start`` into slots of ``max(AVAILABILITY_BUCKET_S, median spacing of the stamps)`` seconds (the
  data's own cadence when it is slower than a minute, or thinned by the gatherer's row cap); a slot
  has data when at least one reading or vibration window is stamped in it.
* **time in each ISO zone** (s): each health update's ``iso_zone`` holds until the next update, at
  most ``max(HOLD_MIN_S, 3 × median update interval)`` (a longer gap counts as no data), the last one
  until the period's end under the same cap; updates without a zone count as ``none``.
* **alarms raised**: distinct alarm ids with an ``ACTIVE`` transition opened in the period;
  **still open**: distinct alarm ids whose last transition up to the period's end is not ``RESOLVED``
  (alarms open when the period began count until a ``RESOLVED`` in the period); **open at start**: the
  alarms already open when the period began; **shelved**: of the still open, those whose last
  transition says they are shelved (a shelving or a return from the shelf is a transition of its
  alarm, never a new alarm).
* **sample rates**: readings ``1 / median(Δt)`` Hz; vibration windows their stored ``fs_hz`` and
  ``n``, one window every ``median(Δt)`` s.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from shared.health.alarm_types import SYSTEM
from shared.messages import AlarmEvent, OperatorLog
from shared.reports.data import Array, ModelInfo, ReportData, Series

#: Width of the availability buckets, s.
AVAILABILITY_BUCKET_S = 60.0
#: Shortest time a health update's zone is held when the next update is late, s.
HOLD_MIN_S = 300.0
#: Reading columns and their units, in display order.
SIGNALS: dict[str, str] = {"voltage_v": "V", "current_a": "A", "power_factor": "1", "vibration_g": "g"}
SIGNAL_LABELS: dict[str, str] = {
    "voltage_v": "Voltage",
    "current_a": "Current",
    "power_factor": "Power factor",
    "vibration_g": "Vibration",
}
ZONE_KEYS: tuple[str, ...] = ("A", "B", "C", "D", "none")


def utc(ts_s: float) -> datetime:
    return datetime.fromtimestamp(float(ts_s), tz=UTC)


def fmt_time(t: datetime | float | None) -> str:
    """``2026-05-01 12:00:00 UTC`` (``—`` for None)."""
    if t is None:
        return "—"
    dt = utc(t) if isinstance(t, float | int) else t.astimezone(UTC)
    return dt.strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_cell(t: datetime | float | None) -> str:
    """``2026-05-01 12:00:00`` for table cells whose header says UTC (``—`` for None)."""
    return fmt_time(t).removesuffix(" UTC")


def fmt_num(v: float | None, digits: int = 3) -> str:
    """``digits`` significant digits, thousands kept whole; ``—`` for None/NaN."""
    if v is None or not np.isfinite(v):
        return "—"
    if abs(v) >= 10**digits:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def fmt_duration(seconds: float) -> str:
    """``3 d 4 h``, ``5 h 12 min``, ``12 min``, ``40 s``."""
    s = float(seconds)
    if s >= 86_400:
        return f"{int(s // 86_400)} d {int(s % 86_400 // 3600)} h"
    if s >= 3600:
        return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"
    if s >= 60:
        return f"{int(s // 60)} min"
    return f"{s:.0f} s"


def period_s(data: ReportData) -> float:
    return max((data.end - data.start).total_seconds(), 0.0)


def signal_stats(data: ReportData) -> dict[str, dict[str, float]]:
    """Per reading column: n, mean, std, min, max (module doc); columns without values are left out."""
    if data.reading_stats:
        return {k: dict(v) for k, v in data.reading_stats.items() if v.get("n", 0) > 0}
    out: dict[str, dict[str, float]] = {}
    for name, col in data.readings.columns.items():
        v = col[np.isfinite(col)]
        if v.size:
            out[name] = {
                "n": float(v.size),
                "mean": float(v.mean()),
                "std": float(v.std()),
                "min": float(v.min()),
                "max": float(v.max()),
            }
    return out


def availability(data: ReportData) -> tuple[float, float] | None:
    """Share of the period with data, % and the slot width in s (module doc); None: zero-length period."""
    span = period_s(data)
    if span <= 0:
        return None
    stamps = np.sort(np.concatenate([data.readings.ts_s, data.windows.ts_s]))
    slot = max(AVAILABILITY_BUCKET_S, median_interval(stamps) or 0.0)
    n_slots = int(np.ceil(span / slot))
    idx = np.floor((stamps - data.start.timestamp()) / slot)
    idx = idx[(idx >= 0) & (idx < n_slots)]
    return 100.0 * np.unique(idx).size / n_slots, slot


def zone_time(data: ReportData) -> dict[str, float]:
    """Seconds in each ISO zone (``A``..``D``, ``none``) from the health updates (module doc)."""
    h = data.health
    out = dict.fromkeys(ZONE_KEYS, 0.0)
    if not len(h):
        return out
    ts = h.ts_s
    nxt = np.append(ts[1:], max(data.end.timestamp(), float(ts[-1])))
    gaps = nxt - ts
    cap = max(HOLD_MIN_S, 3.0 * float(np.median(np.diff(ts)))) if len(ts) > 1 else HOLD_MIN_S
    held = np.minimum(gaps, cap)
    zones = np.asarray([z or "none" for z in h.labels.get("iso_zone", [""] * len(h))])
    for key in ZONE_KEYS:
        out[key] = float(held[zones == key].sum())
    return out


@dataclass
class AlarmCounts:
    raised: int
    still_open: int
    transitions: int
    open_at_start: int = 0
    shelved: int = 0


def zone_rows(zone_s: dict[str, float]) -> list[dict[str, str]]:
    """Table rows of the time spent in each zone (:func:`zone_time`): zone, duration, share of the total
    in % (zones with no time left out; no rows when no time is known)."""
    total = sum(zone_s.values())
    if total <= 0:
        return []
    return [
        {"zone": "no zone" if z == "none" else z, "time": fmt_duration(s), "share": f"{100 * s / total:.1f}"}
        for z, s in zone_s.items()
        if s > 0
    ]


def alarm_counts(
    alarms: list[AlarmEvent], start: datetime, open_before: Sequence[AlarmEvent] = ()
) -> AlarmCounts:
    """Alarms raised in the period, still open at its end and open at its start (module doc);
    ``open_before``: the last transition before the period of each alarm then open."""
    raised = {
        a.alarm_id for a in alarms if a.state == "ACTIVE" and a.previous is None and a.opened_at >= start
    }
    last: dict[str, AlarmEvent] = {a.alarm_id: a for a in open_before}
    for a in alarms:
        last[a.alarm_id] = a
    still_open = [a for a in last.values() if a.state != "RESOLVED"]
    carried = {a.alarm_id for a in open_before if a.state != "RESOLVED"}
    shelved = sum(1 for a in still_open if shelf_mark(a))
    return AlarmCounts(len(raised), len(still_open), len(alarms), len(carried), shelved)


@dataclass
class Action:
    """One operator action: a log entry, or an alarm acknowledged/resolved by a person."""

    ts: datetime
    who: str
    what: str
    detail: str


def shelf_mark(a: AlarmEvent) -> str:
    """``shelved until <UTC time>, by <who>: <reason>`` while ``a`` says its alarm is shelved (its
    ``shelved_until`` after its ``ts``), else ``""``."""
    if a.shelved_until is None or a.shelved_until <= a.ts:
        return ""
    return f"shelved until {fmt_time(a.shelved_until)}, by {a.shelved_by or '?'}: {a.shelve_reason or '—'}"


#: What an operator did, by transition (an event stored without one: by its state).
_ACTION_VERB = {
    "acknowledged": "acknowledged",
    "resolved": "resolved",
    "shelved": "shelved",
    "unshelved": "returned from shelf",
}


def operator_actions(alarms: list[AlarmEvent], logs: list[OperatorLog]) -> list[Action]:
    """Operator log entries and alarm acknowledgements, resolutions, shelvings and early returns from
    the shelf by people (not the system's: an expired shelf, an automatic clear), newest first."""
    out = [Action(g.ts, g.author or "—", g.event_type.replace("_", " "), g.description) for g in logs]
    for a in alarms:
        kind = a.transition or {"ACKNOWLEDGED": "acknowledged", "RESOLVED": "resolved"}.get(a.state)
        if kind not in _ACTION_VERB or a.auto_cleared or a.who == SYSTEM:
            continue
        code = f" ({a.action_code.replace('_', ' ')})" if a.action_code else ""
        said = shelf_mark(a) if kind == "shelved" else a.note
        detail = f"{a.reason}" + (f" — {said}" if said else "")
        out.append(Action(a.ts, a.who or "—", f"alarm {_ACTION_VERB[kind]}{code}", detail))
    return sorted(out, key=lambda x: x.ts, reverse=True)


def median_interval(ts: Array) -> float | None:
    """Median spacing of timestamps, s (None with fewer than two)."""
    if ts.size < 2:
        return None
    d = np.diff(ts)
    d = d[d > 0]
    return float(np.median(d)) if d.size else None


@dataclass
class Sensors:
    readings: int
    reading_rate_hz: float | None
    windows: int
    axes: list[str]
    fs_hz: list[float]
    samples: list[int]
    window_every_s: float | None


def sensors(data: ReportData) -> Sensors:
    """What the stored data says about the sensors (module doc)."""
    r_dt = median_interval(data.readings.ts_s)
    w = data.windows
    axes = sorted({c for label in w.labels.get("axes", []) for c in label if c in "xyz"})  # stored as "xyz"
    fs = sorted({float(v) for v in w.columns.get("fs_hz", np.zeros(0)) if np.isfinite(v)})
    n = sorted({int(v) for v in w.columns.get("n", np.zeros(0)) if np.isfinite(v)})
    return Sensors(
        readings=data.readings_total or len(data.readings),
        reading_rate_hz=None if r_dt is None else 1.0 / r_dt,
        windows=len(w),
        axes=axes,
        fs_hz=fs,
        samples=n,
        window_every_s=median_interval(w.ts_s),
    )


def model_versions(models: list[ModelInfo]) -> str:
    """``legacy 20260501-1200, autoencoder 20260501-1200`` (``no model announced``)."""
    return ", ".join(f"{m.kind} {m.version}" for m in models) or "no model announced"


def score_versions(data: ReportData) -> dict[str, list[str]]:
    """Model versions that scored the period, per model kind (from the stored scores)."""
    return {kind: sorted(set(s.labels.get("model_version", []))) for kind, s in data.scores.items() if len(s)}


def anomaly_counts(data: ReportData) -> dict[str, tuple[int, int]]:
    """Per model kind: (scores flagged anomalous, scores) in the period."""
    out = {}
    for kind, s in data.scores.items():
        flags = s.columns.get("is_anomaly")
        out[kind] = (int(np.nansum(flags)) if flags is not None else 0, len(s))
    return out


def severity_counts(s: Series) -> Counter[str]:
    return Counter(s.labels.get("severity", []))


def last_finite(values: Array) -> float | None:
    v = values[np.isfinite(values)]
    return float(v[-1]) if v.size else None


def column_max(s: Series, name: str) -> tuple[float, float] | None:
    """(max value, its time) of a column, NaN ignored; None when the column has no value."""
    col = s.columns.get(name)
    if col is None or not np.isfinite(col).any():
        return None
    i = int(np.nanargmax(col))
    return float(col[i]), float(s.ts_s[i])


def data_counts(data: ReportData) -> str:
    """What the report rests on, e.g. ``86,400 readings, 8,640 vibration windows, ...``."""
    n_scores = sum(len(s) for s in data.scores.values())
    parts = [
        f"{data.readings_total or len(data.readings):,} readings",
        f"{len(data.windows):,} vibration windows",
        f"{n_scores:,} model scores",
        f"{len(data.health):,} health updates",
        f"{len(data.alarms):,} alarm transitions",
        f"{len(data.logs):,} operator log entries",
    ]
    text = ", ".join(parts)
    if data.capped is not None:
        text += f" (row cap {data.capped:,}: charts and per-row counts use every k-th stored row)"
    return text
