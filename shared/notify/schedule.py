"""Scheduled reports: when a schedule is due (pure, no I/O).

A schedule is either weekly — ``weekday`` (``mon``..``sun``) at local ``at`` (``HH:MM``) in the IANA
``timezone`` — or every ``every_s`` seconds counted from the moment the reporter first saw it (an
interval, for tests and short cycles). Its occurrences are Unix times; the reporter runs the latest
occurrence not yet run that is after the moment it first saw the schedule (a newly configured weekly
schedule waits for its next weekday, a reporter that was down runs the occurrence it missed once).

Local times follow the zone's rules on that date (DST): 07:00 Europe/Paris is 06:00 UTC in winter and
05:00 UTC in summer. A local time that does not exist (the spring-forward gap) is taken with the offset
before the change (02:30 → 03:30 summer time); an ambiguous one (fall back) is its first occurrence.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from shared.topics import ASSET_ID_PATTERN

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def check_hhmm(v: str) -> str:
    """``v`` when it is a local time ``HH:MM`` (00:00..23:59); ValueError with the reason otherwise."""
    if not _HHMM.fullmatch(v):
        raise ValueError(f"{v!r} is not a local time HH:MM (00:00..23:59)")
    return v


def check_zone(v: str) -> str:
    """``v`` when it names an IANA time zone; ValueError with the reason otherwise."""
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {v!r} (an IANA name, e.g. Europe/Paris)") from None
    return v


ScheduleId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
AssetKey = Annotated[str, StringConstraints(pattern=ASSET_ID_PATTERN)]
#: Longest period a scheduled report covers (days; a report covers at most a year).
MAX_PERIOD_DAYS = 366


class Schedule(BaseModel):
    """One scheduled report sent by e-mail with the document attached (see the module doc)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: ScheduleId
    enabled: bool = True
    kind: Literal["executive"] = "executive"
    #: E-mail channel ids the report goes to (each gets one message per asset per occurrence).
    channels: list[str] = Field(min_length=1, max_length=50)
    #: Assets reported on; empty (default): every asset with stored data when it runs.
    assets: list[AssetKey] = Field(default_factory=list, max_length=500)
    weekday: Weekday | None = None
    at: str | None = None
    timezone: str = "UTC"
    every_s: float | None = Field(default=None, ge=1, le=366 * 86_400)
    #: Period covered: the last ``period_days`` days of the asset's data (default 7).
    period_days: float = Field(default=7.0, gt=0, le=MAX_PERIOD_DAYS)

    @field_validator("at")
    @classmethod
    def _hhmm(cls, v: str | None) -> str | None:
        return None if v is None else check_hhmm(v)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return check_zone(v)

    @model_validator(mode="after")
    def _when(self) -> Schedule:
        weekly = self.weekday is not None or self.at is not None
        if weekly and self.every_s is not None:
            raise ValueError(f"schedule {self.id!r}: give either weekday + at, or every_s, not both")
        if self.every_s is None and (self.weekday is None or self.at is None):
            raise ValueError(f"schedule {self.id!r}: needs weekday (mon..sun) and at (HH:MM), or every_s")
        return self


def latest_due(s: Schedule, since: float, now: float) -> float | None:
    """The latest occurrence of ``s`` in ``(since, now]`` (Unix s), ``None`` when there is none."""
    if now <= since:
        return None
    if s.every_s is not None:
        k = math.floor((now - since) / s.every_s)
        return since + k * s.every_s if k >= 1 else None
    due = _weekly_at_or_before(s, now)
    return due if due > since else None


def next_due(s: Schedule, since: float, now: float) -> float:
    """The first occurrence of ``s`` after ``now`` (and after ``since``), Unix s."""
    if s.every_s is not None:
        k = max(1, math.floor((max(now, since) - since) / s.every_s) + 1)
        return since + k * s.every_s
    zone = ZoneInfo(s.timezone)
    local = datetime.fromtimestamp(max(now, since), zone).date()
    for days in range(9):
        t = _local_ts(s, local + timedelta(days=days), zone)
        if t is not None and t > max(now, since):
            return t
    raise AssertionError("a weekly schedule occurs within 8 days")  # pragma: no cover


def _weekly_at_or_before(s: Schedule, now: float) -> float:
    zone = ZoneInfo(s.timezone)
    local = datetime.fromtimestamp(now, zone).date()
    for days in range(9):
        t = _local_ts(s, local - timedelta(days=days), zone)
        if t is not None and t <= now:
            return t
    raise AssertionError("a weekly schedule occurs within 8 days")  # pragma: no cover


def _local_ts(s: Schedule, day: date, zone: ZoneInfo) -> float | None:
    """Unix time of ``s.at`` on local ``day`` when ``day`` is ``s.weekday``, else None."""
    assert s.at is not None and s.weekday is not None
    if WEEKDAYS[day.weekday()] != s.weekday:
        return None
    h, m = (int(x) for x in s.at.split(":"))
    return datetime.combine(day, time(h, m), tzinfo=zone).timestamp()


def iso(ts: float) -> str:
    """``ts`` (Unix s) as ISO 8601 UTC."""
    return datetime.fromtimestamp(ts, UTC).isoformat()
