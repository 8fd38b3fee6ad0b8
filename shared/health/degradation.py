"""Degradation Index, health trend and maintenance window (pure; data time only).

All times are *data* timestamps in seconds (float, e.g. Unix epoch of the measurement), never the
wall clock, so recorded data can be replayed faster than real time.

Degradation Index (DI, 0..1, dimensionless)
-------------------------------------------
DI is a memory of damage. Over the interval ``dt`` since the previous update it grows only when the
*persistent* anomaly flag is on (k-of-n persistence, see :mod:`shared.health.alarms`) and the
severity excess ``s = ratio - 1`` (ratio = anomaly_score / threshold) is positive::

    s_eff = min(s, S_MAX)                                          (S_MAX = 4)
    dt    = min(ts - last_ts, MAX_GAP_S)                           (data gaps count as MAX_GAP_S)
    DI   <- 1 - (1 - DI) * 2 ** (-s_eff * dt / HALF_LIFE_S)        (HALF_LIFE_S = 1 day)

i.e. a fault one threshold above its threshold (ratio 2) sustained for one day of data time takes a
new machine to DI 0.5, at ratio 3 in half a day, and DI saturates at 1. The condition reported at
``ts`` is taken to have held since the previous update. Under healthy operation (flag off, or
``s <= 0``) DI stays exactly constant: it neither grows nor decays. Only :meth:`reset` (an explicit
maintenance action) sets it back to 0.

Health trend (points/day)
-------------------------
Difference of two exponentially weighted means of health over data time (fast ``TAU_F`` = 15 min,
slow ``TAU_S`` = 2 h), each ``E <- E + (1 - exp(-dt / TAU)) * (h - E)``, both started at the first
sample::

    trend = (E_fast - E_slow) / (TAU_S - TAU_F) * 86400        [points/day]

For a health that changes linearly at ``b`` points/s each mean lags by ``b * TAU``, so the formula
returns exactly ``b`` once settled; a constant health gives 0. Both means lag, so after a step the
raw difference can point the wrong way (a machine that has just recovered would still look like
falling); the reported trend is therefore clipped to the direction of the latest sample when it
is clearly away from the fast mean (``TREND_BAND`` = 1 point)::

    h_last > E_fast + 1  ->  trend = max(trend, 0)     h_last < E_fast - 1  ->  trend = min(trend, 0)

(on a steady ramp the latest sample is on the trend's side of the lagging mean, so ramps are
unaffected, and noise within the band does not flip the sign). The trend is reported only once
``MIN_TREND_SPAN_S`` (15 min) of data time has passed since the first sample (or the last reset);
before that it is ``None``.

Maintenance window (days): :func:`maintenance_window`, from the remaining useful life of the fitted
degradation path (:mod:`shared.health.prognostics`): the 80 % interval's lower end, or None with the
reason there is none ("no degradation trend: ...", "not calibrated: ..."). It replaced a rule of
hand-picked days per risk level (issue 15: the window must trace back to a fitted estimate).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from shared.health.prognostics import RulView

SECONDS_PER_DAY = 86_400.0
#: Health points the latest sample must be away from the fast mean to clip the trend's sign.
TREND_BAND = 1.0


@dataclass(frozen=True)
class DegradationParams:
    """Tuning of :class:`DegradationTracker` (not state: pass the same params when restoring)."""

    half_life_s: float = SECONDS_PER_DAY  # DI half-life at severity excess 1
    s_max: float = 4.0  # severity excess saturation
    max_gap_s: float = 300.0  # longest interval credited per update
    trend_fast_tau_s: float = 900.0  # fast EWMA of health (trend)
    trend_slow_tau_s: float = 7200.0  # slow EWMA of health (trend)
    min_trend_span_s: float = 900.0  # data time needed before the trend is reported

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValueError(f"DegradationParams.{f.name} must be a positive finite number, got {v!r}")
        if self.trend_slow_tau_s <= self.trend_fast_tau_s:
            raise ValueError("trend_slow_tau_s must be longer than trend_fast_tau_s")


@dataclass
class DegradationState:
    """JSON-serialisable state of :class:`DegradationTracker` (retain it; restore with from_dict)."""

    di: float = 0.0
    last_ts: float | None = None
    first_ts: float | None = None  # first sample of the current trend (since the last reset)
    anomalous_s: float = 0.0  # data seconds credited with a sustained anomaly since the last reset
    reset_at: float | None = None
    reset_reason: str = ""
    # Fast and slow EWMA of health (trend), None before the first health sample.
    health_fast: float | None = None
    health_slow: float | None = None
    health_ts: float | None = None  # data time of the last health sample
    health_last: float | None = None  # the last health sample

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DegradationState:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown DegradationState fields: {sorted(unknown)}")
        st = cls(**d)
        if not (0.0 <= st.di <= 1.0):
            raise ValueError(f"degradation index must be within 0..1, got {st.di}")
        return st


def _finite(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(float(v)):
        raise ValueError(f"{name} must be a finite number, got {v!r}")
    return float(v)


@dataclass
class DegradationTracker:
    """Accumulates the Degradation Index and estimates the health trend over data time."""

    params: DegradationParams = field(default_factory=DegradationParams)
    state: DegradationState = field(default_factory=DegradationState)

    @property
    def di(self) -> float:
        return self.state.di

    def update(self, ts: float, health: float | None, persistent: bool, excess: float) -> DegradationState:
        """Advance to data time ``ts`` (s).

        ``persistent``: the k-of-n anomaly flag; ``excess``: severity excess ``ratio - 1`` (<= 0
        when at or below threshold); ``health``: 0..100 sample for the trend (None: no sample).
        DI grows by ``1 - (1-DI) * 2**(-min(excess, s_max) * dt / half_life_s)`` only when
        ``persistent and excess > 0``; ``dt = clip(ts - last_ts, 0, max_gap_s)``. A timestamp
        older than the last one is credited ``dt = 0`` and does not move the clock back.
        """
        ts = _finite("ts", ts)
        excess = _finite("excess", excess)
        if health is not None:
            health = _finite("health", health)
            if not 0.0 <= health <= 100.0:
                raise ValueError(f"health must be within 0..100, got {health}")
        if not isinstance(persistent, bool):
            raise ValueError(f"persistent must be a bool, got {persistent!r}")
        s = self.state
        p = self.params
        if s.last_ts is None:
            dt = 0.0
            now = ts
        else:
            dt = min(max(ts - s.last_ts, 0.0), p.max_gap_s)
            now = max(ts, s.last_ts)
        if persistent and excess > 0.0 and dt > 0.0:
            s_eff = min(excess, p.s_max)
            s.di = min(1.0, 1.0 - (1.0 - s.di) * 2.0 ** (-s_eff * dt / p.half_life_s))
            s.anomalous_s += dt
        if health is not None:
            if s.health_fast is None or s.health_slow is None or s.health_ts is None:
                s.health_fast = s.health_slow = health
                s.first_ts = now
            else:
                dh = max(now - s.health_ts, 0.0)
                s.health_fast += (1.0 - math.exp(-dh / p.trend_fast_tau_s)) * (health - s.health_fast)
                s.health_slow += (1.0 - math.exp(-dh / p.trend_slow_tau_s)) * (health - s.health_slow)
            s.health_ts = now
            s.health_last = health
        s.last_ts = now
        return s

    @property
    def trend_per_day(self) -> float | None:
        """Health trend in points/day: ``(E_fast - E_slow) / (TAU_S - TAU_F) * 86400``, clipped to
        the direction of the last sample when it is more than TREND_BAND from ``E_fast``; None
        while less than ``min_trend_span_s`` of data time has passed since the first sample."""
        s, p = self.state, self.params
        if s.health_fast is None or s.health_slow is None or s.health_last is None:
            return None
        if s.first_ts is None or s.health_ts is None or s.health_ts - s.first_ts < p.min_trend_span_s:
            return None
        trend = (s.health_fast - s.health_slow) / (p.trend_slow_tau_s - p.trend_fast_tau_s) * SECONDS_PER_DAY
        if s.health_last > s.health_fast + TREND_BAND:
            trend = max(trend, 0.0)
        elif s.health_last < s.health_fast - TREND_BAND:
            trend = min(trend, 0.0)
        return trend

    def reset(self, ts: float, reason: str) -> None:
        """Explicit maintenance: DI -> 0 and the health trend restarts at data time ``ts``."""
        ts = _finite("ts", ts)
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError("a reset needs a non-empty reason (the maintenance action)")
        self.state = DegradationState(last_ts=ts, reset_at=ts, reset_reason=reason.strip())

    def to_dict(self) -> dict[str, Any]:
        return self.state.to_dict()

    @classmethod
    def from_dict(cls, d: dict[str, Any], params: DegradationParams | None = None) -> DegradationTracker:
        return cls(params=params or DegradationParams(), state=DegradationState.from_dict(d))


# ---------------------------------------------------------------------------------------------
# Maintenance window
# ---------------------------------------------------------------------------------------------
NO_WINDOW = "no vibration window assessed yet"
#: Maintenance-reason prefix per RUL status without an estimate.
_WHY = {"no_degradation_trend": "no degradation trend", "not_calibrated": "not calibrated"}


def _duration(s: float) -> str:
    """``s`` seconds for people: "45 s", "12 min", "3.4 h", "2.1 d"."""
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 2 * SECONDS_PER_DAY:
        return f"{s / 3600:.1f} h"
    return f"{s / SECONDS_PER_DAY:.1f} d"


def maintenance_window(rul: RulView | None) -> tuple[float | None, str]:
    """Days until maintenance and why: the conservative (lower) end of the RUL's 80 % interval, in days
    of data time, when there is an estimate; otherwise None and the reason (e.g. "no degradation trend:
    ...", "not calibrated: ...")."""
    if rul is None:
        return None, f"no degradation trend: {NO_WINDOW}"
    if rul.status == "estimate" and rul.low_s is not None and rul.median_s is not None:
        high = "beyond" if rul.high_s is None else _duration(rul.high_s)
        text = f"RUL {_duration(rul.median_s)} (80 %: {_duration(rul.low_s)} to {high}) from the {rul.reason}"
        return rul.low_s / SECONDS_PER_DAY, text
    return None, f"{_WHY.get(rul.status, rul.status.replace('_', ' '))}: {rul.reason}"
