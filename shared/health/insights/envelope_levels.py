"""Calibrated envelope levels and one window's harmonic rise against them (the comparisons the
bearing-defect rule of :mod:`shared.health.insights.envelope` makes; its module doc states the rule).

Units: ``env_{d}_amp``/``env_{d}_harm_amp`` in g, ``env_{d}_snr``/``env_{d}_harm_snr`` dimensionless;
a *rise* is a value over its calibrated 95th percentile (dimensionless).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from shared.health.insights.base import DEFECTS, Baseline

#: The amplitude must reach this × its calibrated 95th percentile (FEMTO first halves: 0 persistent
#: flags at 2 and at 3; CWRU faults rise 3-190× the healthy median, so the factor barely matters there).
RISE_FACTOR = 2.0
#: The harmonic SNR must reach this × its calibrated 95th percentile (harmonic rule, module doc).
SNR_RISE = 1.3
#: Under persistent FTF evidence, the BSF harmonic SNR must reach this × its calibrated 95th percentile
#: (and its amplitude RISE_FACTOR ×) for the ball to be named (module doc: at least its healthy p95).
BALL_SNR_RISE = 1.0


@dataclass(frozen=True)
class EnvelopeLevel:
    """The calibrated level of one envelope indicator (its unit): median and 95th percentile."""

    median: float
    p95: float

    @classmethod
    def of(cls, baseline: Baseline, d: str) -> EnvelopeLevel | None:
        """The level of ``env_{d}_amp`` in ``baseline`` (:meth:`named`)."""
        return cls.named(baseline, f"env_{d}_amp")

    @classmethod
    def named(cls, baseline: Baseline, name: str) -> EnvelopeLevel | None:
        """The level of ``name`` (None without ``p95``/``median``); ValueError unless finite, >= 0."""
        entry = None if baseline is None else baseline.get(name)
        if entry is None or "p95" not in entry or "median" not in entry:
            return None
        med, p95 = entry["median"], entry["p95"]
        for label, v in (("median", med), ("p95", p95)):
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise ValueError(f"baseline {label} of {name!r} must be a finite number >= 0, got {v!r}")
        return cls(float(med), float(p95))

    @property
    def threshold(self) -> float:
        """``RISE_FACTOR * p95`` (g)."""
        return RISE_FACTOR * self.p95


def ratio_over(value: float, level: float) -> float:
    """``value / level`` (1); inf for a positive value over a zero level, 0 for 0 over 0."""
    if level > 0:
        return value / level
    return math.inf if value > 0 else 0.0


@dataclass(frozen=True)
class HarmonicRise:
    """One window's harmonic evidence at a defect against its calibrated level (module doc):
    ``amp`` (g) and ``snr`` (1) are ``env_{d}_harm_amp``/``env_{d}_harm_snr``."""

    amp: float
    snr: float
    amp_level: EnvelopeLevel
    snr_level: EnvelopeLevel

    @classmethod
    def of(cls, cur: Mapping[str, float], baseline: Baseline, d: str) -> HarmonicRise | None:
        """None unless the window carries both indicators and the baseline holds both levels."""
        amp, snr = cur.get(f"env_{d}_harm_amp"), cur.get(f"env_{d}_harm_snr")
        amp_level = EnvelopeLevel.named(baseline, f"env_{d}_harm_amp")
        snr_level = EnvelopeLevel.named(baseline, f"env_{d}_harm_snr")
        if amp is None or snr is None or amp_level is None or snr_level is None:
            return None
        return cls(float(amp), float(snr), amp_level, snr_level)

    @property
    def amp_rise(self) -> float:
        """``amp / p95(amp)`` (1)."""
        return ratio_over(self.amp, self.amp_level.p95)

    @property
    def snr_rise(self) -> float:
        """``snr / p95(snr)`` (1)."""
        return ratio_over(self.snr, self.snr_level.p95)

    @property
    def rose(self) -> bool:
        """``amp_rise >= RISE_FACTOR`` and ``snr_rise >= SNR_RISE``."""
        return self.amp_rise >= RISE_FACTOR and self.snr_rise >= SNR_RISE


def strongest(cur: Mapping[str, float], baseline: Baseline) -> str | None:
    """The defect whose harmonic evidence rose (:attr:`HarmonicRise.rose`) with the largest
    ``snr_rise`` (ties: :data:`DEFECTS` order); None when none rose or none is judged on harmonics."""
    best, best_rise = None, -math.inf
    for d in DEFECTS:
        r = HarmonicRise.of(cur, baseline, d)
        if r is not None and r.rose and r.snr_rise > best_rise:
            best, best_rise = d, r.snr_rise
    return best


def ball_under_cage(cur: Mapping[str, float], baseline: Baseline) -> HarmonicRise | None:
    """The window's BSF harmonic evidence when it left its healthy range (module doc,
    "Ball impacts recurring at cage speed"): ``amp_rise >= RISE_FACTOR`` and
    ``snr_rise >= BALL_SNR_RISE``; None otherwise or when BSF is not judged on harmonics."""
    r = HarmonicRise.of(cur, baseline, "bsf")
    if r is None or r.amp_rise < RISE_FACTOR or r.snr_rise < BALL_SNR_RISE:
        return None
    return r
