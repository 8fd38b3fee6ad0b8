"""shared.reports.prognosis: how reports state the remaining life, by hand.

Units follow the median (min below 2 h, h below 2 days, days beyond); the window is the 80 % interval's
low end ("now" under a minute); without an estimate the statement says why and carries no number of
its own; a stored window counts only where the update's RUL status is an estimate."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from shared.messages import HealthUpdate, RulItem
from shared.reports.data import Series
from shared.reports.prognosis import Prognosis, estimate_text, life_text, life_unit, prognosis, traced_windows

T = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def rul(median: float, low: float, high: float | None, level: float = math.log(2.0)) -> RulItem:
    return RulItem(
        status="estimate",
        reason="log-linear path of rms_log fitted to 30 points",
        level=level,
        threshold=1.5,
        threshold_basis="median end-of-life level of 6 run-to-failure bearings",
        median_s=median,
        low_s=low,
        high_s=high,
        interval=0.8,
        model="log_linear",
        window_s=5400.0,
        n_points=30,
        as_of=T,
    )


def update(r: RulItem | None, days: float | None = None) -> HealthUpdate:
    return HealthUpdate(
        asset_id="pump",
        ts=T,
        health_score=60.0,
        risk_level="MODERATE",
        grade="C",
        degradation_index=0.3,
        maintenance_window_days=days,
        rul=r,
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.0, "0 min"), (2700.0, "45 min"), (7199.0, "120 min"), (7200.0, "2.0 h"), (172_799.0, "48.0 h")]
    + [(172_800.0, "2.0 days"), (30 * 86400.0, "30.0 days")],
)
def test_life_text_units_by_size(seconds: float, text: str) -> None:
    assert life_text(seconds) == text


def test_life_unit_refuses_what_is_not_a_duration() -> None:
    for bad in (-1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="finite and >= 0"):
            life_unit(bad)


def test_the_interval_is_in_the_medians_unit() -> None:
    assert estimate_text(rul(7200.0, 3600.0, 14400.0)) == "2.0 h (80 %: 1.0–4.0 h)"
    assert (
        estimate_text(rul(20 * 86400.0, 12.5 * 86400.0, 40 * 86400.0)) == "20.0 days (80 %: 12.5–40.0 days)"
    )
    assert estimate_text(rul(300.0, 180.0, None)) == "5 min (80 %: 3 min – no upper bound)"
    with pytest.raises(ValueError, match="median_s and low_s"):
        estimate_text(RulItem(status="estimate", reason="x"))


def test_an_estimate_states_what_it_rests_on_and_its_window() -> None:
    p = prognosis(update(rul(7200.0, 3600.0, 14400.0), days=3600 / 86400))
    assert p is not None and p.is_estimate
    assert p.headline == "Remaining life 2.0 h (80 %: 1.0–4.0 h)"
    assert p.indicator == "rms_log 0.69 Np (RMS 2.00× calibrated)"  # e^0.693 = 2
    assert (
        p.threshold == "1.50 Np (RMS 4.48× calibrated): median end-of-life level of 6 run-to-failure bearings"
    )
    assert p.model == "log_linear, 30 points over 90 min of data"
    assert p.window == "within 60 min (conservative end of the 80 % interval)"
    assert p.window_days == pytest.approx(3600 / 86400) and p.as_of == T
    # the threshold's spread reaches below the current level: the low end is 0, maintenance is due now
    now = prognosis(update(rul(600.0, 0.0, 1800.0)))
    assert now is not None and now.window == "now (conservative end of the 80 % interval)"
    past = prognosis(update(rul(0.0, 0.0, 240.0, level=2.0)))  # rms_log 2.0 Np >= its threshold 1.5 Np
    assert (
        past is not None
        and past.indicator == "rms_log 2.00 Np (RMS 7.39× calibrated), past the failure threshold"
    )
    assert past.headline == "Remaining life 0 min (80 %: 0–4 min)"


@pytest.mark.parametrize(
    ("r", "headline", "reason"),
    [
        (RulItem(status="no_degradation_trend", reason="no rise"), "No degradation trend", "no rise"),
        (RulItem(status="not_calibrated", reason="no calibrated RMS"), "Not calibrated", "no calibrated RMS"),
        (RulItem(status="sensor_fault", reason="x flat"), "Sensor fault", "x flat"),
        (
            None,
            "No estimate",
            "this health update predates prognostics: its window came from a per-risk-level rule",
        ),
        (
            RulItem(status="estimate", reason="half"),
            "No estimate",
            "the estimate lacks its median or interval (half)",
        ),
    ],
)
def test_without_an_estimate_the_reason_and_no_window(r: RulItem | None, headline: str, reason: str) -> None:
    p = prognosis(update(r, days=None if r else 21.0))  # an old update's 21 days are not a window
    assert p is not None and not p.is_estimate
    assert (p.headline, p.reason, p.window, p.window_days, p.estimate) == (headline, reason, None, None, None)
    assert prognosis(None) is None
    # an update without rul nor window: its maintenance reason says why (else a general sentence)
    why = update(None).model_copy(
        update={"maintenance_reason": "no degradation trend: no vibration window yet"}
    )
    assert prognosis(why) == Prognosis("none", "No estimate", "no degradation trend: no vibration window yet")
    assert prognosis(update(None)) == Prognosis(
        "none", "No estimate", "this health update carries no remaining-life estimate"
    )


def test_stored_windows_count_only_where_they_come_from_an_estimate() -> None:
    h = Series(
        np.array([0.0, 1.0, 2.0]),
        {"maintenance_window_days": np.array([30.0, np.nan, 0.5])},  # 30: an old per-risk-level rule
        {"rul_status": ["", "no_degradation_trend", "estimate"]},
    )
    got = traced_windows(h)
    assert np.isnan(got[:2]).all() and got[2] == 0.5
    old = Series(np.array([0.0]), {"maintenance_window_days": np.array([30.0])})  # no rul_status stored
    assert np.isnan(traced_windows(old)).all()
