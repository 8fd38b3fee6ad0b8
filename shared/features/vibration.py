"""Time-domain vibration features of accelerometer windows (pure numpy, no I/O).

All functions work on the last axis of ``[..., n]`` arrays (like ``scipy.signal``) and compute in
float64. Signals are accelerations in g; units in :data:`VIBRATION_UNITS`.

Definitions (``x`` = one window of ``n`` samples, ``mean`` over the window, population moments)::

    feature            formula                                   unit
    rms                sqrt(mean(x**2))                          g
    peak               max(|x|)                                  g
    ptp                max(x) - min(x)                           g
    crest_factor       peak / rms                                1
    variance           m2 = mean((x - mean(x))**2)  (ddof=0)     g²
    std                sqrt(m2)  (ddof=0)                        g
    skewness           m3 / m2**1.5                              1
    kurtosis           m4 / m2**2 - 3  (excess, Fisher)          1
    shape_factor       rms / mean(|x|)                           1
    impulse_factor     peak / mean(|x|)                          1
    clearance_factor   peak / mean(sqrt(|x|))**2                 1

where ``mk = mean((x - mean(x))**k)`` is the k-th central moment.

Degenerate windows never give NaN or inf:

* **all-zero window** (``peak == 0``): every feature is 0.0 (the four ratios are *defined* as 0, so
  a dead sensor is distinguishable from a live one, whose ratios are always >= 1);
* **constant non-zero window** ``x = c``: rms = peak = ``|c|``, ptp = variance = std = 0, the four
  ratios are exactly 1, skewness = kurtosis = 0 (defined; the moments' ratio is 0/0);
* **near-constant window** whose standard deviation is below ``1e-12 * peak`` (float64 rounding
  noise, not signal): skewness and kurtosis are 0; variance and std keep their (tiny) values.

Numerically, the window is first scaled by its peak, so no intermediate quantity under- or
overflows for any accepted input (``|x| <= 1e100``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shared.features._checks import as_signal

#: The 11 per-axis feature names, in output order (units: see the module docstring).
VIBRATION_FEATURES: tuple[str, ...] = (
    "rms",
    "peak",
    "ptp",
    "crest_factor",
    "variance",
    "std",
    "skewness",
    "kurtosis",
    "shape_factor",
    "impulse_factor",
    "clearance_factor",
)

#: Unit of each feature in :data:`VIBRATION_FEATURES` (``"1"`` = dimensionless).
VIBRATION_UNITS: dict[str, str] = {
    "rms": "g",
    "peak": "g",
    "ptp": "g",
    "crest_factor": "1",
    "variance": "g^2",
    "std": "g",
    "skewness": "1",
    "kurtosis": "1",
    "shape_factor": "1",
    "impulse_factor": "1",
    "clearance_factor": "1",
}

#: Minimum window length accepted by :func:`vibration_features`.
MIN_SAMPLES = 2

#: Relative standard deviation (std / peak) below which a window counts as constant for the
#: shape moments (skewness, kurtosis). float64 resolution is ~1e-16, so 1e-12 keeps only noise out.
CONSTANT_REL_STD = 1e-12

AXES: tuple[str, ...] = ("x", "y", "z")


def vibration_feature_names(axes: Sequence[str] = AXES) -> list[str]:
    """Names ``{axis}_{feature}``, axis-major: ``x_rms, x_peak, ..., x_clearance_factor, y_rms, ...``.

    ``axes`` must be a non-empty sequence of distinct non-empty strings; 3 axes give 33 names.
    """
    if isinstance(axes, str):
        raise ValueError(f"axes: expected a sequence of axis names, got the string {axes!r}")
    axes = list(axes)
    if not axes:
        raise ValueError("axes: must name at least one axis")
    for a in axes:
        if not isinstance(a, str) or not a:
            raise ValueError(f"axes: every axis name must be a non-empty string, got {a!r}")
    if len(set(axes)) != len(axes):
        raise ValueError(f"axes: duplicate axis names in {axes}")
    return [f"{a}_{f}" for a in axes for f in VIBRATION_FEATURES]


def vibration_features(x: Any) -> NDArray[np.float64]:
    """The 11 time-domain features of every window on the last axis of ``x``.

    Parameters
    ----------
    x : array_like, shape ``[..., n]``, ``n >= 2``
        Acceleration windows in g; any leading batch shape (e.g. ``[windows, axes, n]``).

    Returns
    -------
    ndarray, shape ``[..., 11]``, float64
        Features in the order of :data:`VIBRATION_FEATURES`; formulas and units in the module
        docstring (rms, peak, ptp in g; variance in g²; std in g; the rest dimensionless).

    Raises
    ------
    ValueError
        If ``x`` is not a real numeric array, has fewer than 2 samples on the last axis, is empty,
        or holds NaN/inf or values beyond ±1e100.
    """
    a = as_signal(x, "x", min_samples=MIN_SAMPLES)

    peak = np.max(np.abs(a), axis=-1)
    ptp = np.max(a, axis=-1) - np.min(a, axis=-1)
    live = peak > 0.0
    scale = np.where(live, peak, 1.0)
    u = a / scale[..., None]  # |u| <= 1, max |u| == 1 on live windows

    abs_u = np.abs(u)
    rms_u = np.sqrt(np.mean(u * u, axis=-1))  # >= 1/sqrt(n) on live windows
    mean_abs_u = np.mean(abs_u, axis=-1)  # >= 1/n on live windows
    mean_sqrt_u = np.mean(np.sqrt(abs_u), axis=-1)  # >= 1/n on live windows
    m2, skewness, kurtosis = _shape_moments(u)

    def ratio(num: NDArray[np.float64], den: NDArray[np.float64]) -> NDArray[np.float64]:
        """``num / den`` on live windows, 0.0 on all-zero ones."""
        return np.divide(num, den, out=np.zeros_like(peak), where=live)

    ones = np.ones_like(peak)
    feats = (
        peak * rms_u,  # rms
        peak,
        ptp,
        ratio(ones, rms_u),  # crest = peak / rms
        peak * peak * m2,  # variance
        peak * np.sqrt(m2),  # std
        skewness,
        kurtosis,
        ratio(rms_u, mean_abs_u),  # shape = rms / mean|x|
        ratio(ones, mean_abs_u),  # impulse = peak / mean|x|
        ratio(ones, mean_sqrt_u * mean_sqrt_u),  # clearance = peak / mean(sqrt|x|)^2
    )
    return np.stack(feats, axis=-1)


def _shape_moments(
    u: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """``(m2, skewness, kurtosis)`` of peak-scaled windows ``u = x / peak`` on the last axis.

    ``mk = mean((u - mean(u))**k)`` (population, ddof=0; ``m2`` in units of ``peak²``),
    ``skewness = m3 / m2**1.5`` and ``kurtosis = m4 / m2**2 - 3`` (excess), both dimensionless and
    scale-free; both 0.0 where ``m2 <= CONSTANT_REL_STD**2`` (a constant window up to rounding).
    """
    d = u - np.mean(u, axis=-1, keepdims=True)
    d2 = d * d
    m2 = np.mean(d2, axis=-1)
    m3 = np.mean(d2 * d, axis=-1)
    m4 = np.mean(d2 * d2, axis=-1)
    varying = m2 > CONSTANT_REL_STD**2
    m2_safe = np.where(varying, m2, 1.0)
    skewness = np.where(varying, m3 / m2_safe**1.5, 0.0)
    kurtosis = np.where(varying, m4 / (m2_safe * m2_safe) - 3.0, 0.0)
    return m2, skewness, kurtosis


def axes_features(signals: Mapping[str, Any]) -> tuple[list[str], NDArray[np.float64]]:
    """Features of a window with any set of named axes (1, 2 or 3 of ``x``, ``y``, ``z``, or any names).

    ``signals`` maps axis name → array_like of shape ``[..., n]`` in g (every axis the same shape, e.g.
    ``[frames, n]``). Returns ``(names, values)``: ``len(signals) * 11`` names ``{axis}_{feature}``,
    axis-major in the mapping's order (:func:`vibration_feature_names`), and ``values`` of shape
    ``[..., len(signals) * 11]`` in the same order. Units as in :func:`vibration_features`.

    Raises ``ValueError`` naming the axis if an axis is invalid, if no axis is given, or if the axes'
    shapes differ.
    """
    if not signals:
        raise ValueError("signals: give at least one axis")
    axes = list(signals)
    names = vibration_feature_names(axes)
    arrays = {a: as_signal(signals[a], a, min_samples=MIN_SAMPLES) for a in axes}
    first = arrays[axes[0]].shape
    for a in axes[1:]:
        if arrays[a].shape != first:
            raise ValueError(f"{a}: shape {arrays[a].shape} differs from {axes[0]}'s shape {first}")
    stacked = np.stack([arrays[a] for a in axes], axis=-2)  # [..., n_axes, n]
    values = vibration_features(stacked)  # [..., n_axes, 11]
    return names, values.reshape(*values.shape[:-2], len(axes) * len(VIBRATION_FEATURES))


def window_features(x: Any, y: Any = None, z: Any = None) -> tuple[list[str], NDArray[np.float64]]:
    """Features of a single-axis (``x``) or 3-axis (``x``, ``y``, ``z``) window.

    Each axis is array_like of shape ``[..., n]`` (all the same shape), in g. Returns
    ``(names, values)``: 11 names ``x_rms ... x_clearance_factor`` for ``x`` alone, or 33 names
    (axis-major, see :func:`vibration_feature_names`); ``values`` has shape ``[..., 11]`` or
    ``[..., 33]`` in the same order. Units as in :func:`vibration_features`.

    Raises ``ValueError`` naming the axis if an axis is invalid, if only one of ``y``/``z`` is
    given, or if the axes' shapes differ.
    """
    if (y is None) != (z is None):
        raise ValueError("give x alone (single-axis) or x, y and z together")
    arrays = {"x": as_signal(x, "x", min_samples=MIN_SAMPLES)}
    if y is not None:
        arrays["y"] = as_signal(y, "y", min_samples=MIN_SAMPLES)
        arrays["z"] = as_signal(z, "z", min_samples=MIN_SAMPLES)
        for name in ("y", "z"):
            if arrays[name].shape != arrays["x"].shape:
                raise ValueError(
                    f"{name}: shape {arrays[name].shape} differs from x's shape {arrays['x'].shape}"
                )
    axes = list(arrays)
    stacked = np.stack([arrays[a] for a in axes], axis=-2)  # [..., n_axes, n]
    values = vibration_features(stacked)  # [..., n_axes, 11]
    values = values.reshape(*values.shape[:-2], len(axes) * len(VIBRATION_FEATURES))
    return vibration_feature_names(axes), values
