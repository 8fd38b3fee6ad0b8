"""Who gets a message and when: the per-channel per-asset minimum severity, quiet hours, and the retry
back-off schedule. Times are Unix seconds (UTC); quiet hours are read in the channel's own time zone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from shared.notify.config import Channel, MinSeverity, QuietHours, RetryPolicy, Severity, TransitionKind

_RANK: dict[MinSeverity, int] = {"WARNING": 1, "CRITICAL": 2, "OFF": 3}


def min_severity(channel: Channel, asset_id: str) -> MinSeverity:
    """The asset's override if the channel has one, else the channel's minimum."""
    return channel.asset_min_severity.get(asset_id, channel.min_severity)


def wants(channel: Channel, asset_id: str, severity: Severity, kind: TransitionKind) -> bool:
    """Whether ``channel`` gets this transition: enabled, the kind is one of its ``events`` and the
    severity reaches the asset's minimum (``OFF``: nothing for that asset)."""
    if not channel.enabled or kind not in channel.events:
        return False
    return _RANK[severity] >= _RANK[min_severity(channel, asset_id)]


def in_quiet_hours(qh: QuietHours, now: float) -> bool:
    local = datetime.fromtimestamp(now, ZoneInfo(qh.timezone)).time().replace(tzinfo=None)
    start, end = qh.local("start"), qh.local("end")
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def quiet_until(qh: QuietHours, now: float) -> float | None:
    """End (Unix s) of the quiet period ``now`` lies in, None outside quiet hours. The end is the next
    local ``end`` time after ``now`` (the following day when it is already past today's)."""
    if not in_quiet_hours(qh, now):
        return None
    zone = ZoneInfo(qh.timezone)
    local = datetime.fromtimestamp(now, zone)
    end = qh.local("end")
    for days in (0, 1):
        day = (local + timedelta(days=days)).date()
        candidate = datetime.combine(day, end, tzinfo=zone)
        if candidate.astimezone(UTC).timestamp() > now:
            return candidate.astimezone(UTC).timestamp()
    return None  # pragma: no cover - an end time always comes within two days


def hold_until(channel: Channel, severity: Severity, now: float) -> float | None:
    """When a message created at ``now`` may be sent: None at once, else the end of quiet hours
    (CRITICAL bypasses quiet hours when the channel says so)."""
    qh = channel.quiet_hours
    if qh is None or (severity == "CRITICAL" and qh.critical_bypass):
        return None
    return quiet_until(qh, now)


def retry_delay(policy: RetryPolicy, failures: int) -> float:
    """Seconds before the next attempt after ``failures`` (>= 1) failed ones:
    ``min(max_s, first_s * factor**(failures - 1))``."""
    if failures < 1:
        raise ValueError("failures must be >= 1")
    exponent = min(failures - 1, 64)
    return min(policy.max_s, policy.first_s * policy.factor**exponent)
