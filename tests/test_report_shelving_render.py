"""Shelved alarms as the reports show them (issue 16): the Excel alarm sheet's Transition and Shelved
columns ("shelved until <UTC>, by <who>: <reason>"), the summary's count of open alarms that are
shelved, the industrial PDF's page 4 (the mark in the transitions table, "N of them shelved"), and the
operator actions (a person's shelving is one, the system's return from the shelf is not)."""

from __future__ import annotations

import io
from datetime import timedelta

import numpy as np
import openpyxl

from shared.reports import facts
from shared.reports.data import ReportData, Series
from shared.reports.excel import build_workbook
from shared.reports.industrial_pages import alarms_page
from tests.test_report_shelving import LIFE, SHELF, A, at, ev

MARK = "shelved until 2026-03-02 09:01:00 UTC, by ana: known: coupling change Friday"


def data(end_s: float) -> ReportData:
    """The report of [0, end_s]: the alarm's transitions up to then, and two readings (a report of no
    data shows nothing else)."""
    ts = np.array([at(0).timestamp(), at(end_s).timestamp()])
    readings = Series(
        ts_s=ts, columns={"voltage_v": np.array([230.0, 231.0])}, labels={"event_id": ["r0", "r1"]}
    )
    return ReportData(
        asset_id=A,
        start=at(0),
        end=at(end_s),
        generated_at=at(end_s),
        readings=readings,
        readings_total=2,
        alarms=[e for e in LIFE if e.ts <= at(end_s)],
    )


def test_the_alarm_sheet_marks_the_shelving_and_the_summary_counts_the_shelved() -> None:
    # An acknowledgement while shelved also carries the shelf.
    d = data(600)
    d.alarms.append(ev("acknowledged", 300, "ACKNOWLEDGED", previous="ACTIVE", who="bob", **SHELF))
    book = openpyxl.load_workbook(io.BytesIO(build_workbook(d)))
    ws = book["Alarms"]
    header = [c.value for c in ws[2]]
    assert header[-2:] == ["Transition", "Shelved"]
    rows = [dict(zip(header, r, strict=True)) for r in ws.iter_rows(min_row=3, values_only=True)]
    assert [(r["Transition"], r["Shelved"]) for r in rows] == [
        ("opened", None),
        ("shelved", MARK),
        ("acknowledged", MARK),
    ]
    summary = {r[0]: r[1] for r in book["Summary"].iter_rows(min_row=4, max_col=3, values_only=True) if r[0]}
    assert summary["Alarms raised in the period"] == 1  # the shelving is no new alarm
    assert summary["Of those, shelved (operator-suppressed for a while)"] == 1
    # Back from the shelf: open, not shelved.
    back = openpyxl.load_workbook(io.BytesIO(build_workbook(data(3661))))["Summary"]
    counts = {r[0]: r[1] for r in back.iter_rows(min_row=4, max_col=3, values_only=True) if r[0]}
    assert counts["Alarms open at the end (last transition not RESOLVED)"] == 1
    assert counts["Of those, shelved (operator-suppressed for a while)"] == 0


def test_the_industrial_page_marks_the_shelving_and_the_return() -> None:
    page = alarms_page(data(3700))
    extras = [t["extra"] for t in page["transitions"]]
    assert extras[1] == f"{MARK}; by ana"  # the reason once, in the mark
    assert extras[2].startswith("returned from shelf; by system")
    assert (page["raised"], page["open"], page["shelved"]) == (1, 1, 0)
    assert alarms_page(data(600))["shelved"] == 1


def test_operator_actions_name_a_persons_shelving_not_the_systems_return() -> None:
    actions = facts.operator_actions(data(4000).alarms, [])
    assert [(a.who, a.what) for a in actions] == [
        ("bob", "alarm resolved (other)"),
        ("bob", "alarm acknowledged"),
        ("ana", "alarm shelved"),
    ]
    assert actions[-1].detail == f"anomaly ratio 1.4 — {MARK}"
    early = ev("unshelved", 900, previous="ACTIVE", who="ana", note="coupling changed early")
    assert facts.operator_actions([early], [])[0].what == "alarm returned from shelf"
    # An acknowledged alarm shelved is not a second acknowledgement.
    shelved_acked = ev("shelved", 950, "ACKNOWLEDGED", previous="ACKNOWLEDGED", who="ana", **SHELF)
    assert facts.operator_actions([shelved_acked], [])[0].what == "alarm shelved"
    assert timedelta(0) < SHELF["shelved_until"] - at(950)
