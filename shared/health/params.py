"""Tuning of the health assessment (named defaults; pure data, validated on construction).

Times are data-time seconds; ratios are ``anomaly_score / threshold`` (dimensionless); z values are
in standard deviations of the calibrated baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from shared.health.degradation import DegradationParams
from shared.health.persistence import Persistence
from shared.health.prognostics import PrognosticsParams
from shared.messages.alarm_settings import AlarmSettings

#: EWMA time constant of the smoothed model ratios and velocity (s).
SMOOTHING_TAU_S = 30.0
#: A track not updated for this long (s of data time) no longer counts.
STALE_AFTER_S = 900.0
#: k-of-n persistence of the pointwise flags (3 of the last 5 windows).
PERSISTENCE_K = 3
PERSISTENCE_N = 5
#: Consecutive condition-off observations that auto-resolve an alarm.
CLEAR_WINDOWS = 10
#: |z| from which a feature deviates enough for an insight (σ).
Z_MIN = 3.0
#: Envelope peak-to-noise-floor amplitude ratio from which a bearing peak is reported.
ENVELOPE_SNR_MIN = 3.0
#: Insights in an assessment (best first).
MAX_INSIGHTS = 4
#: A persistent model alarms only while its smoothed ratio is at least this (its EWMA at threshold)...
ALARM_MIN_SMOOTHED_RATIO = 1.0
#: ... or while its latest ratio (the scorer's 10-window mean) is at least this (the CRITICAL ratio):
#: a gross fault alarms after k windows without waiting for the smoothing. Healthy data reaches more than
#: 1.5: in a 24 h healthy replay (tests/test_alarms_healthy_day.py, 5 assets) the batch forest's latest
#: ratio peaked at 1.75 and 1.5 opened 12 short alarms in one asset's day (smoothed ratio 0.3..0.7),
#: 2.0 none; a marginal fault (1..2) alarms once its smoothed ratio reaches ALARM_MIN_SMOOTHED_RATIO.
ALARM_FAST_RATIO = 2.0
#: Hysteresis of the anomaly alarm: once open it stays on while a model's smoothed ratio is at least
#: this (stricter to clear than the 1.0 it opened at), so a ratio hovering near 1 cannot open, clear
#: and open again. Not lower by default: a model whose healthy level sits just below its threshold would
#: hold the alarm open for good (0.8 did in tests/test_e2e_time_correct.py: the autoencoder after an
#: imbalance's recovery); an asset's config can lower it (``alarms.clear_ratio``).
ALARM_CLEAR_RATIO = 0.9
#: Re-open delay (data s): after an alarm auto-cleared, its source does not open again within this
#: long unless clearly worse (a higher severity, or REOPEN_WORSE_FACTOR x the cleared alarm's peak).
#: 5 min: at most 2 re-opens fit in the 10 minutes over which the alarm metrics count chattering
#: (3 or more). Longer hides more: a recurrence of the same size within the delay is only counted on the
#: cleared alarm (``held_reopens``) and opens when still on once the delay has passed.
REOPEN_DELAY_S = 300.0
REOPEN_WORSE_FACTOR = 1.5
#: An alarm opened within this long (data s) after its source's previous auto-clear counts as a re-open
#: (the metrics' chattering: 3 or more re-opens in 10 minutes).
CHATTER_WINDOW_S = 600.0
#: The "signals" track: ratio = max_j |x_j − mean_j| / std_j / SIGNAL_Z_THRESHOLD (4σ → 1, 8σ → 2).
SIGNAL_Z_THRESHOLD = 4.0


#: Config ``alarms`` block field -> :class:`AssessorParams` field.
ALARM_SETTING_FIELDS = {
    "open_ratio": "alarm_min_smoothed_ratio",
    "clear_ratio": "alarm_clear_ratio",
    "clear_windows": "clear_windows",
    "reopen_delay_s": "reopen_delay_s",
    "reopen_worse_factor": "reopen_worse_factor",
}


def _positive(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0


@dataclass(frozen=True)
class AssessorParams:
    """Everything :class:`~shared.health.assessor.HealthAssessor` can be tuned with (see the constants)."""

    smoothing_tau_s: float = SMOOTHING_TAU_S
    stale_after_s: float = STALE_AFTER_S
    persistence_k: int = PERSISTENCE_K
    persistence_n: int = PERSISTENCE_N
    clear_windows: int = CLEAR_WINDOWS
    z_min: float = Z_MIN
    envelope_snr_min: float = ENVELOPE_SNR_MIN
    max_insights: int = MAX_INSIGHTS
    # A model counts as persistently anomalous only while its smoothed ratio is also at least this
    # (a lone excursion of the scorer's short rolling mean must not raise an alarm on healthy data).
    alarm_min_smoothed_ratio: float = ALARM_MIN_SMOOTHED_RATIO
    # ... or while its latest (10-window mean) ratio is at least this.
    alarm_fast_ratio: float = ALARM_FAST_RATIO
    # Forest scores saturate near twice their threshold however extreme a reading is; the signals
    # track keeps health proportional to how far the machine is from normal.
    signal_z_threshold: float = SIGNAL_Z_THRESHOLD
    # Hysteresis and re-open delay of the alarm lifecycle (see the constants; per asset: the config's
    # ``alarms`` block, :meth:`with_alarm_settings`).
    alarm_clear_ratio: float = ALARM_CLEAR_RATIO
    reopen_delay_s: float = REOPEN_DELAY_S
    reopen_worse_factor: float = REOPEN_WORSE_FACTOR
    chatter_window_s: float = CHATTER_WINDOW_S
    degradation: DegradationParams = field(default_factory=DegradationParams)
    #: Indicators, CUSUM early warning and RUL (defaults from the FEMTO evaluation; per asset if needed).
    prognostics: PrognosticsParams = field(default_factory=PrognosticsParams)

    def __post_init__(self) -> None:
        for name in ("smoothing_tau_s", "stale_after_s", "z_min", "envelope_snr_min"):
            v = getattr(self, name)
            if not _positive(v):
                raise ValueError(f"AssessorParams.{name} must be a positive number, got {v!r}")
        Persistence(self.persistence_k, self.persistence_n)  # validates k, n
        self._check_alarm_lifecycle()

    def _check_alarm_lifecycle(self) -> None:
        for name in ("alarm_min_smoothed_ratio", "alarm_fast_ratio", "alarm_clear_ratio"):
            if not _positive(getattr(self, name)):
                raise ValueError(
                    f"AssessorParams.{name} must be a positive number, got {getattr(self, name)!r}"
                )
        if self.alarm_clear_ratio > self.alarm_min_smoothed_ratio:
            raise ValueError(
                f"AssessorParams.alarm_clear_ratio ({self.alarm_clear_ratio!r}) must not exceed "
                f"alarm_min_smoothed_ratio ({self.alarm_min_smoothed_ratio!r}): clearing is stricter"
            )
        for name in ("reopen_delay_s", "chatter_window_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise ValueError(f"AssessorParams.{name} must be a number >= 0, got {v!r}")
        if not _positive(self.reopen_worse_factor) or self.reopen_worse_factor <= 1:
            raise ValueError(
                f"AssessorParams.reopen_worse_factor must be > 1, got {self.reopen_worse_factor!r}"
            )

    def with_alarm_settings(self, alarms: AlarmSettings | None) -> AssessorParams:
        """These params with an asset config's ``alarms`` block applied (its unset fields keep these
        values); ``None``: unchanged. ValueError when the result is inconsistent."""
        if alarms is None:
            return self
        given = {ALARM_SETTING_FIELDS[k]: v for k, v in alarms.model_dump(exclude_none=True).items()}
        if "alarm_min_smoothed_ratio" in given and "alarm_clear_ratio" not in given:
            # a lower opening level given alone pulls the default clearing level down with it
            given["alarm_clear_ratio"] = min(self.alarm_clear_ratio, given["alarm_min_smoothed_ratio"])
        return replace(self, **given)

    def alarm_lifecycle(self) -> dict[str, Any]:
        """The :meth:`~shared.health.alarms.AlarmBook.configure` settings of these params."""
        return {
            "clear_windows": self.clear_windows,
            "reopen_delay_s": self.reopen_delay_s,
            "reopen_worse_factor": self.reopen_worse_factor,
            "chatter_window_s": self.chatter_window_s,
        }

    def new_persistence(self) -> Persistence:
        """An empty k-of-n buffer with these params."""
        return Persistence(self.persistence_k, self.persistence_n)
