"""Reporter: gathering one asset's stored data over a period (SQLite store with stored points) and the
service on the in-memory bus with a stand-in builder (request/reply, failures with codes, the service
keeps serving after a builder exception, retained models and configuration reach the report)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from services.reporter import gather
from services.reporter.documents import filename, part_chars, pdf_pages
from services.reporter.service import build
from shared import records, topics
from shared.bus import MemoryBus
from shared.messages import (
    AlarmEvent,
    AssetConfig,
    FeatureVector,
    HealthUpdate,
    ModelAnnouncement,
    OperatorLog,
    Reading,
    RulItem,
    Score,
    SignalStat,
    Window,
)
from shared.messages.commands import ReplyPart, ReportReply, ReportRequest
from shared.reports import facts
from shared.reports.data import ReportData
from shared.service import running_in_memory
from shared.settings import Settings
from shared.store.sqlite import SqliteStore
from tests.support.gateway import manifest

T0 = datetime(2026, 3, 1, tzinfo=UTC)
A = "pump_r"


def reading(i: int, vib: float | None = None, asset: str = A) -> Reading:
    return Reading(
        event_id=f"{asset}-r{i:06d}",
        asset_id=asset,
        ts=T0 + timedelta(seconds=i),
        voltage_v=230.0 + i % 7,
        current_a=10.0 + 0.01 * i,
        power_factor=0.9,
        vibration_g=vib if vib is not None else 0.1 + 0.001 * (i % 50),
    )


def score(i: int, model: str = "legacy") -> Score:
    return Score(
        event_id=f"{A}-r{i:06d}",
        asset_id=A,
        ts=T0 + timedelta(seconds=i),
        model=model,
        model_version="v7",
        anomaly_score=0.01 * i,
        raw_score=0.02 * i,
        threshold=0.5,
        is_anomaly=i > 50,
        severity="WARNING" if i > 50 else "NORMAL",
    )


def health(i: int, value: float) -> HealthUpdate:
    """Healthy (> 80): no degradation trend, RMS as calibrated (rms_log 0 Np). Else RMS 2x calibrated
    (rms_log ln 2 Np) and an estimate of 2 h (80 %: 1-4 h), the window its 1 h low end."""
    ok = value > 80
    rul = RulItem(status="no_degradation_trend", reason="no persistent rise of RMS")
    if not ok:
        rul = RulItem(
            status="estimate",
            reason="log-linear path of rms_log",
            level=math.log(2.0),
            threshold=1.5,
            median_s=7200.0,
            low_s=3600.0,
            high_s=14400.0,
            interval=0.8,
            model="log_linear",
        )
    return HealthUpdate(
        asset_id=A,
        ts=T0 + timedelta(seconds=i),
        health_score=value,
        risk_level="LOW" if ok else "HIGH",
        grade="A" if ok else "D",
        degradation_index=0.1,
        maintenance_window_days=None if ok else 3600 / 86400,
        iso_zone="B",
        velocity_rms_mm_s=2.5,
        rul=rul,
        indicators={"rms_log": 0.0 if ok else math.log(2.0), "cusum": 0.0 if ok else 40.0},
    )


def alarm(i: int, state: str) -> AlarmEvent:
    return AlarmEvent(
        alarm_id="a" * 32,
        asset_id=A,
        state=state,  # type: ignore[arg-type]
        source="ensemble",
        severity="CRITICAL",
        reason="vibration 3x baseline",
        opened_at=T0 + timedelta(seconds=60),
        ts=T0 + timedelta(seconds=i),
        who="ana" if state != "ACTIVE" else None,
    )


def window(i: int) -> Window:
    x = np.sin(np.arange(256) * 0.3) * 0.5
    return Window(
        event_id=f"{A}-w{i:04d}",
        asset_id=A,
        ts=T0 + timedelta(seconds=i),
        fs_hz=500.0,
        n=256,
        axes=["x"],
        x=list(x),
    )


def vib_vector(i: int) -> FeatureVector:
    return FeatureVector(
        event_id=f"{A}-w{i:04d}",
        asset_id=A,
        ts=T0 + timedelta(seconds=i),
        kind="vibration",
        names=["rms", "kurtosis"],
        values=[0.35 + i * 0.001, 3.1],
        extras={"velocity_rms_mm_s": 2.2, "rms": 9.9},
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    """120 s of readings with legacy + batch scores, health, 2 windows with vibration features, an alarm
    opened / acknowledged / resolved, two operator logs, and one reading of another asset."""
    s = SqliteStore(tmp_path / "db.sqlite")
    points = [records.reading_to_point(reading(i, vib=2.75 if i == 91 else None)) for i in range(120)]
    points += [records.score_to_point(score(i, m)) for i in range(120) for m in ("legacy", "batch")]
    points += [records.health_to_point(health(i, 95.0 if i < 60 else 40.0)) for i in range(0, 120, 10)]
    points += [records.window_to_point(window(i)) for i in (30, 70)]
    points += [records.features_to_point(vib_vector(i)) for i in (30, 70)]
    points += [
        records.alarm_to_point(alarm(i, st))
        for i, st in ((60, "ACTIVE"), (65, "ACKNOWLEDGED"), (100, "RESOLVED"))
    ]
    for i, text in ((66, "checked the coupling"), (101, "bearing replaced")):
        log = OperatorLog(
            log_id=f"l{i}",
            asset_id=A,
            event_type="observation",
            description=text,
            ts=T0 + timedelta(seconds=i),
        )
        points.append(records.oplog_to_point(log))
    points.append(records.reading_to_point(reading(5, asset="other")))
    s.write(points)
    yield s
    s.close()


def at(i: float) -> datetime:
    return T0 + timedelta(seconds=i)


# --- gather ------------------------------------------------------------------------------------------
def test_gather_reads_every_series_of_the_period_inclusive(store: SqliteStore) -> None:
    data = gather.gather(store, A, at(10), at(100), generated_at=at(500))
    assert data.readings_total == 91 and len(data.readings) == 91 and data.capped is None
    assert data.readings.ts_s[0] == pytest.approx(at(10).timestamp(), abs=1e-5)
    assert data.readings.ts_s[-1] == pytest.approx(at(100).timestamp(), abs=1e-5)
    assert data.readings.columns["voltage_v"][0] == 230.0 + 10 % 7
    assert data.readings.labels["event_id"][0] == f"{A}-r000010"
    assert data.reading_stats["vibration_g"]["max"] == 2.75
    assert data.reading_stats["vibration_g"]["n"] == 91
    assert set(data.scores) == {"legacy", "batch"}
    legacy = data.scores["legacy"]
    assert (
        len(legacy) == 91
        and legacy.columns["is_anomaly"][-1] == 1.0
        and legacy.columns["is_anomaly"][0] == 0.0
    )
    assert legacy.labels["model_version"][0] == "v7" and legacy.labels["severity"][-1] == "WARNING"
    assert list(data.health.columns["health_score"]) == [95.0] * 5 + [40.0] * 5
    assert data.health.labels["grade"][-1] == "D" and data.health.labels["iso_zone"][0] == "B"
    assert data.latest_health is not None and data.latest_health.ts == at(100)
    # issue 15: the trend indicators and the remaining-life fields as series (NaN / "" where absent)
    hc = data.health.columns
    assert list(hc["ind_rms_log"]) == pytest.approx([0.0] * 5 + [math.log(2.0)] * 5)
    assert list(hc["ind_cusum"]) == [0.0] * 5 + [40.0] * 5
    assert np.isnan(hc["rul_low_s"][:5]).all() and list(hc["rul_low_s"][5:]) == [3600.0] * 5
    assert np.isnan(hc["maintenance_window_days"][:5]).all() and hc["rul_threshold"][-1] == 1.5
    assert data.health.labels["rul_status"] == ["no_degradation_trend"] * 5 + ["estimate"] * 5
    assert data.latest_health.rul is not None and data.latest_health.rul.median_s == 7200.0
    assert len(data.windows) == 2 and data.windows.labels["axes"] == ["x", "x"]
    assert data.windows.columns["rms_x"][0] == pytest.approx(records.rms(window(30).x or []))
    assert math.isnan(data.windows.columns["rms_y"][0])
    assert data.vibration.columns["rms"][1] == pytest.approx(0.42)
    assert data.vibration.columns["e_rms"][0] == 9.9  # an extra named like a feature keeps both
    assert data.vibration.columns["velocity_rms_mm_s"][0] == 2.2
    assert [a.state for a in data.alarms] == ["ACTIVE", "ACKNOWLEDGED", "RESOLVED"]
    assert [e.description for e in data.logs] == ["checked the coupling"]  # 101 s is after the period
    assert not data.empty


def test_an_alarm_open_when_the_period_begins_is_carried_into_it(store: SqliteStore) -> None:
    """The alarm opened at 60 s and resolved at 100 s: open at the start of a period from 70 s (its
    last earlier transition is the acknowledgement), not carried into one from 101 s; still open at the
    end of 70..90 s, not of 70..110 s."""
    data = gather.gather(store, A, at(70), at(90), generated_at=at(500))
    assert data.alarms == [] and [a.state for a in data.open_before] == ["ACKNOWLEDGED"]
    counts = facts.alarm_counts(data.alarms, data.start, data.open_before)
    assert (counts.raised, counts.still_open, counts.open_at_start) == (0, 1, 1)
    data = gather.gather(store, A, at(70), at(110), generated_at=at(500))
    counts = facts.alarm_counts(data.alarms, data.start, data.open_before)
    assert (counts.raised, counts.still_open, counts.open_at_start) == (0, 0, 1)
    assert gather.gather(store, A, at(101), at(119), generated_at=at(500)).open_before == []


def test_gather_caps_rows_but_keeps_the_true_statistics(store: SqliteStore) -> None:
    data = gather.gather(store, A, at(0), at(119), generated_at=at(500), max_rows=25)
    assert data.readings_total == 120 and data.capped == 25
    assert len(data.readings) == 24  # every 5th: 0, 5, ..., 115
    assert data.readings.labels["event_id"][:2] == [f"{A}-r000000", f"{A}-r000005"]
    assert 2.75 not in data.readings.columns["vibration_g"]  # reading 91 is not among the kept rows
    stats = data.reading_stats["vibration_g"]
    expect = np.array([reading(i, 2.75 if i == 91 else None).vibration_g for i in range(120)])
    assert stats["max"] == 2.75 and stats["n"] == 120
    assert stats["mean"] == pytest.approx(expect.mean()) and stats["std"] == pytest.approx(expect.std())
    assert len(data.scores["legacy"]) == 24


def test_gather_pages_through_more_points_than_a_page(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gather, "PAGE", 7)
    data = gather.gather(store, A, at(0), at(119), generated_at=at(500))
    assert len(data.readings) == 120 and len(set(data.readings.labels["event_id"])) == 120
    assert data.reading_stats["current_a"]["n"] == 120 and len(data.scores["batch"]) == 120


def test_default_period_is_the_last_24h_of_the_assets_data(store: SqliteStore) -> None:
    start, end = gather.resolve_period(store, A, None, None) or (None, None)
    assert end == at(119) and start == at(119) - timedelta(hours=24)
    assert gather.resolve_period(store, "nobody", None, None) is None
    assert gather.resolve_period(store, A, None, at(50)) == (at(50) - timedelta(hours=24), at(50))


def test_a_period_without_data_is_empty(store: SqliteStore) -> None:
    data = gather.gather(store, A, at(1000), at(2000), generated_at=at(3000))
    assert data.empty and data.readings_total == 0 and data.alarms == [] and data.latest_health is None


def test_model_info_from_an_announcement() -> None:
    m = manifest("legacy", ["a", "b"], signal_baseline={"vibration_g": SignalStat(mean=0.1, std=0.01)})
    ann = ModelAnnouncement(
        asset_id=A, model="legacy", version="v3", path="p", created_at=T0, manifest=m, onnx_b64=""
    )
    info = gather.model_info(ann)
    assert (info.kind, info.version, info.created_at, info.threshold, info.features) == (
        "legacy",
        "v3",
        T0,
        0.5,
        ["a", "b"],
    )
    assert info.baseline["signals"]["vibration_g"]["mean"] == 0.1 and "features" not in info.baseline


# --- documents ---------------------------------------------------------------------------------------
def test_filename_and_pdf_pages() -> None:
    assert (
        filename("p-1.a", "excel", datetime(2026, 5, 2, 3, 4, 5, 999, tzinfo=UTC))
        == "p-1.a_excel_20260502T030405Z.xlsx"
    )
    assert filename("p", "industrial", T0) == "p_industrial_20260301T000000Z.pdf"
    weasyprint = pytest.importorskip("weasyprint")
    html = "".join('<p style="page-break-before:always">x</p>' for _ in range(3))
    assert pdf_pages(weasyprint.HTML(string=html).write_pdf()) == 3
    assert pdf_pages(b"not a pdf") is None


# --- the service on the in-memory bus ----------------------------------------------------------------
class StandIn:
    """A builder that records the data it was given and returns fixed bytes (or raises once)."""

    def __init__(self) -> None:
        self.seen: list[ReportData] = []
        self.fail = False

    def __call__(self, data: ReportData) -> bytes:
        self.seen.append(data)
        if self.fail:
            self.fail = False
            raise RuntimeError("template exploded")
        return b"%PDF-stand-in " + data.asset_id.encode()


@dataclass
class Answer:
    reply: ReportReply
    parts: list[ReplyPart]
    #: Largest payload (bytes) among the part messages and the final reply.
    largest: int

    @property
    def document(self) -> bytes:
        return base64.b64decode("".join(p.data_b64 for p in self.parts), validate=True)


async def ask(bus: MemoryBus, cid: str, **kw: object) -> Answer:
    """Send a report request; collect the part messages up to the final reply."""
    reply_to = topics.reply("gw", cid)
    sub = bus.subscribe(reply_to)
    req = ReportRequest(correlation_id=cid, reply_to=reply_to, **kw)  # type: ignore[arg-type]
    await bus.publish(topics.command("report"), req)
    parts: list[ReplyPart] = []
    largest = 0
    while True:
        msg = await asyncio.wait_for(sub.get(), 10)
        largest = max(largest, len(msg.payload))
        if json.loads(msg.payload)["status"] != "part":
            return Answer(ReportReply.model_validate_json(msg.payload), parts, largest)
        parts.append(ReplyPart.model_validate_json(msg.payload))


async def test_service_answers_with_the_document_and_keeps_serving(
    store: SqliteStore, tmp_path: Path
) -> None:
    stand_in = StandIn()
    svc = build(Settings(data_dir=tmp_path), store=store, builders={"executive": stand_in, "excel": stand_in})
    bus = MemoryBus()
    m = manifest("legacy", ["a"])
    ann = ModelAnnouncement(
        asset_id=A, model="legacy", version="v9", path="p", created_at=T0, manifest=m, onnx_b64="QUJD"
    )
    await bus.publish(topics.model_announce(A, "legacy"), ann, retain=True)
    await bus.publish(topics.asset_config(A), AssetConfig(asset_id=A, name="Pump R", rpm=1500), retain=True)
    async with running_in_memory(svc, bus):
        answer = await ask(bus, "1", asset_id=A, kind="executive", start=at(0), end=at(119))
        ok = answer.reply
        assert ok.status == "ok", ok.message
        assert [(p.index, p.parts) for p in answer.parts] == [(0, 1)] and ok.parts == 1
        doc = answer.document
        assert doc == b"%PDF-stand-in " + A.encode() and ok.size_bytes == len(doc)
        assert ok.sha256 == hashlib.sha256(doc).hexdigest() and ok.content_type == "application/pdf"
        assert re.fullmatch(rf"{A}_executive_\d{{8}}T\d{{6}}Z\.pdf", ok.filename)
        assert ok.start == at(0) and ok.end == at(119) and ok.counts["readings"] == 120
        assert ok.counts["alarm_transitions"] == 3 and ok.models == {"legacy": "v9"}
        data = stand_in.seen[-1]
        assert data.config is not None and data.config.name == "Pump R"
        assert [mi.version for mi in data.models] == ["v9"]

        default = (await ask(bus, "2", asset_id=A, kind="excel")).reply
        assert (
            default.status == "ok"
            and default.end == at(119)
            and default.start == at(119) - timedelta(hours=24)
        )
        assert default.filename.endswith(".xlsx") and default.pages is None

        stand_in.fail = True
        failed = await ask(bus, "3", asset_id=A, kind="executive")
        broken = failed.reply
        assert failed.parts == [] and broken.parts == 0
        assert (broken.status, broken.code) == ("failed", "internal")
        assert "template exploded" in broken.message
        again = await ask(bus, "4", asset_id=A, kind="executive")
        assert again.reply.status == "ok"


@pytest.mark.parametrize(
    ("kw", "code", "reason"),
    [
        ({"asset_id": "nobody"}, "not_found", "no stored data of asset 'nobody'"),
        (
            {"start": at(5000), "end": at(6000)},
            "not_found",
            "no readings, vibration windows or health updates",
        ),
        ({"start": at(100), "end": at(10)}, "invalid", "must be before"),
        ({"start": at(0), "end": at(0) + timedelta(days=367)}, "invalid", "at most 366"),
        ({"start": at(200) - timedelta(days=400)}, "invalid", "at most 366"),
    ],
)
async def test_service_refuses_with_a_code_and_reason(
    store: SqliteStore, tmp_path: Path, kw: dict[str, object], code: str, reason: str
) -> None:
    stand_in = StandIn()
    svc = build(Settings(data_dir=tmp_path), store=store, builders={"industrial": stand_in})
    bus = MemoryBus()
    async with running_in_memory(svc, bus):
        answer = await ask(bus, "x", **{"asset_id": A, "kind": "industrial", **kw})
    got = answer.reply
    assert answer.parts == []
    assert (got.status, got.code) == ("failed", code) and reason in got.message, got.message
    assert stand_in.seen == []


def test_parts_fit_the_payload_limit() -> None:
    assert part_chars(8 * 1024 * 1024) == 1024 * 1024
    assert part_chars(1000) == 488 and part_chars(10) == 4


async def test_a_document_over_the_payload_limit_arrives_intact_in_ordered_parts(
    store: SqliteStore, tmp_path: Path
) -> None:
    """MAX_PAYLOAD_BYTES 1000 and a 5000-byte document: every message stays within 1000 bytes, the
    parts come in order and join to the document (size and SHA-256 of the final reply)."""
    doc = np.random.default_rng(3).bytes(5000)
    svc = build(
        Settings(data_dir=tmp_path, max_payload_bytes=1000), store=store, builders={"excel": lambda d: doc}
    )
    bus = MemoryBus()
    async with running_in_memory(svc, bus):
        got = await ask(bus, "big", asset_id=A, kind="excel")
    n = math.ceil(math.ceil(5000 / 3) * 4 / 488)
    assert got.reply.status == "ok" and got.reply.parts == n == 14, got.reply.message
    assert [(p.index, p.parts, p.correlation_id) for p in got.parts] == [(i, n, "big") for i in range(n)]
    assert got.largest <= 1000
    assert got.document == doc and got.reply.size_bytes == 5000
    assert got.reply.sha256 == hashlib.sha256(doc).hexdigest()


async def test_a_document_over_report_max_bytes_is_refused(store: SqliteStore, tmp_path: Path) -> None:
    svc = build(
        Settings(data_dir=tmp_path, report_max_bytes=4000),
        store=store,
        builders={"excel": lambda d: b"x" * 5000},
    )
    bus = MemoryBus()
    async with running_in_memory(svc, bus):
        got = await ask(bus, "big", asset_id=A, kind="excel")
    assert got.parts == [] and (got.reply.status, got.reply.code) == ("failed", "invalid")
    assert "REPORT_MAX_BYTES" in got.reply.message and "shorter period" in got.reply.message
