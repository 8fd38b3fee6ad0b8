"""Times: time-column values, splitting a time column at gaps, and the start time of each file.

A file's **base** is the UTC time of its first sample. It comes from (``time_from``):

* ``column``: the file's own absolute time column;
* ``name``: the file name parsed with a ``strptime`` pattern (naive times are UTC);
* ``interval``: ``start + k * interval_s`` for the k-th file (k = 0, 1, ... in file order);
* ``mtime``: the file's modification time (UTC, whole seconds);
* ``auto``: column if the file has absolute times, else name if a pattern is given, else interval
  if one is given, else ``start`` (one file only), else mtime.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

import numpy as np

from shared.recordings.archive import Entry, stem_of

#: Numeric time values at or above this are Unix epoch seconds (2001-09-09); below: relative seconds.
EPOCH_MIN_S = 1_000_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Every in-segment sample interval must lie within this fraction of the mean interval.
SAMPLE_JITTER_TOL = 0.10
#: Default: an interval longer than this many median intervals is a gap between snapshots.
DEFAULT_GAP_FACTOR = 1.5
TIME_FROM = ("auto", "column", "name", "interval", "mtime")


def as_utc(dt: datetime) -> datetime:
    """``dt`` in UTC; a naive time is taken as UTC."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def parse_time(value: str) -> tuple[int, bool]:
    """``(microseconds, absolute)`` of one time-column value, exact to the microsecond.

    ISO-8601 -> microseconds since the Unix epoch (absolute; naive = UTC); a number of seconds ->
    itself × 10**6 (absolute when >= ``EPOCH_MIN_S``, else relative seconds).
    """
    v = value.strip()
    try:
        num = Decimal(v)
    except InvalidOperation:
        num = None
    if num is not None:
        if not num.is_finite():
            raise ValueError(f"time value {value!r} is not finite")
        return int((num * 1_000_000).to_integral_value()), num >= EPOCH_MIN_S
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"time value {value!r} is neither a number of seconds nor ISO-8601") from None
    return (as_utc(dt) - EPOCH) // timedelta(microseconds=1), True


def segments(t: np.ndarray, gap_factor: float, where: str, first_line: int) -> tuple[list[slice], float]:
    """Split increasing sample times ``t`` (s) at gaps; return the segments and the mean interval (s).

    An interval longer than ``gap_factor`` × the median interval is a gap; every other interval must
    lie within ``SAMPLE_JITTER_TOL`` of the median. The mean interval is that of the non-gaps
    (sample rate = 1 / mean). ``where``/``first_line`` (the line of ``t[0]``) make the errors
    precise. Raises ``ValueError`` when times do not increase, when the sampling is irregular, or
    when no two consecutive samples give the interval.
    """
    dt = np.diff(t)
    bad = np.flatnonzero(dt <= 0)
    if bad.size:
        raise ValueError(
            f"{where}: column t must increase; it does not at line {int(bad[0]) + first_line + 1}"
        )
    if dt.size == 0:
        raise ValueError(f"{where}: a time column needs at least 2 samples to give the sample rate")
    median = float(np.median(dt))
    gap = dt > gap_factor * median
    off = np.flatnonzero(~gap & (np.abs(dt - median) > SAMPLE_JITTER_TOL * median))
    if off.size:
        k = int(off[0])
        raise ValueError(
            f"{where}: non-uniform sampling: interval {dt[k]:.6g} s before line {k + first_line + 1} differs "
            f"from the median {median:.6g} s by more than {SAMPLE_JITTER_TOL:.0%} and is no gap "
            f"(gaps are > {gap_factor:g} x the median)"
        )
    mean = float(dt[~gap].mean())
    cuts = [0, *(int(k) + 1 for k in np.flatnonzero(gap)), t.size]
    return [slice(a, b) for a, b in zip(cuts, cuts[1:], strict=False)], mean


def name_time(entry: Entry, pattern: str) -> datetime:
    """The UTC time in the file's name: ``strptime(stem, pattern)``; ValueError naming the file otherwise."""
    stem = stem_of(entry.name)
    try:
        return as_utc(datetime.strptime(stem, pattern))
    except ValueError:
        raise ValueError(
            f"{entry.source}: file name {stem!r} does not match --name-pattern {pattern!r}"
        ) from None


@dataclass(frozen=True)
class TimeRule:
    """How to find each file's base (see the module docstring); validated by :func:`time_rule`."""

    time_from: str
    name_pattern: str | None
    interval_s: float | None
    start: datetime | None
    n_files: int


def time_rule(
    time_from: str,
    name_pattern: str | None,
    interval_s: float | None,
    start: datetime | None,
    n_files: int,
) -> TimeRule:
    """Check that the options fit together; ``ValueError`` with the reason otherwise."""
    if time_from not in TIME_FROM:
        raise ValueError(f"time_from must be one of {', '.join(TIME_FROM)}, got {time_from!r}")
    if interval_s is not None and not (math.isfinite(interval_s) and interval_s > 0):
        raise ValueError(f"--interval must be a number of seconds > 0, got {interval_s!r}")
    if time_from == "name" and not name_pattern:
        raise ValueError("time_from=name needs --name-pattern")
    if time_from == "interval" and (interval_s is None or start is None):
        raise ValueError("time_from=interval needs --start and --interval")
    if interval_s is not None and start is None:
        raise ValueError("--interval needs --start (the time of the first file's first sample)")
    rule = TimeRule(time_from, name_pattern, interval_s, start and as_utc(start), n_files)
    if _auto_start_only(rule) and n_files > 1:
        raise ValueError(
            f"--start alone gives the time of one file, but there are {n_files}: add --interval SECONDS "
            "or --name-pattern"
        )
    return rule


def _auto_start_only(rule: TimeRule) -> bool:
    return (
        rule.time_from == "auto"
        and rule.start is not None
        and not rule.name_pattern
        and rule.interval_s is None
    )


def base_time(rule: TimeRule, entry: Entry, k: int, column: datetime | None) -> datetime:
    """UTC time of the first sample of file number ``k`` (0-based); ``column``: its own absolute time."""
    mode = rule.time_from
    if mode == "auto":
        if column is not None:
            return column
        mode = "name" if rule.name_pattern else "interval" if rule.interval_s is not None else "mtime"
        if _auto_start_only(rule):
            assert rule.start is not None
            return rule.start
    if mode == "column":
        if column is None:
            raise ValueError(f"{entry.source}: no absolute time column (time_from=column)")
        return column
    if mode == "name":
        assert rule.name_pattern is not None
        return name_time(entry, rule.name_pattern)
    if mode == "interval":
        assert rule.start is not None and rule.interval_s is not None
        return rule.start + timedelta(seconds=k * rule.interval_s)
    return entry.mtime
