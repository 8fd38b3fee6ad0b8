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

ONNX export (:func:`export_forest_onnx`): by default a direct, exact translation into a single
``ai.onnx.ml.TreeEnsembleRegressor`` node (opset ai.onnx.ml 3, default domain 17) whose leaf values
are sklearn's per-leaf path lengths h = ``edges(root→leaf) + c(n_leaf)``, summed over the trees and mapped
to s = −2^(−Σ / (T·c(max_samples))). The graph's single output ``score_samples`` [N] float32 equals
sklearn's ``score_samples`` to ≈1e-7. It is built in milliseconds; skl2onnx's converter
(``converter="skl2onnx"``, also supported) emits ~40 nodes per tree and takes 2–6 s for 100 trees on
this machine, which alone would break the 2 s calibration budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from onnx import GraphProto, NodeProto, TensorProto, helper
from sklearn.ensemble import IsolationForest

from ._checks import as_matrix, as_names, count, fraction

ONNX_INPUT = "input"
FOREST_OUTPUT = "score_samples"
FOREST_OPSET = {"": 17, "ai.onnx.ml": 3}
#: Euler–Mascheroni constant γ.
EULER_GAMMA = 0.5772156649015329
#: Smallest threshold: constant training data gives median = cut, and classify needs a threshold > 0;
#: 1e-6 is ≈16 float32 ulps of a score near 0.5, so float32 noise of healthy raw scores stays below it.
THRESHOLD_FLOOR = 1e-6


def average_path_length(n: Any) -> NDArray[np.float64]:
    """c(n): mean path length of an unsuccessful BST search among n points (Liu et al. 2008).

    c(n) = 2·(ln(n − 1) + γ) − 2·(n − 1)/n for n > 2; c(2) = 1; c(n) = 0 for n ≤ 1 (in edges).
    Vectorised over ``n``.
    """
    a = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(a)
    two = a == 2
    big = a > 2
    out[two] = 1.0
    out[big] = 2.0 * (np.log(a[big] - 1.0) + EULER_GAMMA) - 2.0 * (a[big] - 1.0) / a[big]
    return out


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


def _node_depths(left: NDArray[np.intp], right: NDArray[np.intp]) -> NDArray[np.float64]:
    """Depth (edges from the root) of every node of one sklearn tree given its child arrays."""
    depth = np.zeros(left.shape[0], dtype=np.float64)
    # sklearn numbers children after their parent, so one pass in index order suffices.
    for i in range(left.shape[0]):
        if left[i] >= 0:
            depth[left[i]] = depth[i] + 1.0
            depth[right[i]] = depth[i] + 1.0
    return depth


def _floor_float32(t: NDArray[np.float64]) -> NDArray[np.float32]:
    """Largest float32 ≤ t, element-wise.

    sklearn compares float32 inputs with float64 thresholds; for a float32 x, x ≤ t ⇔ x ≤ floor32(t),
    so the float32 thresholds of the ONNX graph route every float32 input exactly as sklearn does
    (plain rounding to nearest could send an x equal to the rounded value the other way).
    """
    t32 = t.astype(np.float32)
    above = t32.astype(np.float64) > t
    t32[above] = np.nextafter(t32[above], np.float32(-np.inf))
    return t32


@dataclass(frozen=True)
class _TreeNodes:
    """One sklearn tree as ``TreeEnsembleRegressor`` attribute arrays: k nodes, m leaves.

    Node arrays [k] (node i of tree t is sklearn's node i): a branch routes x to ``true_ids`` when
    x[feature] ≤ value (``BRANCH_LEQ``) and to ``false_ids`` otherwise; leaves have mode ``LEAF`` and
    0 in the feature/value/child slots. Target arrays [m]: one weight per leaf, its path length
    h = edges(root→leaf) + c(n_leaf) (in edges), summed over the trees by the node.
    """

    tree_ids: NDArray[np.int64]
    node_ids: NDArray[np.int64]
    feature_ids: NDArray[np.int64]
    values: NDArray[np.float32]
    modes: list[str]
    true_ids: NDArray[np.int64]
    false_ids: NDArray[np.int64]
    target_tree_ids: NDArray[np.int64]
    target_node_ids: NDArray[np.int64]
    target_weights: NDArray[np.float64]


def _tree_nodes(t: int, tree: Any, feats: Any, d: int) -> _TreeNodes:
    """Arrays of tree number ``t`` (an ``ExtraTreeRegressor`` seeing features ``feats`` of ``d``)."""
    if len(feats) != d:  # max_features=1.0 and no feature bootstrap: trees see X unchanged
        raise ValueError(f"tree {t} uses {len(feats)} of {d} features; only max_features=1.0 is supported")
    tr = tree.tree_
    left = tr.children_left.astype(np.int64)
    right = tr.children_right.astype(np.int64)
    k = left.shape[0]
    leaf = left < 0
    ids = np.arange(k, dtype=np.int64)
    # sklearn: nodes on the path (= edges + 1) + c(n_leaf) − 1 = edges + c(n_leaf).
    path = _node_depths(left, right) + average_path_length(tr.n_node_samples)
    return _TreeNodes(
        tree_ids=np.full(k, t, dtype=np.int64),
        node_ids=ids,
        feature_ids=np.where(leaf, 0, tr.feature).astype(np.int64),
        values=np.where(leaf, np.float32(0.0), _floor_float32(tr.threshold)),
        modes=["LEAF" if lf else "BRANCH_LEQ" for lf in leaf],
        true_ids=np.where(leaf, 0, left),
        false_ids=np.where(leaf, 0, right),
        target_tree_ids=np.full(int(leaf.sum()), t, dtype=np.int64),
        target_node_ids=ids[leaf],
        target_weights=path[leaf],
    )


def _ensemble_node(est: IsolationForest, d: int) -> NodeProto:
    """The ``ai.onnx.ml.TreeEnsembleRegressor`` node: ``input`` [N, d] → ``path_sum`` [N, 1] = Σ_trees h.

    Thresholds are float32 (floored, see :func:`_floor_float32`); leaf weights h are float32-rounded.
    """
    trees = [
        _tree_nodes(t, tree, feats, d)
        for t, (tree, feats) in enumerate(zip(est.estimators_, est.estimators_features_, strict=True))
    ]

    def cat(name: str) -> list[Any]:
        return np.concatenate([getattr(tn, name) for tn in trees]).tolist()

    modes = [m for tn in trees for m in tn.modes]
    weights = np.concatenate([tn.target_weights for tn in trees])
    return helper.make_node(
        "TreeEnsembleRegressor",
        [ONNX_INPUT],
        ["path_sum"],
        domain="ai.onnx.ml",
        name="isolation_trees",
        n_targets=1,
        aggregate_function="SUM",
        post_transform="NONE",
        nodes_treeids=cat("tree_ids"),
        nodes_nodeids=cat("node_ids"),
        nodes_featureids=cat("feature_ids"),
        nodes_values=cat("values"),
        nodes_modes=modes,
        nodes_truenodeids=cat("true_ids"),
        nodes_falsenodeids=cat("false_ids"),
        nodes_missing_value_tracks_true=[0] * len(modes),
        nodes_hitrates=[1.0] * len(modes),
        target_treeids=cat("target_tree_ids"),
        target_nodeids=cat("target_node_ids"),
        target_ids=[0] * len(weights),
        target_weights=weights.astype(np.float32).tolist(),
    )


def _path_denominator(est: IsolationForest) -> float:
    """T·c(max_samples): the normaliser of the summed path length (T trees; in edges, > 0)."""
    denom = len(est.estimators_) * float(average_path_length([est.max_samples_])[0])
    if denom <= 0:
        raise ValueError("forest was trained on a single sample; cannot export")
    return denom


def _score_graph(ensemble: NodeProto, denom: float, d: int) -> GraphProto:
    """Graph ``input`` [N, d] → ``score_samples`` [N] = −2^(−path_sum / denom), float32 throughout."""
    consts = [
        helper.make_tensor("flat_shape", TensorProto.INT64, [1], [-1]),
        helper.make_tensor("neg_inv_denom", TensorProto.FLOAT, [], [-1.0 / denom]),
        helper.make_tensor("two", TensorProto.FLOAT, [], [2.0]),
    ]
    nodes = [
        ensemble,
        helper.make_node("Reshape", ["path_sum", "flat_shape"], ["path_flat"]),
        helper.make_node("Mul", ["path_flat", "neg_inv_denom"], ["exponent"]),
        helper.make_node("Pow", ["two", "exponent"], ["anomaly_2pow"]),
        helper.make_node("Neg", ["anomaly_2pow"], [FOREST_OUTPUT]),
    ]
    return helper.make_graph(
        nodes,
        "isolation_forest",
        [helper.make_tensor_value_info(ONNX_INPUT, TensorProto.FLOAT, ["N", d])],
        [helper.make_tensor_value_info(FOREST_OUTPUT, TensorProto.FLOAT, ["N"])],
        initializer=consts,
    )


def _model_bytes(graph: GraphProto, features: list[str]) -> bytes:
    """Serialised ModelProto around ``graph``: IR 8, :data:`FOREST_OPSET`, producer ``rotorwatch``,
    metadata ``features`` (comma-joined names) and ``kind`` = ``isolation_forest``."""
    onx = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(dom, v) for dom, v in FOREST_OPSET.items()],
        producer_name="rotorwatch",
        doc_string="IsolationForest score_samples: -2^(-sum(path lengths)/(T*c(max_samples)))",
    )
    onx.ir_version = 8
    helper.set_model_props(onx, {"features": ",".join(features), "kind": "isolation_forest"})
    return onx.SerializeToString()


def _native_onnx(model: ForestModel) -> bytes:
    """Single-node TreeEnsembleRegressor translation (see the module docstring).

    s(x) = −2^(−Σ_trees h_leaf(x) / (T·c(max_samples))): the node arrays come from the sklearn trees
    (:func:`_ensemble_node`), the normaliser from :func:`_path_denominator`.
    """
    est = model.estimator
    d = len(model.features)
    ensemble = _ensemble_node(est, d)
    denom = _path_denominator(est)
    return _model_bytes(_score_graph(ensemble, denom, d), model.features)


def _skl2onnx_onnx(model: ForestModel) -> bytes:
    """skl2onnx's converter, reduced to the one output ``score_samples`` [N] (slow: see module doc)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    d = len(model.features)
    onx = convert_sklearn(
        model.estimator,
        initial_types=[(ONNX_INPUT, FloatTensorType([None, d]))],
        target_opset=FOREST_OPSET,
        options={"score_samples": True},
    )
    # Outputs are label [N,1], scores [N,1] (= decision_function) and score_samples [N,1].
    raw_out = next(o.name for o in onx.graph.output if o.name == "score_samples")
    flat = helper.make_tensor("flat_shape_out", TensorProto.INT64, [1], [-1])
    onx.graph.initializer.append(flat)
    renamed = "score_samples_2d"
    for node in onx.graph.node:
        node.output[:] = [renamed if o == raw_out else o for o in node.output]
    onx.graph.node.append(helper.make_node("Reshape", [renamed, "flat_shape_out"], [FOREST_OUTPUT]))
    del onx.graph.output[:]
    onx.graph.output.append(helper.make_tensor_value_info(FOREST_OUTPUT, TensorProto.FLOAT, ["N"]))
    return onx.SerializeToString()


def export_forest_onnx(model: ForestModel, converter: Literal["native", "skl2onnx"] = "native") -> bytes:
    """Serialised ONNX model: input ``input`` [N, d] float32 → output ``score_samples`` [N] float32.

    ``native`` (default, milliseconds) or ``skl2onnx`` (seconds); both equal sklearn's
    ``score_samples`` to ≈1e-7 (verified by the tests).
    """
    if converter == "native":
        return _native_onnx(model)
    if converter == "skl2onnx":
        return _skl2onnx_onnx(model)
    raise ValueError(f"converter: expected 'native' or 'skl2onnx', got {converter!r}")
