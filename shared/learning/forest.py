"""Isolation Forest training and ONNX export (pure: no I/O).

Score convention shared by every model (see :mod:`shared.learning.scoring`): ``raw_score`` is an
anomaly measure, dimensionless here, where higher = more anomalous and typical healthy training data
≈ 0. For the forest

    raw(x)    = median_train(s) − s(x)     s = sklearn ``score_samples`` = −2^(−E[h(x)] / c(ψ)) ∈ [−1, 0)
    threshold = median_train(s) − offset_  offset_ = the ``contamination`` percentile of s on training

so raw > threshold exactly where sklearn's ``predict`` says −1 (outlier), ≈ ``contamination`` of the
training rows are flagged, and "CRITICAL above 2× threshold" means "twice as far below the typical
score as the contamination cut". (Optionally the cut is taken on held-out newest rows instead, for
heavily overlapping window features: ``train_forest(..., holdout_fraction=h)``.)

ONNX export (:func:`export_forest_onnx`): by default an exact single-node
``TreeEnsembleRegressor`` graph computing s = −2^(−Σ_trees h / (T·c(max_samples))), built in
milliseconds; skl2onnx's converter (seconds) on request. Both live in :mod:`.forest_onnx`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import IsolationForest

from ._checks import as_matrix, as_names, count, fraction
from .forest_onnx import (
    EULER_GAMMA,
    FOREST_OPSET,
    FOREST_OUTPUT,
    ONNX_INPUT,
    average_path_length,
    native_forest_onnx,
    skl2onnx_forest_onnx,
)

__all__ = [
    "EULER_GAMMA",
    "FOREST_OPSET",
    "FOREST_OUTPUT",
    "ONNX_INPUT",
    "THRESHOLD_FLOOR",
    "ForestModel",
    "average_path_length",
    "export_forest_onnx",
    "train_forest",
]

#: Smallest threshold: constant training data gives median = cut, and classify needs a threshold > 0;
#: 1e-6 is ≈16 float32 ulps of a score near 0.5, so float32 noise of healthy raw scores stays below it.
THRESHOLD_FLOOR = 1e-6


@dataclass
class ForestModel:
    """A fitted Isolation Forest plus the raw-score convention parameters (see the module docstring)."""

    estimator: IsolationForest
    features: list[str]
    score_median: float
    offset: float
    contamination: float
    n_train: int
    #: score_median − cut; the cut is ``offset`` (default) or the held-out quantile (see train_forest).
    threshold: float
    holdout_fraction: float = 0.0
    n_holdout: int = 0
    train_seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)

    def score_samples(self, X: Any) -> NDArray[np.float64]:
        """sklearn ``score_samples`` of ``X[N, d]`` (float32-cast first, as the ONNX graph sees it)."""
        A = as_matrix(X, n_features=len(self.features), dtype=np.float32)
        return np.asarray(self.estimator.score_samples(A), dtype=np.float64)

    def raw_scores(self, X: Any) -> NDArray[np.float64]:
        """raw = median_train(s) − s(x), dimensionless, per row of ``X[N, d]``."""
        return self.score_median - self.score_samples(X)

    def entry(self) -> dict[str, Any]:
        """Manifest entry (JSON-ready) without the baseline/training blocks added by calibration."""
        return {
            "algorithm": "isolation_forest",
            "features": list(self.features),
            "n_features": len(self.features),
            "input": ONNX_INPUT,
            "output": FOREST_OUTPUT,
            "scaler": None,
            "raw_score": {
                "transform": "median_minus_score",
                "score_median": self.score_median,
                "offset": self.offset,
                "formula": "raw = score_median - score_samples(x)",
            },
            "threshold": self.threshold,
            "threshold_rule": (
                {
                    "rule": "score_median - offset (contamination percentile of training score_samples)",
                    "contamination": self.contamination,
                }
                if self.n_holdout == 0
                else {
                    "rule": "score_median - contamination percentile of score_samples on the held-out "
                    "newest rows (the forest was fitted on the older rows only)",
                    "contamination": self.contamination,
                    "holdout_fraction": self.holdout_fraction,
                    "n_holdout": self.n_holdout,
                }
            ),
            "params": dict(self.params),
        }


def train_forest(
    X: Any,
    names: Any,
    contamination: float = 0.02,
    n_estimators: int = 100,
    random_state: int = 0,
    max_samples: int | Literal["auto"] = "auto",
    holdout_fraction: float = 0.0,
) -> ForestModel:
    """Fit ``IsolationForest`` on ``X[n, d]`` (n ≥ 2, float32-cast) and derive the raw-score convention.

    ``contamination`` ∈ (0, 0.5] is the fraction of training rows the threshold flags;
    ``max_samples`` "auto" = min(256, n). Single-threaded (n_jobs=1); deterministic for a given
    ``random_state``. ``threshold`` = max(median_train(s) − cut, 1e-6) (dimensionless, see
    :data:`THRESHOLD_FLOOR`), ``train_seconds`` the wall-clock seconds of the fit and the cut.

    ``holdout_fraction`` h ∈ [0, 0.5] (default 0: the convention of the module docstring): for rows in
    time order whose features overlap heavily (e.g. sliding windows advanced by one reading), the
    in-sample cut is too tight — such rows carry few independent samples, and fresh healthy data
    falls outside the region they cover (measured: ≈10 % of fresh healthy batch windows above a
    contamination-0.02 threshold). With h > 0 the forest is fitted on the oldest n − ⌊h·n⌋ rows and
    the cut is the ``contamination`` percentile of ``score_samples`` on the ⌊h·n⌋ ≥ 10 newest rows
    it has not seen, so the threshold is calibrated on data that behaves like future data (≈2 % on
    the same measurement with h = 0.3). ``score_median`` stays the median over the fitted rows.
    """
    A_all = as_matrix(X, min_rows=2, dtype=np.float32)
    nm = as_names(names, A_all.shape[1])
    contamination = fraction(contamination, "contamination", high=0.5)
    n_estimators = count(n_estimators, "n_estimators")
    if max_samples != "auto":
        max_samples = count(max_samples, "max_samples", minimum=2)
    h, n_hold = _holdout_rows(holdout_fraction, A_all.shape[0])
    A, A_hold = A_all[: A_all.shape[0] - n_hold], A_all[A_all.shape[0] - n_hold :]
    t0 = time.perf_counter()
    est = _fit_isolation_forest(A, n_estimators, contamination, max_samples, random_state)
    median = float(np.median(est.score_samples(A)))
    cut = _score_cut(est, A_hold, contamination)
    seconds = time.perf_counter() - t0
    return ForestModel(
        estimator=est,
        features=nm,
        score_median=median,
        offset=float(est.offset_),
        contamination=contamination,
        n_train=int(A.shape[0]),
        threshold=max(median - cut, THRESHOLD_FLOOR),
        holdout_fraction=h,
        n_holdout=n_hold,
        train_seconds=seconds,
        params={
            "n_estimators": n_estimators,
            "contamination": contamination,
            "max_samples": int(est.max_samples_),
            "random_state": random_state,
            "holdout_fraction": h,
        },
    )


def _holdout_rows(holdout_fraction: Any, n: int) -> tuple[float, int]:
    """Checked h ∈ [0, 0.5] and the number of held-out rows ⌊h·n⌋ (0, or ≥ 10 leaving ≥ 2 to fit)."""
    h = fraction(holdout_fraction, "holdout_fraction", open_low=False, high=0.5)
    n_hold = int(np.floor(h * n))
    if h > 0 and (n_hold < 10 or n - n_hold < 2):
        raise ValueError(f"holdout_fraction={h} of {n} rows leaves {n_hold} held-out rows; need at least 10")
    return h, n_hold


def _fit_isolation_forest(
    A: NDArray[np.float32],
    n_estimators: int,
    contamination: float,
    max_samples: int | Literal["auto"],
    random_state: int,
) -> IsolationForest:
    """sklearn ``IsolationForest`` fitted on ``A[n, d]``: all features per tree (max_features=1.0, no
    bootstrap, as :func:`export_forest_onnx` requires), one thread, seeded by ``random_state``."""
    return IsolationForest(
        n_estimators=n_estimators,
        contamination=contamination,
        max_samples=max_samples,
        max_features=1.0,
        bootstrap=False,
        n_jobs=1,
        random_state=random_state,
    ).fit(A)


def _score_cut(est: IsolationForest, A_hold: NDArray[np.float32], contamination: float) -> float:
    """The cut on s = ``score_samples`` (dimensionless, < 0) below which a row is flagged.

    Without held-out rows (``A_hold`` has 0 rows): sklearn's ``offset_``, the ``contamination``
    percentile of s on the training rows. Otherwise the 100·``contamination``-th percentile of s on
    ``A_hold`` (numpy's linear interpolation).
    """
    if A_hold.shape[0] == 0:
        return float(est.offset_)
    return float(np.percentile(est.score_samples(A_hold), 100.0 * contamination))


def export_forest_onnx(model: ForestModel, converter: Literal["native", "skl2onnx"] = "native") -> bytes:
    """Serialised ONNX model: input ``input`` [N, d] float32 → output ``score_samples`` [N] float32.

    ``native`` (default, milliseconds) or ``skl2onnx`` (seconds); both equal sklearn's
    ``score_samples`` to ≈1e-7 (verified by the tests).
    """
    if converter == "native":
        return native_forest_onnx(model.estimator, model.features)
    if converter == "skl2onnx":
        return skl2onnx_forest_onnx(model.estimator, len(model.features))
    raise ValueError(f"converter: expected 'native' or 'skl2onnx', got {converter!r}")
