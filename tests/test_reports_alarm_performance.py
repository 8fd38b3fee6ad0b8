"""The reports' "Alarm performance" section (shared/reports/alarm_performance.py): the table on the
scripted history of tests/test_alarm_metrics.py (one asset's report), and the section in the executive
PDF (one line), the industrial PDF (page 4) and the Excel summary, on the PDF tests' hour of data."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import timedelta

import openpyxl

from shared.reports import alarm_performance
from shared.reports.data import ReportData
from shared.reports.excel import build_workbook
from shared.reports.executive import build_executive
from shared.reports.industrial import build_industrial
from tests.test_alarm_metrics import END, T0, scripted
from tests.test_reports_pdf import pdfinfo_pages, pdftext, small_data


def _flat(text: str) -> str:
    return "".join(text.split())


def fan_report() -> ReportData:
    """The fan's report over [T0, END]: its transitions in the period, and the one open before it."""
    h, _ = scripted()
    fan = [e for e in h.events if e.asset_id == "fan"]
    before = [e for e in fan if e.ts < T0]
    last = {e.alarm_id: e for e in sorted(before, key=lambda e: e.ts)}
    open_before = [e for e in last.values() if e.state != "RESOLVED"]
    alarms = [e for e in fan if T0 <= e.ts <= END]
    return ReportData(
        asset_id="fan", start=T0, end=END, generated_at=END, alarms=alarms, open_before=open_before
    )


def test_table_on_the_scripted_history() -> None:
    m = alarm_performance.performance(fan_report())
    assert m is not None
    rows = {item: (value, unit) for item, value, unit in alarm_performance.rows(m)}
    # The fan opened 3 chattering alarms and 1 late CRITICAL in the 2 h; its sensor alarm has been open
    # since T0-23 h (standing from T0+1 h); nobody acknowledged in the period.
    assert rows["Alarms opened in the period (the basis)"] == (4, "alarms over 2 h 0 min")
    assert rows["By priority"][0] == "high 1, medium 3, low 0"
    assert rows["Alarm rate, peak"][0] == 3
    assert rows["Standing alarms (open ≥ 24 h)"][0] == 1
    assert rows["Chattering sources (≥ 3 opens in 10 min)"][0] == "anomaly ×3"
    assert rows["Floods (3 alarms within 10 min)"][0] == 1
    assert rows["Time to acknowledge, median"] == (None, "s, over 0 acknowledged alarms")
    assert rows["Unacknowledged: open / cleared by themselves"][0] == "1 / 3"
    assert rows["Most frequent sources"][0] == "anomaly 3, iso20816 1"
    line = alarm_performance.summary_line(m)
    assert line.startswith("4 alarm(s) opened: 0.33 per 10 min on average, peak 3")
    assert (
        "1 standing (open ≥ 24 h), 1 chattering source(s); none acknowledged; 1 open unacknowledged" in line
    )


def test_section_in_the_pdfs_and_the_workbook() -> None:
    data = small_data()  # 2 alarms in the hour: one acknowledged after 5 min, one still open
    exe = build_executive(data)
    assert pdfinfo_pages(exe) == 1
    assert _flat("Alarm performance: 2 alarm(s) opened: 0.33 per 10 min on average, peak 1") in _flat(
        pdftext(exe)
    )
    assert _flat("acknowledged in a median 5 min (p90 5 min, 1 alarms); 1 open unacknowledged") in _flat(
        pdftext(exe)
    )
    ind = build_industrial(data)
    assert pdfinfo_pages(ind) == 5
    page4 = pdftext(ind).split("\f")[3]
    assert "Alarm performance (ISA-18.2 style)" in page4 and "Time to acknowledge, median" in page4
    ws = openpyxl.load_workbook(io.BytesIO(build_workbook(data)))["Summary"]
    cells = [r for r in ws.iter_rows(min_row=4, max_col=3, values_only=True) if r[0]]
    titles = [r[0] for r in cells]
    at = titles.index("Alarm performance")
    table = {r[0]: (r[1], r[2]) for r in cells[at + 1 :]}
    assert table["Alarms opened in the period (the basis)"] == (2, "alarms over 1 h 0 min")
    assert table["Time to acknowledge, median"] == (300, "s, over 1 acknowledged alarms")
    # [start, end] is taken as [start, end + 1 µs): still 6 ten-minute periods, not 7.
    assert table["10-min periods in flood (> 10 alarms)"] == (0, "% of 6 periods")


def test_no_section_for_an_instant_period() -> None:
    assert alarm_performance.table(replace(fan_report(), end=T0 - timedelta(seconds=1))) == []
