"""Alarm shelving (pure, data time): shelve with a reason -> the shelf runs out -> the alarm returns."""

from __future__ import annotations

import pytest

from shared.health.alarms import Alarm, AlarmBook, AlarmConflict, AlarmTransitionError
from shared.health.shelving import MAX_SHELVE_S, end_shelf, returns_due, shelve, unshelve

T0 = 1_700_000_000.0


def open_alarm() -> tuple[AlarmBook, Alarm]:
    ids = iter(f"{i:032x}" for i in range(1, 100))
    book = AlarmBook(clear_windows=2, id_factory=lambda: next(ids))
    (t,) = book.observe("pump_1", "anomaly", T0, True, "WARNING", "ratio 1.4", ("ae",), 1.4)
    return book, book.get(t.alarm_id)


def test_shelve_expiry_return() -> None:
    book, alarm = open_alarm()
    t = shelve(alarm, "ana", "sensor being replaced", 3600, T0 + 10)
    assert (t.kind, t.who, t.note, t.ts) == ("shelved", "ana", "sensor being replaced", T0 + 10)
    assert t.alarm["shelved_until"] == T0 + 3610 and t.alarm["shelved_by"] == "ana"
    assert alarm.is_shelved and alarm.state == "ACTIVE"  # shelving does not change the state
    # T0 is 2023-11-14T22:13:20Z; one second before the end (T0 + 3610 = 23:13:30Z): still shelved
    assert returns_due(book.alarms(), T0 + 3609) == []
    assert alarm.is_shelved
    (back,) = returns_due(book.alarms(), T0 + 3610)
    assert (back.kind, back.who) == ("unshelved", "system")
    assert "shelved by ana until 2023-11-14T23:13:30Z" in back.note
    assert not alarm.is_shelved and alarm.shelve_reason is None and back.alarm["shelved_until"] is None
    assert returns_due(book.alarms(), T0 + 99_999) == []  # returns once


def test_operator_returns_early_and_reshelving_sets_a_new_period() -> None:
    _, alarm = open_alarm()
    shelve(alarm, "ana", "valve work", 600, T0)
    again = shelve(alarm, "bo", "still working", 1200, T0 + 300)
    assert again.alarm["shelved_until"] == T0 + 1500 and alarm.shelved_by == "bo"
    t = unshelve(alarm, "bo", "done", T0 + 400)
    assert (t.kind, t.note) == ("unshelved", "done") and not alarm.is_shelved
    with pytest.raises(AlarmConflict, match="is not shelved"):
        unshelve(alarm, "bo", "", T0 + 401)


@pytest.mark.parametrize(
    ("who", "reason", "duration", "match"),
    [
        ("", "r", 60, "who must not be empty"),
        ("ana", "  ", 60, "reason must not be empty"),
        ("ana", "r", 0, "duration_s must be > 0"),
        ("ana", "r", float("nan"), "finite number"),
        ("ana", "r", True, "finite number"),
        ("ana", "r", MAX_SHELVE_S + 1, "exceeds the longest shelf allowed"),
    ],
)
def test_invalid_shelve_is_refused_with_its_reason(
    who: str, reason: str, duration: float, match: str
) -> None:
    _, alarm = open_alarm()
    with pytest.raises(AlarmTransitionError, match=match):
        shelve(alarm, who, reason, duration, T0)
    assert not alarm.is_shelved


def test_resolved_alarm_cannot_be_shelved_and_resolving_ends_a_shelf() -> None:
    book, alarm = open_alarm()
    shelve(alarm, "ana", "known", 600, T0)
    book.resolve(alarm.alarm_id, "ana", "fixed", "bearing_replaced", ts=T0 + 5)
    assert not alarm.is_shelved
    end_shelf(alarm)  # idempotent
    assert returns_due(book.alarms(), T0 + 10_000) == []  # a resolved alarm does not "return"
    with pytest.raises(AlarmConflict, match="RESOLVED and cannot be shelved"):
        shelve(alarm, "ana", "x", 60, T0 + 6)


def test_per_asset_limit_and_state_round_trip() -> None:
    book, alarm = open_alarm()
    with pytest.raises(AlarmTransitionError, match=r"\(600 s, alarms.max_shelve_s\)"):
        shelve(alarm, "ana", "r", 601, T0, max_shelve_s=600)
    shelve(alarm, "ana", "r", 600, T0, max_shelve_s=600)
    loaded = AlarmBook.from_dict(book.to_dict()).get(alarm.alarm_id)
    assert loaded == alarm and loaded.is_shelved
    old = alarm.to_dict()
    for k in ("shelved_until", "shelved_by", "shelve_reason", "shelved_at"):
        del old[k]
    assert not Alarm.from_dict(old).is_shelved  # states saved before shelving load unshelved


def test_the_book_returns_a_shelved_alarm_at_the_first_observation_after_its_shelf() -> None:
    book, alarm = open_alarm()
    shelve(alarm, "ana", "known", 60, T0)
    assert book.observe("pump_1", "anomaly", T0 + 59, True, "WARNING", "ratio 1.4", ("ae",), 1.4) == []
    assert alarm.is_shelved
    (back,) = book.observe("pump_1", "anomaly", T0 + 61, True, "WARNING", "ratio 1.4", ("ae",), 1.4)
    assert (back.kind, back.who, back.ts) == ("unshelved", "system", T0 + 61)
    assert not alarm.is_shelved and alarm.state == "ACTIVE"


def test_escalation_returns_a_shelved_alarm_and_clearing_ends_its_shelf() -> None:
    book, alarm = open_alarm()
    shelve(alarm, "ana", "known", 3600, T0)
    (esc,) = book.observe("pump_1", "anomaly", T0 + 1, True, "CRITICAL", "ratio 3", ("ae",), 3.0)
    assert esc.kind == "escalated" and esc.alarm["shelved_until"] is None and not alarm.is_shelved
    shelve(alarm, "ana", "known, critical", 3600, T0 + 2)
    assert book.observe("pump_1", "anomaly", T0 + 3, False) == []
    (cleared,) = book.observe("pump_1", "anomaly", T0 + 4, False)  # clear_windows = 2
    assert cleared.kind == "resolved" and cleared.auto_cleared and cleared.alarm["shelved_until"] is None
    assert returns_due(book.alarms(), T0 + 10_000) == []


def test_an_operator_resolve_ends_the_shelf_in_the_book() -> None:
    book, alarm = open_alarm()
    shelve(alarm, "ana", "known", 3600, T0)
    t = book.resolve(alarm.alarm_id, "ana", "replaced", "bearing_replaced", ts=T0 + 5)
    assert t.alarm["shelved_until"] is None and not alarm.is_shelved
