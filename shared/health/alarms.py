"""The alarm state machine (pure, JSON-serialisable, data time only).

:class:`AlarmBook` turns persistent conditions (see :mod:`shared.health.persistence` and the alarm
policy in :mod:`shared.health.policy`), one per ``(asset, source)``, into alarms::

              observe(active) rising edge, no open alarm
                          |
                          v
    ACTIVE --acknowledge--> ACKNOWLEDGED --resolve--> RESOLVED
       |                        |
       +--------resolve---------+---> RESOLVED   (operator, with an action code)
       +--m clear windows-------+---> RESOLVED   (auto_cleared=True, by "system")

* opened on a rising edge of the persistent condition when no ACTIVE/ACKNOWLEDGED alarm exists
  for the same asset+source;
* *escalated* (severity WARNING -> CRITICAL, state back to ACTIVE so it is acknowledged again)
  when the condition gets worse while open; severity is never lowered;
* auto-resolved after ``clear_windows`` consecutive observations with the condition off;
* **re-open delay** (chatter, ISA-18.2 / IEC 62682): after an alarm auto-cleared at data time
  ``t_c``, a new rising edge of the same source's condition at ``t < t_c + reopen_delay_s`` is *held*
  (no alarm; counted on the cleared alarm as ``held_reopens``) unless it is clearly worse than that
  alarm was: a higher severity than its highest, or ``magnitude >= reopen_worse_factor * peak``
  (its largest magnitude while open); then it opens at once. A condition still on when the delay
  has passed opens then (a persisting condition is never hidden). An operator's resolve sets no
  delay (a maintenance action re-arms at once);
* a new alarm opened within ``chatter_window_s`` of the previous auto-clear of its source records
  ``reopen_of`` (that alarm) and ``reopens`` (that alarm's count + 1): the chatter count the
  alarm metrics read;
* resolved by an operator with an action code; a *maintenance* action (everything except
  ``false_alarm`` and ``other``) re-arms the source (the next persistent observation opens a new
  alarm) and is flagged on the transition (``maintenance=True``) so the degradation tracker can
  reset; ``false_alarm``/``other`` need the condition to clear first before a new alarm can open;
* shelving (:mod:`shared.health.shelving`): a shelved open alarm returns (``unshelved`` by ``system``)
  at the first observation at or after its ``shelved_until``, or when it escalates; resolving ends it.

Every transition returns an :class:`AlarmTransition` (published as the message
:class:`shared.messages.AlarmEvent`). Refused operations raise :class:`AlarmTransitionError`:
:class:`AlarmNotFound` for an unknown alarm, :class:`AlarmConflict` for a transition the alarm's
state does not allow, the base class for invalid input (empty ``who``, unknown action code).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import Any

from shared.health.alarm_types import (
    MAINTENANCE_ACTIONS,
    MAX_NOTE_CHARS,
    MAX_SOURCE_CHARS,
    MAX_WHO_CHARS,
    SEVERITY_RANK,
    SYSTEM,
    Alarm,
    AlarmConflict,
    AlarmNotFound,
    AlarmSeverity,
    AlarmState,
    AlarmTransition,
    AlarmTransitionError,
    KeyState,
    Observation,
    TransitionKind,
    check_number,
    check_text,
    check_ts,
    held_by_delay,
)
from shared.health.shelving import end_shelf, returns_due
from shared.messages import ACTION_CODES

__all__ = [
    "Alarm",
    "AlarmConflict",
    "AlarmNotFound",
    "AlarmSeverity",
    "AlarmState",
    "AlarmTransition",
    "AlarmTransitionError",
    "MAINTENANCE_ACTIONS",
    "MAX_NOTE_CHARS",
    "MAX_SOURCE_CHARS",
    "MAX_WHO_CHARS",
    "Observation",
    "SEVERITY_RANK",
    "SYSTEM",
    "TransitionKind",
    "AlarmBook",
]


class AlarmBook:
    """The alarms of any number of assets, keyed by ``(asset_id, source)``.

    ``clear_windows``: consecutive condition-off observations that auto-resolve an open alarm.
    ``history_limit``: resolved alarms kept (oldest dropped first; the historian keeps them all).
    ``id_factory``: alarm id generator (default ``uuid4().hex``).
    ``reopen_delay_s``: data seconds after an auto-clear during which the same source does not open
    again unless clearly worse (0: no delay). ``reopen_worse_factor`` (> 1): "clearly worse" means a
    magnitude of at least this times the cleared alarm's peak. ``chatter_window_s``: an alarm opened
    within this many data seconds of its source's previous auto-clear counts as a re-open.
    """

    def __init__(
        self,
        clear_windows: int = 10,
        history_limit: int = 200,
        id_factory: Callable[[], str] | None = None,
        reopen_delay_s: float = 0.0,
        reopen_worse_factor: float = 1.5,
        chatter_window_s: float = 600.0,
    ) -> None:
        if isinstance(history_limit, bool) or not isinstance(history_limit, int) or history_limit < 0:
            raise ValueError(f"history_limit must be an integer >= 0, got {history_limit!r}")
        self.history_limit = history_limit
        self.configure(  # sets (and checks) the four lifecycle settings
            clear_windows=clear_windows,
            reopen_delay_s=reopen_delay_s,
            reopen_worse_factor=reopen_worse_factor,
            chatter_window_s=chatter_window_s,
        )
        self._new_id = id_factory or (lambda: uuid.uuid4().hex)
        self._alarms: dict[str, Alarm] = {}  # insertion order = opening order
        self._keys: dict[str, KeyState] = {}
        self._now: float | None = None  # latest data time observed

    def configure(
        self,
        *,
        clear_windows: int | None = None,
        reopen_delay_s: float | None = None,
        reopen_worse_factor: float | None = None,
        chatter_window_s: float | None = None,
    ) -> None:
        """Change the lifecycle settings (None: keep); they apply from the next observation on."""
        if clear_windows is not None:
            if isinstance(clear_windows, bool) or not isinstance(clear_windows, int) or clear_windows < 1:
                raise ValueError(f"clear_windows must be an integer >= 1, got {clear_windows!r}")
            self.clear_windows = clear_windows
        if reopen_delay_s is not None:
            self.reopen_delay_s = check_number("reopen_delay_s", reopen_delay_s, minimum=0.0)
        if reopen_worse_factor is not None:
            v = check_number("reopen_worse_factor", reopen_worse_factor, minimum=1.0)
            if v <= 1.0:
                raise ValueError(f"reopen_worse_factor must be > 1, got {reopen_worse_factor!r}")
            self.reopen_worse_factor = v
        if chatter_window_s is not None:
            self.chatter_window_s = check_number("chatter_window_s", chatter_window_s, minimum=0.0)

    # -- queries ---------------------------------------------------------------------------
    @staticmethod
    def _key(asset_id: str, source: str) -> str:
        return f"{asset_id}/{source}"

    def get(self, alarm_id: str) -> Alarm:
        """The alarm ``alarm_id`` (:class:`AlarmNotFound` when it is not kept)."""
        if not isinstance(alarm_id, str) or alarm_id not in self._alarms:
            raise AlarmNotFound(f"unknown alarm id {alarm_id!r}")
        return self._alarms[alarm_id]

    def holds(self, alarm_id: str) -> bool:
        return isinstance(alarm_id, str) and alarm_id in self._alarms

    def open_alarms(self, asset_id: str | None = None) -> list[Alarm]:
        """ACTIVE and ACKNOWLEDGED alarms (of one asset, or all), oldest first."""
        return [a for a in self.alarms(asset_id) if a.is_open]

    def alarms(self, asset_id: str | None = None) -> list[Alarm]:
        """All alarms kept (open and recent resolved), oldest first."""
        return [a for a in self._alarms.values() if asset_id is None or a.asset_id == asset_id]

    # -- condition input -------------------------------------------------------------------
    def observe(
        self,
        asset_id: str,
        source: str,
        ts: float,
        active: bool,
        severity: str = "WARNING",
        reason: str = "",
        models: Iterable[str] = (),
        magnitude: float | None = None,
    ) -> list[AlarmTransition]:
        """Feed one window's *persistent* condition of ``(asset_id, source)`` at data time ``ts``.

        Returns the transitions caused: ``opened`` (rising edge, no open alarm, not held by the
        re-open delay), ``escalated`` (WARNING -> CRITICAL while open) or ``resolved`` with
        ``auto_cleared=True`` (condition off for ``clear_windows`` consecutive observations).
        ``severity`` (WARNING|CRITICAL), ``reason`` and ``magnitude`` (how bad, >= 0, the source's
        unit; None: not given) matter only when ``active``.
        """
        obs = Observation(asset_id, source, ts, active, severity, reason, tuple(models), magnitude)
        self._now = obs.ts if self._now is None else max(self._now, obs.ts)
        key = self._keys.setdefault(self._key(obs.asset_id, obs.source), KeyState())
        alarm = self._alarms.get(key.open_alarm_id) if key.open_alarm_id else None
        if alarm is not None and not alarm.is_open:  # resolved by an operator meanwhile
            key.open_alarm_id, alarm = None, None
        done: AlarmTransition | None = None
        back = [] if alarm is None else returns_due([alarm], obs.ts)  # its shelf ran out
        if obs.active:
            key.clear_count = 0
            if alarm is not None:
                done = self._refresh(alarm, obs)
            elif not key.last_active or key.held:  # a rising edge, or one held until now
                if held_by_delay(key, obs, self.reopen_delay_s, self.reopen_worse_factor):
                    if not key.held:
                        self._count_held(key)
                    key.held = True
                else:
                    key.held = False
                    done = self._open(key, obs)
        else:
            key.held = False
            key.clear_count += 1
            done = self._auto_clear(key, alarm, obs.ts)
        key.last_active = obs.active
        return back if done is None else [*back, done]

    def _count_held(self, key: KeyState) -> None:
        cleared = self._alarms.get(key.cleared_alarm_id) if key.cleared_alarm_id else None
        if cleared is not None:
            cleared.held_reopens += 1

    def _open(self, key: KeyState, obs: Observation) -> AlarmTransition:
        chained = key.cleared_at is not None and obs.ts - key.cleared_at <= self.chatter_window_s
        alarm = Alarm(
            alarm_id=self._new_id(),
            asset_id=obs.asset_id,
            source=obs.source,
            severity=obs.severity,
            reason=obs.reason,
            opened_at=obs.ts,
            models=list(obs.models),
            last_seen_at=obs.ts,
            peak=obs.magnitude,
            reopens=key.cleared_reopens + 1 if chained else 0,
            reopen_of=key.cleared_alarm_id if chained else None,
        )
        self._alarms[alarm.alarm_id] = alarm
        key.open_alarm_id = alarm.alarm_id
        return AlarmTransition(kind="opened", ts=obs.ts, alarm=alarm.to_dict())

    @staticmethod
    def _refresh(alarm: Alarm, obs: Observation) -> AlarmTransition | None:
        """The condition is still on: note it (and its peak), and escalate when it got worse."""
        alarm.last_seen_at = obs.ts
        if obs.magnitude is not None:
            alarm.peak = obs.magnitude if alarm.peak is None else max(alarm.peak, obs.magnitude)
        for m in obs.models:
            if m not in alarm.models:
                alarm.models.append(m)
        if SEVERITY_RANK[obs.severity] <= SEVERITY_RANK[alarm.severity]:
            return None
        alarm.severity = obs.severity
        alarm.state = "ACTIVE"
        end_shelf(alarm)  # a worse condition returns a shelved alarm
        if obs.reason:
            alarm.reason = obs.reason
        return AlarmTransition(kind="escalated", ts=obs.ts, alarm=alarm.to_dict())

    def _auto_clear(self, key: KeyState, alarm: Alarm | None, ts: float) -> AlarmTransition | None:
        if alarm is None or key.clear_count < self.clear_windows:
            return None
        alarm.state = "RESOLVED"
        alarm.resolved_at = ts
        alarm.resolved_by = SYSTEM
        alarm.resolve_note = f"condition cleared for {key.clear_count} consecutive windows"
        alarm.auto_cleared = True
        end_shelf(alarm)
        key.open_alarm_id = None
        key.cleared_alarm_id, key.cleared_at = alarm.alarm_id, ts
        key.cleared_peak, key.cleared_severity, key.cleared_reopens = (
            alarm.peak,
            alarm.severity,
            alarm.reopens,
        )
        done = AlarmTransition(
            kind="resolved",
            ts=ts,
            alarm=alarm.to_dict(),
            who=SYSTEM,
            note=alarm.resolve_note,
            auto_cleared=True,
        )
        self._trim()
        return done

    # -- operator actions ------------------------------------------------------------------
    def _op_ts(self, ts: float | None) -> float:
        if ts is not None:
            return check_ts(ts)
        if self._now is None:
            raise AlarmConflict("no data time known yet: pass ts explicitly")
        return self._now

    def acknowledge(
        self, alarm_id: str, who: str, note: str = "", ts: float | None = None
    ) -> AlarmTransition:
        """ACTIVE -> ACKNOWLEDGED by ``who`` at data time ``ts`` (default: latest observed)."""
        alarm = self.get(alarm_id)
        who = check_text("who", who, MAX_WHO_CHARS, required=True)
        note = check_text("note", note, MAX_NOTE_CHARS, required=False)
        if alarm.state == "ACKNOWLEDGED":
            raise AlarmConflict(f"alarm {alarm_id} is already ACKNOWLEDGED (by {alarm.acknowledged_by})")
        if alarm.state == "RESOLVED":
            raise AlarmConflict(f"alarm {alarm_id} is RESOLVED and cannot be acknowledged")
        t = self._op_ts(ts)
        alarm.state = "ACKNOWLEDGED"
        alarm.acknowledged_at = t
        alarm.acknowledged_by = who
        alarm.ack_note = note
        return AlarmTransition(kind="acknowledged", ts=t, alarm=alarm.to_dict(), who=who, note=note)

    def resolve(
        self,
        alarm_id: str,
        who: str,
        note: str = "",
        action_code: str = "other",
        ts: float | None = None,
    ) -> AlarmTransition:
        """ACTIVE|ACKNOWLEDGED -> RESOLVED by ``who`` with ``action_code`` (one of
        :data:`shared.messages.ACTION_CODES`); ``maintenance`` is True for :data:`MAINTENANCE_ACTIONS`."""
        alarm = self.get(alarm_id)
        who = check_text("who", who, MAX_WHO_CHARS, required=True)
        note = check_text("note", note, MAX_NOTE_CHARS, required=False)
        if action_code not in ACTION_CODES:
            raise AlarmTransitionError(
                f"unknown action code {action_code!r}: expected one of {', '.join(ACTION_CODES)}"
            )
        if alarm.state == "RESOLVED":
            by = "automatically" if alarm.auto_cleared else f"by {alarm.resolved_by}"
            raise AlarmConflict(f"alarm {alarm_id} is already RESOLVED ({by})")
        t = self._op_ts(ts)
        alarm.state = "RESOLVED"
        alarm.resolved_at = t
        alarm.resolved_by = who
        alarm.resolve_note = note
        alarm.action_code = action_code
        end_shelf(alarm)
        maintenance = action_code in MAINTENANCE_ACTIONS
        key = self._keys.setdefault(self._key(alarm.asset_id, alarm.source), KeyState())
        if key.open_alarm_id == alarm_id:
            key.open_alarm_id = None
        if maintenance:
            key.last_active = False  # re-arm: a condition that persists after the repair re-alarms
            key.clear_count = 0
            key.cleared_at = None  # and at once: no re-open delay after a repair
            key.held = False
        done = AlarmTransition(
            kind="resolved",
            ts=t,
            alarm=alarm.to_dict(),
            who=who,
            note=note,
            action_code=action_code,
            maintenance=maintenance,
        )
        self._trim()
        return done

    def _trim(self) -> None:
        resolved = [a.alarm_id for a in self._alarms.values() if not a.is_open]
        for alarm_id in resolved[: max(0, len(resolved) - self.history_limit)]:
            del self._alarms[alarm_id]

    # -- persistence -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "clear_windows": self.clear_windows,
            "history_limit": self.history_limit,
            "reopen_delay_s": self.reopen_delay_s,
            "reopen_worse_factor": self.reopen_worse_factor,
            "chatter_window_s": self.chatter_window_s,
            "now": self._now,
            "alarms": [a.to_dict() for a in self._alarms.values()],
            "keys": {k: asdict(v) for k, v in self._keys.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], id_factory: Callable[[], str] | None = None) -> AlarmBook:
        """Load :meth:`to_dict`'s state; states saved before the re-open delay load with its defaults
        (no delay) and alarms without chatter fields."""
        book = cls(
            clear_windows=d["clear_windows"],
            history_limit=d["history_limit"],
            id_factory=id_factory,
            reopen_delay_s=d.get("reopen_delay_s", 0.0),
            reopen_worse_factor=d.get("reopen_worse_factor", 1.5),
            chatter_window_s=d.get("chatter_window_s", 600.0),
        )
        book._now = d.get("now")
        for a in d.get("alarms", []):
            alarm = Alarm.from_dict(a)
            book._alarms[alarm.alarm_id] = alarm
        for k, v in d.get("keys", {}).items():
            book._keys[k] = KeyState(**v)
        return book
