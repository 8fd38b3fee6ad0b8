"""Trending health indicators relative to an asset's own calibrated baseline (pure numpy, no I/O).

A health indicator (HI) is a number per vibration window that rises with damage. Each is computed
from the features the features service already publishes for a vibration window
(:meth:`shared.features.engine.FeatureEngine.on_window`: ``{axis}_rms``, ``{axis}_kurtosis`` in
``values``; ``band_{i}_energy`` in ``extras``, already the maximum over axes) and expressed against
the asset's calibration windows (the healthy windows a user calibrated on), so it needs no absolute
limit for a particular machine:

``rms_log`` (neper, dimensionless)
    ``ln(rms / median(rms_cal))``, ``rms = max over axes of {axis}_rms`` (g). 0 on a machine like
    its calibration, ``ln 2 = 0.69`` at twice the calibrated RMS (+6 dB).
    :func:`axes_log_ratio` is the per-axis form the early warning and remaining-life estimate use
    (the mean over axes of ``ln(RMS_a / RMS_cal,a)``, each axis against its own calibration): on the
    FEMTO run-to-failure bearings it kept every bearing's first-half quiet in the leave-one-out
    evaluation where the largest-axis form did not (docs/EVALUATION.md, "Run to failure").
``hf_energy_log`` (neper)
    ``ln(E_hf / median(E_hf_cal))``, ``E_hf = sum of band_{i}_energy for i >= n_bands / 2`` (g²): the
    power in the upper half of the spectrum (fs/4 .. fs/2), where the resonances excited by
    rolling-element impacts live.
``kurtosis_z`` (dimensionless, robust standard deviations)
    ``(k - median(k_cal)) / s_cal`` with ``k = max over axes of {axis}_kurtosis`` (excess) and the
    robust spread ``s_cal`` of :func:`robust_baseline`.

:func:`robust_z` turns any indicator into robust standard deviations of its calibration values (the
input of the early-warning CUSUM, :mod:`shared.health.warning`); :func:`ewma` smooths an indicator in
data time (the input of the remaining-useful-life fit, :mod:`shared.health.rul`).

Reference for the choice of RMS and kurtosis as bearing-degradation indicators: Y. Lei et al.,
"Machinery health prognostics: A systematic review from data acquisition to RUL prediction",
Mech. Syst. Signal Process. 104 (2018) 799-834, section 3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: Consistency constant of the median absolute deviation for a normal distribution (1 / Phi^-1(3/4)).
MAD_TO_SIGMA = 1.4826
#: Default floor of the robust spread, relative to |median| (a perfectly steady calibration must not
#: make every later wobble infinitely significant).
REL_SCALE_FLOOR = 0.01
#: Indicators computed by :func:`window_indicators`, in order.
INDICATOR_NAMES: tuple[str, ...] = ("rms_log", "hf_energy_log", "kurtosis_z")
#: Unit of each indicator ("Np" = neper, the natural-log ratio; "sigma" = robust standard deviations).
INDICATOR_UNITS: dict[str, str] = {"rms_log": "Np", "hf_energy_log": "Np", "kurtosis_z": "sigma"}
#: Smallest positive value a log-ratio input is clipped to (g or g²): keeps a dead channel finite.
TINY = 1e-12


def _as_series(x: Any, name: str, *, ndim: int = 1) -> NDArray[np.float64]:
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: not a numeric array ({exc})") from None
    if a.ndim != ndim or a.size == 0:
        raise ValueError(f"{name}: expected a non-empty {ndim}-d array, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: {int(np.count_nonzero(~np.isfinite(a)))} non-finite value(s)")
    return a


@dataclass(frozen=True)
class Baseline:
    """Robust location and spread of an indicator's calibration values (same unit as the indicator)."""

    median: float
    scale: float
    n: int


def robust_baseline(cal: Any, rel_floor: float = REL_SCALE_FLOOR, abs_floor: float = TINY) -> Baseline:
    """Median and robust spread of calibration values.

    ``scale = max(1.4826 * MAD, rel_floor * |median|, abs_floor)`` with
    ``MAD = median(|x - median(x)|)``: the standard deviation for normal data, insensitive to a few
    outliers (Hampel 1974); the floors keep a constant calibration from dividing by zero.

    Parameters
    ----------
    cal : array_like, shape ``[n]``, ``n >= 3``
        Calibration values of one indicator (any unit).
    rel_floor, abs_floor : float >= 0
        Floors of the spread, relative to ``|median|`` and absolute (indicator unit).

    Raises
    ------
    ValueError
        Fewer than 3 values, non-finite values, or a negative floor.
    """
    a = _as_series(cal, "cal")
    if a.size < 3:
        raise ValueError(f"cal: need at least 3 calibration values, got {a.size}")
    if not (rel_floor >= 0 and abs_floor >= 0):
        raise ValueError(f"floors must be >= 0, got rel_floor={rel_floor}, abs_floor={abs_floor}")
    med = float(np.median(a))
    mad = float(np.median(np.abs(a - med)))
    return Baseline(med, max(MAD_TO_SIGMA * mad, rel_floor * abs(med), abs_floor), int(a.size))


def log_ratio(x: Any, reference: float) -> NDArray[np.float64]:
    """``ln(max(x, TINY) / reference)`` in neper: 0 at the reference, +0.69 at twice it.

    ``x`` (array_like, any shape, same unit as ``reference``, >= 0) and ``reference`` (> 0) are
    magnitudes such as an RMS in g or an energy in g². Raises ``ValueError`` on negative or
    non-finite ``x`` or a non-positive ``reference``.
    """
    a = np.asarray(x, dtype=np.float64)
    if not np.isfinite(a).all() or (a < 0).any():
        raise ValueError("x: magnitudes must be finite and >= 0")
    if not (np.isfinite(reference) and reference > 0):
        raise ValueError(f"reference: must be finite and > 0, got {reference}")
    return np.log(np.maximum(a, TINY) / reference)


def axes_log_ratio(rms: Mapping[str, Any], reference: Mapping[str, float]) -> NDArray[np.float64]:
    """``rms_log`` of a multi-axis sensor: the mean over axes of ``ln(RMS_a / RMS_cal,a)`` [Np].

    Each axis is measured against its own calibrated RMS (``reference``, same unit as ``rms``, e.g. g),
    so a quiet axis's relative change counts as much as a loud one's; the mean of the logs is the log
    of the geometric mean of the axes' ratios (0.69 Np: both axes at twice calibration, or one at 4x
    and one unchanged). For one axis it is :func:`log_ratio`. Axes in ``rms`` without a reference
    are ignored.

    Parameters
    ----------
    rms : mapping axis -> array_like ``[n]`` (or scalar)
        Each axis's RMS per window (>= 0).
    reference : mapping axis -> float > 0
        Each axis's calibrated RMS (e.g. the calibration median).

    Raises
    ------
    ValueError
        No axis with a reference, differing shapes, or the checks of :func:`log_ratio`.
    """
    axes = [a for a in rms if a in reference]
    if not axes:
        raise ValueError(f"no axis of {sorted(rms)} has a reference (references: {sorted(reference)})")
    logs = [log_ratio(rms[a], float(reference[a])) for a in axes]
    if len({v.shape for v in logs}) != 1:
        raise ValueError(f"axes differ in shape: {[v.shape for v in logs]}")
    return np.mean(logs, axis=0)


def robust_z(x: Any, base: Baseline) -> NDArray[np.float64]:
    """``(x - base.median) / base.scale``: the indicator in robust standard deviations (dimensionless)."""
    a = np.asarray(x, dtype=np.float64)
    if not np.isfinite(a).all():
        raise ValueError("x: non-finite value(s)")
    return (a - base.median) / base.scale


def ewma(t_s: Any, x: Any, tau_s: float) -> NDArray[np.float64]:
    """Exponentially weighted moving mean in data time.

    ``E_0 = x_0``; ``E_i = E_{i-1} + (1 - exp(-(t_i - t_{i-1}) / tau_s)) * (x_i - E_{i-1})``.
    The weight of a new sample depends on the data time elapsed, not on the sample count, so
    irregular spacing and gaps are handled: after a gap much longer than ``tau_s`` the mean restarts
    at the new sample (the old state is stale), and samples closer together count less each. A step
    of height ``d`` at ``t0`` is reached to ``d * (1 - exp(-(t - t0) / tau_s))``. The recursion is a
    loop (each output depends on the previous), O(n).

    Parameters
    ----------
    t_s : array_like, shape ``[n]``
        Data timestamps in seconds, non-decreasing (equal stamps: the later sample gets weight 0).
    x : array_like, shape ``[n]``
        Indicator values (any unit; the output has the same unit).
    tau_s : float > 0
        Time constant, seconds.
    """
    t = _as_series(t_s, "t_s")
    v = _as_series(x, "x")
    if t.shape != v.shape:
        raise ValueError(f"t_s and x differ in length: {t.size} vs {v.size}")
    if (np.diff(t) < 0).any():
        raise ValueError("t_s: timestamps must be non-decreasing")
    if not (np.isfinite(tau_s) and tau_s > 0):
        raise ValueError(f"tau_s: must be finite and > 0, got {tau_s}")
    alpha = 1.0 - np.exp(-np.diff(t) / tau_s)
    out = np.empty_like(v)
    e = out[0] = v[0]
    for i in range(1, v.size):
        e += alpha[i - 1] * (v[i] - e)
        out[i] = e
    return out


def window_inputs(
    names: Sequence[str], values: Any, extras: Mapping[str, Any], n_bands: int = 8
) -> dict[str, NDArray[np.float64]]:
    """The raw per-window quantities the indicators need, from feature vectors as the service publishes.

    Parameters
    ----------
    names : sequence of str
        The vibration vector's names (``{axis}_rms``, ``{axis}_kurtosis``, ...).
    values : array_like, shape ``[n_windows, len(names)]``
        The vectors' values, one row per window.
    extras : mapping name -> array_like ``[n_windows]``
        The vectors' spectral extras; ``band_{i}_energy`` for ``i < n_bands`` are needed.
    n_bands : int >= 2
        Number of equal-width bands the features were computed with.

    Returns
    -------
    dict with ``rms`` (g, max over axes), ``kurtosis`` (1, max over axes) and ``hf_energy`` (g²,
    sum of the upper ``n_bands // 2`` bands), each shape ``[n_windows]``.
    """
    v = _as_series(values, "values", ndim=2)
    if v.shape[1] != len(names):
        raise ValueError(f"values: {v.shape[1]} columns for {len(names)} names")
    cols = {n: i for i, n in enumerate(names)}
    rms = [cols[n] for n in names if n.endswith("_rms")]
    kurt = [cols[n] for n in names if n.endswith("_kurtosis")]
    if not rms or not kurt:
        raise ValueError("names: need at least one {axis}_rms and {axis}_kurtosis")
    if n_bands < 2:
        raise ValueError(f"n_bands: need at least 2, got {n_bands}")
    missing = [f"band_{i}_energy" for i in range(n_bands) if f"band_{i}_energy" not in extras]
    if missing:
        raise ValueError(f"extras: missing {missing}")
    hf = sum(_as_series(extras[f"band_{i}_energy"], f"band_{i}_energy") for i in range(n_bands // 2, n_bands))
    hf = np.asarray(hf, dtype=np.float64)
    if hf.shape != (v.shape[0],):
        raise ValueError(f"extras: band energies have shape {hf.shape}, expected ({v.shape[0]},)")
    return {"rms": v[:, rms].max(axis=1), "kurtosis": v[:, kurt].max(axis=1), "hf_energy": hf}


def window_indicators(inputs: Mapping[str, Any], calibration: Any) -> dict[str, NDArray[np.float64]]:
    """:data:`INDICATOR_NAMES` for every window, against the calibration windows.

    Parameters
    ----------
    inputs : mapping
        ``rms`` (g), ``kurtosis`` (1), ``hf_energy`` (g²), each shape ``[n]`` (:func:`window_inputs`).
    calibration : array_like of bool, shape ``[n]``
        True for the windows the asset was calibrated on (at least 3).

    Returns
    -------
    dict name -> float64 ``[n]``: ``rms_log`` and ``hf_energy_log`` in neper, ``kurtosis_z`` in
    robust standard deviations (formulas in the module docstring).
    """
    cal = np.asarray(calibration)
    if cal.dtype != np.bool_ or cal.ndim != 1:
        raise ValueError("calibration: expected a 1-d boolean mask")
    arrays = {k: _as_series(inputs[k], k) for k in ("rms", "kurtosis", "hf_energy") if k in inputs}
    if len(arrays) != 3:
        raise ValueError(f"inputs: need rms, kurtosis and hf_energy, got {sorted(inputs)}")
    for k, a in arrays.items():
        if a.shape != cal.shape:
            raise ValueError(f"{k}: length {a.size} differs from calibration's {cal.size}")
    if np.count_nonzero(cal) < 3:
        raise ValueError("calibration: need at least 3 calibration windows")
    rms_ref = robust_baseline(arrays["rms"][cal]).median
    hf_ref = robust_baseline(arrays["hf_energy"][cal]).median
    if rms_ref <= 0 or hf_ref <= 0:
        raise ValueError("calibration: the calibrated RMS / high-band energy is 0 (dead sensor?)")
    return {
        "rms_log": log_ratio(arrays["rms"], rms_ref),
        "hf_energy_log": log_ratio(arrays["hf_energy"], hf_ref),
        "kurtosis_z": robust_z(arrays["kurtosis"], robust_baseline(arrays["kurtosis"][cal])),
    }
