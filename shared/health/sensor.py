"""Sensor health: is the measurement itself plausible? (pure, numpy, data time in seconds passed in).

A sensor fault (a stuck or clipped accelerometer, a dropped-out stream, a changed sample rate) is not a
machine fault: it is reported as a sensor status and a sensor alarm, and the machine's health is held
while it lasts (services/features runs these detectors, services/health holds). The detectors:

Per vibration window (:func:`window_findings`; ``samples`` in g, one row per axis):

* ``flatline``: an axis whose peak-to-peak ``max(x) - min(x)`` (g) is below
  :attr:`SensorParams.resolution_floor_g`, or whose longest run of identical consecutive samples covers
  at least :attr:`SensorParams.flat_run_fraction` of the window. Healthy real data: the longest run in
  any FEMTO first-half snapshot (4,896 channel-snapshots, 0.001-0.002 g steps) or CWRU normal 2,048-sample
  window (238) is 3 samples; the smallest peak-to-peak is 0.258 g (FEMTO Bearing2_1).
* ``clipping``: at least :attr:`SensorParams.clip_min_samples` samples at the window's extreme
  ``|x| >= max|x| * (1 - clip_tolerance)``, :attr:`SensorParams.clip_run` of them adjacent (a flat top:
  a rail repeats one value exactly; ``clip_tolerance`` 1e-6 only absorbs float rounding), or 3 samples
  at or beyond ``full_scale_g * (1 - clip_tolerance)`` when the full scale is configured. Healthy real
  data: at most 3 samples share the extreme value (FEMTO: 2 of 4,896 channel-snapshots; CWRU normal: at
  most 2), hence 5. Why the run: a clean sine sampled with a whole number of samples per period repeats
  its peak value exactly every period (10 Hz at 500 Hz: 10 to 20 of 256 samples), but never in 3
  adjacent samples (it is strictly concave at its peak). Why not "within 0.1 % of max|x|" (the issue's
  example): 70 of 2,560 samples of a clean 50 Hz sine at 25.6 kHz are.
* ``rate_mismatch`` / ``length_change``: ``fs_hz`` or the sample count differs from the stream's
  reference (the first window seen: :class:`WindowStream`).

Per stream of readings or windows, in data time (:class:`StreamMonitor`):

* ``stuck``: the same value for at least :attr:`SensorParams.stuck_readings` consecutive readings (per
  signal; a real sensor's noise never repeats exactly), or the same window (every sample equal) for at
  least :attr:`SensorParams.stuck_windows` consecutive windows;
* ``dropout``: an interval ``ts[i] - ts[i-1] > dropout_factor * median(recent intervals)`` and longer
  than :attr:`SensorParams.dropout_min_gap_s` (s), once :attr:`SensorParams.dropout_min_intervals`
  intervals are known (the floor in seconds: readings stamped on arrival come in bursts, a 9 ms median
  interval, and a 1 s pause between bursts is not a lost sensor);
* ``jump``: a single-sample spike: reading ``i`` differs from both neighbours by more than
  ``jump_factor * s`` while the neighbours agree within ``jump_return_factor * s``, where
  ``s = 1.4826 * median(|d - median(d)|)`` is the robust spread (MAD) of the recent steps ``d`` (at least
  :attr:`SensorParams.jump_min_steps` of them, none above ``jump_factor * s``: a step that persists, or
  one in a restless stretch, is the machine's, not the sensor's).

Reference: MAD as a robust spread, Rousseeuw & Croux, JASA 88(424):1273-1283, 1993 (1.4826 makes it
the standard deviation of Gaussian data).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

FindingKind = Literal["flatline", "clipping", "rate_mismatch", "length_change", "stuck", "dropout", "jump"]
#: MAD → standard deviation of Gaussian data.
MAD_TO_SIGMA = 1.4826
#: Samples at or beyond a configured full scale that make clipping.
FULL_SCALE_MIN_SAMPLES = 3


@dataclass(frozen=True)
class SensorParams:
    """Thresholds of the sensor detectors (module doc: what each rests on)."""

    resolution_floor_g: float = 1e-4
    flat_run_fraction: float = 0.5
    clip_min_samples: int = 5
    clip_run: int = 3
    clip_tolerance: float = 1e-6
    full_scale_g: float | None = None
    rate_tolerance: float = 1e-6
    stuck_readings: int = 30
    stuck_windows: int = 3
    dropout_factor: float = 10.0
    dropout_min_intervals: int = 10
    #: A gap shorter than this (s) is never a dropout, whatever the median interval.
    dropout_min_gap_s: float = 5.0
    jump_factor: float = 20.0
    jump_return_factor: float = 3.0
    jump_min_steps: int = 30
    #: Recent intervals / steps kept per stream.
    history: int = 60
    #: Consecutive updates of a stream without a finding that clear it (the scorers' rolling mean of
    #: 10 windows and the batch window of 8 readings still hold the faulty data before that).
    clear_after: int = 20

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "full_scale_g" and v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"{f.name} must be a finite number > 0, got {v!r}")
        if self.flat_run_fraction > 1 or self.clip_tolerance >= 1 or self.rate_tolerance >= 1:
            raise ValueError("flat_run_fraction must be <= 1; clip_tolerance and rate_tolerance < 1")
        counts = ("clip_min_samples", "clip_run", "stuck_readings", "stuck_windows", "dropout_min_intervals")
        for name in (*counts, "jump_min_steps", "history", "clear_after"):
            if not isinstance(getattr(self, name), int):
                raise ValueError(f"{name} must be an integer, got {getattr(self, name)!r}")
        if self.history < max(self.dropout_min_intervals, self.jump_min_steps) + 1:
            raise ValueError("history must exceed dropout_min_intervals and jump_min_steps")


@dataclass(frozen=True)
class SensorFinding:
    """One sensor fault: its ``kind``, the ``signal`` (axis, reading signal or ``window``), the data
    time it began (``since``, s), a plain ``reason`` and the numbers it rests on."""

    kind: FindingKind
    signal: str
    since: float
    reason: str
    values: Mapping[str, float] = field(default_factory=dict)


def finite_time(ts: float) -> float:
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
        raise ValueError(f"ts must be a finite number of seconds (data time), got {ts!r}")
    return float(ts)


def longest_runs(x: NDArray[np.generic], of: object = None) -> NDArray[np.int64]:
    """Length of the longest run of identical consecutive samples of each row of ``x`` (a, n); with
    ``of``, of the runs whose value is ``of`` (0 when there is none)."""
    out = np.zeros(x.shape[0], dtype=np.int64)
    for i, row in enumerate(x):
        edges = np.flatnonzero(np.r_[True, row[1:] != row[:-1], True])
        lengths = np.diff(edges)
        if of is not None:
            lengths = lengths[row[edges[:-1]] == of]
        out[i] = int(lengths.max()) if lengths.size else 0
    return out


def check_window(samples: ArrayLike, axes: Sequence[str]) -> NDArray[np.float64]:
    """``samples`` as a finite (a, n) float array, one row per name in ``axes`` (ValueError)."""
    x = np.atleast_2d(np.asarray(samples, dtype=np.float64))
    if x.ndim != 2 or x.shape[0] != len(axes) or x.shape[1] < 2:
        raise ValueError(f"samples must be (axes, n >= 2) with one row per axis {list(axes)}, got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("samples must be finite")
    return x


def window_findings(
    samples: ArrayLike, axes: Sequence[str], ts: float, params: SensorParams | None = None
) -> list[SensorFinding]:
    """``flatline`` and ``clipping`` findings of one window (module doc) at data time ``ts``."""
    p = params or SensorParams()
    ts = finite_time(ts)
    x = check_window(samples, axes)
    n = x.shape[1]
    ptp = np.ptp(x, axis=1)
    runs = longest_runs(x)
    flat = (ptp < p.resolution_floor_g) | (runs >= p.flat_run_fraction * n)
    mag = np.abs(x)
    peak = mag.max(axis=1)
    top = mag >= (peak * (1.0 - p.clip_tolerance))[:, None]
    at_peak = top.sum(axis=1)
    clipped = (at_peak >= p.clip_min_samples) & (longest_runs(top, of=True) >= p.clip_run) & ~flat
    rail = np.zeros(len(axes), dtype=np.int64)
    if p.full_scale_g is not None:
        rail = (mag >= p.full_scale_g * (1.0 - p.clip_tolerance)).sum(axis=1)
        clipped |= (rail >= FULL_SCALE_MIN_SAMPLES) & ~flat
    out: list[SensorFinding] = []
    for i, a in enumerate(axes):
        if flat[i]:
            reason = (
                f"Axis {a} is flat: peak-to-peak {ptp[i]:.3g} g, longest run of identical samples "
                f"{runs[i]} of {n}: the sensor or its cable is stuck, not the machine"
            )
            values = {"ptp_g": float(ptp[i]), "longest_run": float(runs[i]), "n": float(n)}
            out.append(SensorFinding("flatline", a, ts, reason, values))
        elif clipped[i]:
            reason = (
                f"Axis {a} is clipped: {at_peak[i]} samples at its extreme {peak[i]:.4g} g"
                f"{f', {rail[i]} at the full scale' if p.full_scale_g else ''}: the sensor is saturated"
            )
            values = {"samples_at_extreme": float(at_peak[i]), "extreme_g": float(peak[i])}
            out.append(SensorFinding("clipping", a, ts, reason, values))
    return out


def rate_findings(
    fs_hz: float,
    n: int,
    ref_fs_hz: float,
    ref_n: int,
    ts: float,
    params: SensorParams | None = None,
    basis: str = "stream's",
) -> list[SensorFinding]:
    """``rate_mismatch`` when ``fs_hz`` differs from ``ref_fs_hz`` by more than the relative
    tolerance, ``length_change`` when ``n`` differs from ``ref_n`` (samples). ``basis`` names where
    the reference rate comes from in the reason (``stream's`` first window, or ``configured``)."""
    p = params or SensorParams()
    out: list[SensorFinding] = []
    if abs(fs_hz - ref_fs_hz) > p.rate_tolerance * ref_fs_hz:
        reason = f"Sample rate {fs_hz:g} Hz differs from the {basis} {ref_fs_hz:g} Hz"
        out.append(
            SensorFinding("rate_mismatch", "window", ts, reason, {"fs_hz": fs_hz, "ref_fs_hz": ref_fs_hz})
        )
    if n != ref_n:
        reason = f"Window length {n} samples differs from the stream's {ref_n}"
        out.append(
            SensorFinding("length_change", "window", ts, reason, {"n": float(n), "ref_n": float(ref_n)})
        )
    return out


def robust_spread(steps: NDArray[np.float64]) -> float:
    """``1.4826 * median(|d - median(d)|)`` of ``steps`` (the signal's unit)."""
    return float(MAD_TO_SIGMA * np.median(np.abs(steps - np.median(steps))))
