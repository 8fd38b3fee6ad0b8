"""Health score, risk level and grade from model anomaly ratios and the ISO 20816-3 zone (pure).

Units: a *ratio* is ``anomaly_score / threshold`` of one model (dimensionless; healthy operation
is about 0, 1 is the model's alarm threshold, 2 is its CRITICAL level). Health is 0..100 points.

Per-model health (piecewise linear in the ratio ``r``, monotone non-increasing)::

    r     <= 0.5   1.0   2.0   3.0   >= 5.0
    h(r)   = 100    75    35    15      0

so healthy noise (r <= 0.5) scores 100, a model sitting at its threshold scores 75 (the LOW/MODERATE
boundary), the scorer's CRITICAL level (r = 2) scores 35 (HIGH risk, grade D) and the CRITICAL risk
band (h < 25) starts at r = 2.5. Negative ratios (a score below the healthy mean) count as 0.

Fusion across models (worst-dominant blend)::

    h = h_min + BLEND * (h_mean - h_min),   BLEND = 0.2

The models watch different signals (electrical readings, reading windows, vibration spectra), so a
fault seen by one model is real even when the others look healthy: the worst model dominates, and
healthy models can pull the result up by at most 20 % of the gap to the mean (a single model at 0
with two healthy ones gives 13.3, still CRITICAL). When several models agree the mean falls too,
so corroborated faults score lower than single-model ones.

ISO 20816-3 cap (works before any model is calibrated)::

    health = min(h, cap(zone)),   cap(A) = cap(B) = 100, cap(C) = 60, cap(D) = 20

Zone B means "unrestricted long-term operation", so it does not lower health; zone C ("limited
period only") caps at 60 (MODERATE risk, grade C); zone D ("damage") caps at 20 (CRITICAL risk).
With no model ratios the health is the cap alone.

Risk level (one rule everywhere): health >= 75 LOW, >= 50 MODERATE, >= 25 HIGH, else CRITICAL.
Grade: >= 90 A, >= 75 B, >= 50 C, >= 25 D, else F.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

RiskLevel = Literal["LOW", "MODERATE", "HIGH", "CRITICAL"]
Grade = Literal["A", "B", "C", "D", "F"]

RISK_LEVELS: tuple[RiskLevel, ...] = ("LOW", "MODERATE", "HIGH", "CRITICAL")

#: Knots of the ratio -> health mapping (see module docstring).
RATIO_KNOTS: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0, 5.0)
HEALTH_KNOTS: tuple[float, ...] = (100.0, 75.0, 35.0, 15.0, 0.0)

#: Weight of the mean in the worst-dominant fusion.
BLEND = 0.2

#: ISO 20816-3 zone -> maximum health.
ISO_HEALTH_CAP: dict[str, float] = {"A": 100.0, "B": 100.0, "C": 60.0, "D": 20.0}

#: Lower bounds of the risk levels / grades (health points).
RISK_BOUNDS: tuple[tuple[float, RiskLevel], ...] = ((75.0, "LOW"), (50.0, "MODERATE"), (25.0, "HIGH"))
GRADE_BOUNDS: tuple[tuple[float, Grade], ...] = ((90.0, "A"), (75.0, "B"), (50.0, "C"), (25.0, "D"))


def ratio_to_health(ratio: ArrayLike) -> NDArray[np.float64]:
    """Per-model health (0..100) of anomaly ratio(s) ``r = anomaly_score / threshold``.

    Piecewise-linear interpolation through :data:`RATIO_KNOTS` -> :data:`HEALTH_KNOTS` (100 for
    ``r <= 0.5``, 0 for ``r >= 5``); element-wise over any array shape.
    """
    r = np.asarray(ratio, dtype=np.float64)
    if not np.all(np.isfinite(r)):
        raise ValueError("anomaly ratios must be finite")
    return np.interp(r, RATIO_KNOTS, HEALTH_KNOTS)


def _check_health(health: float) -> float:
    if isinstance(health, bool) or not isinstance(health, int | float):
        raise ValueError(f"health must be a number, got {type(health).__name__}")
    h = float(health)
    if not math.isfinite(h) or not 0.0 <= h <= 100.0:
        raise ValueError(f"health must be within 0..100, got {health}")
    return h


def iso_health_cap(zone: str | None) -> float:
    """Maximum health allowed by ISO 20816-3 zone ``zone`` (A/B 100, C 60, D 20; None: 100)."""
    if zone is None:
        return 100.0
    if zone not in ISO_HEALTH_CAP:
        raise ValueError(f"unknown ISO 20816 zone {zone!r}: expected A, B, C or D")
    return ISO_HEALTH_CAP[zone]


def fuse_health(per_model: ArrayLike) -> float:
    """Worst-dominant fusion of per-model healths (points): ``min + BLEND * (mean - min)``."""
    h = np.asarray(per_model, dtype=np.float64).ravel()
    if h.size == 0:
        raise ValueError("no per-model health values to fuse")
    if not np.all(np.isfinite(h)):
        raise ValueError("per-model health values must be finite")
    lo = float(h.min())
    return lo + BLEND * (float(h.mean()) - lo)


def health_from_scores(model_ratios: Mapping[str, float], iso_zone: str | None = None) -> float:
    """Health score 0..100 from per-model ratios ``anomaly_score / threshold`` and an optional
    ISO 20816-3 zone.

    ``health = min(fuse_health([ratio_to_health(r) for r in ratios]), iso_health_cap(zone))``;
    with no ratios the health is ``iso_health_cap(zone)``. Raises ValueError when both are missing
    or a ratio is not a finite number.
    """
    if not isinstance(model_ratios, Mapping):
        raise ValueError(f"model_ratios must be a mapping model -> ratio, got {type(model_ratios).__name__}")
    values: list[float] = []
    for model, r in model_ratios.items():
        if isinstance(r, bool) or not isinstance(r, int | float) or not math.isfinite(float(r)):
            raise ValueError(f"ratio of model {model!r} must be a finite number, got {r!r}")
        values.append(float(r))
    cap = iso_health_cap(iso_zone)
    if not values:
        if iso_zone is None:
            raise ValueError("no model ratios and no ISO zone: health is unknown")
        return cap
    return min(fuse_health(ratio_to_health(values)), cap)


def risk_level(health: float) -> RiskLevel:
    """Risk level of a health score: ``>= 75 LOW, >= 50 MODERATE, >= 25 HIGH, else CRITICAL``."""
    h = _check_health(health)
    for bound, level in RISK_BOUNDS:
        if h >= bound:
            return level
    return "CRITICAL"


def grade(health: float) -> Grade:
    """Letter grade of a health score: ``>= 90 A, >= 75 B, >= 50 C, >= 25 D, else F``."""
    h = _check_health(health)
    for bound, g in GRADE_BOUNDS:
        if h >= bound:
            return g
    return "F"
