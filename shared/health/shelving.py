"""Alarm shelving (pure, data time): an operator takes an open alarm off the alarm list's attention for
a limited time, with a reason; it returns by itself.

ISA-18.2 / IEC 62682 call this *shelving*: a temporary, operator-initiated suppression that must be
time-limited and recorded. Here:

* :func:`shelve`: an open alarm (ACTIVE or ACKNOWLEDGED; its state does not change) is shelved by
  ``who`` for ``duration_s`` data seconds from ``ts`` (0 < ``duration_s`` <= ``max_shelve_s``, default
  :data:`MAX_SHELVE_S` = 86,400 s), with a non-empty ``reason``; shelving a shelved alarm again sets a
  new period from ``ts``. The transition (kind ``shelved``, the reason as its note) is the audit entry.
* :func:`unshelve`: an operator returns a shelved alarm early (kind ``unshelved``).
* :func:`returns_due`: every shelved open alarm whose period has run out at data time ``ts``
  (``ts >= shelved_until``) returns, unshelved by ``system`` with the note saying so.
* :func:`end_shelf`: resolving an alarm ends its shelf (a resolved alarm is never shelved).

Refusals raise :class:`~shared.health.alarm_types.AlarmConflict` (the alarm's state forbids it) or
:class:`~shared.health.alarm_types.AlarmTransitionError` (invalid input), with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from shared.health.alarm_types import (
    MAX_NOTE_CHARS,
    MAX_WHO_CHARS,
    SYSTEM,
    Alarm,
    AlarmConflict,
    AlarmTransition,
    AlarmTransitionError,
    check_text,
    check_ts,
)
from shared.messages.alarm_settings import AlarmSettings

__all__ = ["MAX_SHELVE_S", "end_shelf", "returns_due", "shelf_limit", "shelve", "unshelve"]

#: Longest shelf by default (s of data time): 24 h, one day of shifts.
MAX_SHELVE_S = 86_400.0


def shelf_limit(alarms: AlarmSettings | None) -> tuple[AlarmSettings | None, float]:
    """An asset config's ``alarms`` block without ``max_shelve_s`` (the alarm lifecycle's settings only)
    and its longest shelf (default :data:`MAX_SHELVE_S`)."""
    if alarms is None or alarms.max_shelve_s is None:
        return alarms, MAX_SHELVE_S
    return alarms.model_copy(update={"max_shelve_s": None}), alarms.max_shelve_s


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _check_duration(duration_s: Any, max_shelve_s: float) -> float:
    if (
        isinstance(duration_s, bool)
        or not isinstance(duration_s, int | float)
        or not math.isfinite(duration_s)
    ):
        raise AlarmTransitionError(f"duration_s must be a finite number of seconds, got {duration_s!r}")
    if duration_s <= 0:
        raise AlarmTransitionError(f"duration_s must be > 0, got {duration_s:g}")
    if duration_s > max_shelve_s:
        raise AlarmTransitionError(
            f"duration_s {duration_s:g} s exceeds the longest shelf allowed for this asset "
            f"({max_shelve_s:g} s, alarms.max_shelve_s)"
        )
    return float(duration_s)


def shelve(
    alarm: Alarm,
    who: str,
    reason: str,
    duration_s: float,
    ts: float,
    max_shelve_s: float = MAX_SHELVE_S,
) -> AlarmTransition:
    """Shelve the open ``alarm`` until data time ``ts + duration_s`` (s) by ``who`` for ``reason``."""
    who = check_text("who", who, MAX_WHO_CHARS, required=True)
    reason = check_text("reason", reason, MAX_NOTE_CHARS, required=True)
    duration = _check_duration(duration_s, max_shelve_s)
    t = check_ts(ts)
    if not alarm.is_open:
        raise AlarmConflict(f"alarm {alarm.alarm_id} is RESOLVED and cannot be shelved")
    alarm.shelved_until = t + duration
    alarm.shelved_by = who
    alarm.shelve_reason = reason
    alarm.shelved_at = t
    return AlarmTransition(kind="shelved", ts=t, alarm=alarm.to_dict(), who=who, note=reason)


def _clear(alarm: Alarm) -> None:
    alarm.shelved_until = alarm.shelved_by = alarm.shelve_reason = alarm.shelved_at = None


def unshelve(alarm: Alarm, who: str, note: str, ts: float) -> AlarmTransition:
    """Return the shelved ``alarm`` now (data time ``ts``), by ``who`` with ``note``."""
    who = check_text("who", who, MAX_WHO_CHARS, required=True)
    note = check_text("note", note, MAX_NOTE_CHARS, required=False)
    t = check_ts(ts)
    if not alarm.is_shelved:
        raise AlarmConflict(f"alarm {alarm.alarm_id} is not shelved")
    _clear(alarm)
    return AlarmTransition(kind="unshelved", ts=t, alarm=alarm.to_dict(), who=who, note=note)


def returns_due(alarms: Iterable[Alarm], ts: float) -> list[AlarmTransition]:
    """Unshelve (by ``system``) each open shelved alarm whose shelf ended by data time ``ts``."""
    t = check_ts(ts)
    out: list[AlarmTransition] = []
    for alarm in alarms:
        until = alarm.shelved_until
        if alarm.is_open and until is not None and t >= until:
            note = f"shelf ended: shelved by {alarm.shelved_by} until {_iso(until)}"
            out.append(unshelve(alarm, SYSTEM, note, t))
    return out


def end_shelf(alarm: Alarm) -> None:
    """Resolving ends a shelf: clear ``alarm``'s shelving (no transition of its own)."""
    _clear(alarm)
