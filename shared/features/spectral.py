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
``env_{d}_amp`` (g) and ``env_{d}_snr`` (1) for each defect ``d`` in ``bearing_orders``
(``bpfo``, ``bpfi``, ``bsf``, ``ftf``; needs ``rpm``)
    Envelope analysis: the Hann-windowed signal is band-pass filtered to the demodulation band
    ``[lo, hi]`` (ideal FFT-domain filter; default ``lo = min(0.1 fs, 5 kHz)``,
    ``hi = min(0.4 fs, 20 kHz)``, e.g. 1.2–4.8 kHz at 12 kHz, where bearing-impact resonances of
    small machines lie; override with ``env_band_hz``). Its Hilbert envelope
    ``e = |analytic signal|`` is formed in the FFT domain, and the envelope spectrum is
    ``E ~= 2 |rfft(w (e - mean e))| / sum(w)`` (g). Windowing before the filter keeps leakage of
    strong low-frequency tones out of the band.
    (A strong pure tone sitting exactly on a band edge is partly cut and can appear as envelope
    modulation; pick ``env_band_hz`` away from known tones.)
    With ``f_d = order_d * rpm / 60``:

    * ``env_{d}_amp`` = max of ``E`` over bins with ``|f - f_d| <= max(0.02 f_d, df)`` (g; ±2 %
      covers rolling-element slip and speed error);
    * ``env_{d}_snr`` = ``env_{d}_amp / median(E)`` over the nearby bins
      ``|f - f_d| <= max(0.5 f_d, 16 df)``, excluding the search bins and bins 0–1 (dimensionless,
      independent of sensor gain; about 1–2 for noise, >> 1 with a defect). The median is floored at
      ``1e-6 * max(E)``, so the SNR never exceeds 1e6; 0.0 when ``E`` is all zero.

    Only the fundamental is used: on CWRU data adding the 2nd harmonic made the features less
    specific (2 x BPFI of a 6205 nearly coincides with 3 x BPFO). Both are 0.0 when the band
    cannot carry the defect frequency: ``f_d >= lo`` or ``f_d * 1.02 >= hi - lo`` (the envelope of a
    band-limited signal has no content above the bandwidth) — e.g. at ``fs_hz = 500``.

Features whose frequency lies above Nyquist are returned as 0.0 (never omitted), so a given call
signature always yields the same names (:func:`spectral_feature_names`); features needing ``rpm``
or ``bearing_orders`` are omitted when those are not given.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.signal import windows as sig_windows

from shared.features._checks import as_count, as_positive_float, as_signal

#: Standard gravity, m/s² per g.
G0 = 9.80665
#: Minimum window length for spectral features.
MIN_SPECTRAL_SAMPLES = 16
#: Default number of equal-width energy bands from 0 to Nyquist.
DEFAULT_N_BANDS = 8
#: Relative half-width of the search around a shaft order or defect frequency.
ORDER_TOL = 0.03
ENV_TOL = 0.02
#: Velocity band (ISO 20816), Hz; the upper edge is further limited to ``VELOCITY_NYQ_FRACTION * nyq``.
VELOCITY_BAND_HZ = (10.0, 1000.0)
VELOCITY_NYQ_FRACTION = 0.9
#: Canonical order of bearing defect keys.
BEARING_KEYS: tuple[str, ...] = ("bpfo", "bpfi", "bsf", "ftf")
#: Upper bound of the envelope SNR (median floor = max(E) / SNR_MAX).
SNR_MAX = 1e6


def bearing_orders(
    n_balls: int, ball_d: float, pitch_d: float, contact_angle_deg: float = 0.0
) -> dict[str, float]:
    """Bearing defect frequencies in orders of shaft speed (multiply by ``rpm / 60`` for Hz).

    Standard kinematics for a rotating inner ring and stationary outer ring, with
    ``r = (ball_d / pitch_d) * cos(contact_angle)``::

        bpfo = n_balls / 2 * (1 - r)             ball pass, outer race
        bpfi = n_balls / 2 * (1 + r)             ball pass, inner race
        bsf  = pitch_d / (2 ball_d) * (1 - r²)   ball spin
        ftf  = (1 - r) / 2                       cage (fundamental train)

    ``ball_d`` and ``pitch_d`` in the same unit. Note: some tables (e.g. the CWRU data centre's)
    list ``2 * bsf`` as "BSF" (a ball defect strikes both races once per spin); pass whichever your
    analysis wants to :func:`spectral_features`. SKF 6205 (9 balls, 0.3126 in, 1.537 in, 0°) gives
    bpfo 3.5848, bpfi 5.4152, bsf 2.3567, ftf 0.3983.
    """
    n = as_count(n_balls, "n_balls", minimum=1)
    d = as_positive_float(ball_d, "ball_d")
    pd = as_positive_float(pitch_d, "pitch_d")
    if d >= pd:
        raise ValueError(f"ball_d: must be smaller than pitch_d ({d} >= {pd})")
    if isinstance(contact_angle_deg, bool) or not isinstance(
        contact_angle_deg, int | float | np.integer | np.floating
    ):
        raise ValueError(f"contact_angle_deg: expected a number, got {type(contact_angle_deg).__name__}")
    angle = float(contact_angle_deg)
    if not (0.0 <= angle < 90.0):
        raise ValueError(f"contact_angle_deg: must be in [0, 90), got {angle}")
    r = d / pd * math.cos(math.radians(angle))
    return {
        "bpfo": n / 2.0 * (1.0 - r),
        "bpfi": n / 2.0 * (1.0 + r),
        "bsf": pd / (2.0 * d) * (1.0 - r * r),
        "ftf": (1.0 - r) / 2.0,
    }


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
        names += [f"order{h}_amp_g" for h in (1, 2, 3)]
    names += [f"band_{i}_energy" for i in range(n_bands)]
    names.append("velocity_rms_mm_s")
    for k in BEARING_KEYS:
        if k in keys:
            names += [f"env_{k}_amp", f"env_{k}_snr"]
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


def default_env_band(fs_hz: float) -> tuple[float, float]:
    """Default envelope demodulation band ``(min(0.1 fs, 5 kHz), min(0.4 fs, 20 kHz))`` in Hz."""
    fs = as_positive_float(fs_hz, "fs_hz")
    return min(0.1 * fs, 5000.0), min(0.4 * fs, 20000.0)


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
        :func:`bearing_orders`). Enables ``env_{key}_amp`` and ``env_{key}_snr``.
    n_bands : int >= 1
        Number of equal-width energy bands from 0 to Nyquist.
    env_band_hz : (lo, hi), optional
        Envelope demodulation band in Hz, ``0 < lo < hi <= fs/2``; default :func:`default_env_band`.

    Returns
    -------
    dict[str, ndarray]
        Name -> array of shape ``x.shape[:-1]`` (0-d for a single window), float64, in the order
        of :func:`spectral_feature_names`. Definitions and units in the module docstring. Never
        NaN/inf; features whose frequency is above Nyquist (or outside the envelope band's reach)
        are 0.0.

    Raises
    ------
    ValueError
        Naming the argument: non-numeric/non-finite/too-short ``x``, ``fs_hz`` or ``rpm`` not
        finite and > 0, ``bearing_orders`` without ``rpm`` or with unknown keys or non-positive
        values, bad ``n_bands`` or ``env_band_hz``.
    """
    a = as_signal(x, "x", min_samples=MIN_SPECTRAL_SAMPLES)
    fs = as_positive_float(fs_hz, "fs_hz")
    n_bands = as_count(n_bands, "n_bands", minimum=1)
    shaft_hz: float | None = None
    if rpm is not None:
        shaft_hz = as_positive_float(rpm, "rpm") / 60.0
    defects: dict[str, float] = {}
    if bearing_orders is not None:
        if shaft_hz is None:
            raise ValueError("bearing_orders: needs rpm (defect orders are multiples of shaft speed)")
        if not isinstance(bearing_orders, Mapping) or not bearing_orders:
            raise ValueError("bearing_orders: expected a non-empty mapping like {'bpfo': 3.58, ...}")
        unknown = set(bearing_orders) - set(BEARING_KEYS)
        if unknown:
            raise ValueError(
                f"bearing_orders: unknown key(s) {sorted(map(str, unknown))}; allowed {list(BEARING_KEYS)}"
            )
        for k in BEARING_KEYS:
            if k in bearing_orders:
                defects[k] = as_positive_float(bearing_orders[k], f"bearing_orders[{k!r}]")
    nyq = fs / 2.0
    if env_band_hz is None:
        lo, hi = default_env_band(fs)
    else:
        try:
            lo, hi = (float(v) for v in env_band_hz)
        except (TypeError, ValueError):
            raise ValueError(f"env_band_hz: expected (lo, hi) in Hz, got {env_band_hz!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 < lo < hi <= nyq):
            raise ValueError(f"env_band_hz: need 0 < lo < hi <= fs/2 = {nyq} Hz, got ({lo}, {hi})")

    n = a.shape[-1]
    df = fs / n
    freqs = np.arange(n // 2 + 1) * df
    ck = _one_sided_weights(n)
    d = a - np.mean(a, axis=-1, keepdims=True)
    out: dict[str, NDArray[np.float64]] = {}

    # --- Hann spectrum: dominant frequency and velocity -------------------------------------
    hann = _window("hann", n)
    xh = np.fft.rfft(d * hann, axis=-1)
    mag_h = np.abs(xh)
    out["dominant_freq_hz"] = _dominant_freq(mag_h, df)

    # --- flat-top spectrum: shaft orders ----------------------------------------------------
    if shaft_hz is not None:
        flat = _window("flattop", n)
        amp_f = 2.0 * np.abs(np.fft.rfft(d * flat, axis=-1)) / float(np.sum(flat))
        for h in (1, 2, 3):
            f0 = h * shaft_hz
            idx = _search_bins(freqs, f0, ORDER_TOL, df) if f0 <= nyq else None
            out[f"order{h}_amp_g"] = _max_over(amp_f, idx)

    # --- rectangular periodogram: band energies -------------------------------------------
    xr = np.fft.rfft(d, axis=-1)
    p_rect = ck * (xr.real**2 + xr.imag**2) / float(n * n)
    band_of_bin = np.minimum((2 * np.arange(n // 2 + 1) * n_bands) // n, n_bands - 1)
    onehot = np.zeros((n // 2 + 1, n_bands))
    onehot[np.arange(n // 2 + 1), band_of_bin] = 1.0
    energies = p_rect @ onehot
    for i in range(n_bands):
        out[f"band_{i}_energy"] = energies[..., i]

    # --- velocity RMS (ISO 20816 band) -------------------------------------------------------
    f_lo, f_hi = VELOCITY_BAND_HZ[0], min(VELOCITY_BAND_HZ[1], VELOCITY_NYQ_FRACTION * nyq)
    vmask = (freqs >= f_lo) & (freqs <= f_hi)
    if f_hi > f_lo and vmask.any():
        p_hann = ck * (xh.real**2 + xh.imag**2) / (n * float(np.sum(hann * hann)))
        fv = freqs[vmask]
        weight = (G0 * 1000.0 / (2.0 * np.pi * fv)) ** 2  # (mm/s per g)² at f
        out["velocity_rms_mm_s"] = np.sqrt(p_hann[..., vmask] @ weight)
    else:
        out["velocity_rms_mm_s"] = np.zeros(a.shape[:-1])

    # --- envelope spectrum: bearing defects ------------------------------------------------
    if defects:
        assert shaft_hz is not None
        env_spec = _envelope_spectrum(xh, n, freqs, lo, hi)
        env_max = np.max(env_spec, axis=-1)
        floor = np.maximum(env_max / SNR_MAX, np.finfo(np.float64).tiny)
        for k, order in defects.items():
            fd = order * shaft_hz
            if fd >= lo or fd * (1.0 + ENV_TOL) >= hi - lo:
                out[f"env_{k}_amp"] = np.zeros(a.shape[:-1])
                out[f"env_{k}_snr"] = np.zeros(a.shape[:-1])
                continue
            idx = _search_bins(freqs, fd, ENV_TOL, df)
            amp = _max_over(env_spec, idx)
            near = np.abs(freqs - fd) <= max(0.5 * fd, 16.0 * df)
            near[:2] = False
            near[idx] = False
            if near.any():
                med = np.median(env_spec[..., near], axis=-1)
                snr = np.where(env_max > 0.0, amp / np.maximum(med, floor), 0.0)
            else:
                snr = np.zeros(a.shape[:-1])
            out[f"env_{k}_amp"] = amp
            out[f"env_{k}_snr"] = snr
    return out


def stack_features(features: Mapping[str, Any]) -> tuple[list[str], NDArray[np.float64]]:
    """Turn a ``{name: array[...]}`` dict into ``(names, values[..., k])`` (columns in dict order)."""
    names = list(features)
    if not names:
        raise ValueError("features: empty mapping")
    values = np.stack([np.asarray(features[k], dtype=np.float64) for k in names], axis=-1)
    return names, values


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=64)
def _window(kind: str, n: int) -> NDArray[np.float64]:
    """Periodic (DFT-even) window of length n, read-only."""
    w = sig_windows.get_window(kind, n, fftbins=True).astype(np.float64)
    w.setflags(write=False)
    return w


@lru_cache(maxsize=64)
def _one_sided_weights(n: int) -> NDArray[np.float64]:
    """c_k for a one-sided spectrum of length n//2+1: 1 at DC (and at Nyquist for even n), else 2."""
    c = np.full(n // 2 + 1, 2.0)
    c[0] = 1.0
    if n % 2 == 0:
        c[-1] = 1.0
    c.setflags(write=False)
    return c


def _search_bins(freqs: NDArray[np.float64], f0: float, tol: float, df: float) -> NDArray[np.intp]:
    """Indices k >= 1 with |f_k - f0| <= max(tol f0, df) (never empty for 0 < f0 <= nyq)."""
    sel = np.abs(freqs - f0) <= max(tol * f0, df)
    sel[0] = False
    idx = np.nonzero(sel)[0]
    if idx.size == 0:  # only possible for f0 within rounding of nyq on tiny windows
        idx = np.array([int(np.argmin(np.abs(freqs[1:] - f0))) + 1], dtype=np.intp)
    return idx


def _max_over(spec: NDArray[np.float64], idx: NDArray[np.intp] | None) -> NDArray[np.float64]:
    if idx is None:
        return np.zeros(spec.shape[:-1])
    return np.max(spec[..., idx], axis=-1)


def _dominant_freq(mag: NDArray[np.float64], df: float) -> NDArray[np.float64]:
    """Peak frequency (Hz) of |Hann spectrum|, DC excluded, Gaussian-interpolated; 0 if all zero."""
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


def _envelope_spectrum(
    xh: NDArray[np.complex128], n: int, freqs: NDArray[np.float64], lo: float, hi: float
) -> NDArray[np.float64]:
    """Amplitude spectrum (g) of the Hilbert envelope of the [lo, hi] band-passed signal.

    ``xh = rfft(w * (x - mean x))`` with the periodic Hann window ``w``. The analytic band-limited
    signal has spectrum ``2 xh_k`` on the band's positive-frequency bins and 0 elsewhere; the
    modulus of its inverse FFT is the windowed envelope ``e_w ~= w * e`` (windowing *before*
    filtering keeps spectral leakage of strong low-frequency tones out of the band). The envelope's
    mean is removed as the component along the window, ``e_w - c w`` with ``c = sum(e_w) / sum(w)``
    (the Hann spectrum occupies only bins 0 and 1), and ``E = 2 |rfft(e_w - c w)| / sum(w)``.
    """
    band = np.nonzero((freqs >= lo) & (freqs <= hi))[0]
    band = band[(band > 0) & (band < (n + 1) // 2)]  # strictly positive, non-Nyquist bins
    if band.size == 0:
        return np.zeros(xh.shape[:-1] + (n // 2 + 1,))
    hann = _window("hann", n)
    wsum = float(np.sum(hann))
    z = np.zeros(xh.shape[:-1] + (n,), dtype=np.complex128)
    z[..., band] = 2.0 * xh[..., band]
    env = np.abs(np.fft.ifft(z, axis=-1))
    env -= (np.sum(env, axis=-1, keepdims=True) / wsum) * hann
    return 2.0 * np.abs(np.fft.rfft(env, axis=-1)) / wsum
