"""The Excel workbook (``shared.reports.excel.build_workbook``): built from hand-made ReportData, read
back with openpyxl and compared value by value (numbers are numbers, times are date-times, headers
carry units), sheet layout (frozen header, autofilter, widths), the native chart on Summary (read
from the package parts: openpyxl drops charts on load), row-cap statements, an empty period, and a
7-day 1 Hz period (604,800 readings) built with bounded memory."""

from __future__ import annotations

import io
import math
import re
import tracemalloc
import zipfile
from datetime import UTC, datetime, timedelta

import numpy as np
import openpyxl
import pytest

from shared.messages import AlarmEvent, AssetConfig, HealthUpdate, OperatorLog, RulItem
from shared.reports import excel
from shared.reports.data import ModelInfo, ReportData, Series
from shared.reports.excel import build_workbook

T0 = datetime(2025, 3, 4, 10, 0, 0, tzinfo=UTC)
ASSET = "pump-7"


def _ts(seconds: float) -> float:
    return T0.timestamp() + seconds


def _dt(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _naive_ms(dt: datetime) -> datetime:
    """What openpyxl reads back for ``dt``: naive (Excel has no zone) and rounded to the millisecond."""
    us = round(dt.microsecond / 1000) * 1000
    return dt.replace(tzinfo=None, microsecond=0) + timedelta(microseconds=us)


def _readings(n: int) -> Series:
    i = np.arange(n, dtype=np.float64)
    pf = 0.8 + 0.001 * i
    pf[3] = np.nan  # not stored for that reading: an empty cell
    return Series(
        ts_s=_ts(i + 0.25),
        columns={
            "voltage_v": 230.0 + 0.5 * i,
            "current_a": 10.0 + 0.1 * i,
            "power_factor": pf,
            "vibration_g": 0.05 + 0.01 * i,
        },
        labels={"event_id": [f"ev-{k:03d}" for k in range(n)]},
    )


def _scores(ids: list[str], ts: np.ndarray, base: float, version: str) -> Series:
    n = len(ids)
    a = base + 0.1 * np.arange(n, dtype=np.float64)
    return Series(
        ts_s=ts,
        columns={
            "anomaly_score": a,
            "raw_score": a * 2,
            "threshold": np.full(n, 1.0),
            "is_anomaly": (a > 1.0) * 1.0,
        },
        labels={
            "event_id": ids,
            "severity": ["WARNING" if x > 1.0 else "NORMAL" for x in a],
            "model_version": [version] * n,
        },
    )


#: The newest update's estimate: median 20 days, 80 % interval 12.5-40 days (the window: 12.5 days).
RUL = RulItem(
    status="estimate",
    reason="log-linear path of rms_log fitted to 48 points over 2 days of data",
    level=math.log(2.0),
    threshold=1.5,
    threshold_basis="median end-of-life level of 6 FEMTO/PRONOSTIA run-to-failure bearings",
    median_s=20 * 86400.0,
    low_s=12.5 * 86400.0,
    high_s=40 * 86400.0,
    interval=0.8,
    model="log_linear",
    window_s=2 * 86400.0,
    n_points=48,
    as_of=datetime(2025, 3, 4, 10, 0, 9, tzinfo=UTC),
)


def _health() -> Series:
    return Series(
        ts_s=np.array([_ts(0), _ts(5), _ts(9)]),
        columns={
            "health_score": np.array([92.0, 80.5, 61.25]),
            "degradation_index": np.array([0.05, 0.2, 0.4]),
            "maintenance_window_days": np.array([np.nan, np.nan, 12.5]),  # RUL's low end, days
            "velocity_rms_mm_s": np.array([1.2, np.nan, 4.75]),
            # RMS 1x, 1.5x, 2x calibrated; only the last update has an estimate (RUL, below)
            "ind_rms_log": np.log([1.0, 1.5, 2.0]),
            "ind_hf_energy_log": np.array([0.0, 0.3, np.nan]),
            "ind_kurtosis_z": np.array([0.1, 1.2, 2.5]),
            "ind_cusum": np.array([0.0, 4.0, 35.5]),
            "ind_cusum_h": np.full(3, 30.0),
            "rul_median_s": np.array([np.nan, np.nan, RUL.median_s]),
            "rul_low_s": np.array([np.nan, np.nan, RUL.low_s]),
            "rul_high_s": np.array([np.nan, np.nan, RUL.high_s]),
            "rul_threshold": np.array([np.nan, np.nan, RUL.threshold]),
        },
        labels={
            "risk_level": ["LOW", "MODERATE", "HIGH"],
            "grade": ["A", "B", "C"],
            "iso_zone": ["A", "", "C"],
            "zone_basis": ["iso20816-3", "", "iso20816-3"],
            "rul_status": ["no_degradation_trend", "no_degradation_trend", "estimate"],
        },
    )


def _alarm(alarm_id: str, state: str, at: float, opened: float, **kw: object) -> AlarmEvent:
    return AlarmEvent(
        alarm_id=alarm_id,
        asset_id=ASSET,
        state=state,  # type: ignore[arg-type]
        source="legacy",
        severity="WARNING",
        reason="legacy anomaly score 1.3 above 1.0",
        opened_at=_dt(opened),
        ts=_dt(at),
        **kw,  # type: ignore[arg-type]
    )


def make_data(n: int = 10) -> ReportData:
    rd = _readings(n)
    ids = rd.labels["event_id"]
    legacy_ids = [e for k, e in enumerate(ids) if k != 2]  # reading 2 was never scored
    legacy_ts = np.array([t for k, t in enumerate(rd.ts_s) if k != 2])
    vib = _scores(["win-1", "win-2"], np.array([_ts(4), _ts(9)]), 0.2, "v-ae-1")  # per window: no reading
    alarms = [
        _alarm("al-1", "ACTIVE", 6, 6),
        _alarm("al-1", "ACKNOWLEDGED", 8, 6, previous="ACTIVE", who="ana", note="checking the bearing"),
        _alarm("al-2", "ACTIVE", 9, 9),
        _alarm("al-0", "RESOLVED", 1, -7200, previous="ACTIVE", who="bo", action_code="lubricated"),
    ]
    logs = [
        OperatorLog(
            log_id="lg-1",
            asset_id=ASSET,
            event_type="observation",
            ts=_dt(7),
            description="noise",
            author="ana",
        ),
        OperatorLog(
            log_id="lg-2", asset_id=ASSET, event_type="preventive_lubrication", severity="low", ts=_dt(8.5)
        ),
    ]
    latest = HealthUpdate(
        asset_id=ASSET,
        ts=_dt(9),
        health_score=61.25,
        risk_level="HIGH",
        grade="C",
        degradation_index=0.4,
        maintenance_window_days=12.5,
        maintenance_reason="remaining life: the 80 % interval's low end",
        rul=RUL,
        indicators={"rms_log": math.log(2.0), "cusum": 35.5},
        iso_zone="C",
        velocity_rms_mm_s=4.75,
        zone_basis="iso20816-3",
        zone_basis_text="ISO 20816-3 group 2, rigid",
        active_alarms=2,
    )
    return ReportData(
        asset_id=ASSET,
        start=T0,
        end=T0 + timedelta(hours=1),
        generated_at=datetime(2025, 3, 5, 8, 30, 0, tzinfo=UTC),
        config=AssetConfig(asset_id=ASSET, name="Cooling pump 7", type="pump", rpm=1480.0),
        models=[
            ModelInfo("legacy", "v-leg-3", datetime(2025, 3, 1, tzinfo=UTC), 1.0, ["voltage_v"]),
            ModelInfo("batch", "v-bat-2", None, 1.0, ["x"]),
        ],
        readings=rd,
        readings_total=n,
        scores={
            "legacy": _scores(legacy_ids, legacy_ts, 0.5, "v-leg-3"),
            "batch": _scores([ids[4], ids[9]], rd.ts_s[[4, 9]], 0.9, "v-bat-2"),
            "vibration": vib,
        },
        health=_health(),
        latest_health=latest,
        windows=Series(ts_s=np.array([_ts(4), _ts(9)]), columns={"fs_hz": np.array([12000.0, 12000.0])}),
        alarms=alarms,
        logs=logs,
    )


def _num(v: object) -> float:
    """A cell that must hold a number (xlsxwriter writes 16 significant digits; 230.0 reads back as 230)."""
    assert isinstance(v, int | float) and not isinstance(v, bool), f"{v!r} is not a number"
    return float(v)


def _load(blob: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(blob))


def _rows(ws: openpyxl.worksheet.worksheet.Worksheet) -> list[tuple[object, ...]]:
    return [tuple(r) for r in ws.iter_rows(min_row=3, values_only=True)]


def _summary(ws: openpyxl.worksheet.worksheet.Worksheet) -> dict[str, tuple[object, object]]:
    return {r[0]: (r[1], r[2]) for r in ws.iter_rows(min_row=5, max_col=3, values_only=True) if r[0]}


@pytest.fixture(scope="module")
def book() -> openpyxl.Workbook:
    return _load(build_workbook(make_data()))


def test_sheets_in_order(book: openpyxl.Workbook) -> None:
    assert book.sheetnames == ["Summary", "Operator Logs", "Raw Data", "Health", "Alarms"]


def test_raw_data_value_by_value(book: openpyxl.Workbook) -> None:
    data = make_data()
    ws = book["Raw Data"]
    header = [c.value for c in ws[2]]
    assert header == [
        "Time (UTC)",
        "Event ID",
        "Voltage (V)",
        "Current (A)",
        "Power factor (1)",
        "Vibration (g)",
        *[
            f"{k} {h}"
            for k in ("batch", "legacy")  # vibration scores share no event ID with a reading: no columns
            for h in (
                "anomaly score (1)",
                "raw score (1)",
                "threshold (1)",
                "anomaly (0/1)",
                "severity",
                "model version",
            )
        ],
    ]
    rows = _rows(ws)
    assert len(rows) == 10
    rd, leg, bat = data.readings, data.scores["legacy"], data.scores["batch"]
    for i, row in enumerate(rows):
        assert row[0] == _naive_ms(datetime.fromtimestamp(rd.ts_s[i], UTC))
        assert isinstance(row[0], datetime)
        assert row[1] == rd.labels["event_id"][i]
        for c, key in enumerate(("voltage_v", "current_a", "power_factor", "vibration_g"), start=2):
            want = rd.columns[key][i]
            assert (row[c] is None) if np.isnan(want) else (_num(row[c]) == pytest.approx(want, rel=1e-15))
        for off, sc in ((6, bat), (12, leg)):
            ids = sc.labels["event_id"]
            if rd.labels["event_id"][i] not in ids:
                assert row[off : off + 6] == (None,) * 6
                continue
            j = ids.index(rd.labels["event_id"][i])
            nums = [sc.columns[k][j] for k in ("anomaly_score", "raw_score", "threshold", "is_anomaly")]
            assert [_num(v) for v in row[off : off + 4]] == pytest.approx(nums, rel=1e-15)
            assert list(row[off + 4 : off + 6]) == [sc.labels["severity"][j], sc.labels["model_version"][j]]
    assert rows[2][12:18] == (None,) * 6  # reading 2 has no legacy score
    assert rows[3][4] is None  # power factor not stored for reading 3


def test_health_sheet_value_by_value(book: openpyxl.Workbook) -> None:
    h = make_data().health
    ws = book["Health"]
    assert [c.value for c in ws[2]] == [
        "Time (UTC)",
        "Health score (0-100)",
        "Degradation index (0-1)",
        "Maintenance window (days, RUL 80% low end)",
        "Velocity RMS (mm/s)",
        "rms_log = ln(RMS/calibrated) (Np)",
        "HF energy log (Np)",
        "Kurtosis z (robust sigma)",
        "CUSUM of rms_log (Np*s)",
        "CUSUM decision level (Np*s)",
        "RUL median (s)",
        "RUL 80% interval low (s)",
        "RUL 80% interval high (s)",
        "RUL failure threshold (Np)",
        "Grade",
        "Risk level",
        "ISO 20816 zone",
        "Zone basis",
        "RUL status",
    ]
    rows = _rows(ws)
    assert rows == [
        (
            _naive_ms(datetime.fromtimestamp(h.ts_s[i], UTC)),
            *[None if np.isnan(v) else float(v) for v in (h.columns[k][i] for k in excel_health_keys())],
            *[
                h.labels[k][i] or None
                for k in ("grade", "risk_level", "iso_zone", "zone_basis", "rul_status")
            ],
        )
        for i in range(3)
    ]


def excel_health_keys() -> list[str]:
    return [k for k, _, _ in excel.HEALTH_COLS]


def test_alarms_and_logs_value_by_value(book: openpyxl.Workbook) -> None:
    data = make_data()
    alarms = _rows(book["Alarms"])
    assert [c.value for c in book["Alarms"][2]][:3] == ["Time (UTC)", "Alarm ID", "State"]
    assert alarms == [
        (
            _naive_ms(a.ts),
            a.alarm_id,
            a.state,
            a.previous,
            a.severity,
            a.source,
            a.reason,
            _naive_ms(a.opened_at),
            a.who,
            a.note,
            a.action_code,
            a.auto_cleared,
            a.transition,
            None,  # not shelved
        )
        for a in data.alarms
    ]
    logs = _rows(book["Operator Logs"])
    assert logs == [
        (_naive_ms(x.ts), x.log_id, x.event_type, x.severity, x.author, x.description or None)
        for x in data.logs
    ]


def test_summary_numbers_from_the_data(book: openpyxl.Workbook) -> None:
    s = _summary(book["Summary"])
    assert s["Asset ID"] == (ASSET, None)
    assert s["Asset name"] == ("Cooling pump 7", None)
    assert s["Running speed"] == (1480.0, "rev/min")
    assert s["Period start"] == (datetime(2025, 3, 4, 10, 0), "UTC")
    assert s["Period end"] == (datetime(2025, 3, 4, 11, 0), "UTC")
    assert s["Generated at"] == (datetime(2025, 3, 5, 8, 30), "UTC")
    assert s["Model legacy: version"] == ("v-leg-3", None)
    assert s["Model legacy: created at"] == (datetime(2025, 3, 1), "UTC")
    assert s["Model batch: created at"] == ("none stored", "UTC")
    assert s["Readings in the period"] == (10, "readings")
    assert s["Readings on the Raw Data sheet"] == (10, "rows")
    assert "Row cap applied" not in s
    assert s["Scores legacy"] == (9, "scores")
    assert s["Scores legacy on Raw Data rows (same event ID)"] == (9, "rows")
    assert s["Scores vibration on Raw Data rows (same event ID)"] == (0, "rows")
    assert s["Vibration windows"] == (2, "windows")
    assert s["Health updates"] == (3, "updates")
    assert s["Alarm transitions"] == (4, "transitions")
    assert s["Operator log entries"] == (2, "entries")
    assert s["Max vibration reading"] == (pytest.approx(0.05 + 0.09), "g")  # reading 9: 0.05 + 0.01 * 9
    assert s["Max vibration reading at"] == (datetime(2025, 3, 4, 10, 0, 9, 250000), "UTC")
    assert s["Max velocity RMS (health updates)"] == (4.75, "mm/s")
    assert s["Max velocity RMS at"] == (datetime(2025, 3, 4, 10, 0, 9), "UTC")
    volts = make_data().readings.columns["voltage_v"]
    assert s["Voltage: readings"] == (10, "readings")
    assert s["Voltage: min"] == (230.0, "V") and s["Voltage: max"] == (234.5, "V")
    assert s["Voltage: mean"] == (pytest.approx(volts.mean(), rel=1e-15), "V")
    assert s["Voltage: standard deviation (population)"] == (pytest.approx(volts.std(), rel=1e-15), "V")
    assert s["Power factor: readings"] == (9, "readings")  # one reading without a power factor
    assert s["Health score"] == (61.25, "0-100")
    assert s["Grade"] == ("C", "A-F")
    assert s["Risk level"] == ("HIGH", None)
    # the window traces back to the estimate: its 80 % interval's low end (12.5 days)
    assert s["Remaining life"] == ("20.0 days (80 %: 12.5–40.0 days)", None)
    assert s["Remaining life, median"] == (1_728_000.0, "s")
    assert s["Remaining life, 80 % interval low end"] == (1_080_000.0, "s")
    assert s["Rests on"] == ("rms_log 0.69 Np (RMS 2.00× calibrated)", None)
    assert s["Failure threshold"] == (1.5, "Np")
    assert s["Model"] == ("log_linear, 48 points over 2.0 days of data", None)
    assert s["Maintenance window (the interval's low end)"] == (12.5, "days")
    assert "Maintenance window" not in s
    assert s["Zone basis"] == ("ISO 20816-3 group 2, rigid", None)
    # al-0 was opened two hours before the period (its resolution lies in it); al-1, al-2 opened in it
    assert s["Alarms raised in the period"] == (2, "alarms")
    assert s["Alarms open at the end (last transition not RESOLVED)"] == (2, "alarms")
    assert isinstance(s["Health score"][0], float) and isinstance(s["Readings in the period"][0], int)


def test_layout_frozen_header_autofilter_widths(book: openpyxl.Workbook) -> None:
    for name, last_col, n in (
        ("Raw Data", "R", 10),
        ("Health", "S", 3),  # time, 13 numbers, 5 labels
        ("Alarms", "N", 4),
        ("Operator Logs", "F", 2),
    ):
        ws = book[name]
        assert ws.freeze_panes == "A3", name
        assert ws.auto_filter.ref == f"A2:{last_col}{2 + n}", name
        assert ws.column_dimensions["A"].width > 15, name  # wide enough for a date-time
        assert ws["A3"].number_format == "yyyy-mm-dd hh:mm:ss"
        assert ws["A1"].value.startswith(("Stored", "Operator")) and f"{n:,} rows" in ws["A1"].value
    assert book["Summary"].freeze_panes == "A5"


def _sheet_part(zf: zipfile.ZipFile, name: str) -> str:
    """The package part of the sheet called ``name`` (via workbook.xml and its relationships)."""
    rid = re.search(
        rf'<sheet name="{name}" sheetId="\d+" r:id="(rId\d+)"', zf.read("xl/workbook.xml").decode()
    )
    assert rid
    rels = zf.read("xl/_rels/workbook.xml.rels").decode()
    target = re.search(rf'Id="{rid[1]}" Type="[^"]+" Target="([^"]+)"', rels)
    assert target
    return "xl/" + target[1]


def test_native_chart_on_summary_plots_the_health_sheet() -> None:
    zf = zipfile.ZipFile(io.BytesIO(build_workbook(make_data())))
    part = _sheet_part(zf, "Summary")
    assert part == "xl/worksheets/sheet1.xml"
    rels = zf.read("xl/worksheets/_rels/sheet1.xml.rels").decode()
    drawing = re.search(r'Target="../drawings/(drawing\d+\.xml)"', rels)
    assert drawing and "<drawing " in zf.read(part).decode()
    chart_target = re.search(
        r'Target="../charts/(chart\d+\.xml)"', zf.read(f"xl/drawings/_rels/{drawing[1]}.rels").decode()
    )
    assert chart_target
    chart = zf.read(f"xl/charts/{chart_target[1]}").decode()
    assert "<c:scatterChart>" in chart
    assert "<c:f>Health!$A$3:$A$5</c:f>" in chart and "<c:f>Health!$B$3:$B$5</c:f>" in chart


def test_empty_period_says_so() -> None:
    data = ReportData(
        asset_id=ASSET, start=T0, end=T0 + timedelta(days=1), generated_at=T0 + timedelta(days=2)
    )
    book = _load(build_workbook(data))
    assert book.sheetnames == ["Summary"]
    ws = book["Summary"]
    assert ws["A2"].value.startswith(
        f"No data in this period: no reading, vibration window or health update is stored for {ASSET}"
    )
    assert "2025-03-04 10:00:00 and 2025-03-05 10:00:00 UTC" in ws["A2"].value
    s = _summary(ws)
    assert s["Period start"] == (datetime(2025, 3, 4, 10, 0), "UTC")
    assert "Readings in the period" not in s and "Max vibration reading" not in s


def test_reporter_cap_is_stated_and_statistics_cover_every_reading() -> None:
    """The gatherer kept every k-th of 50,000 readings (cap 10): Raw Data says so, the Summary's
    maximum and statistics are the gatherer's over every reading (the peak is not among those held)."""
    data = make_data()
    data.readings_total, data.capped = 50_000, 10
    data.reading_stats = {"vibration_g": {"n": 50_000.0, "mean": 0.1, "std": 0.02, "min": 0.01, "max": 2.5}}
    book = _load(build_workbook(data))
    assert (
        "The period holds 50,000 readings, over the reporter's cap of 10 rows: every 5000th stored reading is"
        " here (real values, not averages)" in book["Raw Data"]["A1"].value
    )
    s = _summary(book["Summary"])
    assert s["Readings in the period"] == (50_000, "readings")
    assert s["Row cap applied"] == ("reporter cap 10 rows (every 5000th reading)", None)
    assert s["Max vibration reading"] == (2.5, "g")
    assert s["Max vibration reading at"] == ("none stored", "UTC")  # that reading is not on Raw Data
    assert s["Vibration: readings"] == (50_000, "readings")
    assert s["Vibration: standard deviation (population)"] == (0.02, "g")
    assert s["Voltage"] == ("none stored", "V")  # the gatherer gave no statistics for it


def test_excel_row_limit_is_stated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Excel's 1,048,576 rows per sheet: shown with a smaller limit (the same code path) to stay fast."""
    monkeypatch.setattr(excel, "MAX_DATA_ROWS", 6)
    book = _load(build_workbook(make_data()))
    ws = book["Raw Data"]
    assert len(_rows(ws)) == 6
    assert "the first 6 of 10 readings are here" in ws["A1"].value
    assert _summary(book["Summary"])["Row cap applied"] == ("Excel's 1,048,576 rows per sheet", None)


def test_user_text_is_kept_as_text() -> None:
    """Operator and asset text goes in as written: markup, ampersands, tabs, Excel-escape look-alikes
    and surrounding spaces neither break the workbook nor change (a control character XML cannot
    hold becomes U+FFFD) (xlsxwriter's write_string in
    constant_memory mode would write '<r>...</r>' raw, as a rich string, and corrupt the sheet)."""
    data = make_data()
    rich = '<r>pump</t></is></c><c r="B1"><v>42</v></c><c><is><t></r>'
    assert data.config is not None
    data.config = data.config.model_copy(update={"name": rich})
    text = "  bearing & seal <hot>\tcheck _x0041_ \x07 done  "
    data.logs[0] = data.logs[0].model_copy(update={"description": text})
    book = _load(build_workbook(data))
    assert _summary(book["Summary"])["Asset name"] == (rich, None)
    assert book["Operator Logs"]["F3"].value == text.replace("\x07", "\ufffd")  # XML 1.0 cannot hold BEL


def _week(n: int) -> ReportData:
    """``n`` readings at 1 Hz with every reading scored by the legacy model (a busy period)."""
    ts = _ts(np.arange(n, dtype=np.float64))
    rng = np.random.default_rng(0)
    ids = [f"e{k}" for k in range(n)]
    cols = {k: rng.normal(1.0, 0.1, n) for k in ("voltage_v", "current_a", "power_factor", "vibration_g")}
    return ReportData(
        asset_id=ASSET,
        start=T0,
        end=T0 + timedelta(seconds=n),
        generated_at=T0 + timedelta(seconds=n + 60),
        readings=Series(ts_s=ts, columns=cols, labels={"event_id": ids}),
        readings_total=n,
        scores={
            "legacy": Series(ts_s=ts, columns={"anomaly_score": rng.random(n)}, labels={"event_id": ids})
        },
    )


def _sheet_tail(blob: bytes, part: str, size: int = 4096) -> tuple[str, str]:
    """The first and the last ``size`` characters of a sheet's XML, streamed (not parsed)."""
    with zipfile.ZipFile(io.BytesIO(blob)).open(part) as fh:
        head = fh.read(size).decode()
        tail = head
        while chunk := fh.read(1 << 20):
            tail = (tail + chunk.decode("utf-8", "ignore"))[-size:]
    return head, tail


def test_seven_days_at_1_hz_builds_every_row() -> None:
    """604,800 readings (a week at 1 Hz), each scored: every one is a row of Raw Data, the last one
    with its values (read from the sheet XML: loading 4 M cells with openpyxl takes minutes)."""
    n = 7 * 86_400
    data = _week(n)
    blob = build_workbook(data)
    head, tail = _sheet_tail(blob, "xl/worksheets/sheet3.xml")
    assert '<dimension ref="A1:G604802"/>' in head
    last = re.search(r'<row r="(\d+)">((?:(?!<row ).)*)</row></sheetData>', tail)
    assert last and last[1] == str(n + 2)
    cells = dict(re.findall(r'<c r="([A-G])\d+"[^>]*>(?:<v>([^<]*)</v>|<is><t>[^<]*</t></is>)</c>', last[2]))
    assert float(cells["F"]) == data.readings.columns["vibration_g"][-1]
    assert float(cells["G"]) == data.scores["legacy"].columns["anomaly_score"][-1]
    assert f"<t>e{n - 1}</t>" in last[2]


def test_memory_stays_bounded() -> None:
    """A day at 1 Hz (86,400 readings, ~600,000 cells): what the build allocates beyond the finished
    file stays far below what holding the cells would take (xlsxwriter without constant_memory: ~80 MB;
    here one chunk of rows and the event-ID join)."""
    data = _week(86_400)
    tracemalloc.start()
    try:
        blob = build_workbook(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - len(blob) < 32 * 2**20, (
        f"peak {peak / 2**20:.0f} MiB for a {len(blob) / 2**20:.0f} MiB file"
    )
