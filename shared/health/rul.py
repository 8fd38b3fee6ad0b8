"""Remaining useful life from a fitted degradation path, with an 80 % interval (pure numpy, no I/O).

Model (Gebraeel, Lawley, Li, Ryan, "Residual-life distributions from component degradation
signals: a Bayesian approach", IIE Transactions 37(6), 2005: exponential degradation
``S(t) = phi + theta * exp(beta * t + eps(t))``), on an indicator ``y = ln(S / S_cal)`` (e.g.
:data:`rms_log <shared.health.indicators.INDICATOR_NAMES>`, neper). The path ``u`` is linear in
data time over the recent window::

    u(t) = a + b * t + eps,        fitted by ordinary least squares on the windows with
                                   t_now - window_s < t <= t_now

with ``u = y`` for ``model="log_linear"`` (``phi = 0``: ``S / S_cal = exp(a + b t)``) or
``u = ln(max(exp(y) - 1, U_FLOOR))`` for ``model="exp_offset"`` (``phi = S_cal``: the excess over
the calibrated level grows exponentially, so the path of ``y`` itself accelerates). The threshold is
transformed the same way.

and the failure threshold ``D`` (neper) is learned from training runs: their indicator value at end
of life (:func:`threshold_prior`: median ``D_50`` and standard deviation ``s_D``). Then::

    t_fail = (u(D) - a) / b,       RUL = max(0, t_fail - t_now)        [s]

Uncertainty: ``n_boot`` draws, each refitting the line to the fitted values plus residuals resampled
in moving blocks of ``round(n^(1/3))`` consecutive windows (residual moving-block bootstrap: Efron &
Tibshirani 1993, ch. 9; Kuensch 1989, Ann. Statist. 17(3), for correlated residuals) and drawing
``D ~ Normal(D_50, s_D)``; the RUL is the median of the draws and the 80 % interval their 10th and
90th percentiles. A draw with a non-positive slope never reaches ``D`` (RUL = inf). The interval
covers the fit's noise and the threshold's spread across training runs, not a wrong path model (an
accelerating path fitted by a straight line is late by more than its interval).

Model averaging (``model="pooled"``): the draws of every path model (``log_linear``, ``exp_offset``)
fitted over each of the windows ``window_s, window_s / 2, window_s / 4, window_s / 8`` whose trend test
passes are pooled, and the median and 80 % interval taken over the pool (Bayesian model averaging with
equal weights: Hoeting, Madigan, Raftery & Volinsky, Statist. Sci. 14(4), 1999). The interval then also
spans the disagreement between path shapes and spans, which a single fit's bootstrap does not; on the
FEMTO learning set (leave one bearing out, through the health service's tracker) it contained the
actual RUL at 7 of 9 post-alarm points against 0 of 3 for single fits chosen per fold
(docs/EVALUATION.md, "Run to failure").

A degradation trend must exist first (:func:`trend_test`): the Mann-Kendall statistic of the window's
values (Mann 1945; Kendall 1975) is significantly positive at ``alpha`` and the fitted slope
``b > 0``. Otherwise :func:`estimate_rul` returns :class:`NoTrend` with the reason, never a number.

Scoring (IEEE PHM 2012 Prognostic Challenge, Nectoux et al. 2012): ``Er = 100 (actual - estimate) /
actual`` (%), ``A = exp(-ln(0.5) Er / 5)`` if ``Er <= 0`` (late estimates, penalised harder) and
``exp(+ln(0.5) Er / 20)`` if ``Er > 0``; a set is scored by the mean of ``A``
(:func:`challenge_score`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: Default one-sided significance of the trend test.
DEFAULT_ALPHA = 0.01
#: Fewest windows a trend test / fit needs.
MIN_POINTS = 8
#: Default bootstrap draws.
DEFAULT_N_BOOT = 400
#: Smallest excess ratio ``S / S_cal - 1`` the ``exp_offset`` model takes the log of (1 %).
U_FLOOR = 0.01
#: RUL (s) standing for "never reaches the threshold" inside the quantile computation (~3e10 years).
NEVER_S = 1e18
#: Degradation path shapes (:func:`path`).
PATH_MODELS = ("log_linear", "exp_offset")
#: Models of :func:`estimate_rul`: one path shape, or ``pooled`` (every shape over 4 nested windows).
MODELS = (*PATH_MODELS, "pooled")
#: Window fractions of ``window_s`` the ``pooled`` model fits.
POOLED_SPANS = (1.0, 0.5, 0.25, 0.125)


@dataclass(frozen=True)
class Trend:
    """Result of :func:`trend_test`: Mann-Kendall ``z`` (normal score), one-sided ``p``, OLS slope
    ``b`` (indicator unit per second) and whether the trend is significant and rising."""

    z: float
    p: float
    slope: float
    rising: bool


@dataclass(frozen=True)
class NoTrend:
    """No remaining-life estimate: ``reason`` says why (shown to the user instead of a number)."""

    reason: str


@dataclass(frozen=True)
class RulEstimate:
    """Remaining useful life in seconds: median and 80 % interval (``low`` = 10th, ``high`` = 90th
    percentile; ``inf`` when too many draws never reach the threshold), with the fit it rests on."""

    median_s: float
    low_s: float
    high_s: float
    slope_per_s: float  # b, indicator unit per second
    level_now: float  # the latest indicator value in the window, indicator unit
    threshold: float  # D_50, indicator unit
    n_points: int


@dataclass(frozen=True)
class ThresholdPrior:
    """Failure threshold learned from training runs' end-of-life indicator values (indicator unit)."""

    median: float
    spread: float
    n_runs: int


def _series(t_s: Any, y: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    t = np.asarray(t_s, dtype=np.float64)
    v = np.asarray(y, dtype=np.float64)
    if t.ndim != 1 or t.shape != v.shape:
        raise ValueError(f"t_s and y must be 1-d of the same length, got {t.shape} and {v.shape}")
    if not (np.isfinite(t).all() and np.isfinite(v).all()):
        raise ValueError("t_s and y must be finite")
    if (np.diff(t) < 0).any():
        raise ValueError("t_s: timestamps must be non-decreasing")
    return t, v


def threshold_prior(eol_values: Any) -> ThresholdPrior:
    """``D_50 = median`` and ``s_D = std (ddof 1)`` of the training runs' end-of-life indicator values
    (at least 2 runs, indicator unit)."""
    a = np.asarray(eol_values, dtype=np.float64)
    if a.ndim != 1 or a.size < 2 or not np.isfinite(a).all():
        raise ValueError(f"eol_values: need at least 2 finite values, got {a!r}")
    return ThresholdPrior(float(np.median(a)), float(np.std(a, ddof=1)), int(a.size))


def path(y: Any, model: str) -> NDArray[np.float64]:
    """The linear path ``u`` of indicator values ``y`` (neper) under ``model`` (module docstring)."""
    v = np.asarray(y, dtype=np.float64)
    if model == "log_linear":
        return v
    if model == "exp_offset":
        return np.log(np.maximum(np.expm1(np.minimum(v, 700.0)), U_FLOOR))
    raise ValueError(f"model: expected one of {PATH_MODELS}, got {model!r}")


def _ols(t: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Least-squares ``(a, b)`` of ``y = a + b t`` for each row of ``y`` ``[..., n]`` (t centred)."""
    tc = t - t.mean()
    b = (y - y.mean(axis=-1, keepdims=True)) @ tc / float(tc @ tc)
    a = y.mean(axis=-1) - b * t.mean()
    return a, b


def trend_test(t_s: Any, y: Any, alpha: float = DEFAULT_ALPHA) -> Trend:
    """One-sided Mann-Kendall test for an increasing trend, and the OLS slope.

    ``S = sum_{i<j} sign(y_j - y_i)``, ``var(S) = n (n-1) (2n+5) / 18`` (no tie correction),
    ``z = (S - 1) / sqrt(var)`` for ``S > 0`` (0 otherwise), ``p = 1 - Phi(z)``; rising when
    ``p < alpha`` and the OLS slope is > 0. ``t_s`` in s, ``y`` any unit, at least
    :data:`MIN_POINTS` values with distinct times.
    """
    t, v = _series(t_s, y)
    if v.size < MIN_POINTS or np.ptp(t) <= 0:
        raise ValueError(f"trend_test: need at least {MIN_POINTS} values over a positive time span")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: must be in (0, 1), got {alpha}")
    n = v.size
    s = float(np.sum(np.triu(np.sign(v[None, :] - v[:, None]), k=1)))
    z = (s - 1.0) / math.sqrt(n * (n - 1) * (2 * n + 5) / 18.0) if s > 0 else 0.0
    p = 0.5 * math.erfc(z / math.sqrt(2.0))
    _, b = _ols(t, v)
    return Trend(z, p, float(b), bool(p < alpha and b > 0))


def estimate_rul(
    t_s: Any,
    y: Any,
    t_now: float,
    prior: ThresholdPrior,
    window_s: float,
    *,
    alpha: float = DEFAULT_ALPHA,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    model: str = "log_linear",
) -> RulEstimate | NoTrend:
    """Median RUL and 80 % interval at ``t_now`` (module docstring), or :class:`NoTrend`.

    Parameters
    ----------
    t_s, y : array_like ``[n]``
        Data times (s, non-decreasing) and the indicator (e.g. ``rms_log``, neper) of every window.
    t_now : float
        The time of the estimate, s; only windows with ``t_now - window_s < t <= t_now`` are used.
    prior : ThresholdPrior
        Failure threshold learned from training runs (:func:`threshold_prior`), indicator unit.
    window_s : float > 0
        Length of the recent window the path is fitted on, s.
    alpha : float in (0, 1)
        One-sided significance of the trend test.
    n_boot : int >= 10
        Bootstrap draws; ``seed`` makes them reproducible.
    model : ``"log_linear"``, ``"exp_offset"`` or ``"pooled"``
        The degradation path, or the pool of both paths over ``window_s`` and its halves down to
        ``window_s / 8`` (module docstring); the returned slope, level and points are those of the
        longest window with a trend (its ``log_linear`` fit when that one has a trend).

    Returns
    -------
    RulEstimate (seconds; ``level_now`` and ``threshold`` in the indicator's unit) or NoTrend.
    """
    t, v = _series(t_s, y)
    if not (window_s > 0 and math.isfinite(t_now) and n_boot >= 10):
        raise ValueError(f"need window_s > 0, finite t_now, n_boot >= 10; got {window_s}, {t_now}, {n_boot}")
    d_raw = np.random.default_rng(seed + 1).normal(prior.median, prior.spread, size=n_boot)
    pool: list[NDArray[np.float64]] = []
    first: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]] | None = None
    why: NoTrend | None = None
    for w, m in _fits(window_s, model):
        fit = _trending_window(t, v, t_now, w, alpha)
        if isinstance(fit, NoTrend):
            why = why or fit
            continue
        tw, vw = fit
        uw = path(vw, m)
        pool.append(_bootstrap_draws(tw, uw, path(d_raw, m), t_now, np.random.default_rng(seed)))
        first = first or (tw, vw, uw)
    if first is None:
        assert why is not None
        return why
    tw, vw, uw = first
    _, b = _ols(tw, uw)
    q10, q50, q90 = _quantiles(np.concatenate(pool))
    return RulEstimate(q50, q10, q90, float(b), float(vw[-1]), prior.median, int(tw.size))


def _fits(window_s: float, model: str) -> list[tuple[float, str]]:
    """``(window_s, path model)`` pairs of ``model`` (``pooled``: both paths over 4 nested windows)."""
    if model not in MODELS:
        raise ValueError(f"model: expected one of {MODELS}, got {model!r}")
    if model == "pooled":
        return [(window_s * f, m) for f in POOLED_SPANS for m in PATH_MODELS]
    return [(window_s, model)]


def _trending_window(
    t: NDArray[np.float64], v: NDArray[np.float64], t_now: float, window_s: float, alpha: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]] | NoTrend:
    """The windows with ``t_now - window_s < t <= t_now`` when they hold a rising trend
    (:func:`trend_test` at ``alpha``), else :class:`NoTrend` saying why."""
    sel = (t > t_now - window_s) & (t <= t_now)
    tw, vw = t[sel], v[sel]
    if tw.size < MIN_POINTS or np.ptp(tw) <= 0:
        return NoTrend(f"only {tw.size} window(s) in the last {window_s:g} s (need {MIN_POINTS})")
    trend = trend_test(tw, vw, alpha)
    if not trend.rising:
        return NoTrend(
            f"no degradation trend: Mann-Kendall p = {trend.p:.3g} (need < {alpha:g}), "
            f"slope {trend.slope:.3g} per s over the last {window_s:g} s"
        )
    return tw, vw


def _bootstrap_draws(
    t: NDArray[np.float64],
    u: NDArray[np.float64],
    d: NDArray[np.float64],
    t_now: float,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """RUL draws (s) ``(d_i - a_i) / b_i - t_now`` over residual-bootstrap refits ``(a_i, b_i)`` of the
    path ``u`` and threshold draws ``d_i`` (path unit), clipped to ``[0, NEVER_S]`` (NEVER_S = never)."""
    a, b = _ols(t, u)
    resid = u - (a + b * t)
    n = resid.size
    block = max(1, round(n ** (1 / 3)))  # moving blocks keep the residuals' short-range correlation
    starts = rng.integers(0, n - block + 1, size=(d.size, -(-n // block)))
    idx = (starts[..., None] + np.arange(block)).reshape(d.size, -1)[:, :n]
    boot = (a + b * t)[None, :] + resid[idx]
    ab, bb = _ols(t, boot)
    with np.errstate(divide="ignore", invalid="ignore"):
        rul = np.where(bb > 0, (d - ab) / bb - t_now, np.inf)
    return np.minimum(np.maximum(rul, 0.0), NEVER_S)


def _quantiles(rul: NDArray[np.float64]) -> tuple[float, float, float]:
    """10th, 50th, 90th percentiles (s) of RUL draws; NEVER_S -> inf."""
    q10, q50, q90 = (float(q) if q < NEVER_S else math.inf for q in np.quantile(rul, [0.1, 0.5, 0.9]))
    return q10, q50, q90


def challenge_score(actual_s: Any, estimate_s: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """PHM 2012 percent error ``Er`` and accuracy ``A`` of RUL estimates (module docstring).

    ``actual_s`` > 0 and ``estimate_s`` >= 0 (may be ``inf``: ``Er = -inf``, ``A = 0``), same shape,
    seconds. ``Er = 0 -> A = 1``, ``Er = -5 -> A = 0.5``, ``Er = +20 -> A = 0.5``.
    """
    act = np.asarray(actual_s, dtype=np.float64)
    est = np.asarray(estimate_s, dtype=np.float64)
    if act.shape != est.shape:
        raise ValueError(f"actual_s and estimate_s differ in shape: {act.shape} vs {est.shape}")
    if not (np.isfinite(act).all() and (act > 0).all()):
        raise ValueError("actual_s: must be finite and > 0")
    if np.isnan(est).any() or (est < 0).any():
        raise ValueError("estimate_s: must be >= 0 (inf allowed), not NaN")
    er = 100.0 * (act - est) / act
    ln_half = math.log(0.5)
    with np.errstate(over="ignore"):
        score = np.where(er <= 0, np.exp(-ln_half * np.maximum(er, -1e6) / 5.0), np.exp(ln_half * er / 20.0))
    return er, score
