"""What insights are made of: the insight and model-status types, machine info (running speed, bearing
defect orders), number formatting and the baseline z-score (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from shared.features.envelope import defect_orders
from shared.messages import CRITICAL_RATIO, AssetConfig, BearingGeometry, Score

InsightSeverity = Literal["WARNING", "CRITICAL"]

#: |z| (and SNR ratios) are capped here in ranking keys.
Z_CAP = 30.0
#: z-score std floor: max(std, 1 % of |mean|, 1e-12).
STD_REL_FLOOR = 0.01
STD_ABS_FLOOR = 1e-12

MODEL_LABELS = {"legacy": "Legacy", "batch": "Batch", "autoencoder": "Autoencoder"}
#: Bearing defect → (label, meaning); the frequencies are orders of shaft speed. FTF names the rolling
#: elements too: a damaged ball is carried through the load zone at cage speed, so its impacts recur at
#: FTF (Randall & Antoni, MSSP 25 (2011), section 2); on CWRU the ball records B014 and B028 raise FTF,
#: not BSF (docs/EVALUATION.md, "Bearing-defect diagnosis"), and the envelope cannot tell that from a
#: cage defect.
DEFECTS: dict[str, tuple[str, str]] = {
    "bpfo": ("BPFO", "outer-race defect likely"),
    "bpfi": ("BPFI", "inner-race defect likely"),
    "bsf": ("BSF", "rolling-element defect likely"),
    "ftf": ("FTF", "rolling-element or cage defect likely (impacts recurring at cage speed)"),
}


@dataclass(frozen=True)
class Insight:
    text: str
    severity: InsightSeverity
    signal: str
    value: float
    score_for_ranking: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelStatus:
    """What insights need from one model: its ratio ``anomaly_score / threshold`` and flag."""

    model: str
    ratio: float
    is_anomaly: bool
    severity: str = "NORMAL"

    @classmethod
    def from_score(cls, score: Score) -> ModelStatus:
        if score.threshold <= 0:
            raise ValueError(f"threshold of model {score.model} must be > 0, got {score.threshold}")
        return cls(
            model=score.model,
            ratio=score.anomaly_score / score.threshold,
            is_anomaly=score.is_anomaly,
            severity=score.severity,
        )


def bearing_orders(bearing: BearingGeometry | None) -> dict[str, float]:
    """Bearing defect frequencies as orders of shaft speed (multiples of rpm / 60).

    Explicit ``*_order`` fields win; otherwise from geometry (n balls, ball diameter d, pitch
    diameter D, contact angle θ), with ``c = d / D * cos θ``::

        BPFO = n / 2 * (1 - c)      BPFI = n / 2 * (1 + c)
        BSF  = D / d * (1 - c^2)        FTF  = (1 - c) / 2

    BSF is the ball defect line, twice the ball spin (:func:`shared.features.envelope.defect_orders`).
    """
    if bearing is None:
        return {}
    out: dict[str, float] = {}
    n, d, pd = bearing.n_balls, bearing.ball_diameter_mm, bearing.pitch_diameter_mm
    if n is not None and d is not None and pd is not None:
        if d >= pd:
            raise ValueError(f"ball diameter {d} mm must be smaller than pitch diameter {pd} mm")
        out = defect_orders(n, d, pd, bearing.contact_angle_deg)
    for name in DEFECTS:
        explicit = getattr(bearing, f"{name}_order")
        if explicit is not None:
            out[name] = float(explicit)
    return out


@dataclass(frozen=True)
class MachineInfo:
    """Running speed (rev/min) and bearing defect orders, for frequencies in insight texts."""

    rpm: float | None = None
    orders: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: AssetConfig | None) -> MachineInfo:
        if config is None:
            return cls()
        return cls(rpm=config.rpm, orders=bearing_orders(config.bearing))

    @property
    def shaft_hz(self) -> float | None:
        return None if self.rpm is None else self.rpm / 60.0


# ---------------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------------
def fmt_num(v: float) -> str:
    """Readable number: 1 decimal from 100, 2 decimals from 1, else 2 significant digits with
    trailing zeros dropped beyond 2 decimals (0.17, 0.02, 0.023, 0.005)."""
    a = abs(v)
    if a >= 100:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    if a == 0:
        return "0"
    decimals = max(2, -math.floor(math.log10(a)) + 1)
    text = f"{v:.{decimals}f}"
    if decimals > 2:  # 0.020 -> 0.02, 0.0050 -> 0.005 (keep at least 2 decimals)
        whole, frac = text.split(".")
        text = f"{whole}.{frac.rstrip('0').ljust(2, '0')}"
    return text


def fmt_hz(f: float) -> str:
    """Frequency text: whole Hz from 100 Hz, else one decimal."""
    return f"{f:.0f} Hz" if abs(f) >= 100 else f"{f:.1f} Hz"


# ---------------------------------------------------------------------------------------------
# Baseline statistics
# ---------------------------------------------------------------------------------------------
def finite(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(float(v))


def baseline_stats(
    baseline: Mapping[str, Mapping[str, float]] | None, name: str
) -> tuple[float, float] | None:
    """(mean, std) of ``name`` in the baseline, validated; None when absent."""
    if baseline is None or name not in baseline:
        return None
    entry = baseline[name]
    if not isinstance(entry, Mapping) or "mean" not in entry or "std" not in entry:
        raise ValueError(f"baseline of {name!r} must have 'mean' and 'std'")
    m, s = entry["mean"], entry["std"]
    for label, v in (("mean", m), ("std", s)):
        if not finite(v):
            raise ValueError(f"baseline {label} of {name!r} must be a finite number, got {v!r}")
    if s < 0:
        raise ValueError(f"baseline std of {name!r} must be >= 0, got {s}")
    return float(m), float(s)


def z_score(value: float, mean: float, std: float) -> float:
    """``(value - mean) / max(std, 0.01 * |mean|, 1e-12)`` (dimensionless)."""
    return (value - mean) / max(std, STD_REL_FLOOR * abs(mean), STD_ABS_FLOOR)


def severity_over(value: float, minimum: float) -> InsightSeverity:
    """CRITICAL from :data:`shared.messages.CRITICAL_RATIO` × the insight's own minimum (|z| vs
    ``z_min``, SNR vs ``envelope_snr_min``, a model ratio vs 1), as for scores; else WARNING."""
    return "CRITICAL" if value >= CRITICAL_RATIO * minimum else "WARNING"


#: Calibrated baseline statistics by signal (``{"mean", "std", ...}``), or None when uncalibrated.
Baseline = Mapping[str, Mapping[str, float]] | None
#: (signal group, insight): one candidate before ranking.
Candidate = tuple[str, Insight]
