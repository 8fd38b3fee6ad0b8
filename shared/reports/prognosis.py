"""The remaining-life estimate as the reports state it (pure: a health update in, texts out).

A report shows a maintenance window only when it traces back to a fitted estimate
(``HealthUpdate.rul.status == "estimate"``, :mod:`shared.health.rul`): the window is the conservative
(low) end of the estimate's 80 % interval. Otherwise it says why there is none (no degradation trend,
not calibrated, a sensor fault, or an update older than prognostics, whose per-risk-level days are
not shown). Durations are in human units chosen from the median (:func:`life_unit`): minutes below
2 h, hours below 2 days, days beyond, the interval in the median's unit.

The indicator is ``rms_log`` in neper, the mean over axes of ``ln(RMS_a / RMS_cal,a)`` (each axis's RMS
over its calibrated RMS, :mod:`shared.health.prognostics`); a level ``L`` Np is an RMS ``e^L`` times the
calibrated one (geometric mean over axes), which is stated beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from shared.messages import HealthUpdate
from shared.messages.health import RulItem
from shared.reports.data import Array, Series

#: Headline of each RUL status without an estimate.
STATUS_TEXT: dict[str, str] = {
    "no_degradation_trend": "No degradation trend",
    "not_calibrated": "Not calibrated",
    "sensor_fault": "Sensor fault",
}
NO_RUL = "No estimate"
#: Why an update without ``rul`` has no estimate: it carries a window, so it predates prognostics (the
#: days came from a per-risk-level rule); otherwise its ``maintenance_reason`` says why, else this.
OLD_RULE_REASON = "this health update predates prognostics: its window came from a per-risk-level rule"
NO_RUL_REASON = "this health update carries no remaining-life estimate"


def life_unit(seconds: float) -> tuple[str, float, int]:
    """``(unit, seconds per unit, decimals)`` for a duration: min below 7,200 s, h below 172,800 s,
    else days. ValueError for a negative or non-finite duration."""
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"a duration must be finite and >= 0 s, got {seconds!r}")
    if seconds < 7200:
        return "min", 60.0, 0
    if seconds < 172_800:
        return "h", 3600.0, 1
    return "days", 86_400.0, 1


def life_text(seconds: float, ref: float | None = None) -> str:
    """A duration in the unit of ``ref`` seconds (default its own): ``"45 min"``, ``"3.2 h"``."""
    unit, per, digits = life_unit(seconds if ref is None else ref)
    return f"{seconds / per:.{digits}f} {unit}"


@dataclass(frozen=True)
class Prognosis:
    """What a report says about remaining life (all texts; ``window`` None = no window)."""

    #: ``estimate``, another RUL status, ``none`` (an update without ``rul``) or ``incomplete`` (an
    #: estimate without its median or low end: not shown).
    status: str
    #: "Remaining life 2.0 h (80 %: 1.0–4.0 h)" or "No degradation trend" etc.
    headline: str
    #: What the estimate rests on, or why there is none.
    reason: str
    #: "rms_log 0.69 Np (RMS 2.00× calibrated)"; None without an estimate.
    indicator: str | None = None
    #: "1.50 Np (RMS 4.48× calibrated): <basis>"; None without an estimate.
    threshold: str | None = None
    #: "log_linear, 54 points over 90 min of data".
    model: str | None = None
    #: "within 1.0 h (conservative end of the 80 % interval)"; None without an estimate.
    window: str | None = None
    as_of: datetime | None = None
    #: The window's end in days (the interval's low end), for tables; None without an estimate.
    window_days: float | None = None
    #: "2.0 h (80 %: 1.0–4.0 h)" (:func:`estimate_text`); None without an estimate.
    estimate: str | None = None

    @property
    def is_estimate(self) -> bool:
        return self.status == "estimate"


def _level(name: str, unit: str, value: float) -> str:
    ratio = f" (RMS {math.exp(value):.2f}× calibrated)" if name == "rms_log" else ""
    return f"{value:.2f} {unit}{ratio}"


def estimate_text(rul: RulItem) -> str:
    """``"2.0 h (80 %: 1.0–4.0 h)"`` in the median's unit (``"... 1.0 h – no upper bound)"`` when
    ``high_s`` is None). ValueError without ``median_s`` and ``low_s``."""
    if rul.median_s is None or rul.low_s is None:
        raise ValueError("an estimate needs median_s and low_s")
    unit, per, d = life_unit(rul.median_s)
    pct = round(100 * (rul.interval or 0.8))
    low = f"{rul.low_s / per:.{d}f}"
    span = (
        f"{low} {unit} – no upper bound" if rul.high_s is None else f"{low}–{rul.high_s / per:.{d}f} {unit}"
    )
    return f"{rul.median_s / per:.{d}f} {unit} ({pct} %: {span})"


def _indicator(rul: RulItem) -> str:
    """``"rms_log 1.05 Np (RMS 2.86× calibrated)"``, with ", past the failure threshold" when the level
    is at or above it (the estimate is then 0 or nearly)."""
    name = rul.indicator
    if rul.level is None:
        return name
    past = ", past the failure threshold" if rul.threshold is not None and rul.level >= rul.threshold else ""
    return f"{name} {_level(name, rul.indicator_unit, rul.level)}{past}"


def _within(low_s: float) -> str:
    """``"within 1.0 h"``; ``"now"`` when the low end is under a minute (it may be 0: the threshold's
    spread reaches below the current level)."""
    return "now" if low_s < 60 else f"within {life_text(low_s)}"


def _estimate(rul: RulItem) -> Prognosis:
    assert rul.median_s is not None and rul.low_s is not None  # checked by the caller
    name, unit = rul.indicator, rul.indicator_unit
    threshold = None
    if rul.threshold is not None:
        threshold = _level(name, unit, rul.threshold) + (
            f": {rul.threshold_basis}" if rul.threshold_basis else ""
        )
    model = None
    if rul.model:
        span = [f"{rul.n_points} points" if rul.n_points is not None else ""]
        span.append(f"over {life_text(rul.window_s)} of data" if rul.window_s else "")
        model = ", ".join([rul.model, " ".join(s for s in span if s)]).rstrip(", ")
    pct = round(100 * (rul.interval or 0.8))
    return Prognosis(
        status="estimate",
        headline=f"Remaining life {estimate_text(rul)}",
        reason=rul.reason,
        indicator=_indicator(rul),
        threshold=threshold,
        model=model,
        window=f"{_within(rul.low_s)} (conservative end of the {pct} % interval)",
        as_of=rul.as_of,
        window_days=rul.low_s / 86_400.0,
        estimate=estimate_text(rul),
    )


def prognosis(h: HealthUpdate | None) -> Prognosis | None:
    """The report's remaining-life statement for the newest health update (None: no update)."""
    if h is None:
        return None
    rul = h.rul
    if rul is not None and rul.status == "estimate" and rul.median_s is not None and rul.low_s is not None:
        return _estimate(rul)
    if rul is not None and rul.status in STATUS_TEXT:
        return Prognosis(status=rul.status, headline=STATUS_TEXT[rul.status], reason=rul.reason)
    if rul is None:
        old = h.maintenance_window_days is not None
        reason = OLD_RULE_REASON if old else (h.maintenance_reason or NO_RUL_REASON)
        return Prognosis(status="none", headline=NO_RUL, reason=reason)
    # an "estimate" without its numbers: say so rather than show part of it
    reason = f"the estimate lacks its median or interval ({rul.reason})"
    return Prognosis(status="incomplete", headline=NO_RUL, reason=reason)


def traced_windows(health: Series) -> Array:
    """The stored ``maintenance_window_days`` of each update where it comes from an estimate
    (``rul_status == "estimate"``), NaN elsewhere: an update older than prognostics stored days from a
    per-risk-level rule, which a report does not show as a window."""
    days = health.columns.get("maintenance_window_days", np.full(len(health), np.nan))
    status = health.labels.get("rul_status", [""] * len(health))
    if len(status) != days.shape[0]:
        raise ValueError(f"rul_status has {len(status)} labels for {days.shape[0]} windows")
    return np.where(np.asarray(status, dtype=object) == "estimate", days, np.nan).astype(np.float64)
