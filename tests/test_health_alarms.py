"""Persistence and the alarm state machine: valid and invalid transitions."""

from __future__ import annotations

import itertools
import json

import pytest

from shared.health.alarms import (
    MAINTENANCE_ACTIONS,
    AlarmBook,
    AlarmConflict,
    AlarmNotFound,
    AlarmTransitionError,
)
from shared.health.persistence import Persistence
from shared.messages import ACTION_CODES

T0 = 1_700_000_000.0


def ids() -> itertools.count:
    return itertools.count(1)


def book(clear_windows: int = 3, **kw: object) -> AlarmBook:
    counter = ids()
    return AlarmBook(clear_windows=clear_windows, id_factory=lambda: f"{next(counter):032x}", **kw)  # type: ignore[arg-type]


def test_persistence_k_of_n() -> None:
    p = Persistence(3, 5)
    states = [p.push(f) for f in (True, False, True, False, True, False, False, True, True)]
    # windows:                 T      F     T      F     T     F      F      T     T
    assert states == [False, False, False, False, True, False, False, False, True]
    assert p.count == 3
    assert Persistence.from_dict(json.loads(json.dumps(p.to_dict()))).to_dict() == p.to_dict()
    p.clear()
    assert not p.on and p.count == 0
    with pytest.raises(ValueError, match="k <= n"):
        Persistence(6, 5)
    with pytest.raises(ValueError, match="k <= n"):
        Persistence(0, 5)
    with pytest.raises(ValueError, match="bool"):
        p.push(1)  # type: ignore[arg-type]


def test_isolated_flags_never_persist() -> None:
    p = Persistence(3, 5)
    assert not any(p.push(i % 3 == 0) for i in range(100))  # 1 in 3 -> at most 2 of any 5


def test_open_once_ack_resolve() -> None:
    b = book()
    ev = b.observe("m1", "anomaly", T0, True, "WARNING", "Voltage spike detected: 315.2V", ["batch"])
    assert [e.kind for e in ev] == ["opened"]
    alarm = ev[0].alarm
    assert alarm["state"] == "ACTIVE" and alarm["asset_id"] == "m1" and alarm["source"] == "anomaly"
    assert alarm["reason"] == "Voltage spike detected: 315.2V" and alarm["opened_at"] == T0
    aid = ev[0].alarm_id
    assert len(aid) == 32
    for i in range(1, 20):  # still active: no new alarm
        assert b.observe("m1", "anomaly", T0 + i, True, "WARNING", "x") == []
    # a second source of the same asset and another asset get their own alarms
    assert b.observe("m1", "iso20816", T0 + 20, True, "WARNING", "zone C")[0].kind == "opened"
    assert b.observe("m2", "anomaly", T0 + 20, True, "WARNING", "y")[0].kind == "opened"
    assert len(b.open_alarms("m1")) == 2 and len(b.open_alarms()) == 3

    ack = b.acknowledge(aid, "alice", "looking at it", ts=T0 + 30)
    assert ack.kind == "acknowledged" and ack.alarm["state"] == "ACKNOWLEDGED"
    assert ack.alarm["acknowledged_by"] == "alice" and ack.alarm["acknowledged_at"] == T0 + 30
    res = b.resolve(aid, "bob", "replaced DE bearing", "bearing_replaced")
    assert res.kind == "resolved" and res.maintenance and res.action_code == "bearing_replaced"
    assert res.ts == T0 + 20  # default: latest data time seen
    assert res.alarm["state"] == "RESOLVED" and not res.alarm["auto_cleared"]
    json.dumps(res.to_dict())  # publishable


def test_invalid_transitions() -> None:
    b = book()
    aid = b.observe("m1", "anomaly", T0, True, "CRITICAL", "r")[0].alarm_id
    with pytest.raises(AlarmTransitionError, match="unknown alarm id"):
        b.acknowledge("nope", "alice")
    with pytest.raises(AlarmTransitionError, match="who must not be empty"):
        b.acknowledge(aid, "   ")
    with pytest.raises(AlarmTransitionError, match="unknown action code 'kicked'"):
        b.resolve(aid, "alice", action_code="kicked")
    b.acknowledge(aid, "alice")
    with pytest.raises(AlarmTransitionError, match="already ACKNOWLEDGED"):
        b.acknowledge(aid, "bob")
    b.resolve(aid, "alice", action_code="false_alarm")
    with pytest.raises(AlarmTransitionError, match="already RESOLVED"):
        b.resolve(aid, "alice", action_code="other")
    with pytest.raises(AlarmTransitionError, match="RESOLVED and cannot be acknowledged"):
        b.acknowledge(aid, "alice")
    with pytest.raises(AlarmTransitionError, match="limit"):
        b.observe("m1", "x", T0, True, "WARNING")
        b.acknowledge(b.open_alarms()[0].alarm_id, "a", note="n" * 5000)
    with pytest.raises(ValueError, match="severity"):
        b.observe("m1", "anomaly", T0, True, "NORMAL")
    with pytest.raises(ValueError, match="asset id"):
        b.observe("bad/id", "anomaly", T0, True, "WARNING")
    with pytest.raises(ValueError, match="ts"):
        b.observe("m1", "anomaly", float("nan"), True, "WARNING")


def test_action_codes() -> None:
    assert set(ACTION_CODES) == {
        "bearing_replaced",
        "realigned",
        "lubricated",
        "balanced",
        "tightened",
        "electrical_repair",
        "false_alarm",
        "other",
    }
    assert "false_alarm" not in MAINTENANCE_ACTIONS and "other" not in MAINTENANCE_ACTIONS
    assert "lubricated" in MAINTENANCE_ACTIONS


def test_auto_clear_after_m_clear_windows_and_reopen() -> None:
    b = book(clear_windows=3)
    aid = b.observe("m1", "anomaly", T0, True, "WARNING", "r")[0].alarm_id
    assert b.observe("m1", "anomaly", T0 + 1, False) == []
    assert b.observe("m1", "anomaly", T0 + 2, False) == []
    assert b.observe("m1", "anomaly", T0 + 3, True, "WARNING") == []  # back on: counter resets
    assert b.observe("m1", "anomaly", T0 + 4, False) == []
    assert b.observe("m1", "anomaly", T0 + 5, False) == []
    ev = b.observe("m1", "anomaly", T0 + 6, False)
    assert [e.kind for e in ev] == ["resolved"]
    assert ev[0].auto_cleared and ev[0].alarm["auto_cleared"] and ev[0].alarm["resolved_at"] == T0 + 6
    assert ev[0].alarm_id == aid and not ev[0].maintenance
    with pytest.raises(AlarmTransitionError, match="already RESOLVED \\(automatically\\)"):
        b.resolve(aid, "alice")
    # a new episode opens a new alarm
    ev = b.observe("m1", "anomaly", T0 + 7, True, "WARNING", "again")
    assert ev[0].kind == "opened" and ev[0].alarm_id != aid


def test_acknowledged_alarm_also_auto_clears() -> None:
    b = book(clear_windows=2)
    aid = b.observe("m1", "anomaly", T0, True, "WARNING")[0].alarm_id
    b.acknowledge(aid, "alice")
    b.observe("m1", "anomaly", T0 + 1, False)
    assert b.observe("m1", "anomaly", T0 + 2, False)[0].alarm["state"] == "RESOLVED"


def test_escalation_reactivates_and_never_downgrades() -> None:
    b = book()
    aid = b.observe("m1", "anomaly", T0, True, "WARNING", "mild")[0].alarm_id
    b.acknowledge(aid, "alice")
    ev = b.observe("m1", "anomaly", T0 + 1, True, "CRITICAL", "severe")
    assert [e.kind for e in ev] == ["escalated"]
    assert ev[0].alarm["severity"] == "CRITICAL" and ev[0].alarm["state"] == "ACTIVE"
    assert ev[0].alarm["reason"] == "severe"
    assert b.observe("m1", "anomaly", T0 + 2, True, "WARNING", "less") == []
    assert b.get(aid).severity == "CRITICAL"


def test_manual_resolve_rearm_rules() -> None:
    b = book()
    aid = b.observe("m1", "anomaly", T0, True, "WARNING")[0].alarm_id
    b.resolve(aid, "alice", action_code="false_alarm")
    # false alarm while the condition persists: no new alarm until it clears and returns
    assert b.observe("m1", "anomaly", T0 + 1, True, "WARNING") == []
    assert b.observe("m1", "anomaly", T0 + 2, False) == []
    assert b.observe("m1", "anomaly", T0 + 3, True, "WARNING")[0].kind == "opened"
    aid2 = b.open_alarms()[0].alarm_id
    # maintenance: re-armed, a condition that survives the repair re-alarms
    assert b.resolve(aid2, "bob", action_code="realigned").maintenance
    assert b.observe("m1", "anomaly", T0 + 4, True, "WARNING")[0].kind == "opened"


def test_state_round_trip_and_history_limit() -> None:
    b = book(clear_windows=1, history_limit=2)
    for i in range(5):
        b.observe("m1", "anomaly", T0 + 2 * i, True, "WARNING", f"episode {i}")
        b.observe("m1", "anomaly", T0 + 2 * i + 1, False)
    kept = b.alarms()
    assert [a.reason for a in kept] == ["episode 3", "episode 4"]
    b.observe("m1", "anomaly", T0 + 20, True, "CRITICAL", "open one")
    restored = AlarmBook.from_dict(json.loads(json.dumps(b.to_dict())))
    assert restored.to_dict() == b.to_dict()
    # both continue identically
    for bk in (b, restored):
        ev = bk.observe("m1", "anomaly", T0 + 21, False)
        assert ev[0].alarm["reason"] == "open one" and ev[0].auto_cleared


def test_refusals_say_why_by_type() -> None:
    """Unknown alarm -> AlarmNotFound; a transition the state forbids -> AlarmConflict; bad input ->
    the base AlarmTransitionError (so a command handler maps them to not_found / conflict / invalid)."""
    b = book()
    aid = b.observe("m1", "anomaly", T0, True, "WARNING")[0].alarm_id
    with pytest.raises(AlarmNotFound, match="unknown alarm"):
        b.acknowledge("f" * 32, "alice")
    with pytest.raises(AlarmTransitionError, match="who must not be empty") as bad:
        b.acknowledge(aid, "   ")
    assert not isinstance(bad.value, AlarmNotFound | AlarmConflict)
    b.acknowledge(aid, "alice")
    with pytest.raises(AlarmConflict, match="already ACKNOWLEDGED"):
        b.acknowledge(aid, "bob")
    b.resolve(aid, "alice", action_code="other")
    with pytest.raises(AlarmConflict, match="already RESOLVED"):
        b.resolve(aid, "alice", action_code="other")
    with pytest.raises(AlarmConflict, match="RESOLVED and cannot be acknowledged"):
        b.acknowledge(aid, "alice")
