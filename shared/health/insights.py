"""Human-readable insights: which signal is abnormal, by how much, and what it likely means (pure).

Every number in an insight comes from the inputs (current values, baseline statistics, scores,
ISO result, configured speed and bearing orders) or a direct arithmetic of them (z-score, ratio,
frequency = rpm / 60 * order). When nothing is abnormal the list is empty.

Rules
-----
* **z-score rules** (need a baseline for the feature)::

      z = (value - mean) / max(std, 0.01 * |mean|, 1e-12)

  An insight is produced when ``|z| >= z_min`` (default 3) in a direction that indicates a
  problem (e.g. power factor only downwards, vibration only upwards); severity is CRITICAL when
  ``|z| >= 2 * z_min``, else WARNING. The std floor (1 % of the mean) keeps a perfectly constant
  calibration signal from turning tiny measurement noise into huge z-scores.
* **ISO 20816-3**: zone C -> WARNING, zone D -> CRITICAL (``Vibration in ISO 20816 zone C: 5.1 mm/s``).
* **Envelope (bearing) peaks**: ``env_<d>_snr >= envelope_snr_min`` (default 3, a linear
  peak-to-noise-floor amplitude ratio) and, when the baseline knows ``env_<d>_amp``, its z-score
  ``>= z_min``; d = BPFO (outer race), BPFI (inner race), BSF (rolling element), FTF (cage). The
  frequency shown is ``rpm / 60 * order``. Without an SNR, ``z(env_<d>_amp) >= z_min`` alone.
* **Running-speed orders** (need a baseline, or for 2× an ISO zone C/D): 1× amplitude z >= z_min
  -> imbalance (``ratio = value / baseline mean``); 2× amplitude z >= z_min and ``2× >= 0.5 * 1×``
  -> misalignment; 3× z >= z_min -> mechanical looseness.
* **Models**: one insight naming the models whose (persistent) anomaly flag is on, worst first,
  with their ratios (``Anomaly on 2 models: batch 3.1×, legacy 1.4× threshold``); CRITICAL when
  the worst ratio is >= 2. Ranked last, so specific signals come first.

Ranking (``score_for_ranking``, a dimensionless ordering key, larger first)::

    z rules       weight * min(|z|, 30)          (weight 0.7 .. 1.2 per signal; 0.8 generic)
    orders        1.5 * min(|z|, 30)
    envelope      1.5 * min(3 * snr / envelope_snr_min, 30)   (or 1.5 * min(z, 30) without SNR)
    ISO zone C    20;  zone D  60
    models        0.5 * min(worst ratio, 4)   (ratio = anomaly_score / threshold; at most 2)

With the default ``z_min`` = 3 every signal-specific insight scores at least 0.7 * 3 = 2.1, so the
generic model insight always comes after the ones that name a signal.

At most one insight per signal group (e.g. ``voltage_v`` and ``voltage_v_mean`` are both
"voltage"), the best-ranked one; at most ``max_items`` in total, best first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from shared.health.iso20816 import ZoneResult
from shared.messages import AssetConfig, BearingGeometry, Score

InsightSeverity = Literal["WARNING", "CRITICAL"]

Z_CAP = 30.0
STD_REL_FLOOR = 0.01
STD_ABS_FLOOR = 1e-12
AXES = ("x", "y", "z")

MODEL_LABELS = {"legacy": "Legacy", "batch": "Batch", "autoencoder": "Autoencoder"}
DEFECTS: dict[str, tuple[str, str]] = {
    "bpfo": ("BPFO", "outer-race defect likely"),
    "bpfi": ("BPFI", "inner-race defect likely"),
    "bsf": ("BSF", "rolling-element defect likely"),
    "ftf": ("FTF", "cage defect likely"),
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
        BSF  = D / (2 d) * (1 - c^2)    FTF  = (1 - c) / 2
    """
    if bearing is None:
        return {}
    out: dict[str, float] = {}
    n, d, pd = bearing.n_balls, bearing.ball_diameter_mm, bearing.pitch_diameter_mm
    if n is not None and d is not None and pd is not None:
        if d >= pd:
            raise ValueError(f"ball diameter {d} mm must be smaller than pitch diameter {pd} mm")
        c = d / pd * math.cos(math.radians(bearing.contact_angle_deg))
        out = {
            "bpfo": n / 2.0 * (1.0 - c),
            "bpfi": n / 2.0 * (1.0 + c),
            "bsf": pd / (2.0 * d) * (1.0 - c * c),
            "ftf": (1.0 - c) / 2.0,
        }
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
# z-score rules
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Rule:
    group: str
    up: str | None  # template when z >= z_min
    down: str | None  # template when z <= -z_min
    weight: float


def _rules() -> dict[str, _Rule]:
    r: dict[str, _Rule] = {
        "voltage_v": _Rule(
            "voltage",
            "Voltage spike detected: {v}V ({z}σ above normal)",
            "Voltage sag: {v}V ({z}σ below normal)",
            1.2,
        ),
        "voltage_v_mean": _Rule(
            "voltage",
            "High voltage: window mean {v}V ({z}σ above normal)",
            "Low voltage: window mean {v}V ({z}σ below normal)",
            1.1,
        ),
        "voltage_v_rms": _Rule(
            "voltage",
            "High voltage: window RMS {v}V ({z}σ above normal)",
            "Low voltage: window RMS {v}V ({z}σ below normal)",
            1.0,
        ),
        "voltage_rolling_mean_1h": _Rule(
            "voltage",
            "Voltage drifting up: 1 h mean {v}V (baseline {m}V)",
            "Voltage drifting down: 1 h mean {v}V (baseline {m}V)",
            0.9,
        ),
        "voltage_v_std": _Rule("voltage_jitter", "Voltage jitter: σ={v}V (baseline: {m}V)", None, 1.1),
        "voltage_v_ptp": _Rule(
            "voltage_jitter", "Voltage swing: {v}V peak-to-peak (baseline: {m}V)", None, 1.0
        ),
        "current_a": _Rule(
            "current",
            "Current surge: {v}A ({z}σ above normal)",
            "Current drop: {v}A ({z}σ below normal)",
            1.2,
        ),
        "current_a_mean": _Rule(
            "current",
            "High current: window mean {v}A ({z}σ above normal)",
            "Low current: window mean {v}A ({z}σ below normal)",
            1.1,
        ),
        "current_a_rms": _Rule(
            "current",
            "High current: window RMS {v}A ({z}σ above normal)",
            "Low current: window RMS {v}A ({z}σ below normal)",
            1.0,
        ),
        "current_a_std": _Rule("current_jitter", "Current jitter: σ={v}A (baseline: {m}A)", None, 1.1),
        "current_a_ptp": _Rule(
            "current_jitter", "Current swing: {v}A peak-to-peak (baseline: {m}A)", None, 1.0
        ),
        "current_spike_count": _Rule(
            "current_jitter", "Frequent current spikes: {v} (baseline: {m})", None, 1.0
        ),
        "power_factor": _Rule("power_factor", None, "Power factor drop: {v} (baseline {m} ±{s})", 1.2),
        "power_factor_mean": _Rule(
            "power_factor", None, "Power factor drop: window mean {v} (baseline {m} ±{s})", 1.1
        ),
        "power_factor_rms": _Rule(
            "power_factor", None, "Power factor drop: window RMS {v} (baseline {m} ±{s})", 1.0
        ),
        "power_factor_efficiency_score": _Rule(
            "power_factor", None, "Power factor efficiency drop: {v} (baseline {m} ±{s})", 0.9
        ),
        "power_factor_std": _Rule(
            "power_factor_jitter", "Power factor unstable: σ={v} (baseline: {m})", None, 1.0
        ),
        "power_factor_ptp": _Rule(
            "power_factor_jitter", "Power factor swing: {v} peak-to-peak (baseline: {m})", None, 0.9
        ),
        "vibration_g": _Rule(
            "vibration_level", "Vibration jump: {v}g ({z}σ above normal, baseline {m}g)", None, 1.2
        ),
        "vibration_g_mean": _Rule(
            "vibration_level",
            "High vibration: window mean {v}g ({z}σ above normal, baseline {m}g)",
            None,
            1.1,
        ),
        "vibration_g_rms": _Rule(
            "vibration_level",
            "High vibration: window RMS {v}g ({z}σ above normal, baseline {m}g)",
            None,
            1.1,
        ),
        "vibration_intensity_rms": _Rule(
            "vibration_level",
            "High vibration intensity: {v}g RMS ({z}σ above normal, baseline {m}g)",
            None,
            1.0,
        ),
        "vibration_g_std": _Rule(
            "vibration_jitter", "High vibration variance: σ={v}g (baseline: {m}g)", None, 1.2
        ),
        "vibration_g_ptp": _Rule(
            "vibration_jitter", "Vibration swing: {v}g peak-to-peak (baseline: {m}g)", None, 1.0
        ),
        "velocity_rms_mm_s": _Rule(
            "vibration_velocity",
            "Vibration velocity up: {v} mm/s ({z}σ above normal, baseline {m} mm/s)",
            None,
            1.1,
        ),
        "dominant_freq_hz": _Rule(
            "vibration_spectrum",
            "Dominant vibration frequency moved up: {v} Hz (baseline {m} Hz)",
            "Dominant vibration frequency moved down: {v} Hz (baseline {m} Hz)",
            0.8,
        ),
    }
    for a in AXES:
        ax = a.upper()
        r[f"{a}_rms"] = _Rule(
            "vibration_level",
            f"High vibration on {ax} axis: RMS {{v}}g ({{z}}σ above normal, baseline {{m}}g)",
            None,
            1.1,
        )
        r[f"{a}_peak"] = _Rule(
            "vibration_level",
            f"Vibration peak on {ax} axis: {{v}}g ({{z}}σ above normal, baseline {{m}}g)",
            None,
            1.0,
        )
        r[f"{a}_ptp"] = _Rule(
            "vibration_level",
            f"Vibration swing on {ax} axis: {{v}}g peak-to-peak (baseline {{m}}g)",
            None,
            0.9,
        )
        r[f"{a}_std"] = _Rule(
            "vibration_jitter",
            f"High vibration variance on {ax} axis: σ={{v}}g (baseline: {{m}}g)",
            None,
            1.1,
        )
        r[f"{a}_variance"] = _Rule(
            "vibration_jitter",
            f"High vibration variance on {ax} axis: {{v}}g² (baseline: {{m}}g²)",
            None,
            0.7,
        )
        r[f"{a}_kurtosis"] = _Rule(
            "vibration_impulsive",
            f"Impulsive vibration on {ax} axis: excess kurtosis {{v}} (baseline {{m}}): "
            "bearing damage possible",
            None,
            1.1,
        )
        for name, label, w in (
            ("crest_factor", "crest factor", 1.0),
            ("impulse_factor", "impulse factor", 0.9),
            ("clearance_factor", "clearance factor", 0.9),
        ):
            r[f"{a}_{name}"] = _Rule(
                "vibration_impulsive",
                f"Impulsive vibration on {ax} axis: {label} {{v}} (baseline {{m}})",
                None,
                w,
            )
    return r


RULES: dict[str, _Rule] = _rules()
#: Features handled by the diagnostic rules only (no generic z insight).
_DIAGNOSTIC_ONLY = {f"order{i}_amp_g" for i in (1, 2, 3)} | {
    f"env_{d}_{k}" for d in DEFECTS for k in ("amp", "snr")
}
GENERIC_WEIGHT = 0.8
MODEL_RANK_PER_RATIO = 0.5
MODEL_RATIO_CAP = 4.0


def _check_current(current: Mapping[str, float]) -> dict[str, float]:
    if not isinstance(current, Mapping):
        raise ValueError(f"current must be a mapping name -> value, got {type(current).__name__}")
    out: dict[str, float] = {}
    for k, v in current.items():
        if not isinstance(k, str):
            raise ValueError(f"feature names must be strings, got {k!r}")
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(float(v)):
            raise ValueError(f"feature {k!r} must be a finite number, got {v!r}")
        out[k] = float(v)
    return out


def _baseline_stats(
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
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(float(v)):
            raise ValueError(f"baseline {label} of {name!r} must be a finite number, got {v!r}")
    if s < 0:
        raise ValueError(f"baseline std of {name!r} must be >= 0, got {s}")
    return float(m), float(s)


def z_score(value: float, mean: float, std: float) -> float:
    """``(value - mean) / max(std, 0.01 * |mean|, 1e-12)`` (dimensionless)."""
    return (value - mean) / max(std, STD_REL_FLOOR * abs(mean), STD_ABS_FLOOR)


def _severity(abs_z: float, z_min: float) -> InsightSeverity:
    return "CRITICAL" if abs_z >= 2 * z_min else "WARNING"


def _check_params(max_items: int, z_min: float, envelope_snr_min: float) -> None:
    if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 0:
        raise ValueError(f"max_items must be an integer >= 0, got {max_items!r}")
    for name, v in (("z_min", z_min), ("envelope_snr_min", envelope_snr_min)):
        if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive number, got {v!r}")


def build_insights(
    current: Mapping[str, float],
    baseline: Mapping[str, Mapping[str, float]] | None = None,
    scores: Iterable[ModelStatus] | Mapping[str, ModelStatus] = (),
    iso: ZoneResult | None = None,
    machine: MachineInfo | None = None,
    max_items: int = 4,
    *,
    z_min: float = 3.0,
    envelope_snr_min: float = 3.0,
) -> list[Insight]:
    """Rank the abnormal signals of ``current`` (latest feature/reading values by name) against
    ``baseline`` (name -> {"mean", "std", ...}), the models' statuses, the ISO zone and bearing
    frequencies; return at most ``max_items`` insights, most important first (rules and ranking
    in the module docstring). Empty when everything is normal."""
    _check_params(max_items, z_min, envelope_snr_min)
    cur = _check_current(current)
    machine = machine or MachineInfo()
    statuses = list(scores.values()) if isinstance(scores, Mapping) else list(scores)
    for st in statuses:
        if not isinstance(st, ModelStatus):
            raise ValueError(f"scores must be ModelStatus objects, got {type(st).__name__}")
        if not math.isfinite(st.ratio):
            raise ValueError(f"ratio of model {st.model!r} must be finite")

    candidates: list[tuple[str, Insight]] = []  # (group, insight)
    iso_bad = iso is not None and iso.zone in ("C", "D")

    # -- ISO 20816-3 --------------------------------------------------------------------------
    if iso is not None and iso_bad:
        ab, bc, cd = iso.limits
        if iso.zone == "C":
            text = (
                f"Vibration in ISO 20816 zone C: {iso.velocity_mm_s:.1f} mm/s "
                f"(above {bc:g} mm/s: not for long-term operation)"
            )
            candidates.append(("iso", Insight(text, "WARNING", "velocity_rms_mm_s", iso.velocity_mm_s, 20.0)))
        else:
            text = (
                f"Vibration in ISO 20816 zone D: {iso.velocity_mm_s:.1f} mm/s "
                f"(above {cd:g} mm/s: damage likely)"
            )
            candidates.append(
                ("iso", Insight(text, "CRITICAL", "velocity_rms_mm_s", iso.velocity_mm_s, 60.0))
            )

    # -- z-score rules --------------------------------------------------------------------------
    for name, value in cur.items():
        if name in _DIAGNOSTIC_ONLY or (name == "velocity_rms_mm_s" and iso_bad):
            continue
        stats = _baseline_stats(baseline, name)
        if stats is None:
            continue
        mean, std = stats
        z = z_score(value, mean, std)
        if abs(z) < z_min:
            continue
        rule = RULES.get(name)
        if rule is None:
            direction = "above" if z > 0 else "below"
            text = f"{name} = {fmt_num(value)} ({abs(z):.1f}σ {direction} baseline {fmt_num(mean)})"
            group, weight = name, GENERIC_WEIGHT
        else:
            template = rule.up if z > 0 else rule.down
            if template is None:
                continue
            text = template.format(v=fmt_num(value), m=fmt_num(mean), s=fmt_num(std), z=f"{abs(z):.1f}")
            group, weight = rule.group, rule.weight
        candidates.append(
            (group, Insight(text, _severity(abs(z), z_min), name, value, weight * min(abs(z), Z_CAP)))
        )

    # -- running-speed orders ----------------------------------------------------------------------
    candidates.extend(_order_insights(cur, baseline, machine, iso_bad, z_min))
    # -- bearing envelope ------------------------------------------------------------------------
    candidates.extend(_envelope_insights(cur, baseline, machine, z_min, envelope_snr_min))

    # -- models ------------------------------------------------------------------------------------
    flagged = sorted((st for st in statuses if st.is_anomaly), key=lambda st: (-st.ratio, st.model))
    if flagged:
        top = flagged[0]
        sev: InsightSeverity = "CRITICAL" if top.ratio >= 2.0 else "WARNING"
        if len(flagged) == 1:
            text = f"{MODEL_LABELS.get(top.model, top.model)} model anomaly: score {top.ratio:.1f}× threshold"
        else:
            parts = ", ".join(f"{st.model} {st.ratio:.1f}×" for st in flagged)
            text = f"Anomaly on {len(flagged)} models: {parts} threshold"
        rank = MODEL_RANK_PER_RATIO * min(top.ratio, MODEL_RATIO_CAP)
        candidates.append(("models", Insight(text, sev, f"model:{top.model}", top.ratio, rank)))

    best: dict[str, Insight] = {}
    for group, ins in candidates:
        if group not in best or ins.score_for_ranking > best[group].score_for_ranking:
            best[group] = ins
    ranked = sorted(best.values(), key=lambda i: (-i.score_for_ranking, i.signal))
    return ranked[:max_items]


def _order_insights(
    cur: Mapping[str, float],
    baseline: Mapping[str, Mapping[str, float]] | None,
    machine: MachineInfo,
    iso_bad: bool,
    z_min: float,
) -> list[tuple[str, Insight]]:
    out: list[tuple[str, Insight]] = []
    f1 = machine.shaft_hz

    def z_of(name: str) -> tuple[float, float] | None:
        stats = _baseline_stats(baseline, name)
        if stats is None or name not in cur:
            return None
        return z_score(cur[name], *stats), stats[0]

    def at(order: int) -> str:
        return "" if f1 is None else f" ({fmt_hz(order * f1)})"

    o1 = cur.get("order1_amp_g")
    r1 = z_of("order1_amp_g")
    if o1 is not None and r1 is not None and r1[0] >= z_min and r1[1] > 0:
        z, m = r1
        ratio = o1 / m
        text = (
            f"1× running speed{at(1)} amplitude {ratio:.1f}× baseline: imbalance likely "
            f"({fmt_num(o1)}g vs {fmt_num(m)}g)"
        )
        out.append(("order1", Insight(text, _severity(z, z_min), "order1_amp_g", o1, 1.5 * min(z, Z_CAP))))

    o2 = cur.get("order2_amp_g")
    if o2 is not None and o2 > 0:
        r2 = z_of("order2_amp_g")
        dominant = o1 is None or o1 <= 0 or o2 >= 0.5 * o1
        if dominant and ((r2 is not None and r2[0] >= z_min) or (r2 is None and iso_bad)):
            rel = "" if o1 is None or o1 <= 0 else f", {o2 / o1:.1f}× the 1× amplitude"
            text = f"Strong 2× running-speed component{at(2)}: misalignment likely ({fmt_num(o2)}g{rel})"
            if r2 is not None:
                sev, rank = _severity(r2[0], z_min), 1.5 * min(r2[0], Z_CAP)
            else:
                sev, rank = "WARNING", 1.5 * z_min
            out.append(("order2", Insight(text, sev, "order2_amp_g", o2, rank)))

    o3 = cur.get("order3_amp_g")
    r3 = z_of("order3_amp_g")
    if o3 is not None and r3 is not None and r3[0] >= z_min:
        z, m = r3
        text = (
            f"Strong 3× running-speed component{at(3)}: mechanical looseness likely "
            f"({fmt_num(o3)}g, baseline {fmt_num(m)}g)"
        )
        out.append(("order3", Insight(text, _severity(z, z_min), "order3_amp_g", o3, 1.5 * min(z, Z_CAP))))
    return out


def _envelope_insights(
    cur: Mapping[str, float],
    baseline: Mapping[str, Mapping[str, float]] | None,
    machine: MachineInfo,
    z_min: float,
    snr_min: float,
) -> list[tuple[str, Insight]]:
    out: list[tuple[str, Insight]] = []
    for d, (label, meaning) in DEFECTS.items():
        amp = cur.get(f"env_{d}_amp")
        snr = cur.get(f"env_{d}_snr")
        stats = _baseline_stats(baseline, f"env_{d}_amp")
        z = None if amp is None or stats is None else z_score(amp, *stats)
        if snr is not None:
            if snr < snr_min or (z is not None and z < z_min):
                continue
            rank = 1.5 * min(3.0 * snr / snr_min, Z_CAP)
            sev: InsightSeverity = "CRITICAL" if snr >= 2 * snr_min else "WARNING"
            detail = f"SNR {snr:.1f}"
            signal, value = f"env_{d}_snr", snr
        elif z is not None and amp is not None and z >= z_min:
            rank = 1.5 * min(z, Z_CAP)
            sev = _severity(z, z_min)
            detail = f"amplitude {fmt_num(amp)}g, {z:.1f}σ above normal"
            signal, value = f"env_{d}_amp", amp
        else:
            continue
        order = machine.orders.get(d)
        f1 = machine.shaft_hz
        where = label if order is None or f1 is None else f"{label} {fmt_hz(order * f1)}"
        text = f"Envelope peak at {where}: {meaning} ({detail})"
        out.append((f"bearing_{d}", Insight(text, sev, signal, value, rank)))
    return out
