"""Alarm value types: alarms, transitions, observations, the refusal errors and input checks (pure).

Used by the alarm state machine in :mod:`shared.health.alarms` (which re-exports them).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from shared.messages import ACTION_CODES
from shared.topics import valid_asset_id

AlarmState = Literal["ACTIVE", "ACKNOWLEDGED", "RESOLVED"]
AlarmSeverity = Literal["WARNING", "CRITICAL"]
TransitionKind = Literal["opened", "escalated", "acknowledged", "resolved"]

#: Action codes (of the message contract, :data:`shared.messages.ACTION_CODES`) that change the
#: machine's condition: they reset the degradation index and re-arm the alarm source.
MAINTENANCE_ACTIONS: frozenset[str] = frozenset(ACTION_CODES) - {"false_alarm", "other"}
SEVERITY_RANK = {"WARNING": 1, "CRITICAL": 2}
MAX_NOTE_CHARS = 2000
MAX_WHO_CHARS = 200
MAX_SOURCE_CHARS = 64
#: Who resolves an alarm whose condition cleared by itself.
SYSTEM = "system"


class AlarmTransitionError(ValueError):
    """An alarm operation that is not allowed (message says why); invalid input when not a subclass."""


class AlarmNotFound(AlarmTransitionError):
    """No such alarm (or not one of this asset's)."""


class AlarmConflict(AlarmTransitionError):
    """The alarm's current state does not allow the transition (e.g. resolving a resolved alarm)."""


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
class AlarmTransition:
    """One transition, ready to publish: ``kind`` and a snapshot of the alarm after it."""

    kind: TransitionKind
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


@dataclass(frozen=True)
class Observation:
    """One window's persistent condition of ``(asset_id, source)`` at data time ``ts`` (validated)."""

    asset_id: str
    source: str
    ts: float
    active: bool
    severity: str
    reason: str
    models: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.asset_id, str) or not valid_asset_id(self.asset_id):
            raise ValueError(f"invalid asset id {self.asset_id!r}")
        src = self.source
        if not isinstance(src, str) or not src or "/" in src or len(src) > MAX_SOURCE_CHARS:
            raise ValueError(f"source must be a non-empty name without '/', got {src!r}")
        object.__setattr__(self, "ts", check_ts(self.ts))
        if not isinstance(self.active, bool):
            raise ValueError(f"active must be a bool, got {self.active!r}")
        if self.active and self.severity not in SEVERITY_RANK:
            raise ValueError(
                f"severity of an active condition must be WARNING or CRITICAL, got {self.severity!r}"
            )
        object.__setattr__(self, "models", tuple(str(m) for m in self.models))


@dataclass
class KeyState:
    """Per (asset, source) memory of the alarm book: the last observation, clear streak, open alarm."""

    last_active: bool = False
    clear_count: int = 0
    open_alarm_id: str | None = None


def check_ts(ts: Any) -> float:
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(float(ts)):
        raise ValueError(f"ts must be a finite number of seconds (data time), got {ts!r}")
    return float(ts)


def check_text(name: str, v: Any, limit: int, required: bool) -> str:
    if not isinstance(v, str):
        raise AlarmTransitionError(f"{name} must be a string, got {type(v).__name__}")
    v = v.strip()
    if required and not v:
        raise AlarmTransitionError(f"{name} must not be empty")
    if len(v) > limit:
        raise AlarmTransitionError(f"{name} is {len(v)} characters; the limit is {limit}")
    return v
