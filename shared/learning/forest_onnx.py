"""Isolation Forest → ONNX (pure: no I/O): the exact single-node writer and the skl2onnx fallback.

:func:`native_forest_onnx` is a direct, exact translation into a single
``ai.onnx.ml.TreeEnsembleRegressor`` node (opset ai.onnx.ml 3, default domain 17) whose leaf values
are sklearn's per-leaf path lengths h = ``edges(root→leaf) + c(n_leaf)`` (in edges), summed over the
T trees and mapped to

    s = −2^(−Σ_trees h / (T·c(max_samples)))      (dimensionless, ∈ [−1, 0))

The graph's single output ``score_samples`` [N] float32 equals sklearn's ``score_samples`` to ≈1e-7.
It is built in milliseconds; skl2onnx's converter (:func:`skl2onnx_forest_onnx`) emits ~40 nodes per
tree and takes 2–6 s for 100 trees on this machine, which alone would break the 2 s calibration
budget. Both take the fitted estimator; :func:`shared.learning.forest.export_forest_onnx` chooses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from onnx import GraphProto, NodeProto, TensorProto, helper
from sklearn.ensemble import IsolationForest

ONNX_INPUT = "input"
FOREST_OUTPUT = "score_samples"
FOREST_OPSET = {"": 17, "ai.onnx.ml": 3}
#: Euler–Mascheroni constant γ.
EULER_GAMMA = 0.5772156649015329


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


def native_forest_onnx(est: IsolationForest, features: list[str]) -> bytes:
    """Single-node TreeEnsembleRegressor translation of ``est`` (see the module docstring).

    s(x) = −2^(−Σ_trees h_leaf(x) / (T·c(max_samples))): the node arrays come from the sklearn trees
    (:func:`_ensemble_node`), the normaliser from :func:`_path_denominator`; ``features`` (d names)
    fix the input width and are written to the model metadata.
    """
    d = len(features)
    ensemble = _ensemble_node(est, d)
    denom = _path_denominator(est)
    return _model_bytes(_score_graph(ensemble, denom, d), features)


def skl2onnx_forest_onnx(est: IsolationForest, d: int) -> bytes:
    """skl2onnx's converter, reduced to the one output ``score_samples`` [N] (slow: see module doc)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onx = convert_sklearn(
        est,
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
