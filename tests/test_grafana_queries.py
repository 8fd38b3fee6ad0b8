"""The provisioned Grafana dashboards (deploy/grafana): every query runs against a real InfluxDB.

A scripted run of the pipeline's output (readings, vibration windows, each model's scores, health updates,
alarms opened, acknowledged and resolved, operator logs) for two assets is written through the project's
own converters (:mod:`shared.records`) and store adapter (:class:`shared.store.influx.InfluxStore`), i.e.
with the historian's layout. Then every panel target, annotation and variable query of every dashboard is
run through InfluxDB's ``/query`` API with Grafana's macros filled in, and must return rows in which every
selected column has a value somewhere and every GROUP BY tag a value: a misspelt measurement, field or tag
fails. The fast tests check the JSON itself: valid, the provisioned datasource everywhere, the asset variable.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pytest
import yaml

from shared import records, synth
from shared.messages import (
    AlarmEvent,
    HealthUpdate,
    OperatorLog,
    Reading,
    Score,
    Window,
    new_event_id,
    severity_of,
)
from shared.store.base import Point
from shared.store.influx import InfluxStore
from tests.conftest import ROOT
from tests.support.servers import InfluxServer

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
DATASOURCE_UID = yaml.safe_load((GRAFANA / "datasources" / "influxdb.yml").read_text())["datasources"][0][
    "uid"
]
#: The asset with everything (readings, ESP32 windows, ISO zone): the ``$asset`` the queries run with.
ASSET = "fan_b"
OTHER = "pump_a"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
SECONDS = 300
#: Alarm ids: fan_b's first alarm is resolved, its second and pump_a's stay open.
RESOLVED, OPEN_FAN, OPEN_PUMP = "fan_b-anomaly-1", "fan_b-anomaly-2", "pump_a-anomaly-1"


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


@dataclass(frozen=True)
class Query:
    """One InfluxQL query of a dashboard: a panel target, an annotation or a template variable."""

    where: str
    q: str
    kind: str  # "panel", "annotation" or "variable"


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside (collapsed) rows."""
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def queries(name: str, board: dict[str, Any]) -> list[Query]:
    out = [
        Query(f"{name}: {p['title']} [{t['refId']}]", t["query"], "panel")
        for p in panels(board)
        for t in p.get("targets", [])
    ]
    for a in board.get("annotations", {}).get("list", []):
        if not a.get("builtIn"):
            out.append(Query(f"{name}: annotation {a['name']}", a["query"], "annotation"))
    for v in board.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            out.append(Query(f"{name}: variable {v['name']}", v["query"], "variable"))
    return out


ALL = [q for name, board in dashboards().items() for q in queries(name, board)]


# --- the dashboards as files (fast) ------------------------------------------------------------------
def test_the_two_dashboards_are_provisioned_with_distinct_uids() -> None:
    boards = dashboards()
    assert set(boards) == {"fleet", "asset"}
    assert len({b["uid"] for b in boards.values()}) == 2 and all(b["title"] for b in boards.values())
    assert all(b.get("panels") for b in boards.values())


def datasources(node: Any) -> Iterator[dict[str, Any]]:
    """Every ``datasource`` object anywhere in a dashboard."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource" and isinstance(value, dict):
                yield value
            else:
                yield from datasources(value)
    elif isinstance(node, list):
        for item in node:
            yield from datasources(item)


@pytest.mark.parametrize("name", ["fleet", "asset"])
def test_every_query_uses_the_provisioned_influxdb_with_influxql(name: str) -> None:
    board = dashboards()[name]
    builtin = {"type": "grafana", "uid": "-- Grafana --"}
    used = [d for d in datasources(board) if d != builtin]
    assert used and all(d == {"type": "influxdb", "uid": DATASOURCE_UID} for d in used), used
    for p in panels(board):
        if p["type"] != "row":
            assert p["datasource"]["uid"] == DATASOURCE_UID, p["title"]
            assert p["targets"] and all(t["rawQuery"] for t in p["targets"]), p["title"]


def test_every_panel_and_annotation_is_limited_to_the_dashboard_time_range() -> None:
    for q in ALL:
        if q.kind != "variable":
            assert "$timeFilter" in q.q, q.where


def test_the_asset_dashboard_filters_every_query_by_its_asset_variable() -> None:
    board = dashboards()["asset"]
    (var,) = board["templating"]["list"]
    assert var["name"] == "asset" and var["type"] == "query" and var["datasource"]["uid"] == DATASOURCE_UID
    assert var["query"] == 'SHOW TAG VALUES WITH KEY = "asset_id"'
    for q in queries("asset", board):
        if q.kind != "variable":
            assert '"asset_id" =~ /^$asset$/' in q.q, q.where
    names = {a["name"] for a in board["annotations"]["list"]}
    assert {"Alarms", "Operator logs"} <= names


# --- a scripted pipeline run, stored as the historian stores it ------------------------------------
def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def faulty(asset: str, s: float) -> bool:
    """fan_b: faults from 60 s to 150 s and from 250 s; pump_a: from 100 s."""
    return 60 <= s < 150 or s >= 250 if asset == ASSET else s >= 100


#: Each model's calibrated threshold (model units).
THRESHOLDS = {"legacy": 0.6, "batch": 2.5, "autoencoder": 0.02}


def scores(reading: Reading, bad: bool, rng: np.random.Generator) -> list[Point]:
    """Every model's score of one reading: 0.2..0.8 of its threshold when healthy, 1.5..3 when faulty."""
    out = []
    for model, thr in THRESHOLDS.items():
        score = thr * (rng.uniform(1.5, 3.0) if bad else rng.uniform(0.2, 0.8))
        sev = severity_of(score, thr)
        msg = Score(
            event_id=reading.event_id,
            asset_id=reading.asset_id,
            ts=reading.ts,
            model=model,
            model_version="v1",
            anomaly_score=score,
            raw_score=-score,
            threshold=thr,
            is_anomaly=sev != "NORMAL",
            severity=sev,
        )
        out.append(records.score_to_point(msg))
    return out


def window(asset: str, s: int, bad: bool, rng: np.random.Generator) -> Point:
    """An ESP32 window (3 x 256 samples at 500 Hz) of the synthetic machine, imbalanced when faulty."""
    xyz = synth.vibration_window(rng, 500.0, 256, fault="imbalance" if bad else None, t0_s=s)
    w = Window(
        event_id=new_event_id(),
        asset_id=asset,
        ts=at(s),
        fs_hz=500.0,
        n=256,
        axes=["x", "y", "z"],
        x=xyz[0].tolist(),
        y=xyz[1].tolist(),
        z=xyz[2].tolist(),
    )
    return records.window_to_point(w)


def signals(asset: str, rng: np.random.Generator) -> list[Point]:
    """One reading a second, each scored by every model; an ESP32 window every 2 s on ``fan_b``."""
    out: list[Point] = []
    names = ("voltage_v", "current_a", "power_factor", "vibration_g", "is_faulty")
    for s in range(SECONDS):
        bad = faulty(asset, s)
        r = synth.simple_reading(rng, bad, "vibration_jump" if bad else None)
        reading = Reading(event_id=new_event_id(), asset_id=asset, ts=at(s), **{k: r[k] for k in names})
        out += [records.reading_to_point(reading), *scores(reading, bad, rng)]
        if asset == ASSET and s % 2 == 0:
            out.append(window(asset, s, bad, rng))
    return out


def health(asset: str) -> list[Point]:
    """A health update every 5 s; ``fan_b`` also with its ISO 20816 zone and velocity."""
    out = []
    for s in range(0, SECONDS, 5):
        bad = faulty(asset, s)
        iso: dict[str, Any] = {}
        if asset == ASSET:
            iso = {
                "iso_zone": "C" if bad else "A",
                "velocity_rms_mm_s": 7.5 if bad else 2.1,
                "zone_basis": "iso20816-3",
            }
        degradation = s / (1000 if asset == ASSET else 2000)
        h = HealthUpdate(
            asset_id=asset,
            ts=at(s),
            health_score=(45.0 if bad else 97.0) - 10 * degradation,
            risk_level="HIGH" if bad else "LOW",
            grade="D" if bad else "A",
            degradation_index=degradation,
            active_alarms=int(bad),
            **iso,
        )
        out.append(records.health_to_point(h))
    return out


def alarm(alarm_id: str, asset: str, opened: float, state: str, s: float, **kw: Any) -> Point:
    return records.alarm_to_point(
        AlarmEvent(
            alarm_id=alarm_id,
            asset_id=asset,
            state=state,
            source="anomaly",
            severity="CRITICAL",
            reason="vibration above 2x the calibrated threshold",
            opened_at=at(opened),
            ts=at(s),
            **kw,
        )
    )


def events() -> list[Point]:
    """fan_b: one alarm opened, acknowledged, resolved, then a second one left open; pump_a: one alarm
    opened and acknowledged. An operator log on each."""
    ack = {"who": "operator", "note": "checking the coupling"}
    return [
        alarm(RESOLVED, ASSET, 61, "ACTIVE", 61, transition="opened"),
        alarm(RESOLVED, ASSET, 61, "ACKNOWLEDGED", 80, previous="ACTIVE", transition="acknowledged", **ack),
        alarm(
            RESOLVED,
            ASSET,
            61,
            "RESOLVED",
            160,
            previous="ACKNOWLEDGED",
            transition="resolved",
            who="operator",
            note="balanced the fan",
            action_code="balanced",
        ),
        alarm(OPEN_FAN, ASSET, 251, "ACTIVE", 251, transition="opened"),
        alarm(OPEN_PUMP, OTHER, 100, "ACTIVE", 100, transition="opened"),
        alarm(OPEN_PUMP, OTHER, 100, "ACKNOWLEDGED", 120, previous="ACTIVE", **ack),
        records.oplog_to_point(
            OperatorLog(
                log_id=uuid.uuid4().hex,
                asset_id=ASSET,
                event_type="corrective_balancing",
                severity="medium",
                description="added 12 g at 40 degrees",
                ts=at(155),
                author="operator",
            )
        ),
        records.oplog_to_point(
            OperatorLog(
                log_id=uuid.uuid4().hex,
                asset_id=OTHER,
                event_type="observation",
                ts=at(130),
                author="operator",
                description="bearing housing warm to the touch",
            )
        ),
    ]


@dataclass(frozen=True)
class Influx:
    url: str
    db: str

    def run(self, q: str) -> list[dict[str, Any]]:
        """The series of one InfluxQL statement (as Grafana sends it: ``db`` and ``epoch=ms``)."""
        r = httpx.post(f"{self.url}/query", data={"q": q, "db": self.db, "epoch": "ms"}, timeout=30)
        assert r.status_code == 200, r.text
        body = r.json()
        assert "error" not in body, body["error"]
        (result,) = body["results"]
        assert "error" not in result, result["error"]
        return result.get("series", [])


@pytest.fixture(scope="module")
def stored(influxd: InfluxServer) -> Iterator[Influx]:
    db = f"grafana_{uuid.uuid4().hex[:10]}"
    store = InfluxStore(influxd.url, db)
    rng = np.random.default_rng(14)
    try:
        for asset in (ASSET, OTHER):
            store.write(signals(asset, rng) + health(asset))
        store.write(events())
        yield Influx(influxd.url, db)
    finally:
        store.close()


def grafana_macros(q: str, asset: str = ASSET) -> str:
    """``q`` as Grafana sends it for the last 40 minutes (covering the data) and one asset."""
    start, end = (
        int((T0 - timedelta(minutes=5)).timestamp() * 1000),
        int(at(SECONDS + 300).timestamp() * 1000),
    )
    time_filter = f"time >= {start}ms and time <= {end}ms"
    for macro, value in (
        ("$__timeFilter", time_filter),
        ("$timeFilter", time_filter),
        ("$__interval", "10s"),
        ("$interval", "10s"),
        ("${asset}", asset),
        ("$asset", asset),
    ):
        q = q.replace(macro, value)
    assert not re.search(r"\$[A-Za-z_{]", q), f"a macro the test does not know: {q}"
    return q


def check_rows(series: list[dict[str, Any]], where: str) -> int:
    """Rows in all ``series``; fails without rows, on a column never filled, on an empty GROUP BY tag."""
    rows = sum(len(s.get("values", [])) for s in series)
    assert rows >= 1, f"{where}: no rows"
    filled: dict[str, bool] = {}
    for s in series:
        assert all(v != "" for v in (s.get("tags") or {}).values()), f"{where}: empty tag {s['tags']}"
        for i, col in enumerate(s["columns"]):
            filled[col] = filled.get(col, False) or any(row[i] is not None for row in s.get("values", []))
    empty = sorted(c for c, ok in filled.items() if not ok and c != "time")
    assert not empty, f"{where}: columns without a value in any row: {empty}"
    return rows


@pytest.mark.integration
@pytest.mark.parametrize("query", ALL, ids=[q.where for q in ALL])
def test_query_returns_rows_from_the_stored_pipeline_run(stored: Influx, query: Query) -> None:
    check_rows(stored.run(grafana_macros(query.q)), query.where)


@pytest.mark.integration
def test_open_alarms_are_the_alarms_whose_latest_state_is_not_resolved(stored: Influx) -> None:
    (q,) = [q for q in ALL if q.where == "fleet: Open alarms [A]"]
    series = stored.run(grafana_macros(q.q))
    found = {(s["tags"]["asset_id"], s["tags"]["alarm_id"]): s for s in series}
    assert set(found) == {(ASSET, OPEN_FAN), (OTHER, OPEN_PUMP)}
    state = {k: dict(zip(s["columns"], s["values"][-1], strict=True))["state"] for k, s in found.items()}
    assert state == {(ASSET, OPEN_FAN): "ACTIVE", (OTHER, OPEN_PUMP): "ACKNOWLEDGED"}


@pytest.mark.integration
def test_the_asset_variable_lists_both_assets(stored: Influx) -> None:
    (q,) = [q for q in ALL if q.kind == "variable"]
    values = {row[1] for s in stored.run(q.q) for row in s["values"]}
    assert values == {ASSET, OTHER}


@pytest.mark.integration
def test_the_asset_dashboard_shows_only_the_chosen_asset(stored: Influx) -> None:
    (q,) = [q for q in ALL if q.where == "asset: Health score (latest) [A]"]
    fan = stored.run(grafana_macros(q.q, ASSET))[0]["values"]
    pump = stored.run(grafana_macros(q.q, OTHER))[0]["values"]
    assert fan != pump and len(fan) == len(pump) == 1
