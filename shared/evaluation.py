"""Pure helpers for offline detection-quality evaluation (no I/O): framing, splitting, metrics and
the live alarm rule replayed over a sequence of scores.

Score convention (the same as :mod:`shared.learning.scoring`): higher = more anomalous and a window
is flagged when ``score > threshold``. Healthy windows are the negative class (label 0), faulty
windows the positive class (label 1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import beta
from sklearn.metrics import f1_score, roc_auc_score

from shared.health.persistence import Persistence
from shared.learning.scoring import RollingScore


def _signal(x: Any, name: str = "x") -> NDArray[np.float64]:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D signal, got shape {a.shape}")
    if a.size and not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: contains NaN or inf")
    return a


def split_fraction(x: Any, train_fraction: float = 0.6) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Split a 1-D signal in time: the first ``round(train_fraction · n)`` samples and the rest.

    ``train_fraction`` must lie in (0, 1); both parts must be non-empty.
    """
    a = _signal(x)
    if not (isinstance(train_fraction, int | float) and 0.0 < train_fraction < 1.0):
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction!r}")
    cut = int(round(train_fraction * a.size))
    if cut <= 0 or cut >= a.size:
        raise ValueError(f"splitting {a.size} samples at {train_fraction} leaves an empty part")
    return a[:cut], a[cut:]


def frame(x: Any, window: int, hop: int) -> NDArray[np.float64]:
    """Windows ``[i·hop, i·hop + window)`` of a 1-D signal, shape ``[N, window]`` (a copy),
    ``N = floor((n − window) / hop) + 1`` (0 rows when ``n < window``; the tail is dropped)."""
    a = _signal(x)
    if isinstance(window, bool) or not isinstance(window, int) or window < 2:
        raise ValueError(f"window must be an integer >= 2, got {window!r}")
    if isinstance(hop, bool) or not isinstance(hop, int) or hop < 1:
        raise ValueError(f"hop must be an integer >= 1, got {hop!r}")
    if a.size < window:
        return np.zeros((0, window))
    n = (a.size - window) // hop + 1
    idx = np.arange(window)[None, :] + hop * np.arange(n)[:, None]
    return a[idx]


def clopper_pearson_upper(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided upper confidence bound of a binomial proportion with ``k`` events in ``n`` trials.

    ``p_hi = Beta⁻¹(confidence; k + 1, n − k)``, and 1 when ``k == n`` (exact, conservative). With
    0 events in n trials at 95 % this is ``1 − 0.05^(1/n)`` (≈ 3/n: 0 of 100 → 2.95 %).
    """
    if not (isinstance(k, int) and isinstance(n, int) and 0 <= k <= n and n >= 1):
        raise ValueError(f"need integers 0 <= k <= n, n >= 1; got k={k!r}, n={n!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if k == n:
        return 1.0
    return float(beta.ppf(confidence, k + 1, n - k))


@dataclass(frozen=True)
class Metrics:
    """Detection quality of one score on healthy (label 0) vs faulty (label 1) windows.

    ``auc``: ROC-AUC of the continuous score (None when not computable); ``detection``: fraction of
    faulty windows flagged (recall); ``false_alarm``: fraction of healthy windows flagged;
    ``fa_upper95``: one-sided 95 % Clopper–Pearson upper bound of the false-alarm rate; ``f1``: F1
    of the flags with faulty = positive. Counts are raw window counts.
    """

    auc: float | None
    detection: float
    false_alarm: float
    fa_upper95: float
    f1: float
    n_healthy: int
    n_fault: int
    healthy_flagged: int
    fault_flagged: int


def detection_metrics(
    healthy: Any,
    fault: Any,
    threshold: float | None = None,
    *,
    healthy_flags: Any = None,
    fault_flags: Any = None,
) -> Metrics:
    """Metrics of scores on healthy and faulty windows.

    Flags are ``score > threshold`` unless ``healthy_flags``/``fault_flags`` (bool arrays, e.g. from
    a persistence rule) are given; then ``threshold`` may be None. AUC uses
    :func:`sklearn.metrics.roc_auc_score` on the scores (None if a score array is None or not
    finite); F1 uses :func:`sklearn.metrics.f1_score` (0 when nothing is flagged).
    """
    h = None if healthy is None else np.asarray(healthy, dtype=np.float64).reshape(-1)
    f = None if fault is None else np.asarray(fault, dtype=np.float64).reshape(-1)
    if healthy_flags is None or fault_flags is None:
        if threshold is None or h is None or f is None:
            raise ValueError("give a threshold with both score arrays, or both flag arrays")
        if not math.isfinite(threshold):
            raise ValueError(f"threshold must be finite, got {threshold!r}")
        hf, ff = h > threshold, f > threshold
    else:
        hf = np.asarray(healthy_flags, dtype=bool).reshape(-1)
        ff = np.asarray(fault_flags, dtype=bool).reshape(-1)
    if hf.size == 0 or ff.size == 0:
        raise ValueError(f"need healthy and faulty windows, got {hf.size} and {ff.size}")
    for arr, flags, name in ((h, hf, "healthy"), (f, ff, "fault")):
        if arr is not None and arr.size != flags.size:
            raise ValueError(f"{name}: {arr.size} scores but {flags.size} flags")
    auc: float | None = None
    if h is not None and f is not None and np.all(np.isfinite(h)) and np.all(np.isfinite(f)):
        y = np.r_[np.zeros(h.size), np.ones(f.size)]
        auc = float(roc_auc_score(y, np.r_[h, f]))
    y_true = np.r_[np.zeros(hf.size, dtype=int), np.ones(ff.size, dtype=int)]
    y_pred = np.r_[hf, ff].astype(int)
    f1 = float(f1_score(y_true, y_pred, zero_division=0.0))
    k_h, k_f = int(hf.sum()), int(ff.sum())
    return Metrics(
        auc=auc,
        detection=k_f / ff.size,
        false_alarm=k_h / hf.size,
        fa_upper95=clopper_pearson_upper(k_h, int(hf.size)),
        f1=f1,
        n_healthy=int(hf.size),
        n_fault=int(ff.size),
        healthy_flagged=k_h,
        fault_flagged=k_f,
    )


def zscore_max(X: Any, mean: Any, std: Any) -> NDArray[np.float64]:
    """Row-wise ``max_j (X_ij − mean_j) / std_j`` (one-sided: only increases count), shape [N].

    ``std`` must be > 0 everywhere (units cancel: the result is in standard deviations).
    """
    A = np.asarray(X, dtype=np.float64)
    m = np.asarray(mean, dtype=np.float64)
    s = np.asarray(std, dtype=np.float64)
    if A.ndim != 2 or m.shape != (A.shape[1],) or s.shape != m.shape:
        raise ValueError(f"X must be [N, d] with mean/std [d]; got {A.shape}, {m.shape}, {s.shape}")
    if not np.all(s > 0):
        raise ValueError("std must be > 0 for every column")
    return np.max((A - m) / s, axis=1)


def alarm_sequence(
    raw_scores: Mapping[str, Any],
    thresholds: Mapping[str, float],
    *,
    rolling: int = 10,
    k: int = 3,
    n: int = 5,
    extra_flags: Mapping[str, Sequence[bool] | NDArray[np.bool_]] | None = None,
) -> NDArray[np.bool_]:
    """The live alarm condition after each window of one time-ordered sequence (fresh state).

    Per model ``m`` (as the scorer and the health assessor do it): ``anomaly_m(t)`` = mean of the
    last ``rolling`` raw scores (:class:`shared.learning.scoring.RollingScore`), pointwise flag
    ``anomaly_m(t) > threshold_m``, persistent when ``k`` of the last ``n`` flags are set
    (:class:`shared.health.alarms.Persistence`). ``extra_flags`` are already-pointwise flags (e.g.
    ISO zone C/D) that only go through the ``k``-of-``n`` persistence. The alarm is on at ``t`` when
    any source is persistent. Returns bools of length T.
    """
    lengths = {len(np.asarray(v).reshape(-1)) for v in raw_scores.values()}
    lengths |= {len(v) for v in (extra_flags or {}).values()}
    if len(lengths) != 1:
        raise ValueError(f"every score/flag sequence must have the same length, got {sorted(lengths)}")
    T = lengths.pop()
    on = np.zeros(T, dtype=bool)
    for name, scores in raw_scores.items():
        if name not in thresholds:
            raise ValueError(f"no threshold for {name!r}")
        roll, pers, thr = RollingScore(rolling), Persistence(k, n), float(thresholds[name])
        for t, s in enumerate(np.asarray(scores, dtype=np.float64).reshape(-1)):
            on[t] |= pers.push(bool(roll.update(float(s)) > thr))
    for flags in (extra_flags or {}).values():
        pers = Persistence(k, n)
        for t, f in enumerate(flags):
            on[t] |= pers.push(bool(f))
    return on


def first_true(flags: Any) -> int | None:
    """Index of the first True, or None."""
    a = np.asarray(flags, dtype=bool).reshape(-1)
    idx = np.flatnonzero(a)
    return int(idx[0]) if idx.size else None
