"""Alarm persistence and the alarm state machine (pure, JSON-serialisable, data time only).

Pointwise anomaly flags are noisy; an alarm needs *persistence*: :class:`Persistence` is on when
at least ``k`` of the last ``n`` windows were flagged (default 3 of 5). With independent pointwise
false-positive probability ``p`` the chance of a persistent false flag per window is
``sum_{j>=k} C(n,j) p^j (1-p)^(n-j)`` (p = 0.001 -> about 1e-8 for 3-of-5).

:class:`AlarmBook` turns persistent conditions, one per ``(asset, source)``, into alarms::

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
* resolved by an operator with an action code; a *maintenance* action (everything except
  ``false_alarm`` and ``other``) re-arms the source (the next persistent observation opens a new
  alarm) and is flagged on the event (``maintenance=True``) so the degradation tracker can reset;
  ``false_alarm``/``other`` need the condition to clear first before a new alarm can open.

Every transition returns an :class:`AlarmEvent` to publish. Invalid transitions raise
:class:`AlarmTransitionError` with a precise message.
"""

from __future__ import annotations

import math
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from shared.messages import ACTION_CODES
from shared.topics import valid_asset_id

AlarmState = Literal["ACTIVE", "ACKNOWLEDGED", "RESOLVED"]
AlarmSeverity = Literal["WARNING", "CRITICAL"]
EventKind = Literal["opened", "escalated", "acknowledged", "resolved"]

# ACTION_CODES: the operator action codes of the message contract (shared.messages).
#: Action codes that change the machine's condition (reset the degradation index).
MAINTENANCE_ACTIONS: frozenset[str] = frozenset(ACTION_CODES) - {"false_alarm", "other"}
SEVERITY_RANK = {"WARNING": 1, "CRITICAL": 2}
MAX_NOTE_CHARS = 2000
MAX_WHO_CHARS = 200


class AlarmTransitionError(ValueError):
    """An alarm operation that the state machine does not allow (message says why)."""


# ---------------------------------------------------------------------------------------------
# Persistence
# ---------------------------------------------------------------------------------------------
class Persistence:
    """k-of-n persistence of a pointwise flag: on when ``sum(last n flags) >= k``."""

    def __init__(self, k: int = 3, n: int = 5, flags: Iterable[bool] = ()) -> None:
        if isinstance(k, bool) or isinstance(n, bool) or not isinstance(k, int) or not isinstance(n, int):
            raise ValueError(f"persistence k and n must be integers, got k={k!r}, n={n!r}")
        if not 1 <= k <= n:
            raise ValueError(f"persistence needs 1 <= k <= n, got k={k}, n={n}")
        self.k = k
        self.n = n
        self._flags: deque[bool] = deque(maxlen=n)
        for f in flags:
            if not isinstance(f, bool):
                raise ValueError(f"persistence flags must be bools, got {f!r}")
            self._flags.append(f)

    def push(self, flag: bool) -> bool:
        """Record one window's flag; return the persistent state ``sum(last n) >= k``."""
        if not isinstance(flag, bool):
            raise ValueError(f"flag must be a bool, got {flag!r}")
        self._flags.append(flag)
        return self.on

    @property
    def on(self) -> bool:
        return sum(self._flags) >= self.k

    @property
    def count(self) -> int:
        return sum(self._flags)

    def clear(self) -> None:
        self._flags.clear()

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "n": self.n, "flags": list(self._flags)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Persistence:
        return cls(k=d["k"], n=d["n"], flags=d.get("flags", ()))


# ---------------------------------------------------------------------------------------------
# Alarms
# ---------------------------------------------------------------------------------------------
@dataclass
class Alarm:
    alarm_id: str
    asset_id: str
    source: str
    severity: str
    reason: str
    opened_at: float
    models: list[str] = field(default_factory=list)
    state: str = "ACTIVE"
    last_seen_at: float | None = None  # data time of the last observation with the condition on
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    ack_note: str = ""
    resolved_at: float | None = None
    resolved_by: str | None = None
    resolve_note: str = ""
    action_code: str | None = None
    auto_cleared: bool = False

    @property
    def is_open(self) -> bool:
        return self.state != "RESOLVED"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Alarm:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown Alarm fields: {sorted(unknown)}")
        return cls(**d)


@dataclass(frozen=True)
class AlarmEvent:
    """One transition, ready to publish: ``kind`` and a snapshot of the alarm after it."""

    kind: EventKind
    ts: float
    alarm: dict[str, Any]
    who: str | None = None
    note: str = ""
    action_code: str | None = None
    auto_cleared: bool = False
    maintenance: bool = False  # resolved with a maintenance action: reset degradation

    @property
    def alarm_id(self) -> str:
        return str(self.alarm["alarm_id"])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _KeyState:
    last_active: bool = False
    clear_count: int = 0
    open_alarm_id: str | None = None


def _check_ts(ts: Any) -> float:
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(float(ts)):
        raise ValueError(f"ts must be a finite number of seconds (data time), got {ts!r}")
    return float(ts)


def _check_text(name: str, v: Any, limit: int, required: bool) -> str:
    if not isinstance(v, str):
        raise AlarmTransitionError(f"{name} must be a string, got {type(v).__name__}")
    v = v.strip()
    if required and not v:
        raise AlarmTransitionError(f"{name} must not be empty")
    if len(v) > limit:
        raise AlarmTransitionError(f"{name} is {len(v)} characters; the limit is {limit}")
    return v


class AlarmBook:
    """The alarms of any number of assets, keyed by ``(asset_id, source)``.

    ``clear_windows``: consecutive condition-off observations that auto-resolve an open alarm.
    ``history_limit``: resolved alarms kept (oldest dropped first; the historian keeps them all).
    ``id_factory``: alarm id generator (default ``uuid4().hex``).
    """

    def __init__(
        self,
        clear_windows: int = 10,
        history_limit: int = 200,
        id_factory: Callable[[], str] | None = None,
    ) -> None:
        if isinstance(clear_windows, bool) or not isinstance(clear_windows, int) or clear_windows < 1:
            raise ValueError(f"clear_windows must be an integer >= 1, got {clear_windows!r}")
        if isinstance(history_limit, bool) or not isinstance(history_limit, int) or history_limit < 0:
            raise ValueError(f"history_limit must be an integer >= 0, got {history_limit!r}")
        self.clear_windows = clear_windows
        self.history_limit = history_limit
        self._new_id = id_factory or (lambda: uuid.uuid4().hex)
        self._alarms: dict[str, Alarm] = {}  # insertion order = opening order
        self._keys: dict[str, _KeyState] = {}
        self._now: float | None = None  # latest data time observed

    # -- queries ---------------------------------------------------------------------------
    @staticmethod
    def _key(asset_id: str, source: str) -> str:
        return f"{asset_id}/{source}"

    def get(self, alarm_id: str) -> Alarm:
        if not isinstance(alarm_id, str) or alarm_id not in self._alarms:
            raise AlarmTransitionError(f"unknown alarm id {alarm_id!r}")
        return self._alarms[alarm_id]

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
    ) -> list[AlarmEvent]:
        """Feed one window's *persistent* condition of ``(asset_id, source)`` at data time ``ts``.

        Returns the events caused: ``opened`` (rising edge, no open alarm), ``escalated``
        (WARNING -> CRITICAL while open) or ``resolved`` with ``auto_cleared=True`` (condition
        off for ``clear_windows`` consecutive observations). ``severity`` (WARNING|CRITICAL) and
        ``reason`` matter only when ``active``.
        """
        if not isinstance(asset_id, str) or not valid_asset_id(asset_id):
            raise ValueError(f"invalid asset id {asset_id!r}")
        if not isinstance(source, str) or not source or "/" in source or len(source) > 64:
            raise ValueError(f"source must be a non-empty name without '/', got {source!r}")
        ts = _check_ts(ts)
        if not isinstance(active, bool):
            raise ValueError(f"active must be a bool, got {active!r}")
        if active and severity not in SEVERITY_RANK:
            raise ValueError(f"severity of an active condition must be WARNING or CRITICAL, got {severity!r}")
        models = [str(m) for m in models]
        self._now = ts if self._now is None else max(self._now, ts)

        key = self._keys.setdefault(self._key(asset_id, source), _KeyState())
        alarm = self._alarms.get(key.open_alarm_id) if key.open_alarm_id else None
        if alarm is not None and not alarm.is_open:  # resolved by an operator meanwhile
            key.open_alarm_id, alarm = None, None
        events: list[AlarmEvent] = []
        if active:
            key.clear_count = 0
            if alarm is None:
                if not key.last_active:
                    alarm = Alarm(
                        alarm_id=self._new_id(),
                        asset_id=asset_id,
                        source=source,
                        severity=severity,
                        reason=reason,
                        opened_at=ts,
                        models=models,
                        last_seen_at=ts,
                    )
                    self._alarms[alarm.alarm_id] = alarm
                    key.open_alarm_id = alarm.alarm_id
                    events.append(AlarmEvent(kind="opened", ts=ts, alarm=alarm.to_dict()))
            else:
                alarm.last_seen_at = ts
                for m in models:
                    if m not in alarm.models:
                        alarm.models.append(m)
                if SEVERITY_RANK[severity] > SEVERITY_RANK[alarm.severity]:
                    alarm.severity = severity
                    alarm.state = "ACTIVE"
                    if reason:
                        alarm.reason = reason
                    events.append(AlarmEvent(kind="escalated", ts=ts, alarm=alarm.to_dict()))
        else:
            key.clear_count += 1
            if alarm is not None and key.clear_count >= self.clear_windows:
                alarm.state = "RESOLVED"
                alarm.resolved_at = ts
                alarm.resolved_by = "system"
                alarm.resolve_note = f"condition cleared for {key.clear_count} consecutive windows"
                alarm.auto_cleared = True
                key.open_alarm_id = None
                events.append(
                    AlarmEvent(
                        kind="resolved",
                        ts=ts,
                        alarm=alarm.to_dict(),
                        who="system",
                        note=alarm.resolve_note,
                        auto_cleared=True,
                    )
                )
                self._trim()
        key.last_active = active
        return events

    # -- operator actions ------------------------------------------------------------------
    def _op_ts(self, ts: float | None) -> float:
        if ts is not None:
            return _check_ts(ts)
        if self._now is None:
            raise AlarmTransitionError("no data time known yet: pass ts explicitly")
        return self._now

    def acknowledge(self, alarm_id: str, who: str, note: str = "", ts: float | None = None) -> AlarmEvent:
        """ACTIVE -> ACKNOWLEDGED by ``who`` at data time ``ts`` (default: latest observed)."""
        alarm = self.get(alarm_id)
        who = _check_text("who", who, MAX_WHO_CHARS, required=True)
        note = _check_text("note", note, MAX_NOTE_CHARS, required=False)
        if alarm.state == "ACKNOWLEDGED":
            raise AlarmTransitionError(
                f"alarm {alarm_id} is already ACKNOWLEDGED (by {alarm.acknowledged_by})"
            )
        if alarm.state == "RESOLVED":
            raise AlarmTransitionError(f"alarm {alarm_id} is RESOLVED and cannot be acknowledged")
        t = self._op_ts(ts)
        alarm.state = "ACKNOWLEDGED"
        alarm.acknowledged_at = t
        alarm.acknowledged_by = who
        alarm.ack_note = note
        return AlarmEvent(kind="acknowledged", ts=t, alarm=alarm.to_dict(), who=who, note=note)

    def resolve(
        self,
        alarm_id: str,
        who: str,
        note: str = "",
        action_code: str = "other",
        ts: float | None = None,
    ) -> AlarmEvent:
        """ACTIVE|ACKNOWLEDGED -> RESOLVED by ``who`` with ``action_code`` (one of
        :data:`ACTION_CODES`). ``event.maintenance`` is True for :data:`MAINTENANCE_ACTIONS`."""
        alarm = self.get(alarm_id)
        who = _check_text("who", who, MAX_WHO_CHARS, required=True)
        note = _check_text("note", note, MAX_NOTE_CHARS, required=False)
        if action_code not in ACTION_CODES:
            raise AlarmTransitionError(
                f"unknown action code {action_code!r}: expected one of {', '.join(ACTION_CODES)}"
            )
        if alarm.state == "RESOLVED":
            by = "automatically" if alarm.auto_cleared else f"by {alarm.resolved_by}"
            raise AlarmTransitionError(f"alarm {alarm_id} is already RESOLVED ({by})")
        t = self._op_ts(ts)
        alarm.state = "RESOLVED"
        alarm.resolved_at = t
        alarm.resolved_by = who
        alarm.resolve_note = note
        alarm.action_code = action_code
        maintenance = action_code in MAINTENANCE_ACTIONS
        key = self._keys.setdefault(self._key(alarm.asset_id, alarm.source), _KeyState())
        if key.open_alarm_id == alarm_id:
            key.open_alarm_id = None
        if maintenance:
            key.last_active = False  # re-arm: a condition that persists after the repair re-alarms
            key.clear_count = 0
        event = AlarmEvent(
            kind="resolved",
            ts=t,
            alarm=alarm.to_dict(),
            who=who,
            note=note,
            action_code=action_code,
            maintenance=maintenance,
        )
        self._trim()
        return event

    def _trim(self) -> None:
        resolved = [a.alarm_id for a in self._alarms.values() if not a.is_open]
        for alarm_id in resolved[: max(0, len(resolved) - self.history_limit)]:
            del self._alarms[alarm_id]

    # -- persistence -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "clear_windows": self.clear_windows,
            "history_limit": self.history_limit,
            "now": self._now,
            "alarms": [a.to_dict() for a in self._alarms.values()],
            "keys": {k: asdict(v) for k, v in self._keys.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], id_factory: Callable[[], str] | None = None) -> AlarmBook:
        book = cls(clear_windows=d["clear_windows"], history_limit=d["history_limit"], id_factory=id_factory)
        book._now = d.get("now")
        for a in d.get("alarms", []):
            alarm = Alarm.from_dict(a)
            book._alarms[alarm.alarm_id] = alarm
        for k, v in d.get("keys", {}).items():
            book._keys[k] = _KeyState(**v)
        return book
