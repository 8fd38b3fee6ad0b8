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
TransitionKind = Literal["opened", "escalated", "acknowledged", "resolved", "shelved", "unshelved"]

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
    # Chatter bookkeeping (optional, defaults: states saved before it load unchanged).
    #: Largest magnitude of the condition while open (the source's unit, e.g. the anomaly ratio); None:
    #: the source gives none.
    peak: float | None = None
    #: Alarms of this source opened one after the other, each within the chatter window of the previous
    #: one's auto-clear, before this one (0: not a re-open).
    reopens: int = 0
    #: The alarm of the same source this one re-opens (None: not a re-open).
    reopen_of: str | None = None
    #: After this alarm auto-cleared: rising edges of its condition held back by the re-open delay.
    held_reopens: int = 0
    # Shelving (ISA-18.2; :mod:`shared.health.shelving`): data time it returns by itself, who shelved it,
    # why and when (all None: not shelved).
    shelved_until: float | None = None
    shelved_by: str | None = None
    shelve_reason: str | None = None
    shelved_at: float | None = None

    @property
    def is_open(self) -> bool:
        return self.state != "RESOLVED"

    @property
    def is_shelved(self) -> bool:
        return self.shelved_until is not None

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
    #: How bad the condition is (>= 0, the source's unit; e.g. the largest smoothed anomaly ratio);
    #: None: the source gives none (then only a higher severity counts as "clearly worse").
    magnitude: float | None = None

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
        if self.magnitude is not None:
            m = self.magnitude
            if isinstance(m, bool) or not isinstance(m, int | float) or not math.isfinite(m) or m < 0:
                raise ValueError(f"magnitude must be a finite number >= 0 or None, got {m!r}")
            object.__setattr__(self, "magnitude", float(m))


@dataclass
class KeyState:
    """Per (asset, source) memory of the alarm book: the last observation, clear streak, open alarm,
    and the last auto-cleared alarm (for the re-open delay; all optional so older states load)."""

    last_active: bool = False
    clear_count: int = 0
    open_alarm_id: str | None = None
    #: The last alarm of this source that auto-cleared, and its data time of clearing (s).
    cleared_alarm_id: str | None = None
    cleared_at: float | None = None
    #: That alarm's peak magnitude, highest severity and re-open count (kept here: it may be trimmed).
    cleared_peak: float | None = None
    cleared_severity: str | None = None
    cleared_reopens: int = 0
    #: The condition is on but held back by the re-open delay (it opens once the delay has passed).
    held: bool = False


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


def check_number(name: str, v: Any, minimum: float) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < minimum:
        raise ValueError(f"{name} must be a finite number >= {minimum:g}, got {v!r}")
    return float(v)


def held_by_delay(key: KeyState, obs: Observation, delay_s: float, worse_factor: float) -> bool:
    """Whether the re-open delay holds back this rising edge of ``key``'s condition: within ``delay_s``
    data seconds after the source's last auto-clear and not clearly worse than the alarm that cleared
    (neither a higher severity than its highest nor ``magnitude >= worse_factor * its peak``)."""
    if key.cleared_at is None or delay_s <= 0 or obs.ts >= key.cleared_at + delay_s:
        return False
    prev = key.cleared_severity
    if prev in SEVERITY_RANK and SEVERITY_RANK[obs.severity] > SEVERITY_RANK[prev]:
        return False
    peak = key.cleared_peak
    return obs.magnitude is None or peak is None or obs.magnitude < worse_factor * peak
