"""Sensor status (``sensor/<asset>``, :class:`SensorStatus`) stored by the historian as ``sensor`` points and
served by ``GET /assets/{id}/sensor``: the record both ways, on SQLite and InfluxDB (a retained status seen
again stays one point), the historian's route, and the endpoint (viewer role, data-time range, 404)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from services.historian.service import build
from services.historian.writer import Historian
from shared import records, topics
from shared.bus import MemoryBus
from shared.messages import DeadLetter, SensorFindingItem, SensorStatus
from shared.service import deliver
from shared.settings import Settings
from shared.store import Store, open_store
from shared.store.influx import InfluxStore
from shared.store.sqlite import SqliteStore
from tests.support.gateway import MemoryGateway, memory_gateway, memory_settings

T0 = datetime(2012, 3, 1, 8, tzinfo=UTC)  # backfilled data, years before the wall clock


def fault(asset: str = "pump", at: datetime = T0) -> SensorStatus:
    """A stuck x axis and a clipped y axis, found at ``at`` (since 40 s before)."""
    since = at - timedelta(seconds=40)
    return SensorStatus(
        asset_id=asset,
        status="fault",
        ts=at,
        since=since,
        findings=[
            SensorFindingItem(
                kind="flatline",
                signal="x",
                since=since,
                reason="x axis flat for 4 windows: peak-to-peak 0 g",
                values={"ptp_g": 0.0, "windows": 4.0},
            ),
            SensorFindingItem(
                kind="clipping",
                signal="y",
                since=at,
                reason="12 % of samples at the rail",
                values={"share": 0.12},
            ),
        ],
    )


def ok(asset: str = "pump", at: datetime = T0 + timedelta(minutes=5)) -> SensorStatus:
    return SensorStatus(asset_id=asset, status="ok", ts=at, since=at)


# --- the record ------------------------------------------------------------------------------------------
def test_a_sensor_status_round_trips_through_its_point() -> None:
    for status in (fault(), ok()):
        [point] = records.convert(topics.sensor("pump"), status.model_dump_json().encode())
        assert point.measurement == records.SENSOR == "sensor" and point.asset_id == "pump"
        assert point.fields["status"] == status.status
        assert records.point_to_sensor(point) == status
    point = records.sensor_to_point(fault())
    assert point.fields["since"] == "2012-03-01T07:59:20+00:00"
    assert '"kind":"flatline"' in str(point.fields["findings"])


def test_a_cleared_status_stores_nothing_and_another_assets_is_refused() -> None:
    assert records.convert(topics.sensor("pump"), b"") == []
    with pytest.raises(ValueError, match="does not match topic"):
        records.convert(topics.sensor("fan"), fault().model_dump_json().encode())


# --- both stores -----------------------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", pytest.param("influx", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s: Store = SqliteStore(tmp_path / "points.db")
        yield s
        s.close()
    else:
        srv = request.getfixturevalue("influxd")
        db = f"t_{uuid.uuid4().hex[:12]}"
        s = InfluxStore(srv.url, db)
        yield s
        s.close()
        httpx.post(f"{srv.url}/query", data={"q": f'DROP DATABASE "{db}"'})


def test_sensor_points_in_the_store_and_back(store: Store) -> None:
    asset = f"s-{uuid.uuid4().hex[:8]}"
    statuses = [fault(asset), ok(asset), fault(asset, T0 + timedelta(minutes=9))]
    store.write([records.sensor_to_point(s) for s in statuses])
    store.write([records.sensor_to_point(statuses[0])])  # the retained status again, on a reconnect
    got = store.query(records.SENSOR, asset)
    assert [records.point_to_sensor(p) for p in got] == statuses


# --- the historian ---------------------------------------------------------------------------------------
async def test_the_historian_stores_the_sensor_status(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "points.db")
    h = Historian(store)
    svc = build(Settings(), historian=h)
    assert topics.SENSOR_FILTER in svc.subscriptions
    bus = MemoryBus()
    await deliver(svc, bus, topics.sensor("pump"), fault(), retain=True)
    await deliver(svc, bus, topics.sensor("pump"), b"", retain=True)  # cleared: nothing
    await deliver(svc, bus, topics.sensor("fan"), fault())  # another asset's: a dead letter
    await h.flush()
    [dl] = [DeadLetter.model_validate_json(m.payload) for m in bus.on(topics.dead_letter("historian"))]
    assert "does not match topic" in dl.reason
    assert [records.point_to_sensor(p) for p in store.query(records.SENSOR, "pump")] == [fault()]
    store.close()


# --- the gateway -----------------------------------------------------------------------------------------
@pytest.fixture
async def mgw(tmp_path: Path) -> AsyncIterator[MemoryGateway]:
    async with memory_gateway(memory_settings(tmp_path)) as g:
        yield g


async def test_sensor_history_endpoint(mgw: MemoryGateway) -> None:
    statuses = [fault(), ok(), fault(at=T0 + timedelta(hours=2))]
    store = open_store(mgw.settings)
    try:
        store.write([records.sensor_to_point(s) for s in statuses])
    finally:
        store.close()
    viewer = mgw.clients["viewer"]
    window = {"from": (T0 - timedelta(hours=1)).isoformat(), "to": (T0 + timedelta(hours=3)).isoformat()}
    r = await viewer.get("/assets/pump/sensor", params=window)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 3 and not body["truncated"]
    assert [SensorStatus.model_validate(s) for s in body["statuses"]] == statuses
    assert body["statuses"][0]["findings"][0]["reason"] == "x axis flat for 4 windows: peak-to-peak 0 g"
    # the default window: the last `minutes` before the newest stored status
    body = (await viewer.get("/assets/pump/sensor", params={"minutes": 60})).json()
    assert [s["status"] for s in body["statuses"]] == ["fault"] and body["minutes"] == 60
    assert (await mgw.clients[None].get("/assets/pump/sensor")).status_code == 401
    assert (await viewer.get("/assets/nobody/sensor")).status_code == 404
    r = await viewer.get("/assets/pump/sensor", params={"from": "2012-03-02", "to": "2012-03-01"})
    assert r.status_code == 422
