"""The z-score rules: per feature, its signal group, the text when it is high or low, and its ranking
weight (pure data). A feature without a rule gets a generic text with :data:`GENERIC_WEIGHT`."""

from __future__ import annotations

from dataclasses import dataclass

from shared.health.insights.base import DEFECTS

AXES = ("x", "y", "z")


@dataclass(frozen=True)
class ZRule:
    group: str
    up: str | None  # template when z >= z_min
    down: str | None  # template when z <= -z_min
    weight: float


#: Rules of the electrical and scalar vibration features.
SCALAR_RULES: dict[str, ZRule] = {
    "voltage_v": ZRule(
        "voltage",
        "Voltage spike detected: {v}V ({z}σ above normal)",
        "Voltage sag: {v}V ({z}σ below normal)",
        1.2,
    ),
    "voltage_v_mean": ZRule(
        "voltage",
        "High voltage: window mean {v}V ({z}σ above normal)",
        "Low voltage: window mean {v}V ({z}σ below normal)",
        1.1,
    ),
    "voltage_v_rms": ZRule(
        "voltage",
        "High voltage: window RMS {v}V ({z}σ above normal)",
        "Low voltage: window RMS {v}V ({z}σ below normal)",
        1.0,
    ),
    "voltage_rolling_mean_1h": ZRule(
        "voltage",
        "Voltage drifting up: 1 h mean {v}V (baseline {m}V)",
        "Voltage drifting down: 1 h mean {v}V (baseline {m}V)",
        0.9,
    ),
    "voltage_v_std": ZRule("voltage_jitter", "Voltage jitter: σ={v}V (baseline: {m}V)", None, 1.1),
    "voltage_v_ptp": ZRule("voltage_jitter", "Voltage swing: {v}V peak-to-peak (baseline: {m}V)", None, 1.0),
    "current_a": ZRule(
        "current",
        "Current surge: {v}A ({z}σ above normal)",
        "Current drop: {v}A ({z}σ below normal)",
        1.2,
    ),
    "current_a_mean": ZRule(
        "current",
        "High current: window mean {v}A ({z}σ above normal)",
        "Low current: window mean {v}A ({z}σ below normal)",
        1.1,
    ),
    "current_a_rms": ZRule(
        "current",
        "High current: window RMS {v}A ({z}σ above normal)",
        "Low current: window RMS {v}A ({z}σ below normal)",
        1.0,
    ),
    "current_a_std": ZRule("current_jitter", "Current jitter: σ={v}A (baseline: {m}A)", None, 1.1),
    "current_a_ptp": ZRule("current_jitter", "Current swing: {v}A peak-to-peak (baseline: {m}A)", None, 1.0),
    "current_spike_count": ZRule("current_jitter", "Frequent current spikes: {v} (baseline: {m})", None, 1.0),
    "power_factor": ZRule("power_factor", None, "Power factor drop: {v} (baseline {m} ±{s})", 1.2),
    "power_factor_mean": ZRule(
        "power_factor", None, "Power factor drop: window mean {v} (baseline {m} ±{s})", 1.1
    ),
    "power_factor_rms": ZRule(
        "power_factor", None, "Power factor drop: window RMS {v} (baseline {m} ±{s})", 1.0
    ),
    "power_factor_efficiency_score": ZRule(
        "power_factor", None, "Power factor efficiency drop: {v} (baseline {m} ±{s})", 0.9
    ),
    "power_factor_std": ZRule(
        "power_factor_jitter", "Power factor unstable: σ={v} (baseline: {m})", None, 1.0
    ),
    "power_factor_ptp": ZRule(
        "power_factor_jitter", "Power factor swing: {v} peak-to-peak (baseline: {m})", None, 0.9
    ),
    "vibration_g": ZRule(
        "vibration_level", "Vibration jump: {v}g ({z}σ above normal, baseline {m}g)", None, 1.2
    ),
    "vibration_g_mean": ZRule(
        "vibration_level",
        "High vibration: window mean {v}g ({z}σ above normal, baseline {m}g)",
        None,
        1.1,
    ),
    "vibration_g_rms": ZRule(
        "vibration_level",
        "High vibration: window RMS {v}g ({z}σ above normal, baseline {m}g)",
        None,
        1.1,
    ),
    "vibration_intensity_rms": ZRule(
        "vibration_level",
        "High vibration intensity: {v}g RMS ({z}σ above normal, baseline {m}g)",
        None,
        1.0,
    ),
    "vibration_g_std": ZRule(
        "vibration_jitter", "High vibration variance: σ={v}g (baseline: {m}g)", None, 1.2
    ),
    "vibration_g_ptp": ZRule(
        "vibration_jitter", "Vibration swing: {v}g peak-to-peak (baseline: {m}g)", None, 1.0
    ),
    "velocity_rms_mm_s": ZRule(
        "vibration_velocity",
        "Vibration velocity up: {v} mm/s ({z}σ above normal, baseline {m} mm/s)",
        None,
        1.1,
    ),
    "dominant_freq_hz": ZRule(
        "vibration_spectrum",
        "Dominant vibration frequency moved up: {v} Hz (baseline {m} Hz)",
        "Dominant vibration frequency moved down: {v} Hz (baseline {m} Hz)",
        0.8,
    ),
}


def _axis_rules(a: str) -> dict[str, ZRule]:
    """Rules of one accelerometer axis's features (``x_rms``, ``x_kurtosis``, ...)."""
    ax = a.upper()
    r: dict[str, ZRule] = {}
    r[f"{a}_rms"] = ZRule(
        "vibration_level",
        f"High vibration on {ax} axis: RMS {{v}}g ({{z}}σ above normal, baseline {{m}}g)",
        None,
        1.1,
    )
    r[f"{a}_peak"] = ZRule(
        "vibration_level",
        f"Vibration peak on {ax} axis: {{v}}g ({{z}}σ above normal, baseline {{m}}g)",
        None,
        1.0,
    )
    r[f"{a}_ptp"] = ZRule(
        "vibration_level",
        f"Vibration swing on {ax} axis: {{v}}g peak-to-peak (baseline {{m}}g)",
        None,
        0.9,
    )
    r[f"{a}_std"] = ZRule(
        "vibration_jitter",
        f"High vibration variance on {ax} axis: σ={{v}}g (baseline: {{m}}g)",
        None,
        1.1,
    )
    r[f"{a}_variance"] = ZRule(
        "vibration_jitter",
        f"High vibration variance on {ax} axis: {{v}}g² (baseline: {{m}}g²)",
        None,
        0.7,
    )
    r[f"{a}_kurtosis"] = ZRule(
        "vibration_impulsive",
        f"Impulsive vibration on {ax} axis: excess kurtosis {{v}} (baseline {{m}}): bearing damage possible",
        None,
        1.1,
    )
    for name, label, w in (
        ("crest_factor", "crest factor", 1.0),
        ("impulse_factor", "impulse factor", 0.9),
        ("clearance_factor", "clearance factor", 0.9),
    ):
        r[f"{a}_{name}"] = ZRule(
            "vibration_impulsive",
            f"Impulsive vibration on {ax} axis: {label} {{v}} (baseline {{m}})",
            None,
            w,
        )
    return r


#: Every z-score rule by feature name.
RULES: dict[str, ZRule] = SCALAR_RULES | {k: v for a in AXES for k, v in _axis_rules(a).items()}
#: Features handled by the diagnostic rules only (no generic z insight).
DIAGNOSTIC_ONLY = {f"order{i}_amp_g" for i in (1, 2, 3)} | {
    f"env_{d}_{k}" for d in DEFECTS for k in ("amp", "snr", "harm_amp", "harm_snr")
}
#: Ranking weight of a feature without a rule.
GENERIC_WEIGHT = 0.8
