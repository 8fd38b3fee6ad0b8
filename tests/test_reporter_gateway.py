"""``GET /api/v1/reports/{kind}`` on the in-memory bus: the gateway and the real reporter service (with
stand-in builders) share one SQLite store; every bad input answers 4xx with its reason, a builder
failure 500 with the reporter's reason (and the next report works), no reporter 504, a reply that does
not match its checksum or misses a part 502, a document over MAX_PAYLOAD_BYTES arrives in parts."""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.reporter.service import build
from shared import records
from shared.messages import Reading
from shared.reports.data import ReportData
from shared.service import running_in_memory
from tests.support.gateway import MemoryGateway, memory_gateway, memory_settings, responder

T0 = datetime(2026, 3, 1, tzinfo=UTC)
A = "pump_g"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class StandIn:
    def __init__(self) -> None:
        self.seen: list[ReportData] = []
        self.fail = False

    def __call__(self, data: ReportData) -> bytes:
        self.seen.append(data)
        if self.fail:
            self.fail = False
            raise RuntimeError("renderer out of ink")
        return f"{data.asset_id} {len(data.readings)}".encode()


def store_readings(gw: MemoryGateway, n: int) -> None:
    """``n`` readings of asset A, one per hour from T0 (so the last 24 h hold 24 or 25 of them)."""
    points = [
        records.reading_to_point(
            Reading(
                event_id=f"{A}-{i}",
                asset_id=A,
                ts=T0 + timedelta(hours=i),
                voltage_v=230.0,
                current_a=10.0,
                power_factor=0.9,
                vibration_g=0.1,
            )
        )
        for i in range(n)
    ]
    gw.app.state.ctx.store.write(points)


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[MemoryGateway]:
    async with memory_gateway(memory_settings(tmp_path, report_timeout_s=3)) as g:
        store_readings(g, 48)
        yield g


@pytest.fixture
async def stand_in(gw: MemoryGateway) -> AsyncIterator[StandIn]:
    b = StandIn()
    svc = build(
        gw.settings, store=gw.app.state.ctx.store, builders={"executive": b, "excel": b, "industrial": b}
    )
    async with running_in_memory(svc, gw.bus):
        yield b


async def test_a_report_downloads_as_an_attachment(gw: MemoryGateway, stand_in: StandIn) -> None:
    r = await gw.clients["viewer"].get("/reports/executive", params={"asset_id": A})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    m = re.fullmatch(
        r'attachment; filename="pump_g_executive_(\d{8}T\d{6}Z)\.pdf"', r.headers["content-disposition"]
    )
    assert m, r.headers["content-disposition"]
    # default period: the last 24 h of the asset's data (newest reading at T0 + 47 h), both ends included
    assert r.content == f"{A} 25".encode()
    assert r.headers["x-report-to"] == (T0 + timedelta(hours=47)).isoformat()
    assert r.headers["x-report-from"] == (T0 + timedelta(hours=23)).isoformat()
    assert r.headers["x-report-readings"] == "25"
    assert stand_in.seen[-1].start == T0 + timedelta(hours=23)

    params = {"asset_id": A, "from": T0.isoformat(), "to": (T0 + timedelta(hours=2)).isoformat()}
    x = await gw.api.get("/reports/excel", params=params)
    assert x.status_code == 200 and x.headers["content-type"] == XLSX and x.content == f"{A} 3".encode()
    assert x.headers["content-disposition"].endswith('.xlsx"')
    assert (
        await gw.api.get("/reports/industrial", params={"asset_id": A, "from": str(T0.timestamp())})
    ).status_code == 200
    assert stand_in.seen[-1].start == T0 and stand_in.seen[-1].end == T0 + timedelta(hours=47)


async def test_reports_need_credentials(gw: MemoryGateway, stand_in: StandIn) -> None:
    r = await gw.clients[None].get("/reports/executive", params={"asset_id": A})
    assert r.status_code == 401
    assert stand_in.seen == []


@pytest.mark.parametrize(
    ("path", "params", "status", "reason"),
    [
        ("/reports/executive", {"asset_id": "nobody"}, 404, "unknown asset 'nobody'"),
        ("/reports/executive", {"asset_id": "../../etc/passwd"}, 422, "is not an asset id"),
        ("/reports/executive", {"asset_id": "<script>alert(1)</script>"}, 422, "is not an asset id"),
        ("/reports/executive", {"asset_id": "a" * 65}, 422, "is not an asset id"),
        ("/reports/executive", {"asset_id": ""}, 422, "is not an asset id"),
        ("/reports/executive", {}, 422, "asset_id"),
        ("/reports/word", {"asset_id": A}, 422, "executive"),
        ("/reports/executive", {"asset_id": A, "from": "yesterday"}, 422, "not an ISO-8601 time"),
        ("/reports/executive", {"asset_id": A, "to": "2026-13-45"}, 422, "not an ISO-8601 time"),
        (
            "/reports/executive",
            {"asset_id": A, "from": "2026-03-02", "to": "2026-03-01"},
            422,
            "must be before",
        ),
        ("/reports/excel", {"asset_id": A, "from": "2024-01-01", "to": "2026-01-01"}, 422, "at most 366"),
        ("/reports/excel", {"asset_id": A, "from": "2024-01-01"}, 422, "at most 366"),  # to = newest data
        (
            "/reports/industrial",
            {"asset_id": A, "from": "2025-01-01", "to": "2025-01-02"},
            404,
            "no readings",
        ),
    ],
)
async def test_bad_input_answers_with_the_reason(
    gw: MemoryGateway, stand_in: StandIn, path: str, params: dict[str, str], status: int, reason: str
) -> None:
    r = await gw.api.get(path, params=params)
    assert r.status_code == status, r.text
    assert reason in r.text, r.text
    assert stand_in.seen == []


async def test_a_renderer_failure_is_500_and_the_reporter_keeps_serving(
    gw: MemoryGateway, stand_in: StandIn
) -> None:
    stand_in.fail = True
    r = await gw.api.get("/reports/industrial", params={"asset_id": A})
    assert r.status_code == 500 and "renderer out of ink" in r.json()["detail"], r.text
    again = await gw.api.get("/reports/industrial", params={"asset_id": A})
    assert again.status_code == 200, again.text


async def test_no_reporter_is_504(gw: MemoryGateway) -> None:
    r = await gw.api.get("/reports/executive", params={"asset_id": A})
    assert r.status_code == 504 and "no reply from the reporter" in r.json()["detail"]


def final(size: int, sha: str, parts: int) -> dict[str, Any]:
    return {
        "status": "ok",
        "asset_id": A,
        "kind": "executive",
        "filename": "x.pdf",
        "content_type": "application/pdf",
        "size_bytes": size,
        "sha256": sha,
        "parts": parts,
    }


def part(index: int, parts: int, data_b64: str) -> dict[str, Any]:
    return {"status": "part", "index": index, "parts": parts, "data_b64": data_b64}


HELLO = "aGVsbG8gcmVwb3J0IQ=="  # b"hello report!"
HELLO_SHA = hashlib.sha256(b"hello report!").hexdigest()


@pytest.mark.parametrize(
    ("replies", "status", "reason"),
    [
        # parts out of order, one delivered twice (QoS 1): joined by index
        (
            [part(2, 3, HELLO[16:]), part(0, 3, HELLO[:8]), part(1, 3, HELLO[8:16]), part(0, 3, HELLO[:8])],
            200,
            "",
        ),
        ([part(0, 1, HELLO)], 502, "does not match its size/sha256"),  # final reply: sha256 of "hello"
        ([part(0, 3, HELLO[:8]), part(2, 3, HELLO[16:])], 502, "1 of 3 parts missing (first: part 1)"),
        ([part(0, 2, HELLO[:8]), part(1, 3, HELLO[8:])], 502, "part 1 says 3 parts, an earlier one 2"),
        ([part(0, 1, HELLO), part(0, 1, HELLO[:4])], 502, "part 0 sent twice"),
        ([part(0, 1, "not base64!")], 502, "not base64"),
        ([part(0, 1, HELLO) | {"index": -1}], 502, "malformed part: index"),
        ([], 502, "the reply names 1 parts, 0 announced"),
    ],
)
async def test_parts_are_joined_and_checked(
    gw: MemoryGateway, replies: list[dict[str, Any]], status: int, reason: str
) -> None:
    sha = HELLO_SHA if status == 200 else hashlib.sha256(b"hello").hexdigest()
    size = 13 if status == 200 else 5

    def reply(req: dict[str, Any]) -> list[dict[str, Any]]:
        return [*replies, final(size, sha, 1 if not replies else replies[0]["parts"])]

    async with responder(gw.bus, "report", reply):
        r = await gw.api.get("/reports/executive", params={"asset_id": A})
    assert r.status_code == status, r.text
    if status == 200:
        assert r.content == b"hello report!"
    else:
        assert reason in r.json()["detail"], r.text


async def test_a_document_larger_than_max_payload_bytes_downloads_intact(tmp_path: Path) -> None:
    """MAX_PAYLOAD_BYTES 4096 (the gateway dead-letters a bigger message) and a 60 kB document: the real
    reporter sends it in parts, the gateway joins them; over REPORT_MAX_BYTES it is a 422."""
    doc = random.Random(5).randbytes(60_000)
    settings = memory_settings(tmp_path, report_timeout_s=10, max_payload_bytes=4096)
    async with memory_gateway(settings) as g:
        store_readings(g, 48)
        svc = build(g.settings, store=g.app.state.ctx.store, builders={"excel": lambda d: doc})
        small = build(
            g.settings.model_copy(update={"report_max_bytes": 50_000}),
            store=g.app.state.ctx.store,
            builders={"excel": lambda d: doc},
        )
        async with running_in_memory(svc, g.bus):
            r = await g.api.get("/reports/excel", params={"asset_id": A})
        assert r.status_code == 200, r.text
        assert r.content == doc and r.headers["x-report-sha256"] == hashlib.sha256(doc).hexdigest()
        async with running_in_memory(small, g.bus):
            big = await g.api.get("/reports/excel", params={"asset_id": A})
        assert big.status_code == 422 and "REPORT_MAX_BYTES" in big.json()["detail"], big.text
