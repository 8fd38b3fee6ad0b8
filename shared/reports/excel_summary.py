"""The workbook's ``Summary`` sheet (pure): what the workbook rests on and its key numbers, each taken
from :class:`ReportData` (never estimated), as ``Item | Value | Unit`` rows under section titles.

Key numbers: the highest vibration reading (g) of the period (``reading_stats`` when the gatherer
thinned the readings, so it is the true one) and its time when that reading is on Raw Data; the
highest velocity RMS (mm/s) among the stored health updates; each reading column's n, min, mean, max
and population standard deviation over every reading of the period; the latest health update (score
0-100, grade, risk, ISO 20816 zone, velocity RMS, zone basis) and its remaining life
(:mod:`shared.reports.prognosis`): with an estimate its median and 80 % interval (s), the indicator
and failure threshold it rests on, the model, and the maintenance window (the interval's low end, days);
without one, why there is none and no window; alarms raised
(distinct alarm IDs whose ``opened_at`` lies in the period) and still open (distinct alarm IDs whose
last transition in the period is not ``RESOLVED``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from xlsxwriter.chart import Chart
from xlsxwriter.format import Format
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from shared.messages import HealthUpdate
from shared.reports import alarm_performance, facts
from shared.reports.data import ReportData
from shared.reports.excel_rows import write_cells
from shared.reports.prognosis import prognosis

TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
#: A summary row: (item, value, unit); a value of None is written as "none stored".
Item = tuple[str, Any, str]
Section = tuple[str, list[Item]]


@dataclass
class Formats:
    header: Format
    note: Format
    title: Format
    section: Format
    time: Format

    @classmethod
    def of(cls, wb: Workbook) -> Formats:
        return cls(
            header=wb.add_format({"bold": True, "bottom": 1, "text_wrap": True, "valign": "top"}),
            note=wb.add_format({"italic": True}),
            title=wb.add_format({"bold": True, "font_size": 14}),
            section=wb.add_format({"bold": True, "top": 1}),
            time=wb.add_format({"num_format": TIME_FORMAT}),
        )


def write_summary(
    ws: Worksheet,
    data: ReportData,
    fm: Formats,
    *,
    raw_rows: int,
    joined: dict[str, int],
    chart: Chart | None,
) -> None:
    """The Summary sheet; ``raw_rows``: readings on Raw Data; ``joined``: per score kind, readings on
    Raw Data that carry its score; ``chart`` is placed right of the table."""
    ws.set_column(0, 0, 42)
    ws.set_column(1, 1, 40)
    ws.set_column(2, 2, 14)
    write_cells(ws, 0, [(f"Rotorwatch report workbook: {data.asset_id}", fm.title)])
    if data.empty:
        note = (
            f"No data in this period: no reading, vibration window or health update is stored for "
            f"{data.asset_id} between {data.start:%Y-%m-%d %H:%M:%S} and {data.end:%Y-%m-%d %H:%M:%S} UTC."
        )
    else:
        note = "All times are UTC (Excel date-times). Every value comes from the data stored for the period."
    write_cells(ws, 1, [(note, fm.note)])
    write_cells(ws, 3, [(h, fm.header) for h in ("Item", "Value", "Unit")])
    ws.freeze_panes(4, 0)
    sections = (
        [_about(data)] if data.empty else [_about(data), _models(data), _counts(data, raw_rows, joined)]
    )
    if not data.empty:
        sections += [_key_numbers(data), _stats(data), _latest_health(data), _alarms(data)]
        perf = alarm_performance.performance(data)
        sections += [("Alarm performance", alarm_performance.rows(perf))] if perf else []
    row = 4
    for title, items in sections:
        write_cells(ws, row, [(title, fm.section)])
        row += 1
        for item in items:
            _write_item(ws, row, item, fm)
            row += 1
    if chart is not None:
        ws.insert_chart(3, 4, chart)


def _write_item(ws: Worksheet, row: int, item: Item, fm: Formats) -> None:
    label, value, unit = item
    if value is None or (isinstance(value, float) and value != value):
        value = "none stored"
    elif isinstance(value, np.floating):
        value = float(value)
    write_cells(
        ws, row, [(label, None), (value, fm.time if isinstance(value, datetime) else None), (unit, None)]
    )


def _about(data: ReportData) -> Section:
    cfg = data.config
    items: list[Item] = [("Asset ID", data.asset_id, "")]
    if cfg is not None:
        items += [
            ("Asset name", cfg.name or None, ""),
            ("Asset type", cfg.type, ""),
            ("Running speed", cfg.rpm, "rev/min"),
        ]
    items += [
        ("Period start", data.start, "UTC"),
        ("Period end", data.end, "UTC"),
        ("Generated at", data.generated_at, "UTC"),
    ]
    return "Asset and period", items


def _models(data: ReportData) -> Section:
    items: list[Item] = []
    for m in data.models:
        items.append((f"Model {m.kind}: version", m.version, ""))
        items.append((f"Model {m.kind}: created at", m.created_at, "UTC"))
        items.append((f"Model {m.kind}: threshold", m.threshold, "1"))
    return "Model versions (announced)", items or [("Models", "none announced for this asset", "")]


def _counts(data: ReportData, raw_rows: int, joined: dict[str, int]) -> Section:
    total = max(data.readings_total, len(data.readings))
    items: list[Item] = [
        ("Readings in the period", total, "readings"),
        ("Readings on the Raw Data sheet", raw_rows, "rows"),
    ]
    if raw_rows < total:
        cap = ""
        if data.capped is not None and len(data.readings) < total:
            cap = f"reporter cap {data.capped:,} rows (every {math.ceil(total / data.capped)}th reading)"
        excel = f"Excel's {1_048_576:,} rows per sheet" if raw_rows < len(data.readings) else ""
        items.append(("Row cap applied", ", ".join(x for x in (cap, excel) if x), ""))
    for kind in sorted(data.scores):
        items.append((f"Scores {kind}", len(data.scores[kind]), "scores"))
        items.append((f"Scores {kind} on Raw Data rows (same event ID)", joined.get(kind, 0), "rows"))
    items += [
        ("Vibration windows", len(data.windows), "windows"),
        ("Health updates", len(data.health), "updates"),
        ("Alarm transitions", len(data.alarms), "transitions"),
        ("Operator log entries", len(data.logs), "entries"),
    ]
    return "Data counts", items


READING_UNITS: tuple[tuple[str, str, str], ...] = (
    ("voltage_v", "Voltage", "V"),
    ("current_a", "Current", "A"),
    ("power_factor", "Power factor", "1"),
    ("vibration_g", "Vibration", "g"),
)


def reading_stats(data: ReportData) -> dict[str, dict[str, float]]:
    """Per reading column ``n``, ``mean``, ``std`` (population), ``min``, ``max`` over every reading
    of the period: the gatherer's :attr:`ReportData.reading_stats` when given (the readings may be
    thinned), else computed from ``readings`` (then every reading of the period), NaN left out."""
    if data.reading_stats:
        return data.reading_stats
    out: dict[str, dict[str, float]] = {}
    for key, values in data.readings.columns.items():
        v = values[np.isfinite(values)]
        if v.size:
            out[key] = {"n": float(v.size), "mean": float(v.mean()), "std": float(v.std())}
            out[key] |= {"min": float(v.min()), "max": float(v.max())}
    return out


def _stats(data: ReportData) -> Section:
    stats = reading_stats(data)
    items: list[Item] = []
    for key, name, unit in READING_UNITS:
        st = stats.get(key)
        if st is None or not st.get("n"):
            items.append((f"{name}", None, unit))
            continue
        items.append((f"{name}: readings", int(st["n"]), "readings"))
        items += [(f"{name}: {label}", st.get(k), unit) for k, label in _MOMENTS]
    return "Readings: statistics over every reading of the period", items


_MOMENTS = (("min", "min"), ("mean", "mean"), ("max", "max"), ("std", "standard deviation (population)"))


def _max_at(ts_s: np.ndarray, values: np.ndarray | None, peak: float | None) -> float | None:
    """The time (Unix s) of the first value equal to ``peak`` (None: not among ``values``)."""
    if values is None or peak is None:
        return None
    hit = np.flatnonzero(values == peak)
    return float(ts_s[hit[0]]) if hit.size else None


def _key_numbers(data: ReportData) -> Section:
    rd, h = data.readings, data.health
    vmax = reading_stats(data).get("vibration_g", {}).get("max")
    umax = (
        float(np.nanmax(h.columns["velocity_rms_mm_s"]))
        if _finite(h.columns.get("velocity_rms_mm_s"))
        else None
    )
    items: list[Item] = [
        ("Max vibration reading", vmax, "g"),
        ("Max vibration reading at", _when(_max_at(rd.ts_s, rd.columns.get("vibration_g"), vmax)), "UTC"),
        ("Max velocity RMS (health updates)", umax, "mm/s"),
        ("Max velocity RMS at", _when(_max_at(h.ts_s, h.columns.get("velocity_rms_mm_s"), umax)), "UTC"),
    ]
    return "Key numbers", items


def _finite(values: np.ndarray | None) -> bool:
    return values is not None and bool(np.isfinite(values).any())


def _when(ts_s: float | None) -> datetime | None:
    """Unix seconds → a UTC datetime (written as an Excel date-time)."""
    return None if ts_s is None else datetime.fromtimestamp(ts_s, UTC)


def _latest_health(data: ReportData) -> Section:
    h = data.latest_health
    if h is None:
        return "Latest health", [("Health update", None, "")]
    items: list[Item] = [
        ("At", h.ts, "UTC"),
        ("Health score", h.health_score, "0-100"),
        ("Grade", h.grade, "A-F"),
        ("Risk level", h.risk_level, ""),
        ("Degradation index", h.degradation_index, "0-1"),
        ("ISO 20816 zone", h.iso_zone, ""),
        ("Velocity RMS", h.velocity_rms_mm_s, "mm/s"),
        ("Zone basis", h.zone_basis_text or h.zone_basis, ""),
        ("Active alarms at that update", h.active_alarms, "alarms"),
        *_remaining_life(h),
    ]
    return "Latest health", items


def _remaining_life(h: HealthUpdate) -> list[Item]:
    """The estimate with what it rests on and the window it gives, or why there is none (no window)."""
    p, rul = prognosis(h), h.rul
    if p is None or not p.is_estimate or rul is None:
        why = p.reason if p else ""
        return [
            ("Remaining life", p.headline if p else None, ""),
            ("Why no estimate", why, ""),
            ("Maintenance window", "none: no fitted remaining-life estimate", ""),
        ]
    return [
        ("Remaining life", p.estimate, ""),
        ("Remaining life, median", rul.median_s, "s"),
        ("Remaining life, 80 % interval low end", rul.low_s, "s"),
        ("Remaining life, 80 % interval high end", rul.high_s, "s"),
        ("Rests on", p.indicator, ""),
        ("Failure threshold", rul.threshold, rul.indicator_unit),
        ("Threshold basis", rul.threshold_basis, ""),
        ("Model", p.model, ""),
        ("Estimate as of", rul.as_of, "UTC"),
        ("Estimate", rul.reason, ""),
        ("Maintenance window (the interval's low end)", p.window_days, "days"),
    ]


def _alarms(data: ReportData) -> Section:
    counts = facts.alarm_counts(data.alarms, data.start, data.open_before)
    items: list[Item] = [
        ("Alarms raised in the period", counts.raised, "alarms"),
        ("Alarms open when the period began", counts.open_at_start, "alarms"),
        ("Alarms open at the end (last transition not RESOLVED)", counts.still_open, "alarms"),
        ("Of those, shelved (operator-suppressed for a while)", counts.shelved, "alarms"),
    ]
    return "Alarms", items
