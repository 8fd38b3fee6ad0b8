"""The Excel workbook (analysts): ``build_workbook(data) -> bytes`` (pure: :class:`ReportData` in, an
.xlsx out; xlsxwriter's own temporary files are its only I/O).

Sheets, in order: ``Summary`` (asset, period, generated at, model versions, data counts, key numbers,
latest health, alarms; a native line chart of the health score, or of the readings' vibration when no
health update is stored), ``Operator Logs``, ``Raw Data`` (every stored reading of the workbook with the
scores of the same ``event_id`` per model kind), ``Health`` (trend, with the trend indicators and
the remaining-life estimate of each update: :data:`HEALTH_COLS`) and ``Alarms`` (transitions). Row 1
of each data sheet states what it holds (and a row cap when one applies), row 2 is the header (units in
it), frozen, with an autofilter. Numbers are numbers, times Excel date-times in UTC. An empty period
(:attr:`ReportData.empty`) gives a workbook whose only sheet says so. The workbook is written in
xlsxwriter's ``constant_memory`` mode, rows streamed (:mod:`.excel_rows`): memory stays bounded
however many readings the period holds (beyond the data itself and the finished file).
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import xlsxwriter
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from shared.reports import facts
from shared.reports.data import ReportData
from shared.reports.excel_rows import (
    EXCEL_MAX_ROWS,
    Col,
    array_col,
    dt_serial,
    joined_col,
    joined_labels,
    list_col,
    stream_rows,
    write_cells,
    write_header,
)
from shared.reports.excel_summary import Formats, write_summary
from shared.reports.prognosis import traced_windows

#: Rows above the data on each data sheet: the statement row and the header row.
DATA_TOP = 2
#: Most data rows a sheet holds below its statement and header.
MAX_DATA_ROWS = EXCEL_MAX_ROWS - DATA_TOP

READING_COLS: tuple[tuple[str, str, float], ...] = (
    ("voltage_v", "Voltage (V)", 12),
    ("current_a", "Current (A)", 12),
    ("power_factor", "Power factor (1)", 15),
    ("vibration_g", "Vibration (g)", 13),
)
SCORE_COLS: tuple[tuple[str, str, float], ...] = (
    ("anomaly_score", "anomaly score (1)", 16),
    ("raw_score", "raw score (1)", 14),
    ("threshold", "threshold (1)", 14),
    ("is_anomaly", "anomaly (0/1)", 14),
)
SCORE_LABELS: tuple[tuple[str, str, float], ...] = (
    ("severity", "severity", 12),
    ("model_version", "model version", 20),
)
HEALTH_COLS: tuple[tuple[str, str, float], ...] = (
    ("health_score", "Health score (0-100)", 14),
    ("degradation_index", "Degradation index (0-1)", 14),
    ("maintenance_window_days", "Maintenance window (days, RUL 80% low end)", 16),
    ("velocity_rms_mm_s", "Velocity RMS (mm/s)", 14),
    ("ind_rms_log", "rms_log = ln(RMS/calibrated) (Np)", 16),
    ("ind_hf_energy_log", "HF energy log (Np)", 14),
    ("ind_kurtosis_z", "Kurtosis z (robust sigma)", 14),
    ("ind_cusum", "CUSUM of rms_log (Np*s)", 14),
    ("ind_cusum_h", "CUSUM decision level (Np*s)", 14),
    ("rul_median_s", "RUL median (s)", 14),
    ("rul_low_s", "RUL 80% interval low (s)", 14),
    ("rul_high_s", "RUL 80% interval high (s)", 14),
    ("rul_threshold", "RUL failure threshold (Np)", 14),
)
HEALTH_LABELS: tuple[tuple[str, str, float], ...] = (
    ("grade", "Grade", 8),
    ("risk_level", "Risk level", 12),
    ("iso_zone", "ISO 20816 zone", 10),
    ("zone_basis", "Zone basis", 14),
    ("rul_status", "RUL status", 18),
)


def build_workbook(data: ReportData) -> bytes:
    """The workbook of ``data`` as .xlsx bytes (module doc for the sheets)."""
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"constant_memory": True, "strings_to_numbers": False})
    fm = Formats.of(wb)
    summary = wb.add_worksheet("Summary")
    if data.empty:
        write_summary(summary, data, fm, raw_rows=0, joined={}, chart=None)
        wb.close()
        return buf.getvalue()
    logs, raw, health, alarms = (
        wb.add_worksheet(n) for n in ("Operator Logs", "Raw Data", "Health", "Alarms")
    )
    raw_rows = min(len(data.readings), MAX_DATA_ROWS)
    index = score_index(data)
    chart = _chart(wb, data, raw_rows)
    write_summary(
        summary,
        data,
        fm,
        raw_rows=raw_rows,
        joined={k: int((v >= 0).sum()) for k, v in index.items()},
        chart=chart,
    )
    _write_logs(logs, data, fm)
    _write_raw(raw, data, fm, raw_rows, index)
    _write_health(health, data, fm)
    _write_alarms(alarms, data, fm)
    wb.close()
    return buf.getvalue()


def score_index(data: ReportData) -> dict[str, np.ndarray]:
    """Per score kind, for each reading the row of its score with the same ``event_id`` (-1: none).
    Kinds none of whose scores share an ``event_id`` with a reading (e.g. per-window vibration
    scores) are left out: the Summary counts them."""
    ids = data.readings.labels.get("event_id", [])
    out: dict[str, np.ndarray] = {}
    for kind in sorted(data.scores):
        sids = data.scores[kind].labels.get("event_id", [])
        if sids == ids:  # every reading scored, same order (the legacy model): no lookup table
            idx = np.arange(len(ids), dtype=np.intp)
        else:
            pos = {e: i for i, e in enumerate(sids)}
            idx = np.fromiter((pos.get(e, -1) for e in ids), dtype=np.intp, count=len(ids))
        if (idx >= 0).any():
            out[kind] = idx
    return out


def _chart(wb: Workbook, data: ReportData, raw_rows: int) -> Any:
    """A native line (scatter) chart: the Health sheet's score, else the Raw Data vibration."""
    if len(data.health):
        sheet, n, col, name, y = "Health", len(data.health), 1, "Health score", "Health score (0-100)"
    elif raw_rows and "vibration_g" in data.readings.columns:
        sheet, n, col, name, y = (
            "Raw Data",
            raw_rows,
            1 + 1 + [c for c, _, _ in READING_COLS].index("vibration_g"),
            "Vibration",
            "Vibration (g)",
        )
    else:
        return None
    chart = wb.add_chart({"type": "scatter", "subtype": "straight"})
    chart.add_series(
        {
            "name": name,
            "categories": [sheet, DATA_TOP, 0, DATA_TOP + n - 1, 0],
            "values": [sheet, DATA_TOP, col, DATA_TOP + n - 1, col],
            "line": {"width": 1.25},
        }
    )
    chart.set_title({"name": f"{name}, {data.asset_id}"})
    chart.set_x_axis(
        {
            "name": "Time (UTC)",
            "date_axis": True,
            "num_format": "yyyy-mm-dd hh:mm",
            "num_font": {"rotation": -45},
        }
    )
    chart.set_y_axis({"name": y, **({"min": 0, "max": 100} if sheet == "Health" else {})})
    chart.set_legend({"none": True})
    chart.set_size({"width": 720, "height": 360})
    return chart


def _top(ws: Worksheet, statement: str, cols: list[Col], n: int, fm: Formats) -> None:
    """Statement row, header row (frozen), autofilter over the header and ``n`` data rows."""
    write_cells(ws, 0, [(statement, fm.note)])
    write_header(ws, 1, cols, fm.header)
    ws.freeze_panes(DATA_TOP, 0)
    ws.autofilter(1, 0, 1 + max(n, 1), len(cols) - 1)


def _period(data: ReportData) -> str:
    return f"{data.asset_id}, {data.start:%Y-%m-%d %H:%M:%S} to {data.end:%Y-%m-%d %H:%M:%S} UTC"


def _write_raw(ws: Worksheet, data: ReportData, fm: Formats, rows: int, index: dict[str, np.ndarray]) -> None:
    rd = data.readings
    cols = [
        array_col("Time (UTC)", 20, rd.ts_s, "time"),
        list_col("Event ID", 24, rd.labels.get("event_id", [])),
    ]
    cols += [array_col(h, w, rd.columns[k]) for k, h, w in READING_COLS if k in rd.columns]
    for kind, idx in index.items():
        sc = data.scores[kind]
        cols += [
            joined_col(f"{kind} {h}", w, sc.columns[k], idx) for k, h, w in SCORE_COLS if k in sc.columns
        ]
        cols += [
            joined_labels(f"{kind} {h}", w, sc.labels[k], idx) for k, h, w in SCORE_LABELS if k in sc.labels
        ]
    _top(ws, raw_statement(data, rows), cols, rows, fm)
    stream_rows(ws, DATA_TOP, rows, cols, fm.time)


def raw_statement(data: ReportData, rows: int) -> str:
    """Row 1 of Raw Data: what it holds, and the cap when one applies: the reporter's (over
    ``capped`` readings it keeps every k-th, ``k = ceil(total / capped)``) or Excel's rows per sheet."""
    total = max(data.readings_total, len(data.readings))
    text = f"Stored readings of {_period(data)}, oldest first, with the model scores of the same event ID: "
    text += f"{rows:,} rows."
    if data.capped is not None and total > len(data.readings):
        k = math.ceil(total / data.capped)
        text += (
            f" The period holds {total:,} readings, over the reporter's cap of {data.capped:,} rows: every"
            f" {k}th stored reading is here (real values, not averages); the Summary's statistics cover all."
        )
    if rows < len(data.readings):
        text += (
            f" Excel holds {EXCEL_MAX_ROWS:,} rows per sheet: the first {rows:,} of {len(data.readings):,}"
        )
        text += " readings are here."
    return text


def _write_health(ws: Worksheet, data: ReportData, fm: Formats) -> None:
    h = data.health
    cols = [array_col("Time (UTC)", 20, h.ts_s, "time")]
    # the window only where it comes from an estimate (an old update's per-risk days are not one)
    columns = dict(h.columns)
    if "maintenance_window_days" in columns:
        columns["maintenance_window_days"] = traced_windows(h)
    cols += [array_col(t, w, columns[k]) for k, t, w in HEALTH_COLS if k in columns]
    cols += [list_col(t, w, h.labels[k]) for k, t, w in HEALTH_LABELS if k in h.labels]
    n = min(len(h), MAX_DATA_ROWS)
    text = f"Stored health updates of {_period(data)}, oldest first: {n:,} rows."
    if n < len(h):
        text += f" Excel holds {EXCEL_MAX_ROWS:,} rows per sheet: the first {n:,} of {len(h):,} are here."
    _top(ws, text, cols, n, fm)
    stream_rows(ws, DATA_TOP, n, cols, fm.time)


def _write_alarms(ws: Worksheet, data: ReportData, fm: Formats) -> None:
    a = data.alarms
    cols = [
        list_col("Time (UTC)", 20, [dt_serial(x.ts) for x in a], "time"),
        list_col("Alarm ID", 24, [x.alarm_id for x in a]),
        list_col("State", 14, [x.state for x in a]),
        list_col("Previous state", 14, [x.previous or "" for x in a]),
        list_col("Severity", 11, [x.severity for x in a]),
        list_col("Source", 14, [x.source for x in a]),
        list_col("Reason", 50, [x.reason for x in a]),
        list_col("Opened at (UTC)", 20, [dt_serial(x.opened_at) for x in a], "time"),
        list_col("Who", 14, [x.who or "" for x in a]),
        list_col("Note", 30, [x.note or "" for x in a]),
        list_col("Action code", 18, [x.action_code or "" for x in a]),
        list_col("Auto-cleared", 12, [x.auto_cleared for x in a], "bool"),
        list_col("Transition", 13, [x.transition or "" for x in a]),
        list_col("Shelved", 40, [facts.shelf_mark(x) for x in a]),
    ]
    _top(ws, f"Stored alarm transitions of {_period(data)}, oldest first: {len(a):,} rows.", cols, len(a), fm)
    stream_rows(ws, DATA_TOP, len(a), cols, fm.time)


def _write_logs(ws: Worksheet, data: ReportData, fm: Formats) -> None:
    lg = data.logs
    cols = [
        list_col("Time (UTC)", 20, [dt_serial(x.ts) for x in lg], "time"),
        list_col("Log ID", 24, [x.log_id for x in lg]),
        list_col("Event type", 28, [x.event_type for x in lg]),
        list_col("Severity", 10, [x.severity for x in lg]),
        list_col("Author", 16, [x.author or "" for x in lg]),
        list_col("Description", 60, [x.description for x in lg]),
    ]
    _top(ws, f"Operator log entries of {_period(data)}, oldest first: {len(lg):,} rows.", cols, len(lg), fm)
    stream_rows(ws, DATA_TOP, len(lg), cols, fm.time)
