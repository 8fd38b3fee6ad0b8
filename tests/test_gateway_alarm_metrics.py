"""``GET /alarms/metrics`` and the priority / first-out marks of ``GET /alarms``: the real gateway app on
the in-memory bus with a SQLite store holding the scripted alarm history of tests/test_alarm_metrics.py
(its hand-worked answers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared import records, topics
from shared.messages import AssetConfig
from shared.store import open_store
from tests.support.gateway import MemoryGateway, memory_gateway, memory_settings, poll
from tests.test_alarm_metrics import END, T0, scripted

WINDOW = {"from": T0.isoformat(), "to": END.isoformat()}


@pytest.fixture
async def mgw(tmp_path: Path) -> AsyncIterator[tuple[MemoryGateway, dict[str, str]]]:
    async with memory_gateway(memory_settings(tmp_path)) as g:
        h, ids = scripted()
        store = open_store(g.settings)
        try:
            store.write([records.alarm_to_point(e) for e in h.events])
        finally:
            store.close()
        for a in ("p1a", "p1b"):
            await g.retain(topics.asset_config(a), AssetConfig(asset_id=a, type="pump", machine="pump1"))
        await poll(lambda: {"p1a", "p1b"} <= set(g.view.configs))
        yield g, ids


async def test_fleet_metrics_over_a_period(mgw: tuple[MemoryGateway, dict[str, str]]) -> None:
    g, ids = mgw
    r = await g.clients["viewer"].get("/alarms/metrics", params=WINDOW)
    assert r.status_code == 200, r.text
    body = r.json()
    m = body["metrics"]
    assert (body["scope"], m["basis"]["alarms"], m["basis"]["duration_s"]) == ("fleet", 8, 7200.0)
    assert m["by_priority"] == {"high": 3, "medium": 4, "low": 1}
    assert (m["rate"]["peak_per_10min"], m["rate"]["machine_floods"]) == (3, 2)
    assert (m["ack"]["acknowledged"], m["ack"]["median_s"], m["ack"]["unacknowledged_open"]) == (3, 120.0, 1)
    assert [s["alarm_id"] for s in m["standing"]] == [ids["long"], ids["standing"]]
    assert [(c["asset_id"], c["source"]) for c in m["chattering"]] == [("fan", "anomaly")]
    assert [(f["machine"], f["first_out"]) for f in body["floods"]] == [
        ("pump1", ids["first"]),
        ("fan", ids["chat0"]),
    ]
    per = {a["asset_id"]: a for a in body["per_asset"]}
    assert set(per) == {"fan", "p1a", "p1b"}
    assert (per["p1a"]["machine"], per["p1a"]["metrics"]["basis"]["alarms"]) == ("pump1", 3)
    # p1b's one alarm is the first-out of pump1's flood: the machine's flood counts for it.
    assert per["p1b"]["metrics"]["rate"]["machine_floods"] == 1


async def test_asset_metrics_and_default_period(mgw: tuple[MemoryGateway, dict[str, str]]) -> None:
    g, ids = mgw
    r = await g.clients["viewer"].get("/alarms/metrics", params={**WINDOW, "asset_id": "p1a"})
    body = r.json()
    assert (body["scope"], body["asset_id"], body["per_asset"]) == ("asset", "p1a", [])
    assert body["metrics"]["basis"]["alarms"] == 3  # iso, third, trend
    assert [f["alarm_ids"] for f in body["floods"]] == [[ids["first"], ids["iso"], ids["third"]]]
    # Default: the 24 h before just after the newest transition (the late ack at T0+3 h).
    d = (await g.api.get("/alarms/metrics")).json()
    assert d["end"].startswith("2026-01-01T03:00:00.000001")
    assert d["metrics"]["basis"]["alarms"] == 8


@pytest.mark.parametrize(
    ("params", "status", "reason"),
    [
        ({"asset_id": "no/such"}, 422, "pattern"),
        ({"asset_id": "ghost"}, 404, "unknown asset"),
        ({"from": "yesterday"}, 422, "not an ISO-8601"),
        ({"from": END.isoformat(), "to": T0.isoformat()}, 422, "must be before"),
        ({"from": "2020-01-01T00:00:00", "to": "2022-01-01T00:00:00"}, 422, "at most 366"),
        ({"hours": 0}, 422, "greater than or equal"),
    ],
)
async def test_bad_queries_are_4xx_with_a_reason(
    mgw: tuple[MemoryGateway, dict[str, str]], params: dict[str, object], status: int, reason: str
) -> None:
    r = await mgw[0].api.get("/alarms/metrics", params=params)
    assert r.status_code == status, r.text
    assert reason in r.text


async def test_metrics_need_a_viewer(mgw: tuple[MemoryGateway, dict[str, str]]) -> None:
    assert (await mgw[0].clients[None].get("/alarms/metrics")).status_code == 401


async def test_alarm_list_has_priority_and_first_out(mgw: tuple[MemoryGateway, dict[str, str]]) -> None:
    g, ids = mgw
    body = (await g.clients["viewer"].get("/alarms")).json()
    items = {a["alarm_id"]: a for a in body["alarms"]}
    first, iso, third = items[ids["first"]], items[ids["iso"]], items[ids["third"]]
    assert (first["first_out"], first["first_out_id"], first["priority_name"]) == (
        True,
        ids["first"],
        "medium",
    )
    assert (iso["first_out"], iso["first_out_id"], iso["priority"]) == (False, ids["first"], 1)
    assert (third["priority_name"], third["state"]) == ("high", "RESOLVED")  # escalated to CRITICAL
    assert items[ids["trend"]]["first_out_id"] is None and items[ids["trend"]]["priority_name"] == "low"
    # One asset's list still sees the flood through its machine's other asset.
    only = (await g.api.get("/alarms", params={"asset_id": "p1a"})).json()["alarms"]
    assert {a["asset_id"] for a in only} == {"p1a"}
    assert {a["alarm_id"]: a["first_out_id"] for a in only}[ids["iso"]] == ids["first"]
