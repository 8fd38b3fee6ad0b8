"""Shelved alarms in the reports' gathered data (issue 16): a shelving and a return from the shelf are
transitions of their alarm, not new alarms: the reports' counts (alarms raised, still open, open when
the period began) and the alarm-performance basis count the alarm once; an alarm shelved before the
period is carried into it with its shelving as its last transition; an operator's acknowledge, shelve
and unshelve at one data time come out in that order, a return from the shelf before the escalation of
the same observation."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.reporter import gather
from shared import records
from shared.messages import AlarmEvent
from shared.reports import alarm_performance, facts
from shared.store.sqlite import SqliteStore

A = "press-2"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
UNTIL = T0 + timedelta(hours=1, minutes=1)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def ev(transition: str, s: float, state: str = "ACTIVE", **kw: Any) -> AlarmEvent:
    return AlarmEvent.model_validate(
        {
            "alarm_id": "b" * 32,
            "asset_id": A,
            "state": state,
            "source": "anomaly",
            "severity": "WARNING",
            "reason": "anomaly ratio 1.4",
            "opened_at": T0,
            "ts": at(s),
            "transition": transition,
            **kw,
        }
    )


SHELF = {"shelved_until": UNTIL, "shelved_by": "ana", "shelve_reason": "known: coupling change Friday"}
#: Opened at 0 s, shelved at 60 s (by ana for 1 h), returned at 3,661 s, acknowledged, resolved.
LIFE = [
    ev("opened", 0),
    ev("shelved", 60, previous="ACTIVE", who="ana", note=SHELF["shelve_reason"], **SHELF),
    ev("unshelved", 3661, previous="ACTIVE", who="system", note="shelf ended"),
    ev("acknowledged", 3700, "ACKNOWLEDGED", previous="ACTIVE", who="bob"),
    ev("resolved", 4000, "RESOLVED", previous="ACKNOWLEDGED", who="bob", action_code="other"),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "db.sqlite")
    s.write([records.alarm_to_point(e) for e in LIFE])
    yield s
    s.close()


def test_a_shelved_alarm_counts_once_in_the_reports(store: SqliteStore) -> None:
    data = gather.gather(store, A, at(0), at(3700), generated_at=at(5000))
    assert [e.ts for e in data.alarms] == [at(0), at(60), at(3661), at(3700)]
    # The gathered shelving says by whom, until when and why (what the reports mark).
    shelved = data.alarms[1]
    assert (shelved.transition, shelved.shelved_until, shelved.shelved_by, shelved.shelve_reason) == (
        "shelved",
        UNTIL,
        "ana",
        SHELF["shelve_reason"],
    )
    assert [e.transition for e in data.alarms] == ["opened", "shelved", "unshelved", "acknowledged"]
    counts = facts.alarm_counts(data.alarms, data.start, data.open_before)
    assert (counts.raised, counts.still_open, counts.transitions, counts.open_at_start) == (1, 1, 4, 0)
    perf = alarm_performance.performance(data)
    assert perf is not None and perf.basis.alarms == 1
    # A period that begins while it is shelved: carried in once, its last transition the shelving.
    data = gather.gather(store, A, at(600), at(3700), generated_at=at(5000))
    assert [e.ts for e in data.open_before] == [at(60)]
    counts = facts.alarm_counts(data.alarms, data.start, data.open_before)
    assert (counts.raised, counts.still_open, counts.open_at_start) == (0, 1, 1)
    perf = alarm_performance.performance(data)
    assert perf is not None and perf.basis.alarms == 0


def test_one_data_times_acknowledge_shelve_unshelve_keep_their_order() -> None:
    """Operator actions default to the latest data time: three transitions of one alarm at one ts."""
    same = [
        ev("opened", 0),
        ev("acknowledged", 10, "ACKNOWLEDGED", previous="ACTIVE", who="bob"),
        ev("shelved", 10, "ACKNOWLEDGED", previous="ACKNOWLEDGED", who="ana", **SHELF),
        ev("unshelved", 10, "ACKNOWLEDGED", previous="ACKNOWLEDGED", who="ana"),
        ev("resolved", 10, "RESOLVED", previous="ACKNOWLEDGED", who="bob"),
    ]
    for seed in range(5):
        shuffled = same[:]
        random.Random(seed).shuffle(shuffled)
        assert [e.transition for e in sorted(shuffled, key=gather.alarm_order)] == [
            "opened",
            "acknowledged",
            "shelved",
            "unshelved",
            "resolved",
        ]
    # At an observation the book returns an expired shelf, then escalates: the escalation is last.
    back = ev("unshelved", 20, "ACKNOWLEDGED", previous="ACKNOWLEDGED", who="system")
    worse = ev("escalated", 20, previous="ACKNOWLEDGED", severity="CRITICAL")
    assert sorted([worse, back], key=gather.alarm_order) == [back, worse]
    # Events stored before transitions were recorded keep the state order.
    old = [e.model_copy(update={"transition": None}) for e in (same[4], same[1], same[0])]
    assert [e.state for e in sorted(old, key=gather.alarm_order)] == ["ACTIVE", "ACKNOWLEDGED", "RESOLVED"]
