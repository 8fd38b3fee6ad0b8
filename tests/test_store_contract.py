"""One contract suite for both store adapters: SQLite in tmp_path, InfluxDB on the real influxd."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared import records
from shared.messages import Reading, Score
from shared.settings import Settings
from shared.store import Point, Store, StoreError, StoreUnavailable, open_store, paging
from shared.store.identity import event_slot
from shared.store.influx import InfluxStore, line_protocol
from shared.store.sqlite import SqliteStore
from tests.support.servers import InfluxServer

T0 = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z in ns
S = 1_000_000_000  # one second in ns

HOSTILE = ['x" OR 1=1', "a/b", "'; DROP", 'a" OR "1"="1', "", "a b", "a\nb", "a+b", "#", "é"]


def _fresh_db() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["sqlite", pytest.param("influx", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s: Store = SqliteStore(tmp_path / "sub" / "dir" / "points.db")
        yield s
        s.close()
    else:
        srv: InfluxServer = request.getfixturevalue("influxd")
        db = _fresh_db()
        s = InfluxStore(srv.url, db)
        yield s
        s.close()
        httpx.post(f"{srv.url}/query", data={"q": f'DROP DATABASE "{db}"'})


def p(ts: int, asset: str = "m1", measurement: str = "readings", tags: dict | None = None, **fields) -> Point:
    return Point(measurement, asset, ts, fields or {"v": 1.0}, tags or {})


def test_round_trip_floats_bools_strings(store: Store) -> None:
    text = 'he said "hi", a=b \\ c\nnext line'
    store.write([p(T0, v=1.5, i=3, b=True, f=False, s=text, e="", tiny=-1.25e-7, big=1e300)])
    [got] = store.query("readings", "m1")
    assert got.measurement == "readings" and got.asset_id == "m1" and got.ts_ns == T0
    assert dict(got.tags) == {}
    assert dict(got.fields) == {
        "v": 1.5,
        "i": 3.0,
        "b": True,
        "f": False,
        "s": text,
        "e": "",
        "tiny": -1.25e-7,
        "big": 1e300,
    }
    assert type(got.fields["i"]) is float and type(got.fields["v"]) is float
    assert type(got.fields["b"]) is bool and type(got.fields["f"]) is bool


def test_whole_float_comes_back_as_float(store: Store) -> None:
    store.write([p(T0, v=2.0)])
    [got] = store.query("readings", "m1")
    assert got.fields["v"] == 2.0 and type(got.fields["v"]) is float


def test_oldest_first_whatever_the_write_order(store: Store) -> None:
    store.write([p(T0 + 3 * S, v=3.0), p(T0 + 1 * S, v=1.0), p(T0 + 2 * S, v=2.0)])
    got = store.query("readings", "m1")
    assert [x.ts_ns for x in got] == [T0 + S, T0 + 2 * S, T0 + 3 * S]
    assert [x.fields["v"] for x in got] == [1.0, 2.0, 3.0]


def test_time_range_is_start_inclusive_end_exclusive(store: Store) -> None:
    store.write([p(T0 + i, v=float(i)) for i in range(5)])  # 1 ns apart: exact bounds
    got = store.query("readings", "m1", start_ns=T0 + 1, end_ns=T0 + 3)
    assert [x.fields["v"] for x in got] == [1.0, 2.0]
    assert [x.fields["v"] for x in store.query("readings", "m1", start_ns=T0 + 3)] == [3.0, 4.0]
    assert [x.fields["v"] for x in store.query("readings", "m1", end_ns=T0 + 1)] == [0.0]
    assert store.query("readings", "m1", start_ns=T0 + 2, end_ns=T0 + 2) == []


def test_limit_and_newest(store: Store) -> None:
    store.write([p(T0 + i * S, v=float(i)) for i in range(5)])
    assert [x.fields["v"] for x in store.query("readings", "m1", limit=2)] == [0.0, 1.0]
    newest = store.query("readings", "m1", limit=2, newest=True)
    assert [x.fields["v"] for x in newest] == [3.0, 4.0]  # newest two, still oldest first
    assert store.query("readings", "m1", limit=0) == []
    assert len(store.query("readings", "m1", newest=True)) == 5
    in_range = store.query("readings", "m1", start_ns=T0, end_ns=T0 + 3 * S, limit=1, newest=True)
    assert [x.fields["v"] for x in in_range] == [2.0]


def test_other_assets_and_measurements_are_not_mixed_in(store: Store) -> None:
    store.write([p(T0, "m1", v=1.0), p(T0, "m2", v=2.0), p(T0, "m1", "scores", v=3.0)])
    assert [x.fields["v"] for x in store.query("readings", "m1")] == [1.0]
    assert [x.fields["v"] for x in store.query("readings", "m2")] == [2.0]
    assert [x.fields["v"] for x in store.query("scores", "m1")] == [3.0]
    assert store.query("nothing_here", "m1") == []
    assert store.query("readings", "m3") == []


def test_tags_are_part_of_identity(store: Store) -> None:
    store.write(
        [
            p(T0, measurement="scores", tags={"model": "legacy"}, v=1.0),
            p(T0, measurement="scores", tags={"model": "batch"}, v=2.0),
            p(T0, measurement="scores", v=3.0),
        ]
    )
    got = store.query("scores", "m1")
    assert sorted((dict(x.tags).get("model", ""), x.fields["v"]) for x in got) == [
        ("", 3.0),
        ("batch", 2.0),
        ("legacy", 1.0),
    ]
    assert store.count("scores", "m1") == 3
    only = store.query("scores", "m1", tags={"model": "batch"})
    assert [(dict(x.tags), x.fields["v"]) for x in only] == [({"model": "batch"}, 2.0)]
    assert store.query("scores", "m1", tags={"model": "autoencoder"}) == []


def test_newest_limit_across_tag_sets(store: Store) -> None:
    pts = [p(T0 + i * S, measurement="scores", tags={"model": "legacy"}, v=float(i)) for i in range(0, 6, 2)]
    pts += [p(T0 + i * S, measurement="scores", tags={"model": "batch"}, v=float(i)) for i in range(1, 6, 2)]
    store.write(pts)
    got = store.query("scores", "m1", limit=3, newest=True)
    assert [x.fields["v"] for x in got] == [3.0, 4.0, 5.0]
    assert [dict(x.tags)["model"] for x in got] == ["batch", "legacy", "batch"]
    assert [x.fields["v"] for x in store.query("scores", "m1", limit=2)] == [0.0, 1.0]


def test_rewriting_the_same_identity_replaces(store: Store) -> None:
    point = p(T0, event_id="e1", v=1.0)
    store.write([point])
    store.write([point, point])
    assert store.count("readings", "m1") == 1
    store.write([p(T0, event_id="e1", v=9.0)])
    [got] = store.query("readings", "m1")
    assert dict(got.fields) == {"event_id": "e1", "v": 9.0}


def _reading(event_id: str, ts: datetime, v: float = 400.0) -> Reading:
    return Reading(
        event_id=event_id,
        asset_id="m1",
        ts=ts,
        voltage_v=v,
        current_a=10.0,
        power_factor=0.9,
        vibration_g=0.2,
    )


def test_event_identity_redelivery_once_shared_timestamp_both_kept(store: Store) -> None:
    """Exactly-once storage by event id: a redelivered or retried event is one point, two events that
    share a timestamp (to the microsecond) are two, and both read back with that timestamp."""
    ts = datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    # Two event ids in different sub-microsecond slots (shared.store.identity), as almost every pair is.
    a, b = (uuid.UUID(int=i).hex for i in (1, 2))
    assert event_slot(a) != event_slot(b)
    first, second = _reading(a, ts, 401.0), _reading(b, ts, 402.0)
    store.write([records.reading_to_point(first)])
    store.write([records.reading_to_point(first), records.reading_to_point(second)])  # redelivery + new
    store.write([records.reading_to_point(first)])  # a client's retry
    got = [records.point_to_reading(x) for x in store.query(records.READINGS, "m1")]
    assert sorted(got, key=lambda r: r.event_id) == [first, second]
    assert store.count(records.READINGS, "m1") == 2
    assert all(r.ts == ts for r in got)
    # the same event scored by two models: two points (the score's model is a tag)
    scores = [
        Score(
            event_id=a,
            asset_id="m1",
            ts=ts,
            model=m,
            model_version="v1",
            anomaly_score=0.1,
            raw_score=0.1,
            threshold=1.0,
            is_anomaly=False,
            severity="NORMAL",
        )
        for m in ("legacy", "batch", "legacy")
    ]
    store.write([records.score_to_point(s) for s in scores])
    assert sorted(x.tags["model"] for x in store.query(records.SCORES, "m1")) == ["batch", "legacy"]


def test_count_with_range(store: Store) -> None:
    assert store.count("readings", "m1") == 0
    store.write([p(T0 + i * S, event_id=f"e{i}", v=float(i)) for i in range(10)])
    store.write([p(T0, "m2", v=0.0)])
    assert store.count("readings", "m1") == 10
    assert store.count("readings", "m1", start_ns=T0 + 2 * S, end_ns=T0 + 5 * S) == 3
    assert store.count("readings", "m1", start_ns=T0 + 10 * S) == 0
    assert store.count("readings", "m2") == 1


def test_assets_and_delete_asset(store: Store) -> None:
    assert store.assets() == []
    store.write(
        [
            p(T0, "pump-2.b_c"),
            p(T0, "m1"),
            p(T0, "m1", "scores", tags={"model": "legacy"}),
            p(T0, "fan", "states", state="IDLE"),
        ]
    )
    assert store.assets() == ["fan", "m1", "pump-2.b_c"]
    store.delete_asset("m1")
    assert store.assets() == ["fan", "pump-2.b_c"]
    assert store.query("readings", "m1") == [] and store.query("scores", "m1") == []
    assert store.count("readings", "pump-2.b_c") == 1
    assert [x.fields["state"] for x in store.query("states", "fan")] == ["IDLE"]
    store.delete_asset("never-existed")
    store.write([p(T0 + S, "m1", v=5.0)])  # an asset can come back after a purge
    assert store.assets() == ["fan", "m1", "pump-2.b_c"]
    assert [x.fields["v"] for x in store.query("readings", "m1")] == [5.0]


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_asset_ids_are_rejected(store: Store, bad: str) -> None:
    store.write([p(T0, "m1", v=1.0)])
    with pytest.raises(StoreError):
        store.query("readings", bad)
    with pytest.raises(StoreError):
        store.count("readings", bad)
    with pytest.raises(StoreError):
        store.delete_asset(bad)
    with pytest.raises(StoreError):
        store.write([p(T0, "m1", v=2.0), p(T0, bad, v=1.0)])
    with pytest.raises(StoreError):
        store.query("readings", "m1", tags={"model": bad})
    # nothing was deleted and the valid point of the refused batch was not written either
    assert [x.fields["v"] for x in store.query("readings", "m1")] == [1.0]
    assert store.assets() == ["m1"]


@pytest.mark.parametrize("bad", HOSTILE + ["1abc", "time;", 'readings" WHERE 1=1 --', "a" * 65])
def test_hostile_measurement_and_key_names_are_rejected(store: Store, bad: str) -> None:
    with pytest.raises(StoreError):
        store.query(bad, "m1")
    with pytest.raises(StoreError):
        store.count(bad, "m1")
    with pytest.raises(StoreError):
        store.write([p(T0, "m1", bad)])
    with pytest.raises(StoreError):
        store.write([Point("readings", "m1", T0, {bad: 1.0})])
    with pytest.raises(StoreError):
        store.write([Point("readings", "m1", T0, {"v": 1.0}, {bad: "x"})])
    with pytest.raises(StoreError):
        store.query("readings", "m1", tags={bad: "x"})
    assert store.assets() == []


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"v": float("nan")},
        {"v": float("inf")},
        {"v": None},
        {"v": [1.0]},
        {"time": 1.0},
        {"asset_id": "x"},
    ],
)
def test_bad_fields_are_rejected(store: Store, fields: dict) -> None:
    with pytest.raises(StoreError):
        store.write([Point("readings", "m1", T0, fields)])
    assert store.count("readings", "m1") == 0


def test_bad_query_arguments_are_rejected(store: Store) -> None:
    with pytest.raises(StoreError):
        store.query("readings", "m1", limit=-1)
    with pytest.raises(StoreError):
        store.query("readings", "m1", start_ns="0 OR 1=1")  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        store.write([Point("readings", "m1", 1.5, {"v": 1.0})])  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        store.write([Point("readings", "m1", T0, {"model": 1.0}, {"model": "legacy"})])


def test_empty_write_is_a_no_op_and_ping(store: Store) -> None:
    store.write([])
    assert store.ping() is True
    assert store.assets() == []


def test_large_write_is_complete(store: Store) -> None:
    n = 12_345  # Influx: three 5,000-line requests
    store.write([p(T0 + i * 1000, event_id=f"e{i}", v=float(i)) for i in range(n)])
    assert store.count("readings", "m1") == n
    last = store.query("readings", "m1", limit=2, newest=True)
    assert [x.fields["event_id"] for x in last] == [f"e{n - 2}", f"e{n - 1}"]


# --- paging by data time (shared.store.paging, on the port alone) -----------------------------------
T2012 = 1_325_376_000_000_000_000  # 2012-01-01T00:00:00Z in ns: replayed / backfilled data


def _walk(store: Store, limit: int, **kw: Any) -> tuple[list[Point], int]:
    """Every page of scores of m1 from the first (``kw``: start_ns/end_ns); the points and the pages."""
    out: list[Point] = []
    start, pages = kw.pop("start_ns", None), 0
    while True:
        page = paging.forward(store, "scores", "m1", start_ns=start, limit=limit, **kw)
        out += page.points
        pages += 1
        assert pages < 100, "paging does not end"
        if page.next_after_ns is None:
            return out, pages
        assert page.points and page.points[-1].ts_ns == page.next_after_ns
        start = page.next_after_ns + 1


def test_paging_walks_every_point_once_and_never_splits_one_time(store: Store) -> None:
    """Scores of three models share each event's time: pages of any size visit each point once, a page
    ends before a time it cannot hold whole, and a time holding more points than the limit is one page."""
    models = ("legacy", "batch", "autoencoder")
    pts = [
        p(T2012 + i * S + 7, measurement="scores", tags={"model": m}, v=float(i))
        for i in range(7)
        for m in models[: 1 + i % 3]  # 1, 2 or 3 points at one time
    ]
    store.write(pts)
    want = sorted((x.ts_ns, x.tags["model"]) for x in pts)
    for limit in (1, 2, 3, 4, 5, 100):
        got, pages = _walk(store, limit, end_ns=None)
        assert sorted((x.ts_ns, x.tags["model"]) for x in got) == want, limit
        assert len({(x.ts_ns, x.tags["model"]) for x in got}) == len(pts), limit
        assert [x.ts_ns for x in got] == sorted(x.ts_ns for x in got), limit
    page = paging.forward(store, "scores", "m1", start_ns=None, end_ns=None, limit=2)
    assert [x.ts_ns for x in page.points] == [T2012 + 7]  # time 1 holds 2 points: not split
    page = paging.forward(store, "scores", "m1", start_ns=T2012 + 2 * S, end_ns=None, limit=1)
    assert len(page.points) == 3 and page.next_after_ns == T2012 + 2 * S + 7  # one time, 3 points
    last = paging.forward(store, "scores", "m1", start_ns=T2012 + 5 * S, end_ns=T2012 + 6 * S, limit=1)
    assert len(last.points) == 3 and last.next_after_ns is None  # nothing after it in the range
    more = paging.forward(store, "scores", "m1", start_ns=T2012 + 5 * S, end_ns=None, limit=1)
    assert len(more.points) == 3 and more.next_after_ns == T2012 + 5 * S + 7


def test_paging_range_bounds_and_newest(store: Store) -> None:
    store.write(
        [p(T2012 + i * S, measurement="scores", tags={"model": "legacy"}, v=float(i)) for i in range(10)]
    )
    got, _ = _walk(store, 3, start_ns=T2012 + 2 * S, end_ns=T2012 + 8 * S)
    assert [x.fields["v"] for x in got] == [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert paging.newest_ns(store, "scores", "m1") == T2012 + 9 * S
    assert paging.newest_ns(store, "scores", "m1", end_ns=T2012 + 5 * S) == T2012 + 4 * S
    assert paging.newest_ns(store, "scores", "m1", tags={"model": "batch"}) is None
    assert paging.newest_ns(store, "readings", "m1") is None
    pts, older = paging.newest(store, "scores", "m1", start_ns=T2012, end_ns=T2012 + 5 * S, limit=2)
    assert ([x.fields["v"] for x in pts], older) == ([3.0, 4.0], True)
    pts, older = paging.newest(store, "scores", "m1", start_ns=T2012 + 3 * S, end_ns=None, limit=7)
    assert (len(pts), older) == (7, False)


# --- adapter-specific -------------------------------------------------------------------------------
def test_sqlite_two_connections_see_each_others_writes(tmp_path: Path) -> None:
    a, b = SqliteStore(tmp_path / "x.db"), SqliteStore(tmp_path / "x.db")
    a.write([p(T0, v=1.0)])
    assert b.count("readings", "m1") == 1
    b.delete_asset("m1")
    assert a.assets() == []
    assert a._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    a.close()
    b.close()
    assert a.ping() is False


@pytest.mark.integration
def test_open_store_picks_the_adapter(tmp_path: Path, influxd: InfluxServer) -> None:
    s = open_store(Settings(data_dir=tmp_path / "data", influx_url=None))
    assert isinstance(s, SqliteStore) and s.path == tmp_path / "data" / "rotorwatch.db"
    s.close()
    db = _fresh_db()
    i = open_store(Settings(influx_url=influxd.url, influx_bucket=db))
    assert isinstance(i, InfluxStore) and i.database == db
    i.write([p(T0)])
    assert i.count("readings", "m1") == 1
    i.close()


def test_line_protocol_escaping() -> None:
    line = line_protocol(
        Point("readings", "m1", 42, {"s": 'a "q" \\ b', "n": 2, "b": False}, {"model": "legacy"})
    )
    assert line == 'readings,asset_id=m1,model=legacy s="a \\"q\\" \\\\ b",n=2.0,b=false 42'


def test_influx_rejects_bad_database_names() -> None:
    for bad in ['x" ; DROP DATABASE "y', "a b", ""]:
        with pytest.raises(StoreError):
            InfluxStore("http://127.0.0.1:1", bad)


@pytest.mark.integration
def test_influx_4xx_is_store_error_with_influx_message(influxd: InfluxServer) -> None:
    s = InfluxStore(influxd.url, _fresh_db())
    s.write([p(T0, v=1.0)])
    with pytest.raises(StoreError) as err:
        s.write([p(T0 + 1, v="now a string")])
    assert not isinstance(err.value, StoreUnavailable)
    assert "field type conflict" in str(err.value)
    s.close()


@pytest.mark.integration
def test_influx_unavailable_when_server_stopped(tmp_path: Path) -> None:
    srv = InfluxServer(tmp_path / "influx").start()
    try:
        s = InfluxStore(srv.url, "sensor_data")
        s.write([p(T0, v=1.0)])
        srv.stop()
        assert s.ping() is False
        with pytest.raises(StoreUnavailable):
            s.write([p(T0 + S, v=2.0)])
        with pytest.raises(StoreUnavailable):
            s.query("readings", "m1")
        with pytest.raises(StoreUnavailable):
            s.count("readings", "m1")
        with pytest.raises(StoreUnavailable):
            s.assets()
        with pytest.raises(StoreUnavailable):
            s.delete_asset("m1")
        srv.start()
        assert s.ping() is True
        s.write([p(T0 + S, v=2.0)])
        assert [x.fields["v"] for x in s.query("readings", "m1")] == [1.0, 2.0]
        s.close()
    finally:
        srv.stop()


def test_influx_unavailable_before_first_use() -> None:
    from tests.support.servers import free_port

    s = InfluxStore(f"http://127.0.0.1:{free_port()}", "sensor_data")
    with pytest.raises(StoreUnavailable):
        s.write([p(T0)])
    assert s.ping() is False
    s.close()
