"""Spectral and envelope (bearing) features of accelerometer windows (pure numpy, no I/O).

:func:`spectral_features` works on the last axis of ``[..., n]`` arrays (g, float64, ``n >= 16``)
sampled at ``fs_hz``. The window mean is removed first (an accelerometer's DC/gravity offset is not
vibration). ``df = fs_hz / n`` is the bin spacing, ``nyq = fs_hz / 2``, ``X = rfft(x - mean(x))``.

Features (name, definition, unit):

``dominant_freq_hz`` (Hz)
    Frequency of the largest bin of the Hann-windowed amplitude spectrum, DC bin excluded, refined
    by Gaussian (log-parabolic) interpolation over the peak bin and its two neighbours (error well
    below ``df / 10`` for a clean sine). 0.0 for a constant window.
``order1_amp_g``, ``order2_amp_g``, ``order3_amp_g`` (g, zero-to-peak) — only when ``rpm`` is given
    Amplitude at ``h * rpm / 60`` Hz, ``h = 1, 2, 3``: the maximum of the flat-top-windowed
    amplitude spectrum ``2 |rfft(w x)| / sum(w)`` (amplitude error < 0.02 dB for a sinusoid) over
    bins with ``|f - h*rpm/60| <= max(0.03 * h*rpm/60, df)`` (±3 % for speed uncertainty, at least
    the nearest bins). 0.0 when ``h * rpm / 60 > nyq``.
``band_{i}_energy`` (g²), ``i = 0 .. n_bands-1``
    Power of the mean-removed signal in equal-width bands ``[i B, (i+1) B)``, ``B = nyq / n_bands``
    (the last band includes ``nyq``), from the rectangular-window one-sided periodogram
    ``P_k = c_k |X_k|² / n²`` (``c_k = 2`` except DC and Nyquist bins: 1). By Parseval the bands
    sum to the window variance ``mean((x - mean(x))**2)`` (to rounding).
``velocity_rms_mm_s`` (mm/s)
    RMS velocity over ``10 Hz <= f <= f_hi``, ``f_hi = min(1000 Hz, 0.9 * nyq)`` (the ISO 20816
    band, upper edge kept below Nyquist): acceleration integrated in the frequency domain,
    ``V(f) = A(f) * 9.80665 / (2 pi f)`` m/s, and by Parseval
    ``v_rms = 1000 * sqrt(sum_k P_k (9.80665 / (2 pi f_k))**2)`` with the Hann-windowed,
    power-normalised one-sided spectrum ``P_k = c_k |rfft(w x)_k|² / (n sum(w²))`` (g², sums to
    the mean power; Hann keeps leakage from being amplified by the ``1/f²`` weight). A sine of
    amplitude ``A`` g at ``f`` Hz gives ``A * 9.80665 / (2 pi f) / sqrt(2) * 1000`` mm/s.
    0.0 when ``f_hi <= 10 Hz`` (``fs_hz <= 22.2 Hz``).
``env_{d}_amp`` (g), ``env_{d}_snr`` (1), ``env_{d}_harm_amp`` (g), ``env_{d}_harm_snr`` (1) for each
defect ``d`` in ``bearing_orders`` (``bpfo``, ``bpfi``, ``bsf``, ``ftf``; needs ``rpm``)
    Envelope spectrum at the bearing defect frequencies ``f_d = order_d * rpm / 60``: amplitude
    and SNR against the nearby median, at the fundamental and summed over harmonics 1–3;
    definitions in :mod:`shared.features.envelope`.

Features whose frequency lies above Nyquist are returned as 0.0 (never omitted), so a given call
signature always yields the same names (:func:`spectral_feature_names`); features needing ``rpm``
or ``bearing_orders`` are omitted when those are not given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shared.features._checks import as_count, as_positive_float, as_signal
from shared.features._spectrum import bin_freqs, max_over, one_sided_weights, search_bins, window
from shared.features.envelope import (
    BEARING_KEYS,
    ENV_TOL,
    SNR_MAX,
    bearing_orders,
    check_defect_orders,
    check_env_band,
    default_env_band,
    envelope_features,
)

__all__ = [
    "BEARING_KEYS",
    "DEFAULT_N_BANDS",
    "ENV_TOL",
    "G0",
    "MIN_SPECTRAL_SAMPLES",
    "ORDER_TOL",
    "SHAFT_ORDERS",
    "SNR_MAX",
    "VELOCITY_BAND_HZ",
    "VELOCITY_NYQ_FRACTION",
    "band_energies",
    "bearing_orders",
    "default_env_band",
    "dominant_frequency",
    "order_amplitudes",
    "spectral_feature_names",
    "spectral_features",
    "spectral_units",
    "stack_features",
    "velocity_rms",
]

#: Standard gravity, m/s² per g.
G0 = 9.80665
#: Minimum window length for spectral features.
MIN_SPECTRAL_SAMPLES = 16
#: Default number of equal-width energy bands from 0 to Nyquist.
DEFAULT_N_BANDS = 8
#: Relative half-width of the search around a shaft order.
ORDER_TOL = 0.03
#: Shaft orders ``h`` of the ``order{h}_amp_g`` features.
SHAFT_ORDERS: tuple[int, ...] = (1, 2, 3)
#: Velocity band (ISO 20816), Hz; the upper edge is further limited to ``VELOCITY_NYQ_FRACTION * nyq``.
VELOCITY_BAND_HZ = (10.0, 1000.0)
VELOCITY_NYQ_FRACTION = 0.9


def spectral_feature_names(
    n_bands: int = DEFAULT_N_BANDS, with_orders: bool = False, bearing_keys: Iterable[str] = ()
) -> list[str]:
    """Names returned by :func:`spectral_features`, in order.

    ``with_orders``: ``rpm`` was given; ``bearing_keys``: the keys of ``bearing_orders`` (output in
    :data:`BEARING_KEYS` order regardless of the order given).
    """
    n_bands = as_count(n_bands, "n_bands", minimum=1)
    keys = set(bearing_keys)
    unknown = keys - set(BEARING_KEYS)
    if unknown:
        raise ValueError(f"bearing_orders: unknown key(s) {sorted(unknown)}; allowed {list(BEARING_KEYS)}")
    names = ["dominant_freq_hz"]
    if with_orders:
        names += [f"order{h}_amp_g" for h in SHAFT_ORDERS]
    names += [f"band_{i}_energy" for i in range(n_bands)]
    names.append("velocity_rms_mm_s")
    for k in BEARING_KEYS:
        if k in keys:
            names += [f"env_{k}_amp", f"env_{k}_snr", f"env_{k}_harm_amp", f"env_{k}_harm_snr"]
    return names


def spectral_units(names: Iterable[str]) -> dict[str, str]:
    """Unit of each spectral feature name (``"1"`` = dimensionless)."""
    out: dict[str, str] = {}
    for name in names:
        if name == "dominant_freq_hz":
            out[name] = "Hz"
        elif name.endswith("_energy"):
            out[name] = "g^2"
        elif name == "velocity_rms_mm_s":
            out[name] = "mm/s"
        elif name.endswith("_snr"):
            out[name] = "1"
        else:
            out[name] = "g"
    return out


def spectral_features(
    x: Any,
    fs_hz: float,
    rpm: float | None = None,
    bearing_orders: Mapping[str, float] | None = None,
    n_bands: int = DEFAULT_N_BANDS,
    *,
    env_band_hz: tuple[float, float] | None = None,
) -> dict[str, NDArray[np.float64]]:
    """Spectral, shaft-order and envelope features of every window on the last axis of ``x``.

    Parameters
    ----------
    x : array_like, shape ``[..., n]``, ``n >= 16``
        Acceleration windows in g.
    fs_hz : float > 0
        Sample rate, Hz.
    rpm : float > 0, optional
        Shaft speed, rev/min. Enables ``order{1,2,3}_amp_g`` and is required by ``bearing_orders``.
    bearing_orders : mapping, optional
        Defect frequencies in orders of shaft speed, keys among ``bpfo, bpfi, bsf, ftf`` (see
        :func:`bearing_orders`). Enables ``env_{key}_{amp,snr,harm_amp,harm_snr}``.
    n_bands : int >= 1
        Number of equal-width energy bands from 0 to Nyquist.
    env_band_hz : (lo, hi), optional
        Envelope demodulation band in Hz, ``0 < lo < hi <= fs/2``; default :func:`default_env_band`.

    Returns
    -------
    dict[str, ndarray]
        Name -> float64 array of shape ``x.shape[:-1]`` (0-d for one window), in the order of
        :func:`spectral_feature_names`; definitions and units in the module docstring. Never
        NaN/inf; features above Nyquist (or beyond the envelope band's reach) are 0.0.

    Raises
    ------
    ValueError
        Naming the argument: bad ``x`` (non-numeric, non-finite, too short), ``fs_hz`` or ``rpm``
        not finite and > 0, bad ``n_bands`` or ``env_band_hz``, ``bearing_orders`` without
        ``rpm``, with unknown keys or non-positive values.
    """
    a = as_signal(x, "x", min_samples=MIN_SPECTRAL_SAMPLES)
    fs = as_positive_float(fs_hz, "fs_hz")
    n_bands = as_count(n_bands, "n_bands", minimum=1)
    shaft_hz = None if rpm is None else as_positive_float(rpm, "rpm") / 60.0
    defects = check_defect_orders(bearing_orders, shaft_hz)
    env_band = check_env_band(env_band_hz, fs)

    n = a.shape[-1]
    d = a - np.mean(a, axis=-1, keepdims=True)
    xh = np.fft.rfft(d * window("hann", n), axis=-1)  # shared by dominant, velocity, envelope
    out: dict[str, NDArray[np.float64]] = {"dominant_freq_hz": dominant_frequency(np.abs(xh), fs / n)}
    if shaft_hz is not None:
        out.update(order_amplitudes(d, fs, shaft_hz))
    energies = band_energies(d, n_bands)
    out.update({f"band_{i}_energy": energies[..., i] for i in range(n_bands)})
    out["velocity_rms_mm_s"] = velocity_rms(xh, n, fs)
    if defects and shaft_hz is not None:
        out.update(envelope_features(xh, n, fs, shaft_hz, defects, env_band))
    return out


def dominant_frequency(mag: NDArray[np.float64], df: float) -> NDArray[np.float64]:
    """Peak frequency (Hz) of a one-sided amplitude spectrum, DC excluded, Gaussian-interpolated.

    Parameters
    ----------
    mag : ndarray, shape ``[..., m]``, ``m >= 2``
        ``|rfft(w (x - mean x))|`` with the Hann window ``w`` (any amplitude unit).
    df : float
        Bin spacing ``fs / n``, Hz.

    Returns
    -------
    ndarray, shape ``mag.shape[:-1]``
        ``(k + delta) * df`` (Hz), ``k = argmax_{k >= 1} mag_k`` and, with ``a, b, c`` the logs of
        the bins ``k - 1, k, k + 1``, ``delta = (a - c) / (2 (a - 2b + c))`` clipped to ±0.5
        (0 at the last bin or when the log-parabola does not open downwards). 0.0 where the
        spectrum is all zero.
    """
    last = mag.shape[-1] - 1
    k = np.argmax(mag[..., 1:], axis=-1) + 1
    peak = np.take_along_axis(mag, k[..., None], axis=-1)[..., 0]
    left = np.take_along_axis(mag, (k - 1)[..., None], axis=-1)[..., 0]
    right = np.take_along_axis(mag, np.minimum(k + 1, last)[..., None], axis=-1)[..., 0]
    tiny = np.finfo(np.float64).tiny
    la, lb, lc = np.log(left + tiny), np.log(peak + tiny), np.log(right + tiny)
    den = la - 2.0 * lb + lc
    ok = (k < last) & (den < 0.0)
    delta = np.where(ok, 0.5 * (la - lc) / np.where(ok, den, -1.0), 0.0)
    delta = np.clip(delta, -0.5, 0.5)
    return np.where(peak > 0.0, (k + delta) * df, 0.0)


def order_amplitudes(d: NDArray[np.float64], fs_hz: float, shaft_hz: float) -> dict[str, NDArray[np.float64]]:
    """``order{h}_amp_g`` (g, zero-to-peak) for ``h`` in :data:`SHAFT_ORDERS`.

    Parameters
    ----------
    d : ndarray, shape ``[..., n]``
        Mean-removed acceleration windows, g.
    fs_hz : float
        Sample rate, Hz.
    shaft_hz : float
        Shaft frequency ``rpm / 60``, Hz.

    Returns
    -------
    dict[str, ndarray]
        For each ``h``, the maximum of the flat-top amplitude spectrum ``2 |rfft(w d)| / sum(w)``
        over bins ``k >= 1`` with ``|f_k - h f1| <= max(ORDER_TOL h f1, df)``, shape
        ``d.shape[:-1]``; 0.0 when ``h f1 > fs / 2``.
    """
    n = d.shape[-1]
    df, nyq = fs_hz / n, fs_hz / 2.0
    freqs = bin_freqs(n, fs_hz)
    flat = window("flattop", n)
    amp = 2.0 * np.abs(np.fft.rfft(d * flat, axis=-1)) / float(np.sum(flat))
    out: dict[str, NDArray[np.float64]] = {}
    for h in SHAFT_ORDERS:
        f0 = h * shaft_hz
        idx = search_bins(freqs, f0, ORDER_TOL, df) if f0 <= nyq else None
        out[f"order{h}_amp_g"] = max_over(amp, idx)
    return out


def band_energies(d: NDArray[np.float64], n_bands: int) -> NDArray[np.float64]:
    """Power (g²) of mean-removed windows in ``n_bands`` equal-width bands from 0 to Nyquist.

    Parameters
    ----------
    d : ndarray, shape ``[..., n]``
        Mean-removed acceleration windows, g.
    n_bands : int >= 1
        Number of bands ``[i B, (i+1) B)``, ``B = nyq / n_bands`` (the last one includes ``nyq``).

    Returns
    -------
    ndarray, shape ``[..., n_bands]``
        ``E_i = sum_{k in band i} c_k |X_k|² / n²``, ``X = rfft(d)`` (rectangular window, ``c_k`` =
        2 except DC and Nyquist: 1); by Parseval ``sum_i E_i = mean(d**2)`` (to rounding).
    """
    n = d.shape[-1]
    xr = np.fft.rfft(d, axis=-1)
    p_rect = one_sided_weights(n) * (xr.real**2 + xr.imag**2) / float(n * n)
    return p_rect @ _band_matrix(n, n_bands)


@lru_cache(maxsize=64)
def _band_matrix(n: int, n_bands: int) -> NDArray[np.float64]:
    """One-hot ``[n//2+1, n_bands]`` matrix: bin ``k`` -> band ``min(2 k n_bands // n, n_bands - 1)``."""
    bins = n // 2 + 1
    band_of_bin = np.minimum((2 * np.arange(bins) * n_bands) // n, n_bands - 1)
    onehot = np.zeros((bins, n_bands))
    onehot[np.arange(bins), band_of_bin] = 1.0
    onehot.setflags(write=False)
    return onehot


def velocity_rms(xh: NDArray[np.complex128], n: int, fs_hz: float) -> NDArray[np.float64]:
    """RMS velocity (mm/s) in the ISO 20816 band, by frequency-domain integration of acceleration.

    Parameters
    ----------
    xh : ndarray, shape ``[..., n//2+1]``
        ``rfft(w (x - mean x))`` of acceleration windows in g with the periodic Hann window ``w``.
    n : int
        Window length, samples.
    fs_hz : float
        Sample rate, Hz.

    Returns
    -------
    ndarray, shape ``xh.shape[:-1]``
        ``v_rms = sqrt(sum_k P_k (1000 G0 / (2 pi f_k))**2)`` mm/s over ``10 Hz <= f_k <= f_hi``,
        ``f_hi = min(1000 Hz, 0.9 nyq)``, with the power-normalised spectrum
        ``P_k = c_k |xh_k|² / (n sum(w²))`` (g²) and ``G0 = 9.80665`` m/s² per g. 0.0 when the
        band holds no bin.
    """
    f_lo = VELOCITY_BAND_HZ[0]
    f_hi = min(VELOCITY_BAND_HZ[1], VELOCITY_NYQ_FRACTION * (fs_hz / 2.0))
    freqs = bin_freqs(n, fs_hz)
    vmask = (freqs >= f_lo) & (freqs <= f_hi)
    if not (f_hi > f_lo and vmask.any()):
        return np.zeros(xh.shape[:-1])
    hann = window("hann", n)
    p_hann = one_sided_weights(n) * (xh.real**2 + xh.imag**2) / (n * float(np.sum(hann * hann)))
    weight = (G0 * 1000.0 / (2.0 * np.pi * freqs[vmask])) ** 2  # (mm/s per g)² at f
    return np.sqrt(p_hann[..., vmask] @ weight)


def stack_features(features: Mapping[str, Any]) -> tuple[list[str], NDArray[np.float64]]:
    """Turn a ``{name: array[...]}`` dict into ``(names, values[..., k])`` (columns in dict order)."""
    names = list(features)
    if not names:
        raise ValueError("features: empty mapping")
    values = np.stack([np.asarray(features[k], dtype=np.float64) for k in names], axis=-1)
    return names, values
