"""Tuning of the health assessment (named defaults; pure data, validated on construction).

Times are data-time seconds; ratios are ``anomaly_score / threshold`` (dimensionless); z values are
in standard deviations of the calibrated baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from shared.health.degradation import DegradationParams
from shared.health.persistence import Persistence
from shared.health.prognostics import PrognosticsParams

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
#: ... or while its latest ratio (the scorer's 10-window mean) is at least this: a clear fault alarms
#: after k windows without waiting for the smoothing. Healthy data measured here peaks near 1.3.
ALARM_FAST_RATIO = 1.5
#: The "signals" track: ratio = max_j |x_j − mean_j| / std_j / SIGNAL_Z_THRESHOLD (4σ → 1, 8σ → 2).
SIGNAL_Z_THRESHOLD = 4.0


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
    degradation: DegradationParams = field(default_factory=DegradationParams)
    #: Indicators, CUSUM early warning and RUL (defaults from the FEMTO evaluation; per asset if needed).
    prognostics: PrognosticsParams = field(default_factory=PrognosticsParams)

    def __post_init__(self) -> None:
        for name in ("smoothing_tau_s", "stale_after_s", "z_min", "envelope_snr_min"):
            v = getattr(self, name)
            if not _positive(v):
                raise ValueError(f"AssessorParams.{name} must be a positive number, got {v!r}")
        Persistence(self.persistence_k, self.persistence_n)  # validates k, n
        for name in ("clear_windows", "max_insights"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (1 if name == "clear_windows" else 0):
                raise ValueError(f"AssessorParams.{name} must be a non-negative integer, got {v!r}")

    def new_persistence(self) -> Persistence:
        """An empty k-of-n buffer with these params."""
        return Persistence(self.persistence_k, self.persistence_n)
