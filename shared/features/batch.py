"""Batch features: summary statistics of a window of simple readings (pure numpy, no I/O).

A *reading* is the 4-vector ``(voltage_v, current_a, power_factor, vibration_g)`` (units V, A,
dimensionless, g). A *window* stacks ``n`` consecutive readings signal-major as ``[..., 4, n]``.

For each signal ``s`` (row of the window, ``n`` samples, population statistics)::

    {s}_mean  = mean(s)                         unit of s
    {s}_std   = sqrt(mean((s - mean(s))**2))    unit of s   (ddof=0)
    {s}_ptp   = max(s) - min(s)                 unit of s
    {s}_rms   = sqrt(mean(s**2))                unit of s

giving 16 features named ``{signal}_{stat}``, signal-major (:data:`BATCH_FEATURE_NAMES`).
A constant signal has std = ptp = 0 and mean = rms = ``|c|`` (mean keeps the sign); nothing is
ever NaN or inf for valid input.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from shared.features._checks import as_count, as_signal

#: Signals of a reading, in window-row order, with units V, A, 1, g.
BATCH_SIGNALS: tuple[str, ...] = ("voltage_v", "current_a", "power_factor", "vibration_g")
#: Statistics per signal, in output order.
BATCH_STATS: tuple[str, ...] = ("mean", "std", "ptp", "rms")
#: The 16 feature names, signal-major: ``voltage_v_mean, voltage_v_std, ..., vibration_g_rms``.
BATCH_FEATURE_NAMES: tuple[str, ...] = tuple(f"{s}_{t}" for s in BATCH_SIGNALS for t in BATCH_STATS)
#: Default number of readings per batch window.
DEFAULT_BATCH_WINDOW = 100
#: Minimum number of readings in a window.
MIN_BATCH_SAMPLES = 2


def batch_features(window: Any) -> NDArray[np.float64]:
    """The 16 batch features of every window ``[..., 4, n]``.

    Parameters
    ----------
    window : array_like, shape ``[..., 4, n]``, ``n >= 2``
        Rows in :data:`BATCH_SIGNALS` order (voltage V, current A, power factor, vibration g).

    Returns
    -------
    ndarray, shape ``[..., 16]``, float64
        ``mean, std (ddof=0), ptp, rms`` of each signal, signal-major (:data:`BATCH_FEATURE_NAMES`);
        each in its signal's unit.

    Raises
    ------
    ValueError
        If ``window`` is not a real numeric array of shape ``[..., 4, n]`` with ``n >= 2``, or holds
        NaN/inf.
    """
    a = as_signal(window, "window", min_samples=MIN_BATCH_SAMPLES, min_ndim=2)
    if a.shape[-2] != len(BATCH_SIGNALS):
        raise ValueError(
            f"window: expected shape [..., {len(BATCH_SIGNALS)}, n] (rows {', '.join(BATCH_SIGNALS)}), "
            f"got {a.shape}"
        )
    mean = np.mean(a, axis=-1)
    d = a - mean[..., None]
    std = np.sqrt(np.mean(d * d, axis=-1))
    ptp = np.max(a, axis=-1) - np.min(a, axis=-1)
    rms = np.sqrt(np.mean(a * a, axis=-1))
    stats = np.stack((mean, std, ptp, rms), axis=-1)  # [..., 4 signals, 4 stats]
    return stats.reshape(*stats.shape[:-2], len(BATCH_FEATURE_NAMES))


def sliding_windows(readings: Any, window: int = DEFAULT_BATCH_WINDOW, step: int = 1) -> NDArray[np.float64]:
    """Cut a reading sequence into windows ready for :func:`batch_features`.

    Parameters
    ----------
    readings : array_like, shape ``[m, 4]``
        ``m`` readings in time order, each ``(voltage_v, current_a, power_factor, vibration_g)``
        (a sequence of 4-element arrays works).
    window : int, >= 2
        Readings per window (default 100).
    step : int, >= 1
        Readings between the starts of consecutive windows (1 = every possible window,
        ``window`` = non-overlapping).

    Returns
    -------
    ndarray, shape ``[k, 4, window]``, ``k = (m - window) // step + 1`` (0 when ``m < window``)
        Window ``j`` holds readings ``j*step ... j*step + window - 1``, signal-major. This is a
        **read-only view** into one float64 copy of ``readings`` (stride tricks, no per-window
        copy); call ``.copy()`` before writing to it.

    Raises
    ------
    ValueError
        On a bad shape, NaN/inf, ``window < 2`` or ``step < 1``.
    """
    window = as_count(window, "window", minimum=MIN_BATCH_SAMPLES)
    step = as_count(step, "step", minimum=1)
    a = as_signal(readings, "readings", min_samples=1, min_ndim=2)
    if a.ndim != 2 or a.shape[1] != len(BATCH_SIGNALS):
        raise ValueError(
            f"readings: expected shape [m, {len(BATCH_SIGNALS)}] (columns {', '.join(BATCH_SIGNALS)}), "
            f"got {a.shape}"
        )
    if a.shape[0] < window:
        return np.empty((0, len(BATCH_SIGNALS), window), dtype=np.float64)
    views = sliding_window_view(a, window, axis=0)  # [m - window + 1, 4, window]
    return views[::step]
