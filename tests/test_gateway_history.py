"""History endpoints by data time (``/assets/{id}/readings|scores|health|features``): ``from``/``to``
(ISO-8601 or epoch seconds), paging with ``after``/``next``, the default window at the asset's newest
data, and 422s with reasons. The real app on the in-memory bus with a SQLite store
(:mod:`tests.support.gateway`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared import records
from shared.messages import FeatureVector, HealthUpdate, OperatorLog, Reading, Score
from shared.store import Point, open_store
from tests.support.gateway import MemoryGateway, memory_gateway, memory_settings

T2012 = datetime(2012, 3, 1, tzinfo=UTC)  # replayed / backfilled data, years before the wall clock
STEP = timedelta(seconds=10)
N = 1_080  # 3 h of readings every 10 s
MODELS = ("legacy", "batch", "autoencoder")


@pytest.fixture
async def mgw(tmp_path: Path) -> AsyncIterator[MemoryGateway]:
    async with memory_gateway(memory_settings(tmp_path)) as g:
        yield g


def _write(g: MemoryGateway, points: list[Point]) -> None:
    store = open_store(g.settings)
    try:
        store.write(points)
    finally:
        store.close()


def _reading(asset: str, i: int, t0: datetime = T2012) -> Reading:
    return Reading(
        event_id=uuid.uuid4().hex,
        asset_id=asset,
        ts=t0 + i * STEP,
        voltage_v=200.0 + i % 50,
        current_a=1.0,
        power_factor=0.8,
        vibration_g=0.2,
    )


def _score(asset: str, event_id: str, ts: datetime, model: str) -> Score:
    return Score(
        event_id=event_id,
        asset_id=asset,
        ts=ts,
        model=model,  # type: ignore[arg-type]
        model_version="v1",
        anomaly_score=0.1,
        raw_score=0.2,
        threshold=1.0,
        is_anomaly=False,
        severity="NORMAL",
    )


def _history(asset: str, n: int) -> list[Point]:
    """Readings, one to three model scores per reading (sharing its stored time), health and vibration
    features, all in 2012."""
    points: list[Point] = []
    for i in range(n):
        r = _reading(asset, i)
        points.append(records.reading_to_point(r))
        points += [records.score_to_point(_score(asset, r.event_id, r.ts, m)) for m in MODELS[: 1 + i % 3]]
        health = HealthUpdate(
            asset_id=asset,
            ts=r.ts,
            health_score=90.0,
            risk_level="LOW",
            grade="A",
            degradation_index=0.0,
            maintenance_window_days=30.0,
        )
        points.append(records.health_to_point(health))
        fv = FeatureVector(
            event_id=r.event_id,
            asset_id=asset,
            ts=r.ts,
            kind="vibration",
            names=["rms", "kurtosis"],
            values=[0.1 * i, 3.0],
            extras={"crest": 1.5},
        )
        points.append(records.features_to_point(fv))
    return points


async def _get(g: MemoryGateway, path: str, **params: Any) -> dict[str, Any]:
    r = await g.api.get(path, params=params)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def _walk(g: MemoryGateway, path: str, key: str, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Every page of ``path`` from ``params`` on (``after`` = the previous ``next``)."""
    items: list[dict[str, Any]] = []
    after, pages = None, 0
    while True:
        body = await _get(g, path, **params, **({"after": after} if after is not None else {}))
        pages += 1
        assert pages <= 2 * N, "paging does not end"
        items += body[key]
        assert body["count"] == len(body[key])
        assert body["truncated"] is (body["next"] is not None)
        if body["next"] is None:
            return items, pages
        after = body["next"]


async def test_data_from_2012_reads_by_from_to_iso_and_epoch(mgw: MemoryGateway) -> None:
    asset = "replayed-2012"
    _write(mgw, _history(asset, 120))
    frm, to = T2012 + 30 * STEP, T2012 + 40 * STEP
    body = await _get(mgw, f"/assets/{asset}/readings", **{"from": frm.isoformat(), "to": to.isoformat()})
    got = [Reading.model_validate(x) for x in body["readings"]]
    assert [r.ts for r in got] == [T2012 + i * STEP for i in range(30, 40)]  # [from, to): to excluded
    assert (body["count"], body["truncated"], body["next"], body["minutes"]) == (10, False, None, None)
    assert (datetime.fromisoformat(body["start"]), datetime.fromisoformat(body["end"])) == (frm, to)
    # epoch seconds, "Z", and naive (UTC) times name the same range
    for a, b in (
        (str(frm.timestamp()), str(int(to.timestamp()))),
        (frm.strftime("%Y-%m-%dT%H:%M:%SZ"), to.replace(tzinfo=None).isoformat()),
        (str(int(frm.timestamp() * 1000)), str(int(to.timestamp() * 1000))),  # ms, as in the contract
    ):
        again = await _get(mgw, f"/assets/{asset}/readings", **{"from": a, "to": b})
        assert again["readings"] == body["readings"], (a, b)
    scores = await _get(mgw, f"/assets/{asset}/scores", **{"from": frm.isoformat(), "to": to.isoformat()})
    assert scores["count"] == sum(1 + i % 3 for i in range(30, 40))
    one = await _get(
        mgw, f"/assets/{asset}/scores", model="batch", **{"from": frm.isoformat(), "to": to.isoformat()}
    )
    assert {s["model"] for s in one["scores"]} == {"batch"} and one["count"] == 6
    health = await _get(mgw, f"/assets/{asset}/health", **{"from": frm.isoformat(), "to": to.isoformat()})
    assert [h["ts"] for h in health["history"]] == [x["ts"] for x in body["readings"]]
    feats = await _get(
        mgw, f"/assets/{asset}/features", kind="vibration", **{"from": frm.isoformat(), "to": to.isoformat()}
    )
    vectors = [FeatureVector.model_validate(x) for x in feats["features"]]
    assert [v.event_id for v in vectors] == [r.event_id for r in got]  # what replay --resume skips
    assert (vectors[0].names, vectors[0].values, vectors[0].extras) == (
        ["rms", "kurtosis"],
        [3.0, 3.0],
        {"crest": 1.5},
    )
    assert feats["kind"] == "vibration"


async def test_default_window_is_the_last_minutes_of_this_assets_data(mgw: MemoryGateway) -> None:
    """Without from/to the window ends at the asset's newest stored point of the measurement, not at
    the wall clock (2012 data is years old), and holds the newest ``limit`` points (a live view)."""
    asset = "idle-since-2012"
    _write(mgw, [records.reading_to_point(_reading(asset, i)) for i in range(N)])
    newest = T2012 + (N - 1) * STEP
    body = await _get(mgw, f"/assets/{asset}/readings")
    assert (body["minutes"], body["count"], body["truncated"], body["next"]) == (60, 360, False, None)
    assert datetime.fromisoformat(body["end"]) == newest + timedelta(microseconds=1)
    assert datetime.fromisoformat(body["start"]) == newest + timedelta(microseconds=1) - timedelta(minutes=60)
    assert datetime.fromisoformat(body["readings"][-1]["ts"]) == newest
    assert datetime.fromisoformat(body["readings"][0]["ts"]) == newest - timedelta(seconds=3590)
    # Existing clients: minutes + limit give the newest `limit` of the window, truncated.
    body = await _get(mgw, f"/assets/{asset}/readings", minutes=120, limit=5)
    assert (body["count"], body["truncated"], body["next"]) == (5, True, None)
    assert datetime.fromisoformat(body["readings"][-1]["ts"]) == newest
    # `to` alone: the `minutes` before it
    body = await _get(mgw, f"/assets/{asset}/readings", to=(T2012 + 60 * STEP).isoformat(), minutes=5)
    assert [datetime.fromisoformat(x["ts"]) for x in body["readings"]] == [
        T2012 + i * STEP for i in range(30, 60)
    ]
    # Another asset's newer data does not move this asset's window; scores follow their own newest.
    _write(mgw, [records.reading_to_point(_reading("live-now", 0, datetime.now(UTC).replace(microsecond=0)))])
    assert (await _get(mgw, f"/assets/{asset}/readings"))["count"] == 360
    assert (await _get(mgw, f"/assets/{asset}/scores"))["count"] == 0  # known asset, no scores: empty


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 100, 10_000])
async def test_paging_walks_every_point_exactly_once(mgw: MemoryGateway, limit: int) -> None:
    asset = "paged"
    n = 150
    points = _history(asset, n)
    _write(mgw, points)
    frm, to = T2012.isoformat(), (T2012 + n * STEP).isoformat()
    scores, pages = await _walk(
        mgw, f"/assets/{asset}/scores", "scores", limit=limit, **{"from": frm, "to": to}
    )
    want = sorted((p.fields["event_id"], p.tags["model"]) for p in points if p.measurement == records.SCORES)
    got = [(s["event_id"], s["model"]) for s in scores]
    assert sorted(got) == want and len(set(got)) == len(got)  # all of them, once
    times = [datetime.fromisoformat(s["ts"]) for s in scores]
    assert times == sorted(times)  # oldest first across pages
    if limit < 3:  # the scores of one event are never split: a page holds whole events
        assert pages == n
    readings, _ = await _walk(mgw, f"/assets/{asset}/readings", "readings", limit=limit, **{"from": frm})
    assert len({r["event_id"] for r in readings}) == len(readings) == n
    feats, _ = await _walk(
        mgw, f"/assets/{asset}/features", "features", kind="vibration", limit=limit, **{"from": frm, "to": to}
    )
    assert [f["event_id"] for f in feats] == [r["event_id"] for r in readings]


async def test_a_page_reports_its_range_and_the_cursor(mgw: MemoryGateway) -> None:
    asset = "cursor"
    _write(mgw, [records.reading_to_point(_reading(asset, i)) for i in range(10)])
    first = await _get(mgw, f"/assets/{asset}/readings", limit=4, **{"from": T2012.isoformat()})
    assert (first["count"], first["truncated"], first["minutes"]) == (4, True, None)
    assert datetime.fromisoformat(first["start"]) == T2012
    assert datetime.fromisoformat(first["end"]) == T2012 + 9 * STEP + timedelta(microseconds=1)  # newest
    second = await _get(
        mgw, f"/assets/{asset}/readings", limit=4, after=first["next"], **{"from": T2012.isoformat()}
    )
    assert [x["ts"] for x in second["readings"]] == [
        (await _get(mgw, f"/assets/{asset}/readings", **{"from": T2012.isoformat()}))["readings"][i]["ts"]
        for i in range(4, 8)
    ]
    # `after` alone continues from the cursor
    rest = await _get(mgw, f"/assets/{asset}/readings", after=second["next"])
    assert (rest["count"], rest["truncated"], rest["next"]) == (2, False, None)
    # a range after the data: empty, 200 (the asset is known)
    later = await _get(mgw, f"/assets/{asset}/readings", **{"from": "2013-01-01T00:00:00Z"})
    assert later["count"] == 0


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"from": "yesterday"}, "query.from: not an ISO-8601 time or Unix epoch seconds: 'yesterday'"),
        ({"to": "2012-13-01"}, "query.to: not an ISO-8601 time or Unix epoch seconds: '2012-13-01'"),
        ({"from": "2012-03-01T00:00:00 01:00"}, "(a '+' in a URL must be sent as %2B)"),
        (
            {"from": "2012-03-02", "to": "2012-03-01"},
            "query.from: from (2012-03-02T00:00:00+00:00) must be before to",
        ),
        ({"from": "1330560000", "to": "1330560000"}, "must be before to"),
        ({"from": "-5"}, "query.from: 1969-12-31T23:59:55+00:00 is outside 1970-01-01 .. 2262-04-11"),
        ({"to": "1e30"}, "query.to: not an ISO-8601 time or Unix epoch seconds"),
        ({"to": "nan"}, "query.to: not an ISO-8601 time or Unix epoch seconds: 'nan'"),
        ({"after": "-1"}, "query.after: Input should be greater than or equal to 0"),
        ({"after": "abc"}, "query.after: Input should be a valid integer"),
        ({"limit": "0"}, "query.limit: Input should be greater than or equal to 1"),
    ],
)
async def test_bad_ranges_are_422_with_the_reason(
    mgw: MemoryGateway, params: dict[str, str], reason: str
) -> None:
    _write(mgw, [records.reading_to_point(_reading("m1", 0))])
    for path in ("/assets/m1/readings", "/assets/m1/scores", "/assets/m1/health"):
        r = await mgw.api.get(path, params=params)
        assert r.status_code == 422, (path, r.text)
        assert reason in r.json()["detail"], r.json()["detail"]
    r = await mgw.api.get("/assets/m1/features", params={"from": "2012-01-01"})
    assert r.status_code == 422 and "query.kind: Field required" in r.json()["detail"]
    r = await mgw.api.get("/assets/m1/features", params={"kind": "spectral"})
    assert r.status_code == 422 and "query.kind" in r.json()["detail"]


async def test_unknown_asset_is_404_with_any_range(mgw: MemoryGateway) -> None:
    for path in ("readings", "scores", "health"):
        r = await mgw.api.get(f"/assets/nobody/{path}", params={"from": "2012-01-01"})
        assert r.status_code == 404 and "unknown asset" in r.json()["detail"]
    r = await mgw.api.get("/assets/nobody/features", params={"kind": "batch"})
    assert r.status_code == 404


async def test_logs_by_entry_time_from_to_and_the_newest_entries(mgw: MemoryGateway) -> None:
    """Backfilled maintenance logs from 2012: the default window is the last ``hours`` before the newest
    stored entry (not the wall clock); ``from``/``to`` select any range; bad ranges are 422."""
    entries = [
        OperatorLog(
            log_id=uuid.uuid4().hex, asset_id="pump", event_type="observation", ts=T2012 + timedelta(hours=h)
        )
        for h in (0, 30, 40, 50)
    ]
    _write(mgw, [records.oplog_to_point(e) for e in entries])
    body = await _get(mgw, "/logs", asset_id="pump")  # the 24 h before the newest: 50 h, 40 h, 30 h
    assert [x["log_id"] for x in body["logs"]] == [e.log_id for e in entries[:0:-1]]  # newest first
    assert datetime.fromisoformat(body["end"]) == entries[3].ts + timedelta(microseconds=1)
    body = await _get(
        mgw, "/logs", **{"from": T2012.isoformat(), "to": (T2012 + timedelta(hours=31)).isoformat()}
    )
    assert [x["log_id"] for x in body["logs"]] == [entries[1].log_id, entries[0].log_id]
    body = await _get(mgw, "/logs", limit=1, **{"from": T2012.isoformat()})
    assert (body["count"], body["truncated"], body["logs"][0]["log_id"]) == (1, True, entries[3].log_id)
    r = await mgw.api.get("/logs", params={"from": "2012-03-02", "to": "2012-03-01"})
    assert r.status_code == 422 and "must be before to" in r.json()["detail"]
