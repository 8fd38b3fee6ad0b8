"""Bearing defect frequencies and envelope-spectrum features (pure numpy, no I/O).

Used by :func:`shared.features.spectral.spectral_features` for the ``env_{d}_amp`` (g) and
``env_{d}_snr`` (1) features of each defect ``d`` in ``bearing_orders`` (``bpfo``, ``bpfi``,
``bsf``, ``ftf``; needs ``rpm``). Arrays are ``[..., n]`` windows in g sampled at ``fs`` Hz,
``df = fs / n``, ``nyq = fs / 2``.

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

These use the fundamental only. Both are 0.0 when the band
cannot carry the defect frequency: ``f_d >= lo`` or ``f_d * 1.02 >= hi - lo`` (the envelope of a
band-limited signal has no content above the bandwidth) — e.g. at ``fs_hz = 500``.

Harmonic evidence (a defect's impacts are short, so its envelope has harmonics of ``f_d``; a
single bin at the fundamental is noisy on a short window). With ``H_d`` the harmonics
``h in {1, 2, 3}`` of ``f_d`` (:func:`distinct_harmonics`) that the band carries and whose search
window does not overlap the search window of a harmonic 1–3 of another configured defect (on an
SKF 6205, 2 x BPFI = 324.4 Hz and 3 x BPFO = 322.1 Hz share bins, so neither counts)::

    env_{d}_harm_amp = sum_{h in H_d} amp(h f_d)                        (g)
    env_{d}_harm_snr = env_{d}_harm_amp / sum_{h in H_d} floor(h f_d)   (1)

with ``amp`` and ``floor`` (the nearby median, floored as above) as for ``env_{d}_amp`` and
``env_{d}_snr``; both 0.0 when ``H_d`` is empty or ``E`` is all zero. Reference: Randall & Antoni,
"Rolling element bearing diagnostics — a tutorial", MSSP 25 (2011), sections 3–4 (harmonics of
the defect frequency in the envelope spectrum).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shared.features._checks import as_count, as_positive_float
from shared.features._spectrum import bin_freqs, max_over, search_bins, window

#: Canonical order of bearing defect keys.
BEARING_KEYS: tuple[str, ...] = ("bpfo", "bpfi", "bsf", "ftf")
#: Relative half-width of the search around a defect frequency.
ENV_TOL = 0.02
#: Upper bound of the envelope SNR (median floor = max(E) / SNR_MAX).
SNR_MAX = 1e6
#: Neighbourhood of the SNR's median: ``|f - f_d| <= max(NEAR_REL * f_d, NEAR_MIN_BINS * df)``.
NEAR_REL = 0.5
NEAR_MIN_BINS = 16.0
#: Harmonics of a defect frequency summed by ``env_{d}_harm_amp`` / ``env_{d}_harm_snr``.
HARMONICS: tuple[int, ...] = (1, 2, 3)


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


def defect_orders(
    n_balls: int, ball_d: float, pitch_d: float, contact_angle_deg: float = 0.0
) -> dict[str, float]:
    """The defect frequencies the envelope analysis looks for, in orders of shaft speed.

    :func:`bearing_orders` except ``bsf``, which here is the ball *defect* frequency
    ``2 * pitch_d / (2 ball_d) * (1 - r²)``: a spalled ball strikes the inner and the outer race once
    per spin revolution, so its envelope line lies at twice the spin frequency (the convention of the
    CWRU data centre's table: 4.7135 for the SKF 6205). At the spin frequency itself a ball defect
    shows little, and its third harmonic can fall on the outer race's second (SKF 6205: 7.07 vs 7.17,
    within one bin of a 2,048-sample window at 12 kHz), which cost the outer race its harmonic
    evidence. Give ``bsf_order`` explicitly to use another line.
    """
    orders = bearing_orders(n_balls, ball_d, pitch_d, contact_angle_deg)
    orders["bsf"] = 2.0 * orders["bsf"]
    return orders


def default_env_band(fs_hz: float) -> tuple[float, float]:
    """Default envelope demodulation band ``(min(0.1 fs, 5 kHz), min(0.4 fs, 20 kHz))`` in Hz."""
    fs = as_positive_float(fs_hz, "fs_hz")
    return min(0.1 * fs, 5000.0), min(0.4 * fs, 20000.0)


def check_defect_orders(bearing_orders: Any, shaft_hz: float | None) -> dict[str, float]:
    """Validated defect orders ``{key: order > 0}`` in :data:`BEARING_KEYS` order; ``{}`` for None.

    Raises ``ValueError`` naming ``bearing_orders`` when given without a shaft speed, when empty or
    not a mapping, with unknown keys, or with a value that is not a finite number > 0.
    """
    if bearing_orders is None:
        return {}
    if shaft_hz is None:
        raise ValueError("bearing_orders: needs rpm (defect orders are multiples of shaft speed)")
    if not isinstance(bearing_orders, Mapping) or not bearing_orders:
        raise ValueError("bearing_orders: expected a non-empty mapping like {'bpfo': 3.58, ...}")
    unknown = set(bearing_orders) - set(BEARING_KEYS)
    if unknown:
        raise ValueError(
            f"bearing_orders: unknown key(s) {sorted(map(str, unknown))}; allowed {list(BEARING_KEYS)}"
        )
    return {
        k: as_positive_float(bearing_orders[k], f"bearing_orders[{k!r}]")
        for k in BEARING_KEYS
        if k in bearing_orders
    }


def check_env_band(env_band_hz: Any, fs_hz: float) -> tuple[float, float]:
    """Demodulation band ``(lo, hi)`` in Hz: ``env_band_hz`` checked, or :func:`default_env_band`.

    Raises ``ValueError`` naming ``env_band_hz`` unless it is a pair with ``0 < lo < hi <= fs/2``.
    """
    if env_band_hz is None:
        return default_env_band(fs_hz)
    nyq = fs_hz / 2.0
    try:
        lo, hi = (float(v) for v in env_band_hz)
    except (TypeError, ValueError):
        raise ValueError(f"env_band_hz: expected (lo, hi) in Hz, got {env_band_hz!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 < lo < hi <= nyq):
        raise ValueError(f"env_band_hz: need 0 < lo < hi <= fs/2 = {nyq} Hz, got ({lo}, {hi})")
    return lo, hi


def band_carries(fd_hz: float, lo: float, hi: float) -> bool:
    """Whether the demodulation band ``[lo, hi]`` (Hz) can show a defect at ``fd_hz`` (Hz).

    It can when ``fd < lo`` (the carrier lies above the defect frequency) and
    ``fd * (1 + ENV_TOL) < hi - lo`` (the envelope of a band-limited signal has no content above
    the bandwidth).
    """
    return not (fd_hz >= lo or fd_hz * (1.0 + ENV_TOL) >= hi - lo)


def envelope_spectrum(
    xh: NDArray[np.complex128], n: int, freqs: NDArray[np.float64], lo: float, hi: float
) -> NDArray[np.float64]:
    """Amplitude spectrum (g) of the Hilbert envelope of the ``[lo, hi]`` band-passed signal.

    ``xh = rfft(w * (x - mean x))`` with the periodic Hann window ``w`` (shape ``[..., n//2+1]``),
    ``freqs`` its bin frequencies (Hz). The analytic band-limited signal has spectrum ``2 xh_k`` on
    the band's positive-frequency bins and 0 elsewhere; the modulus of its inverse FFT is the
    windowed envelope ``e_w ~= w * e`` (windowing *before* filtering keeps spectral leakage of
    strong low-frequency tones out of the band). The envelope's mean is removed as the component
    along the window, ``e_w - c w`` with ``c = sum(e_w) / sum(w)`` (the Hann spectrum occupies
    only bins 0 and 1), and ``E = 2 |rfft(e_w - c w)| / sum(w)``, shape ``[..., n//2+1]``.
    All zero when no bin lies strictly inside ``(0, nyq)`` within the band.
    """
    band = np.nonzero((freqs >= lo) & (freqs <= hi))[0]
    band = band[(band > 0) & (band < (n + 1) // 2)]  # strictly positive, non-Nyquist bins
    if band.size == 0:
        return np.zeros(xh.shape[:-1] + (n // 2 + 1,))
    hann = window("hann", n)
    wsum = float(np.sum(hann))
    z = np.zeros(xh.shape[:-1] + (n,), dtype=np.complex128)
    z[..., band] = 2.0 * xh[..., band]
    env = np.abs(np.fft.ifft(z, axis=-1))
    env -= (np.sum(env, axis=-1, keepdims=True) / wsum) * hann
    return 2.0 * np.abs(np.fft.rfft(env, axis=-1)) / wsum


def peak_and_floor(
    env_spec: NDArray[np.float64],
    env_max: NDArray[np.float64],
    freqs: NDArray[np.float64],
    fd_hz: float,
    df: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
    """Envelope peak (g) at ``fd_hz`` and the nearby floor (g) it is compared with.

    ``peak = max E_k`` over ``|f_k - fd| <= max(ENV_TOL fd, df)`` (``k >= 1``);
    ``floor = max(median(E_near), max(E) / SNR_MAX, tiny)`` with the nearby bins
    ``|f_k - fd| <= max(NEAR_REL fd, NEAR_MIN_BINS df)`` minus the search bins and bins 0–1; None
    when no nearby bin is left. Shapes ``env_spec.shape[:-1]``.
    """
    idx = search_bins(freqs, fd_hz, ENV_TOL, df)
    peak = max_over(env_spec, idx)
    near = np.abs(freqs - fd_hz) <= max(NEAR_REL * fd_hz, NEAR_MIN_BINS * df)
    near[:2] = False
    near[idx] = False
    if not near.any():
        return peak, None
    floor = np.maximum(env_max / SNR_MAX, np.finfo(np.float64).tiny)
    return peak, np.maximum(np.median(env_spec[..., near], axis=-1), floor)


def defect_amp_snr(
    env_spec: NDArray[np.float64],
    env_max: NDArray[np.float64],
    freqs: NDArray[np.float64],
    fd_hz: float,
    df: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Envelope amplitude (g) at a defect frequency and its SNR (1) against the nearby median.

    ``amp = max E_k`` over ``|f_k - fd| <= max(ENV_TOL fd, df)`` (``k >= 1``);
    ``snr = amp / max(median(E_near), max(E) / SNR_MAX)`` with the nearby bins
    ``|f_k - fd| <= max(NEAR_REL fd, NEAR_MIN_BINS df)`` minus the search bins and bins 0–1;
    0 when ``E`` is all zero or no nearby bin is left (:func:`peak_and_floor`). ``env_max = max(E)``
    over the last axis (passed in: shared by every defect). Both of shape ``env_spec.shape[:-1]``.
    """
    amp, floor = peak_and_floor(env_spec, env_max, freqs, fd_hz, df)
    if floor is None:
        return amp, np.zeros(env_spec.shape[:-1])
    return amp, np.where(env_max > 0.0, amp / floor, 0.0)


def distinct_harmonics(
    fd_hz: Mapping[str, float], df: float, band: tuple[float, float]
) -> dict[str, tuple[int, ...]]:
    """Per defect, the harmonics ``h`` in :data:`HARMONICS` of ``fd_hz[d]`` (Hz) that count.

    ``h`` counts when the band ``(lo, hi)`` carries ``h f_d`` (:func:`band_carries`) and, for every
    other defect ``e`` and ``g`` in :data:`HARMONICS`, the two search windows do not overlap::

        |h f_d - g f_e| > max(ENV_TOL h f_d, df) + max(ENV_TOL g f_e, df)

    (a shared bin cannot tell the two defects apart). ``df``: bin spacing (Hz).
    """
    out: dict[str, tuple[int, ...]] = {}
    for d, f in fd_hz.items():
        others = [g * fe for e, fe in fd_hz.items() if e != d for g in HARMONICS]
        out[d] = tuple(
            h
            for h in HARMONICS
            if band_carries(h * f, *band)
            and all(abs(h * f - o) > _half(h * f, df) + _half(o, df) for o in others)
        )
    return out


def _half(f: float, df: float) -> float:
    """Half-width (Hz) of the search window around ``f`` (Hz): ``max(ENV_TOL f, df)``."""
    return max(ENV_TOL * f, df)


def harmonic_amp_snr(
    env_spec: NDArray[np.float64],
    env_max: NDArray[np.float64],
    freqs: NDArray[np.float64],
    fd_hz: float,
    harmonics: tuple[int, ...],
    df: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(sum_h peak(h fd), sum_h peak / sum_h floor)`` over ``harmonics`` (g, 1; module doc);
    zeros when ``harmonics`` is empty, ``E`` is all zero or a harmonic has no nearby bins."""
    zeros = np.zeros(env_spec.shape[:-1])
    peaks, floors = zeros.copy(), zeros.copy()
    for h in harmonics:
        peak, floor = peak_and_floor(env_spec, env_max, freqs, h * fd_hz, df)
        if floor is None:
            return zeros, zeros
        peaks, floors = peaks + peak, floors + floor
    if not harmonics:
        return zeros, zeros
    return peaks, np.where(env_max > 0.0, peaks / floors, 0.0)


def envelope_features(
    xh: NDArray[np.complex128],
    n: int,
    fs_hz: float,
    shaft_hz: float,
    defects: Mapping[str, float],
    band: tuple[float, float],
) -> dict[str, NDArray[np.float64]]:
    """``env_{d}_amp`` (g), ``env_{d}_snr`` (1), ``env_{d}_harm_amp`` (g) and ``env_{d}_harm_snr`` (1)
    for each defect ``d`` (module docstring).

    ``xh``: ``rfft`` of the Hann-windowed, mean-removed ``[..., n]`` windows sampled at
    ``fs_hz``; ``shaft_hz = rpm / 60``; ``defects``: validated orders (:func:`check_defect_orders`);
    ``band``: the demodulation band ``(lo, hi)`` in Hz. Arrays of shape ``xh.shape[:-1]``; 0.0 for a
    frequency the band cannot carry (:func:`band_carries`).
    """
    lo, hi = band
    freqs = bin_freqs(n, fs_hz)
    env_spec = envelope_spectrum(xh, n, freqs, lo, hi)
    env_max = np.max(env_spec, axis=-1)
    df = fs_hz / n
    fds = {k: order * shaft_hz for k, order in defects.items()}
    harmonics = distinct_harmonics(fds, df, band)
    out: dict[str, NDArray[np.float64]] = {}
    for k, fd in fds.items():
        if band_carries(fd, lo, hi):
            amp, snr = defect_amp_snr(env_spec, env_max, freqs, fd, df)
        else:
            amp, snr = np.zeros(xh.shape[:-1]), np.zeros(xh.shape[:-1])
        out[f"env_{k}_amp"] = amp
        out[f"env_{k}_snr"] = snr
        out[f"env_{k}_harm_amp"], out[f"env_{k}_harm_snr"] = harmonic_amp_snr(
            env_spec, env_max, freqs, fd, harmonics[k], df
        )
    return out
