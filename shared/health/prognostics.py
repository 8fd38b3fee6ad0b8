"""Prognostics of one asset in data time: trend indicators, early warning and remaining useful life (pure).

:class:`PrognosticsTracker` is what the health service (and ``scripts/evaluate_rtf.py``) runs per asset.
Usage::

    tracker = PrognosticsTracker(PrognosticsParams())
    tracker.calibrate(calibration_from_baseline(baseline))   # the asset's calibration (None: none)
    view = tracker.update(ts, features)                       # one vibration window at data time ts (s)

``features``: the vibration vector's values by name (``{axis}_rms`` [g], ``{axis}_kurtosis``); ``update``
returns None for an update with no ``{axis}_rms`` (e.g. scores only). Per window it:

1. computes ``rms_log`` [Np] = the mean over axes of ``ln(RMS_a / RMS_cal,a)`` (``indicators.axes_log_ratio``;
   RMS_cal,a the baseline's ``{axis}_rms`` median, mean when none) and ``kurtosis_z = (k - k_cal) /
   s_cal`` [robust σ] when the baseline has ``{axis}_kurtosis``;
2. steps the data-time CUSUM (:func:`shared.health.warning.cusum_step`: ``S <- max(0, S + (L - k) *
   min(dt, max_step_s))``, alarm when ``S > h``, then ``S = 0``) [Np·s] on ``L`` = the lowest ``rms_log``
   over the last ``persist_s`` (:func:`~shared.health.warning.persistence_step`; 0: ``rms_log``). The
   *trend condition* is on from an alarm until ``S`` is back at 0;
3. keeps one mean ``(ts, rms_log)`` per ``bucket_s`` of data time over the last ``buffer_s``;
4. from the first CUSUM alarm on, every ``rul_every_s`` of data time, fits the degradation path and
   extrapolates it to the failure threshold (:func:`shared.health.rul.estimate_rul`): the RUL's median
   and 80 % interval, or :class:`~shared.health.rul.NoTrend` with the reason. Before the first alarm
   the answer is "no degradation trend" with the CUSUM's numbers, never a number of days.

Windows while the sensor reports a fault are skipped (``sensor_fault=True``). Maintenance resets all but
the calibration (:meth:`PrognosticsTracker.reset`). Every default of :class:`PrognosticsParams` says
what it rests on.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from shared.health.indicators import MAD_TO_SIGMA, REL_SCALE_FLOOR, TINY, Baseline, axes_log_ratio, robust_z
from shared.health.rul import (
    DEFAULT_ALPHA,
    DEFAULT_N_BOOT,
    MODELS,
    POOLED_SPANS,
    NoTrend,
    RulEstimate,
    ThresholdPrior,
    estimate_rul,
    threshold_prior,
)
from shared.health.warning import CusumParams, cusum_step, persistence_step

#: End-of-life ``rms_log`` [Np] of the FEMTO learning-set Bearing1_1, 1_2, 2_1, 2_2, 3_1, 3_2: EWMA (60 s)
#: at each run's last snapshot, calibrated on its first 1800 s (scripts/evaluate_rtf.py ``Run.calibrate``,
#: ``Run.eol("rms_log")``; 2026-12-01). Median 1.64 Np, standard deviation 0.37 Np.
FEMTO_EOL_RMS_LOG: tuple[float, ...] = (2.37, 1.63, 1.69, 1.65, 1.23, 1.63)
FEMTO_BASIS = "median end-of-life level of 6 FEMTO/PRONOSTIA run-to-failure bearings (accelerated life)"
#: Axis RMS / kurtosis feature names of a vibration vector (``x_rms``; not the batch ``vibration_g_rms``).
_AXIS_RMS = re.compile(r"^([a-z])_rms$")


@dataclass(frozen=True)
class PrognosticsParams:
    """Tuning of :class:`PrognosticsTracker` (defaults: what the FEMTO leave-one-bearing-out evaluation
    chose, docs/EVALUATION.md "Run to failure"; scripts/evaluate_rtf.py re-measures them)."""

    #: CUSUM allowance k [Np] (1.0 Np = RMS e = 2.7x calibration) and decision interval h [Np·s]: what
    #: all 6 FEMTO leave-one-bearing-out folds chose for the per-axis rms_log (docs/EVALUATION.md).
    cusum_k: float = 1.0
    cusum_h: float = 10.0
    #: Span of the persistent level fed to the CUSUM [s] (0: rms_log itself): for streams with isolated
    #: spikes; on FEMTO no span helped robustly (docs/EVALUATION.md, early-warning sensitivity table).
    persist_s: float = 0.0
    #: Longest data-time step credited to the CUSUM per window [s] (warning.DEFAULT_MAX_GAP_S).
    max_step_s: float = 60.0
    #: Data time between RUL estimates after the first alarm [s] (15-C: "every 60 s of data time").
    rul_every_s: float = 60.0
    #: Degradation path and fit window [s]: ``pooled`` = both path shapes over 9600, 4800, 2400, 1200 s
    #: (rul.py), fixed, not chosen per fold; on FEMTO it beat a per-fold single fit in score and interval
    #: coverage (docs/EVALUATION.md; chosen after comparing both on all six bearings: not itself LOBO).
    rul_model: str = "pooled"
    rul_window_s: float = 9600.0
    #: One buffered mean per bucket_s [s] (FEMTO's snapshot interval) over buffer_s [s] (<= 960 points).
    bucket_s: float = 10.0
    buffer_s: float = 9600.0
    #: Failure threshold of rms_log: end-of-life values of training runs [Np] and their basis (text).
    eol_rms_log: tuple[float, ...] = FEMTO_EOL_RMS_LOG
    threshold_basis: str = FEMTO_BASIS
    #: Trend test significance and bootstrap draws (shared.health.rul defaults).
    alpha: float = DEFAULT_ALPHA
    n_boot: int = DEFAULT_N_BOOT

    def __post_init__(self) -> None:
        CusumParams(self.cusum_k, self.cusum_h, (0,), self.max_step_s, self.persist_s)  # k, h, step >= 0
        persistence_step([], 0.0, 0.0, self.persist_s)  # persist_s finite
        if self.rul_model not in MODELS:
            raise ValueError(f"PrognosticsParams.rul_model must be one of {MODELS}, got {self.rul_model!r}")
        for name in ("rul_every_s", "rul_window_s", "bucket_s", "buffer_s"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValueError(f"PrognosticsParams.{name} must be a positive number, got {v!r}")
        if self.buffer_s < self.rul_window_s:
            raise ValueError("PrognosticsParams.buffer_s must cover rul_window_s")
        self.prior()  # at least 2 finite end-of-life values

    def prior(self) -> ThresholdPrior:
        """The failure threshold prior (median, spread, runs) of ``eol_rms_log`` [Np]."""
        return threshold_prior(self.eol_rms_log)


@dataclass(frozen=True)
class Calibration:
    """The asset's calibrated levels: RMS_cal [g] (largest axis; per axis: axis_rms_cal), kurtosis."""

    rms_cal: float
    kurtosis_median: float | None = None
    kurtosis_scale: float | None = None
    axis_rms_cal: dict[str, float] = field(default_factory=dict)  # axis -> {axis}_rms level [g]


def _centre(stats: Mapping[str, float]) -> float:
    return float(stats.get("median", stats["mean"]))


def calibration_from_baseline(baseline: Mapping[str, Mapping[str, float]] | None) -> Calibration | None:
    """The :class:`Calibration` of a calibration baseline (feature name -> ``{"mean", "std", "median"?,
    "mad"?}``): RMS_cal = the largest ``{axis}_rms`` median (mean when absent) [g]; kurtosis: the same
    axis rule, spread ``1.4826 * mad`` (``std`` when absent), floored like
    :func:`~shared.health.indicators.robust_baseline`. None without a positive ``{axis}_rms`` level."""
    if not baseline:
        return None
    axes = [m.group(1) for n in baseline if (m := _AXIS_RMS.match(n))]
    levels = [_centre(baseline[f"{a}_rms"]) for a in axes]
    if not levels or max(levels) <= 0:
        return None
    kurt = [baseline[f"{a}_kurtosis"] for a in axes if f"{a}_kurtosis" in baseline]
    per_axis = dict(zip(axes, levels, strict=True))
    if not kurt:
        return Calibration(max(levels), axis_rms_cal=per_axis)
    k = max(kurt, key=_centre)
    med = _centre(k)
    spread = MAD_TO_SIGMA * k["mad"] if "mad" in k else k["std"]
    return Calibration(max(levels), med, max(spread, REL_SCALE_FLOOR * abs(med), TINY), per_axis)


@dataclass(frozen=True)
class RulView:
    """Remaining useful life at ``as_of`` (s), or why there is none (fields of the message's RulItem)."""

    status: str  # estimate | no_degradation_trend | not_calibrated | sensor_fault
    reason: str
    level: float | None = None  # rms_log now [Np]
    threshold: float | None = None  # [Np]
    threshold_basis: str | None = None
    median_s: float | None = None
    low_s: float | None = None
    high_s: float | None = None  # None: the 90th percentile never reaches the threshold
    interval: float | None = None
    model: str | None = None
    window_s: float | None = None
    n_points: int | None = None
    as_of: float | None = None


@dataclass(frozen=True)
class PrognosticsView:
    """One window's prognostics: indicators, the trend condition (on, crossed now, reason), the RUL."""

    indicators: dict[str, float]
    trend_on: bool
    crossed: bool
    trend_reason: str
    rul: RulView


@dataclass
class _State:
    """Everything :class:`PrognosticsTracker` keeps between windows (JSON-able via asdict)."""

    cal: Calibration | None = None
    s: float = 0.0  # CUSUM [Np·s]
    s_since: float | None = None  # data time S last left 0 [s]
    last_ts: float | None = None
    on: bool = False  # trend condition
    first_alarm_ts: float | None = None
    recent: list[tuple[float, float]] = field(default_factory=list)  # (ts, rms_log) of the last persist_s
    alarm: tuple[float, float] | None = None  # last crossing: (accumulated s, persistent level Np)
    buckets: deque[tuple[float, float]] = field(default_factory=deque)  # (mean ts, mean rms_log)
    partial: tuple[int, float, float, int] | None = None  # (bucket index, sum ts, sum rms_log, n)
    rul_ts: float | None = None
    rul: RulView | None = None


NOT_CALIBRATED = "no calibration baseline with a vibration RMS ({axis}_rms): calibrate on healthy running"


class PrognosticsTracker:
    """Per-asset indicators, CUSUM early warning and RUL over successive vibration windows (module doc).

    ``PrognosticsTracker(params).update(ts, features)`` is the whole interface for a replay: ``ts`` data
    time (s, non-decreasing; an older window is ignored), ``features`` name -> value of one vibration
    window. :meth:`calibrate` first (without it every view says "not calibrated")."""

    def __init__(self, params: PrognosticsParams | None = None) -> None:
        self.params = params or PrognosticsParams()
        self._prior = self.params.prior()
        self._st, self._paused = _State(), True
        #: The latest view (in memory only; None after a restore until the next window).
        self.last_view: PrognosticsView | None = None

    @property
    def calibration(self) -> Calibration | None:
        return self._st.cal

    @property
    def first_alarm_ts(self) -> float | None:
        """Data time of the first CUSUM alarm since the calibration or the last reset (s)."""
        return self._st.first_alarm_ts

    def calibrate(self, cal: Calibration | None) -> None:
        """Set the asset's calibration; a different one restarts the history (the indicators change
        reference), the same one keeps it. None (no baseline known, e.g. restored before the model
        announcements came back) pauses it: windows say "not calibrated", the history waits."""
        self._paused = cal is None
        if cal is not None and cal != self._st.cal:
            self._st, self.last_view = _State(cal=cal), None

    def reset(self) -> None:
        """Maintenance: forget the CUSUM, buffer, first alarm and RUL; keep the calibration."""
        self._st, self.last_view = _State(cal=self._st.cal), None

    def update(
        self, ts: float, features: Mapping[str, float] | None, sensor_fault: bool = False
    ) -> PrognosticsView | None:
        """One vibration window at data time ``ts`` (s); None when ``features`` has no ``{axis}_rms`` or
        the window is older than the last one. ``sensor_fault``: the window is skipped (no state
        change) and the view says so. ValueError on a non-finite ``ts`` or an invalid RMS."""
        ts = float(ts)
        if not math.isfinite(ts):
            raise ValueError(f"ts must be finite, got {ts}")
        st = self._st
        if not features or not any(_AXIS_RMS.match(n) for n in features):
            return None
        if st.last_ts is not None and ts < st.last_ts:
            return None
        if sensor_fault:
            why = "no estimate while the sensor reports a fault: its windows are skipped"
            return self._keep(PrognosticsView({}, False, False, "", RulView("sensor_fault", why, as_of=ts)))
        if st.cal is None or self._paused:
            return self._keep(
                PrognosticsView({}, False, False, "", RulView("not_calibrated", NOT_CALIBRATED))
            )
        ind = self._indicators(features)  # checks the values before any state change
        y = ind["rms_log"]
        crossed = self._cusum(ts, y)
        ind["cusum"], ind["cusum_h"] = st.s, self.params.cusum_h
        self._buffer(ts, y)
        return self._keep(PrognosticsView(ind, st.on, crossed, self._trend_reason(), self._rul(ts, y)))

    def _keep(self, view: PrognosticsView) -> PrognosticsView:
        self.last_view = view
        return view

    def _indicators(self, features: Mapping[str, float]) -> dict[str, float]:
        """``rms_log`` [Np] and, when calibrated, ``kurtosis_z`` [robust σ] (module doc)."""
        cal = self._st.cal
        assert cal is not None
        axes = [m.group(1) for n in features if (m := _AXIS_RMS.match(n))]
        rms, ref = {a: float(features[f"{a}_rms"]) for a in axes}, cal.axis_rms_cal
        if not ref.keys() & rms.keys():  # a calibration from before per-axis levels: largest axis
            rms, ref = {"max": max(rms.values())}, {"max": cal.rms_cal}
        out = {"rms_log": float(axes_log_ratio(rms, ref))}
        kurt = [float(features[f"{a}_kurtosis"]) for a in axes if f"{a}_kurtosis" in features]
        if kurt and cal.kurtosis_median is not None and cal.kurtosis_scale is not None:
            base = Baseline(cal.kurtosis_median, cal.kurtosis_scale, 0)
            out["kurtosis_z"] = float(robust_z(max(kurt), base))
        return out

    def _cusum(self, ts: float, y: float) -> bool:
        """One step of the persistent level and the CUSUM (module doc); True when it crossed ``h`` now."""
        p, st = self.params, self._st
        dt = 0.0 if st.last_ts is None else ts - st.last_ts
        st.recent, level = persistence_step(st.recent, ts, y, p.persist_s)
        s, crossed = cusum_step(st.s, level, dt, p.cusum_k, p.cusum_h, p.max_step_s)
        since = ts - min(dt, p.max_step_s) if st.s == 0.0 or st.s_since is None else st.s_since
        if crossed:
            st.alarm = (ts - since, level)
            st.first_alarm_ts = ts if st.first_alarm_ts is None else st.first_alarm_ts
        st.s_since = since if s > 0.0 else None
        st.on = crossed or (st.on and s > 0.0)
        st.s, st.last_ts = s, ts
        return crossed

    def _trend_reason(self) -> str:
        """The last CUSUM alarm's numbers, e.g. "RMS ≥ 2.3× its calibrated level (rms_log ≥ 0.83 Np)
        throughout the last 30 s; CUSUM > 10 Np·s over 64 s of data"; "" before any."""
        if self._st.alarm is None:
            return ""
        (span, level), p = self._st.alarm, self.params
        ge, last = ("≥ ", f" throughout the last {p.persist_s:g} s") if p.persist_s > 0 else ("", "")
        return (
            f"RMS {ge}{math.exp(level):.1f}× its calibrated level (rms_log {ge}{level:.2f} Np){last}; "
            f"CUSUM > {p.cusum_h:g} Np·s over {span:.0f} s of data"
        )

    def _buffer(self, ts: float, y: float) -> None:
        """Add the window to its ``bucket_s`` mean; drop means older than ``buffer_s``."""
        p, st = self.params, self._st
        idx = math.floor(ts / p.bucket_s)
        if st.partial is not None and st.partial[0] != idx:
            _, sum_t, sum_y, n = st.partial
            st.buckets.append((sum_t / n, sum_y / n))
            st.partial = None
        _, sum_t, sum_y, n = st.partial or (idx, 0.0, 0.0, 0)
        st.partial = (idx, sum_t + ts, sum_y + y, n + 1)
        while st.buckets and st.buckets[0][0] <= ts - p.buffer_s:
            st.buckets.popleft()

    def series(self) -> tuple[np.ndarray, np.ndarray]:
        """The buffered ``(ts [s], rms_log [Np])`` means, the current (partial) bucket last."""
        pts = list(self._st.buckets)
        if self._st.partial is not None:
            _, sum_t, sum_y, n = self._st.partial
            pts.append((sum_t / n, sum_y / n))
        a = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        return a[:, 0], a[:, 1]

    def _rul(self, ts: float, y: float) -> RulView:
        """Before the first alarm: no trend (the CUSUM's numbers); after it, a fresh estimate every
        ``rul_every_s`` of data time (the last one in between)."""
        p, st = self.params, self._st
        if st.first_alarm_ts is None:
            why = (
                f"no persistent rise of RMS above its calibrated level (CUSUM of rms_log {st.s:.1f} of "
                f"{p.cusum_h:g} Np·s, allowance {p.cusum_k:g} Np)"
            )
            return RulView("no_degradation_trend", why, level=y, as_of=ts)
        if st.rul is None or st.rul_ts is None or ts - st.rul_ts >= p.rul_every_s:
            t, v = self.series()
            est = estimate_rul(
                t, v, ts, self._prior, p.rul_window_s, alpha=p.alpha, n_boot=p.n_boot, model=p.rul_model
            )
            st.rul, st.rul_ts = self._rul_view(est, ts, y), ts
        return st.rul

    def _rul_view(self, est: RulEstimate | NoTrend, ts: float, y: float) -> RulView:
        p = self.params
        fit = {"threshold": self._prior.median, "threshold_basis": p.threshold_basis, "as_of": ts}
        fit |= {"model": p.rul_model, "window_s": p.rul_window_s}
        if isinstance(est, NoTrend):
            return RulView(
                "no_degradation_trend", est.reason.removeprefix("no degradation trend: "), y, **fit
            )
        if not math.isfinite(est.median_s):
            why = f"the fitted paths ({self._fit_text(est)}) reach the threshold in < half the draws"
            return RulView("no_degradation_trend", why, est.level_now, **fit)
        why = f"{self._fit_text(est)} extrapolated to {est.threshold:.2f} Np ({p.threshold_basis})"
        high = est.high_s if math.isfinite(est.high_s) else None
        return RulView(
            "estimate", why, est.level_now, median_s=est.median_s, low_s=est.low_s, high_s=high,
            interval=0.8, n_points=est.n_points, **fit,
        )  # fmt: skip

    def _fit_text(self, est: RulEstimate) -> str:
        p, n = self.params, est.n_points
        if p.rul_model != "pooled":
            return f"{p.rul_model} path of rms_log fitted over the last {p.rul_window_s:g} s ({n} points)"
        spans = "/".join(f"{p.rul_window_s * f:g}" for f in POOLED_SPANS)
        return f"log_linear and exp_offset paths of rms_log over the last {spans} s pooled ({n} points)"

    # -- state -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state (not the params: pass the same ones to :meth:`from_dict`)."""
        d = asdict(self._st)
        d["buckets"] = [list(b) for b in self._st.buckets]
        d["recent"] = [list(b) for b in self._st.recent]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], params: PrognosticsParams | None = None) -> PrognosticsTracker:
        """The tracker :meth:`to_dict` saved (ValueError if malformed); paused until :meth:`calibrate`."""
        t = cls(params)
        try:
            t._st = _State(
                **{
                    **d,
                    "cal": None if d["cal"] is None else Calibration(**d["cal"]),
                    "alarm": None if d["alarm"] is None or len(d["alarm"]) != 2 else tuple(d["alarm"]),
                    "recent": [tuple(b) for b in d.get("recent", [])],  # absent before persist_s
                    "buckets": deque(tuple(b) for b in d["buckets"]),
                    "partial": None if d["partial"] is None else tuple(d["partial"]),
                    "rul": None if d["rul"] is None else RulView(**d["rul"]),
                }
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed prognostics state: {exc!r}") from None
        return t
