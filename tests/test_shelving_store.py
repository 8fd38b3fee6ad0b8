"""Alarm events with shelving through the store layout (issue 16): the transition, the shelf, peak and
re-opens are stored and read back on both adapters (SQLite, the real InfluxDB); two transitions of one
alarm at one data time (acknowledged, then shelved) are two points; points stored before keep loading;
the latest transition per alarm at a tied data time is the one that came last."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from shared import records
from shared.messages import AlarmEvent
from shared.store import Point, Store
from shared.store.influx import InfluxStore
from shared.store.sqlite import SqliteStore

AID = "0123456789abcdef0123456789abcdef"
OPENED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T = OPENED + timedelta(minutes=5)


def event(transition: str | None, state: str = "ACKNOWLEDGED", **kw: object) -> AlarmEvent:
    base: dict[str, object] = dict(
        alarm_id=AID,
        asset_id="m1",
        state=state,
        previous="ACTIVE" if state == "ACKNOWLEDGED" else None,
        source="anomaly",
        severity="WARNING",
        reason="legacy ratio 1.4",
        opened_at=OPENED,
        ts=T,
        who="ana",
        transition=transition,
        peak=1.42,
    )
    return AlarmEvent(**(base | kw))  # type: ignore[arg-type]


def shelved(**kw: object) -> AlarmEvent:
    shelf = dict(shelved_until=T + timedelta(hours=2), shelved_by="ana", shelve_reason="valve work, 2 h")
    shelf |= dict(previous="ACKNOWLEDGED", note="valve work, 2 h", reopens=2)
    return event("shelved", **(shelf | kw))


@pytest.fixture(params=["sqlite", pytest.param("influx", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s: Store = SqliteStore(tmp_path / "points.db")
        yield s
        s.close()
        return
    url = request.getfixturevalue("influxd").url
    db = f"t_{uuid.uuid4().hex[:12]}"
    s = InfluxStore(url, db)
    yield s
    s.close()
    httpx.post(f"{url}/query", data={"q": f'DROP DATABASE "{db}"'})


def test_shelving_events_round_trip_through_the_store(store: Store) -> None:
    ack = event("acknowledged", note="seen")
    shelf = shelved()  # the same alarm, the same data time
    back = event(
        "unshelved", ts=T + timedelta(hours=2), who="system", previous="ACKNOWLEDGED", note="shelf ended"
    )
    opened = event("opened", state="ACTIVE", ts=OPENED, who=None, peak=None)
    store.write([records.alarm_to_point(e) for e in (opened, ack, shelf, back)])
    points = store.query(records.ALARMS, "m1")
    assert len(points) == 4  # acknowledged and shelved at T are two points
    got = [records.point_to_alarm(p) for p in points]
    assert sorted(got, key=lambda e: (e.ts, e.transition or "")) == [opened, ack, shelf, back]
    assert got[2].shelved_until == T + timedelta(hours=2) and got[2].reopens == 2 and got[2].peak == 1.42
    assert records.latest_alarms(got) == [back]
    assert records.latest_alarms(got[:3]) == [shelf]  # the tie at T: shelved after acknowledged


def test_a_point_stored_before_shelving_still_loads(store: Store) -> None:
    old = Point(  # as alarm_to_point wrote it before: tag = the state, no transition, shelf or chatter fields
        records.ALARMS,
        "m1",
        int(T.timestamp() * 1e9),
        {
            "state": "ACKNOWLEDGED",
            "source": "anomaly",
            "severity": "WARNING",
            "reason": "legacy ratio 1.4",
            "opened_at": OPENED.isoformat(),
            "auto_cleared": False,
            "previous": "ACTIVE",
            "who": "ana",
        },
        {"alarm_id": AID, "transition": "ACKNOWLEDGED"},
    )
    store.write([old])
    (got,) = [records.point_to_alarm(p) for p in store.query(records.ALARMS, "m1")]
    assert got == event(None, peak=None)
    assert (got.transition, got.shelved_until, got.reopens, got.peak) == (None, None, 0, None)


def test_the_point_layout_of_a_shelved_event() -> None:
    pt = records.alarm_to_point(shelved())
    assert dict(pt.tags) == {"alarm_id": AID, "transition": "shelved"}
    assert pt.fields["shelved_until"] == "2026-03-01T14:05:00+00:00" and pt.fields["reopens"] == 2.0
    assert (pt.fields["shelved_by"], pt.fields["shelve_reason"], pt.fields["peak"]) == (
        "ana",
        "valve work, 2 h",
        1.42,
    )
    plain = records.alarm_to_point(event("acknowledged", peak=None))
    assert dict(plain.tags)["transition"] == "acknowledged"
    assert not {"shelved_until", "shelved_by", "shelve_reason", "peak", "reopens"} & set(plain.fields)
    # an event without a transition (published before it existed) keeps the state tag
    assert dict(records.alarm_to_point(event(None)).tags)["transition"] == "ACKNOWLEDGED"


def tie(*events: AlarmEvent) -> str | None:
    (latest,) = records.latest_alarms(list(events))
    return latest.transition


def test_ties_at_one_data_time_go_to_the_transition_that_came_last() -> None:
    active = dict(state="ACTIVE", previous="ACTIVE")
    # an operator's actions at one data time (no data coming in, e.g. the machine is down for the work)
    assert tie(event("acknowledged"), shelved()) == "shelved"
    assert tie(shelved(**active), event("acknowledged")) == "acknowledged"  # shelved, then acknowledged
    unshelve = dict(shelved_until=None, shelved_by=None, shelve_reason=None)
    assert tie(shelved(), event("unshelved", **unshelve)) == "unshelved"
    # the book's own transitions happen at an observation, an operator's after it at that data time
    system_back = event("unshelved", who="system", **active)
    assert tie(event("acknowledged"), system_back) == "acknowledged"
    assert tie(system_back, shelved(**active)) == "shelved"
    assert tie(system_back, event("escalated", who=None, **active)) == "escalated"
    # a resolve ends the alarm
    assert tie(event("resolved", state="RESOLVED", action_code="other"), shelved()) == "resolved"
    # events stored before transitions existed: by state, as before
    old = records.latest_alarms([event(None), event(None, state="ACTIVE", previous=None, who=None)])
    assert old[0].state == "ACKNOWLEDGED"
