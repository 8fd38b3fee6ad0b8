"""Early warning on health indicators: one-sided CUSUM in data time, k-of-n persistence (pure numpy).

The inputs ``z`` are indicators measured against the asset's own calibration, so a healthy machine
gives ``z ~ 0``: log-ratios in neper (``rms_log``: ``ln(RMS / calibrated RMS)``, the evaluation's
choice, comparable across machines) or robust standard deviations
(:func:`shared.health.indicators.robust_z`). ``k`` is in the indicator's unit and ``h`` in that unit
times seconds (e.g. Np, Np * s).

One-sided CUSUM in data time (Page 1954; Montgomery, *Introduction to Statistical Quality Control*,
ch. 9), per indicator column::

    S_0 = 0
    S_i = max(0, S_{i-1} + (z_i - k) * w_i),   w_i = min(t_i - t_{i-1}, max_gap_s)   [unit * s]
    alarm at t_i when S_i > h; S is then reset to 0 (the next alarm is a new episode)

``k`` is the allowance: a shift smaller than ``k`` never accumulates; ``h`` is the decision
interval: a sustained shift of ``d > k`` alarms after about ``h / (d - k)`` seconds.
Weighting by elapsed data time (not by sample count) makes the alarm delay independent of the
sampling interval; a gap credits at most ``max_gap_s``.

Persistence (``persist_s`` > 0, :func:`persistent_level`): the CUSUM's input is then the *lowest*
value of the indicator over the windows of the last ``persist_s`` seconds of data time
(``t_i - persist_s < t_j <= t_i``), i.e. the level it has exceeded throughout that span. A rise
accumulates only when it lasts, so a spike of one or two windows (a knock, a transient) cannot
alarm, whatever ``h``; a sustained shift is delayed by about ``persist_s``. On FEMTO Bearing1_1 two
single-snapshot spikes (rms_log 1.29 and 1.6 Np between windows at -0.1 Np, at 47 % of life) made a
small ``h`` alarm in the first half (docs/EVALUATION.md, "Run to failure").

:func:`k_of_n_alarms` is the simpler persistent-exceedance rule (``z > level`` in ``k`` of the last
``n`` windows), kept for comparison. :func:`tune_cusum` chooses ``(k, h, columns)`` on training runs
only (leave-one-out in the evaluation): the fewest failed runs -- a run fails when it alarmed in the
first half of its life (a false alarm by the evaluation's definition) or never alarmed in the second
half before its end (a miss); then the longest median lead time as a fraction of life.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: Longest data-time step credited to the CUSUM per window, seconds.
DEFAULT_MAX_GAP_S = 60.0


def _check_tz(t_s: Any, z: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    t = np.asarray(t_s, dtype=np.float64)
    a = np.asarray(z, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if t.ndim != 1 or t.size == 0 or a.ndim != 2 or a.shape[0] != t.size:
        raise ValueError(f"t_s must be 1-d and z [n] or [n, m] with the same n; got {t.shape}, {a.shape}")
    if not (np.isfinite(t).all() and np.isfinite(a).all()):
        raise ValueError("t_s and z must be finite")
    if (np.diff(t) < 0).any():
        raise ValueError("t_s: timestamps must be non-decreasing")
    return t, a


@dataclass(frozen=True)
class CusumParams:
    """CUSUM tuning: allowance ``k`` (indicator unit), decision interval ``h`` (unit * s), columns used."""

    k: float
    h: float
    columns: tuple[int, ...] = (0,)
    max_gap_s: float = DEFAULT_MAX_GAP_S
    persist_s: float = 0.0  # span of :func:`persistent_level` applied first, s (0: the raw indicator)

    def __post_init__(self) -> None:
        if not (self.k >= 0 and self.h > 0 and self.max_gap_s > 0 and self.persist_s >= 0):
            raise ValueError(f"CusumParams: need k >= 0, h > 0, max_gap_s > 0; got {self}")
        if not self.columns or min(self.columns) < 0:
            raise ValueError("CusumParams.columns: at least one non-negative column index")


def cusum(t_s: Any, z: Any, k: float, h: float, max_gap_s: float = DEFAULT_MAX_GAP_S) -> NDArray[np.bool_]:
    """Alarm flags of the data-time one-sided CUSUM (module docstring), per window and column.

    Parameters
    ----------
    t_s : array_like ``[n]``
        Data timestamps, seconds, non-decreasing.
    z : array_like ``[n]`` or ``[n, m]``
        Indicator(s) against the calibration (neper or robust standard deviations).
    k : float >= 0
        Allowance, indicator unit.
    h : float > 0
        Decision interval, indicator unit * s.
    max_gap_s : float > 0
        Longest step credited, s.

    Returns
    -------
    ndarray of bool ``[n, m]``: True where that column's CUSUM crossed ``h`` (then reset).
    """
    t, a = _check_tz(t_s, z)
    CusumParams(k, h, (0,), max_gap_s)  # checks the numbers
    w = np.minimum(np.diff(t, prepend=t[0]), max_gap_s)
    inc = (a - k) * w[:, None]
    s = np.zeros(a.shape[1])
    out = np.zeros(a.shape, dtype=bool)
    for i in range(t.size):
        s = np.maximum(0.0, s + inc[i])
        hit = s > h
        out[i] = hit
        s[hit] = 0.0
    return out


def cusum_step(
    s: float, z: float, dt_s: float, k: float, h: float, max_gap_s: float = DEFAULT_MAX_GAP_S
) -> tuple[float, bool]:
    """One window of :func:`cusum` for a live tracker: ``S' = max(0, S + (z - k) * min(dt_s, max_gap_s))``
    [unit * s]; returns ``(0, True)`` when ``S' > h`` (an alarm, then reset), else ``(S', False)``.
    ``dt_s`` (s, >= 0) is the data time since the previous window (0 for the first)."""
    if not (math.isfinite(s) and s >= 0 and math.isfinite(z) and math.isfinite(dt_s) and dt_s >= 0):
        raise ValueError(f"cusum_step: need finite s >= 0, z and dt_s >= 0; got {s}, {z}, {dt_s}")
    CusumParams(k, h, (0,), max_gap_s)  # checks the numbers
    nxt = max(0.0, s + (z - k) * min(dt_s, max_gap_s))
    return (0.0, True) if nxt > h else (nxt, False)


def persistence_step(
    recent: Sequence[tuple[float, float]], ts: float, z: float, persist_s: float
) -> tuple[list[tuple[float, float]], float]:
    """One window of :func:`persistent_level` for a live tracker.

    ``recent`` holds the previous windows' ``(ts, z)`` (as returned by the previous call; JSON-able);
    returns the pairs with ``ts_j > ts - persist_s`` plus the new one, and their lowest ``z`` (the
    CUSUM's input). ``persist_s = 0`` keeps only the new window (level = ``z``)."""
    if not (math.isfinite(ts) and math.isfinite(z) and math.isfinite(persist_s) and persist_s >= 0):
        raise ValueError(
            f"persistence_step: need finite ts, z and persist_s >= 0; got {ts}, {z}, {persist_s}"
        )
    kept = [(float(a), float(b)) for a, b in recent if a > ts - persist_s] if persist_s > 0 else []
    kept.append((float(ts), float(z)))
    return kept, min(b for _, b in kept)


def persistent_level(t_s: Any, z: Any, persist_s: float) -> NDArray[np.float64]:
    """Lowest value of each column over the last ``persist_s`` seconds of data time, per window.

    ``L_i = min {z_j : t_i - persist_s < t_j <= t_i}`` (the window itself always included; equal stamps
    count as the same time), so ``L_i > k`` means ``z`` stayed above ``k`` throughout the span: the
    persistent exceedance of the module docstring. ``persist_s = 0`` returns ``z`` unchanged.

    Parameters
    ----------
    t_s : array_like ``[n]``
        Data timestamps, seconds, non-decreasing.
    z : array_like ``[n]`` or ``[n, m]``
        Indicator(s), any unit (the output has the same unit).
    persist_s : float >= 0
        Span, seconds.

    Returns
    -------
    ndarray ``[n, m]`` (a 1-d ``z`` gives ``m = 1``).
    """
    t, a = _check_tz(t_s, z)
    if not (np.isfinite(persist_s) and persist_s >= 0):
        raise ValueError(f"persist_s: must be finite and >= 0, got {persist_s}")
    if persist_s == 0 or t.size == 1:
        return a.copy()
    i = np.arange(t.size)
    first = np.searchsorted(t, t - persist_s, side="right")  # first window inside each span
    back = np.arange(int((i - first).max()) + 1)  # offsets 0 .. longest span
    idx = i[:, None] - back[None, :]  # [n, spans]
    inside = idx >= first[:, None]
    vals = np.where(inside[..., None], a[np.maximum(idx, 0)], np.inf)  # [n, spans, m]
    return vals.min(axis=1)


def k_of_n_alarms(z: Any, level: float, k: int, n: int) -> NDArray[np.bool_]:
    """Persistent exceedance: True at window ``i`` when ``z > level`` in at least ``k`` of windows
    ``i-n+1 .. i`` (fewer than ``n`` windows so far: of those seen). ``z`` ``[n_windows]``, ``level``
    in its unit."""
    a = np.asarray(z, dtype=np.float64)
    if a.ndim != 1 or not np.isfinite(a).all():
        raise ValueError("z: expected a finite 1-d array")
    if not (1 <= k <= n):
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    c = np.concatenate([[0], np.cumsum(a > level)])
    idx = np.arange(1, a.size + 1)
    return (c[idx] - c[np.maximum(idx - n, 0)]) >= k


def alarm_times(t_s: Any, z: Any, p: CusumParams) -> NDArray[np.float64]:
    """Sorted data times (s) of every CUSUM alarm over ``p.columns`` (any column crossing)."""
    t, a = _check_tz(t_s, z)
    if max(p.columns) >= a.shape[1]:
        raise ValueError(f"columns {p.columns} out of range for {a.shape[1]} indicator(s)")
    level = persistent_level(t, a[:, list(p.columns)], p.persist_s)
    hits = cusum(t, level, p.k, p.h, p.max_gap_s).any(axis=1)
    return t[hits]


@dataclass(frozen=True)
class RunOutcome:
    """One run scored by :func:`score_run`: alarms before half-life, first alarm after it, lead."""

    early_alarms: int  # alarms at t < life / 2 (false by the evaluation's definition)
    first_any_s: float | None  # the very first alarm (None: none at all)
    first_alarm_s: float | None  # first alarm in the second half of life (None: none before the end)
    lead_s: float | None  # life - first_alarm_s


def score_run(times: Any, life_s: float) -> RunOutcome:
    """Alarm ``times`` (s, from :func:`alarm_times`) of a run that ended at ``life_s`` (s).

    Alarms in the first half of life count as false; the lead time is measured from the first alarm
    at ``t >= life_s / 2`` (an earlier false alarm does not earn lead time)."""
    times = np.asarray(times, dtype=np.float64)
    if not life_s > 0:
        raise ValueError(f"life_s: must be > 0, got {life_s}")
    early = int(np.count_nonzero(times < life_s / 2))
    valid = times[(times >= life_s / 2) & (times <= life_s)]
    first = float(valid[0]) if valid.size else None
    any_s = float(times[0]) if times.size else None
    return RunOutcome(early, any_s, first, None if first is None else life_s - first)


@dataclass(frozen=True)
class TrainingRun:
    """A training run for :func:`tune_cusum`: times (s), z ``[n, m]`` (indicator units), life (s)."""

    t_s: NDArray[np.float64]
    z: NDArray[np.float64]
    life_s: float


def tune_cusum(
    runs: Sequence[TrainingRun],
    ks: Sequence[float],
    hs: Sequence[float],
    column_sets: Sequence[tuple[int, ...]],
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    persist_s: float = 0.0,
) -> tuple[CusumParams, tuple[int, float]]:
    """Grid search of ``(k, h, columns)`` on training runs (module docstring's objective), each with
    the persistence span ``persist_s`` (s, fixed, not searched).

    Returns the best parameters and their objective ``(failed runs, -median lead / life)`` (lower is
    better). Ties (the training runs cannot tell the settings apart): the most conservative, i.e. the
    largest ``k``, then the largest ``h``, then the first column set in grid order.
    """
    if not runs or not ks or not hs or not column_sets:
        raise ValueError("tune_cusum: need runs and non-empty grids")
    scored = [
        (_objective(runs, p), -p.k, -p.h, i, p)
        for i, cols in enumerate(column_sets)
        for p in (CusumParams(float(k), float(h), tuple(cols), max_gap_s, persist_s) for k in ks for h in hs)
    ]
    obj, _, _, _, best = min(scored, key=lambda s: s[:4])
    return best, obj


def _objective(runs: Sequence[TrainingRun], p: CusumParams) -> tuple[int, float]:
    """``(failed runs, -median lead / life)`` of ``p`` on ``runs`` (a failed run's lead counts as 0)."""
    outs = [score_run(alarm_times(r.t_s, r.z, p), r.life_s) for r in runs]
    failed = [o.early_alarms > 0 or o.lead_s is None for o in outs]
    leads = [
        0.0 if f or o.lead_s is None else o.lead_s / r.life_s
        for f, o, r in zip(failed, outs, runs, strict=True)
    ]
    return sum(failed), -float(np.median(leads))
