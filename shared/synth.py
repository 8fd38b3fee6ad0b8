"""Physically plausible synthetic sensor data (pure: no I/O; all randomness from the ``rng`` passed in).

Two kinds of data:

* :func:`simple_reading` — one electrical/vibration reading of a small induction motor on a 230 V
  supply (RMS voltage in V, RMS current in A, power factor 0..1, overall vibration amplitude in g),
  healthy or with one of :data:`FAULT_KINDS_SIMPLE`.
* :func:`vibration_window` — a 3-axis accelerometer window in g (``x``/``y`` radial, ``z`` axial)
  sampled at ``fs_hz``, healthy or with one of :data:`FAULT_KINDS_VIBRATION` at a severity from
  :data:`SEVERITIES`.

Vibration model (all amplitudes are peak values in g, 1 g = 9.80665 m/s²). With shaft frequency
``f1 = rpm / 60`` Hz and absolute time ``t = t0_s + i / fs_hz`` s, each axis is

    a(t) = Σ_k A_k · sin(2π · k · f1 · t + φ_k + θ_axis)  +  bearing impulses  +  N(0, σ_axis²)

where the orders ``k`` are running-speed harmonics (and half orders for looseness), ``φ_k`` is a fixed
phase per order and ``θ_axis`` is 0 for ``x``, −90° for ``y`` (forward whirl: the radial orbit's ``y``
lags ``x`` by a quarter turn) and +60° for ``z``. Because the phases refer to absolute time, windows
generated with consecutive ``t0_s`` join without a phase jump. Tones at or above the Nyquist frequency
``fs/2`` are left out, as a data-acquisition anti-alias filter would. The bearing impulses are modelled
in :mod:`shared.synth_bearing` (``BearingOrders``, ``SKF_6205`` and ``bearing_resonance_hz`` are
re-exported here).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from shared.messages import FS_MAX_HZ, FS_MIN_HZ
from shared.synth_bearing import SKF_6205 as SKF_6205  # re-exported
from shared.synth_bearing import BearingOrders, bearing_signal, resolve_orders
from shared.synth_bearing import bearing_resonance_hz as bearing_resonance_hz  # re-exported

# ---------------------------------------------------------------------------------------------
# Simple readings
# ---------------------------------------------------------------------------------------------
#: Fault kinds of :func:`simple_reading`.
FAULT_KINDS_SIMPLE: tuple[str, ...] = ("voltage_spike", "vibration_jump", "pf_drop", "jitter")

#: Healthy means: RMS voltage (V), RMS current (A), power factor (-), vibration amplitude (g).
HEALTHY_MEAN: dict[str, float] = {
    "voltage_v": 230.0,
    "current_a": 15.0,
    "power_factor": 0.92,
    "vibration_g": 0.15,
}
#: Healthy measurement noise (one standard deviation, same units as :data:`HEALTHY_MEAN`). Voltage and
#: vibration are the calibration guide's example baseline spreads (std 2.8 V, 0.02 g).
HEALTHY_SIGMA: dict[str, float] = {
    "voltage_v": 2.8,
    "current_a": 0.3,
    "power_factor": 0.01,
    "vibration_g": 0.02,
}
#: Uniform ranges of the faulty signal for each single-signal fault kind.
VOLTAGE_SPIKE_RANGE_V = (280.0, 330.0)
VIBRATION_JUMP_RANGE_G = (0.5, 1.5)
PF_DROP_RANGE = (0.55, 0.75)
#: ``jitter``: same means, every σ multiplied by this factor.
JITTER_SIGMA_FACTOR = 5.0


def simple_reading(rng: np.random.Generator, faulty: bool, fault: str | None = None) -> dict[str, Any]:
    """One reading as a dict ``voltage_v, current_a, power_factor, vibration_g, is_faulty, fault``.

    Healthy: each signal ~ N(mean, σ²) with the means/σ of :data:`HEALTHY_MEAN`/:data:`HEALTHY_SIGMA`
    (230 V ± 2.8 V, 15 A ± 0.3 A, PF 0.92 ± 0.01, 0.15 g ± 0.02 g).
    Faulty: one kind per call (``fault``, or drawn uniformly from :data:`FAULT_KINDS_SIMPLE`):

    * ``voltage_spike``: voltage ~ U(280, 330) V, other signals healthy;
    * ``vibration_jump``: vibration ~ U(0.5, 1.5) g;
    * ``pf_drop``: power factor ~ U(0.55, 0.75);
    * ``jitter``: healthy means, every σ × 5.

    Finally the power factor is clipped to [0, 1] and every value to ≥ 0, so the result always fits
    :class:`shared.messages.SimpleReadingIn`. ``fault`` is ``None`` for a healthy reading.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if not faulty:
        if fault is not None:
            raise ValueError(f"fault={fault!r} given for a healthy reading (faulty=False)")
        kind: str | None = None
    elif fault is None:
        kind = FAULT_KINDS_SIMPLE[int(rng.integers(len(FAULT_KINDS_SIMPLE)))]
    elif fault in FAULT_KINDS_SIMPLE:
        kind = fault
    else:
        raise ValueError(f"unknown simple fault {fault!r}; expected one of {', '.join(FAULT_KINDS_SIMPLE)}")

    factor = JITTER_SIGMA_FACTOR if kind == "jitter" else 1.0
    values = {
        name: float(rng.normal(mean, HEALTHY_SIGMA[name] * factor)) for name, mean in HEALTHY_MEAN.items()
    }
    if kind == "voltage_spike":
        values["voltage_v"] = float(rng.uniform(*VOLTAGE_SPIKE_RANGE_V))
    elif kind == "vibration_jump":
        values["vibration_g"] = float(rng.uniform(*VIBRATION_JUMP_RANGE_G))
    elif kind == "pf_drop":
        values["power_factor"] = float(rng.uniform(*PF_DROP_RANGE))

    values = {name: max(0.0, v) for name, v in values.items()}
    values["power_factor"] = min(1.0, values["power_factor"])
    return {**values, "is_faulty": bool(faulty), "fault": kind}


# ---------------------------------------------------------------------------------------------
# Vibration windows
# ---------------------------------------------------------------------------------------------
#: Fault kinds of :func:`vibration_window`.
FAULT_KINDS_VIBRATION: tuple[str, ...] = (
    "imbalance",
    "misalignment",
    "looseness",
    "bearing_outer",
    "bearing_inner",
    "jitter",
)
#: Severities, mildest first.
SEVERITIES: tuple[str, ...] = ("mild", "medium", "severe")
#: Multiplier of every fault amplitude per severity (``medium`` = the documented amplitudes).
SEVERITY_SCALE: dict[str, float] = {"mild": 0.5, "medium": 1.0, "severe": 2.0}

#: Healthy running-speed harmonics: order -> peak amplitude (g) on (x, y, z).
HEALTHY_TONES_G: dict[float, tuple[float, float, float]] = {
    1.0: (0.050, 0.045, 0.020),
    2.0: (0.020, 0.018, 0.008),
    3.0: (0.010, 0.009, 0.004),
}
#: Broadband sensor + machine noise, one standard deviation per axis (g).
NOISE_SIGMA_G: tuple[float, float, float] = (0.020, 0.020, 0.015)
#: Axis phase offsets θ_axis (rad): y lags x by 90° (forward whirl), z is offset by 60°.
AXIS_PHASE_RAD: tuple[float, float, float] = (0.0, -math.pi / 2, math.pi / 3)

#: Added peak amplitudes (g) at ``medium`` severity: fault -> order -> (x, y, z).
IMBALANCE_TONES_G: dict[float, tuple[float, float, float]] = {1.0: (0.25, 0.21, 0.0)}
MISALIGNMENT_TONES_G: dict[float, tuple[float, float, float]] = {
    1.0: (0.06, 0.05, 0.12),
    2.0: (0.20, 0.17, 0.15),
    3.0: (0.03, 0.03, 0.04),
}
#: Looseness: integer orders 1..10 with amplitude 0.10 g/√k, half orders 0.5..9.5 at 40 % of that.
LOOSENESS_BASE_G = 0.10
LOOSENESS_AXIS_GAIN: tuple[float, float, float] = (0.8, 1.0, 0.3)
LOOSENESS_MAX_ORDER = 10
#: Looseness truncation: the positive side is clipped at this fraction of the waveform's peak.
LOOSENESS_CLIP_FRACTION = 0.6
#: ``jitter`` noise multiplier is ``1 + JITTER_NOISE_GAIN · severity scale`` (3×, 5×, 9×).
JITTER_NOISE_GAIN = 4.0

MAX_SAMPLES = 1 << 22


def _order_phase(order: float) -> float:
    """Fixed phase φ_k (rad) of order k: golden-angle spacing, φ_k = (2k · 2.39996) mod 2π."""
    return (2.0 * order * 2.399963229728653) % (2.0 * math.pi)


def _tone_table(fault: str | None, scale: float) -> dict[float, np.ndarray]:
    """Order -> peak amplitude (g) per axis [x, y, z] for the healthy machine plus ``fault``."""
    table: dict[float, np.ndarray] = {k: np.array(v, dtype=float) for k, v in HEALTHY_TONES_G.items()}

    def add(order: float, amps: tuple[float, float, float] | np.ndarray) -> None:
        table[order] = table.get(order, np.zeros(3)) + scale * np.asarray(amps, dtype=float)

    if fault == "imbalance":
        for k, v in IMBALANCE_TONES_G.items():
            add(k, v)
    elif fault == "misalignment":
        for k, v in MISALIGNMENT_TONES_G.items():
            add(k, v)
    elif fault == "looseness":
        gain = np.array(LOOSENESS_AXIS_GAIN)
        for i in range(1, 2 * LOOSENESS_MAX_ORDER + 1):
            order = i / 2.0
            base = LOOSENESS_BASE_G / math.sqrt(math.ceil(order))
            add(order, gain * (base if i % 2 == 0 else 0.4 * base))
    return table


def _tones(t: np.ndarray, f1: float, table: dict[float, np.ndarray], fs_hz: float) -> np.ndarray:
    """Σ_k A_k,axis · sin(2π k f1 t + φ_k + θ_axis) in g, shape (3, len(t)); tones ≥ fs/2 omitted."""
    out = np.zeros((3, t.shape[-1]))
    theta = np.asarray(AXIS_PHASE_RAD)[:, None]
    for order, amps in table.items():
        f = order * f1
        if f >= fs_hz / 2.0:
            continue
        out += amps[:, None] * np.sin(2.0 * np.pi * f * t[None, :] + _order_phase(order) + theta)
    return out


@functools.lru_cache(maxsize=64)
def _looseness_clip(f1: float, fs_hz: float, scale: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Clip level (g) and DC correction (g) per axis for the truncated looseness waveform.

    The tone sum is periodic with period 2/f1 (half orders). On a fine grid over one period the peak
    P_axis gives the clip level c = 0.6 · P_axis; the mean of the clipped waveform is subtracted
    afterwards because an accelerometer is AC coupled. Cached per (f1, fs, severity scale).
    """
    grid = np.arange(8192) * (2.0 / f1) / 8192
    wave = _tones(grid, f1, _tone_table("looseness", scale), fs_hz)
    level = LOOSENESS_CLIP_FRACTION * wave.max(axis=-1)
    dc = np.minimum(wave, level[:, None]).mean(axis=-1)
    return tuple(level.tolist()), tuple(dc.tolist())


def vibration_window(
    rng: np.random.Generator,
    fs_hz: float,
    n: int,
    rpm: float = 1800,
    fault: str | None = None,
    severity: str = "medium",
    t0_s: float = 0.0,
    bearing_orders: BearingOrders | Mapping[str, float] | None = None,
    *,
    noise: bool = True,
) -> np.ndarray:
    """A 3-axis accelerometer window, shape (3, n) = (x, y, z), in g.

    ``fs_hz``: sample rate (Hz); ``n``: samples; ``rpm``: shaft speed (rev/min), f1 = rpm/60 Hz;
    ``t0_s``: absolute time (s) of the first sample — phases refer to it, so windows with
    ``t0_s = i · n / fs_hz`` are continuous; ``noise=False`` returns the deterministic part only.

    Healthy machine: 1x, 2x, 3x running-speed tones (x: 0.05, 0.02, 0.01 g peak; y slightly smaller and
    90° behind; z axial ≈ 0.4 × radial) plus Gaussian noise σ = (0.02, 0.02, 0.015) g.
    Faults, amplitudes at ``medium`` (× 0.5 ``mild``, × 2 ``severe``):

    * ``imbalance``: +0.25 g at 1x radial (x, y: a rotating force), nothing axial;
    * ``misalignment``: +0.20 g at 2x radial, +0.06 g at 1x, axial z +0.12 g at 1x and +0.15 g at 2x;
    * ``looseness``: orders 0.5x … 10x (0.10 g/√k at integer k, 40 % of that at half orders), the
      positive side truncated at 0.6 × the waveform peak (a rocking foot hitting its base), DC removed;
    * ``bearing_outer``: impulses at BPFO · f1 each ringing a structural resonance
      f_r = min(3000 Hz, 0.35 fs) with damping ζ = 0.05, peak 0.5 g·√(α/α_3000) (x; y 0.8×, z 0.3×);
    * ``bearing_inner``: the same at BPFI · f1 with impulse amplitudes modulated once per revolution
      (the defect passes through the load zone), which gives 1x sidebands around BPFI;
    * ``jitter``: the healthy mean signal with noise σ multiplied by 1 + 4 × scale (3×, 5×, 9×).

    ``bearing_orders``: defect orders (default :data:`SKF_6205`). Raises ``ValueError`` for a bad
    argument, including a running speed whose 1x tone is at or above the Nyquist frequency fs/2.
    """
    n, fs_hz, rpm, t0_s = _checked_window_args(rng, fs_hz, n, rpm, t0_s, fault, severity)
    orders = resolve_orders(bearing_orders)
    scale = SEVERITY_SCALE[severity]
    f1 = rpm / 60.0
    t = t0_s + np.arange(n) / fs_hz
    sig = _tones(t, f1, _tone_table(fault, scale), fs_hz)
    if fault == "looseness":
        level, dc = (np.asarray(v)[:, None] for v in _looseness_clip(f1, fs_hz, scale))
        sig = np.minimum(sig, level) - dc
    elif fault in ("bearing_outer", "bearing_inner"):
        sig = sig + bearing_signal(fault, orders, t0_s, fs_hz, n, f1, scale)
    if noise:
        factor = 1.0 + JITTER_NOISE_GAIN * scale if fault == "jitter" else 1.0
        sig = sig + rng.normal(size=(3, n)) * (np.asarray(NOISE_SIGMA_G)[:, None] * factor)
    return sig


def _checked_window_args(
    rng: Any, fs_hz: Any, n: Any, rpm: Any, t0_s: Any, fault: Any, severity: Any
) -> tuple[int, float, float, float]:
    """``(n, fs_hz, rpm, t0_s)`` of :func:`vibration_window` checked, or ``ValueError``."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= n <= MAX_SAMPLES:
        raise ValueError(f"n must be an integer in 1..{MAX_SAMPLES}, got {n!r}")
    for name, v in (("fs_hz", fs_hz), ("rpm", rpm), ("t0_s", t0_s)):
        number = isinstance(v, int | float | np.floating | np.integer) and not isinstance(v, bool)
        if not number or not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {v!r}")
    fs_hz, rpm = float(fs_hz), float(rpm)
    if not FS_MIN_HZ <= fs_hz <= FS_MAX_HZ:
        raise ValueError(f"fs_hz must be in {FS_MIN_HZ:g}..{FS_MAX_HZ:g} Hz, got {fs_hz:g}")
    if rpm <= 0:
        raise ValueError(f"rpm must be > 0, got {rpm:g}")
    if rpm / 60.0 >= fs_hz / 2.0:
        raise ValueError(
            f"running speed {rpm / 60.0:g} Hz (rpm {rpm:g}) is at or above Nyquist {fs_hz / 2:g} Hz"
        )
    if fault is not None and fault not in FAULT_KINDS_VIBRATION:
        raise ValueError(
            f"unknown vibration fault {fault!r}; expected one of {', '.join(FAULT_KINDS_VIBRATION)}"
        )
    if severity not in SEVERITY_SCALE:
        raise ValueError(f"unknown severity {severity!r}; expected one of {', '.join(SEVERITIES)}")
    return int(n), fs_hz, rpm, float(t0_s)


def rms(x: np.ndarray) -> np.ndarray:
    """Root mean square over the last axis, √(mean(x²)), same unit as ``x``."""
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 0 or arr.shape[-1] == 0:
        raise ValueError("rms needs at least one sample on the last axis")
    return np.sqrt(np.mean(arr * arr, axis=-1))
