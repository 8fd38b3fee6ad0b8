"""Spectrum helpers shared by the spectral and envelope feature modules (private, pure numpy).

Conventions: a window of ``n`` samples at ``fs`` Hz has the one-sided spectrum ``rfft`` of length
``n // 2 + 1`` with bin spacing ``df = fs / n`` (Hz) and bin frequencies ``f_k = k df``.
Windows are cached per length and returned read-only.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from scipy.signal import windows as sig_windows


@lru_cache(maxsize=64)
def window(kind: str, n: int) -> NDArray[np.float64]:
    """Periodic (DFT-even) ``scipy.signal`` window ``kind`` of length ``n``, read-only (1)."""
    w = sig_windows.get_window(kind, n, fftbins=True).astype(np.float64)
    w.setflags(write=False)
    return w


@lru_cache(maxsize=64)
def one_sided_weights(n: int) -> NDArray[np.float64]:
    """``c_k`` for a one-sided spectrum of length ``n // 2 + 1``: 1 at DC (and Nyquist for even n), else 2.

    ``sum_k c_k |X_k|²`` over the one-sided spectrum equals ``sum_k |X_k|²`` over the full one
    (Parseval for real signals).
    """
    c = np.full(n // 2 + 1, 2.0)
    c[0] = 1.0
    if n % 2 == 0:
        c[-1] = 1.0
    c.setflags(write=False)
    return c


def bin_freqs(n: int, fs_hz: float) -> NDArray[np.float64]:
    """Frequencies ``f_k = k * fs / n`` (Hz) of the ``n // 2 + 1`` one-sided bins."""
    return np.arange(n // 2 + 1) * (fs_hz / n)


def search_bins(freqs: NDArray[np.float64], f0: float, tol: float, df: float) -> NDArray[np.intp]:
    """Indices ``k >= 1`` with ``|f_k - f0| <= max(tol * f0, df)`` (never empty for ``0 < f0 <= nyq``)."""
    sel = np.abs(freqs - f0) <= max(tol * f0, df)
    sel[0] = False
    idx = np.nonzero(sel)[0]
    if idx.size == 0:  # only possible for f0 within rounding of nyq on tiny windows
        idx = np.array([int(np.argmin(np.abs(freqs[1:] - f0))) + 1], dtype=np.intp)
    return idx


def max_over(spec: NDArray[np.float64], idx: NDArray[np.intp] | None) -> NDArray[np.float64]:
    """``max(spec[..., idx])`` over the last axis (same unit as ``spec``); zeros if ``idx`` is None."""
    if idx is None:
        return np.zeros(spec.shape[:-1])
    return np.max(spec[..., idx], axis=-1)
