"""What a report rests on: one asset's stored data over one period, gathered by the reporter service
from the store and the retained model announcements (pure data, no I/O here).

Every array is in data-time order. Times are UTC; numeric series are float64 numpy arrays with
``ts_s`` in Unix seconds. Nothing here is estimated or filled in: a series the store does not hold
for the period is empty, and the builders say so instead of drawing filler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from shared.messages import AlarmEvent, AssetConfig, HealthUpdate, OperatorLog

ReportKind = Literal["executive", "excel", "industrial"]
REPORT_KINDS: tuple[ReportKind, ...] = ("executive", "excel", "industrial")

Array = NDArray[np.float64]


def _empty() -> Array:
    return np.zeros(0, dtype=np.float64)


@dataclass
class Series:
    """One stored time series: ``ts_s`` (Unix s) and named value columns of the same length (units in
    the column name's owner: readings V, A, 1, g; scores dimensionless; health 0-100)."""

    ts_s: Array = field(default_factory=_empty)
    columns: dict[str, Array] = field(default_factory=dict)
    #: Text columns of the same length (e.g. ``event_id``, ``risk_level``, ``iso_zone``).
    labels: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.ts_s.shape[0])


@dataclass
class ModelInfo:
    """One announced model of the asset (from its retained announcement's manifest)."""

    kind: str
    version: str
    created_at: datetime | None
    threshold: float
    features: list[str]
    #: The manifest's training statistics and baseline (as announced; JSON-like).
    training: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)
    frames: dict[str, Any] | None = None


@dataclass
class ReportData:
    """Everything a report of ``asset_id`` over ``[start, end]`` (data time) shows.

    ``readings``: columns ``voltage_v``, ``current_a``, ``power_factor``, ``vibration_g`` and label
    ``event_id``. ``scores[kind]``: columns ``anomaly_score``, ``raw_score``, ``threshold``,
    ``is_anomaly`` (0/1), labels ``event_id``, ``severity``, ``model_version``. ``health``: columns
    ``health_score``, ``degradation_index``, ``maintenance_window_days``, ``velocity_rms_mm_s``, the
    trend indicators ``ind_rms_log``, ``ind_hf_energy_log`` (Np), ``ind_kurtosis_z`` (robust σ),
    ``ind_cusum`` and its decision level ``ind_cusum_h`` (Np·s) and the remaining-life fields
    ``rul_median_s``, ``rul_low_s``, ``rul_high_s`` (s), ``rul_threshold`` (Np) (NaN when absent),
    labels ``risk_level``, ``grade``, ``iso_zone`` ("" when absent), ``zone_basis``, ``rul_status``.
    ``windows``: columns ``fs_hz``, ``n``, ``rms_x|y|z`` (g, NaN for an axis not sent), label ``axes``.
    ``vibration``: columns = the stored vibration feature vectors' features and extras (spectral band
    energies, envelope amplitudes/SNRs, velocity), NaN where a vector lacks one. ``latest_health``: the
    newest stored health update in the period (``None``: none). ``alarms``: every stored alarm transition
    in the period (oldest first); ``open_before``: for each alarm still open when the period began (its
    last transition before the period is not ``RESOLVED``, looked back at most a year), that transition;
    ``logs``: operator log entries in the period (oldest first).
    ``readings_total``: how many readings the period holds (``readings`` may be capped, see ``capped``).
    """

    asset_id: str
    start: datetime
    end: datetime
    generated_at: datetime
    config: AssetConfig | None = None
    models: list[ModelInfo] = field(default_factory=list)
    readings: Series = field(default_factory=Series)
    readings_total: int = 0
    #: The row cap applied to ``readings`` (``None``: every reading of the period is here).
    capped: int | None = None
    #: Statistics of each ``readings`` column over EVERY reading of the period (keys ``n``, ``mean``,
    #: ``std`` (population), ``min``, ``max``; the column's unit), filled by the gatherer when
    #: ``readings`` is capped so a report's maximum is the period's true one. Empty: the builders
    #: compute them from ``readings`` (which then holds every reading).
    reading_stats: dict[str, dict[str, float]] = field(default_factory=dict)
    scores: dict[str, Series] = field(default_factory=dict)
    health: Series = field(default_factory=Series)
    latest_health: HealthUpdate | None = None
    windows: Series = field(default_factory=Series)
    vibration: Series = field(default_factory=Series)
    alarms: list[AlarmEvent] = field(default_factory=list)
    open_before: list[AlarmEvent] = field(default_factory=list)
    logs: list[OperatorLog] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """No reading, window or health update in the period: the report says so and shows nothing else."""
        return not (len(self.readings) or len(self.windows) or len(self.health))
