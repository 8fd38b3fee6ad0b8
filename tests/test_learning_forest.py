"""Isolation Forest training, raw-score convention and ONNX export (shared.learning.forest)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from sklearn.ensemble import IsolationForest

from shared.learning.forest import average_path_length, export_forest_onnx, train_forest
from shared.learning.forest_onnx import native_forest_onnx
from shared.learning.scoring import OnnxModel, classify


def names(d: int) -> list[str]:
    return [f"f{i}" for i in range(d)]


@pytest.fixture(scope="module", params=[6, 16])
def fitted(request):
    d = request.param
    rng = np.random.default_rng(d)
    X = rng.normal(size=(400, d))
    model = train_forest(X, names(d))
    blob = export_forest_onnx(model)
    return X, model, blob, OnnxModel.from_bytes(blob, model.entry())


def test_average_path_length_hand_values():
    # c(1) = 0, c(2) = 1, c(3) = 2(ln 2 + γ) − 4/3, c(256) = 2(ln 255 + γ) − 510/256
    gamma = 0.5772156649015329
    got = average_path_length([1, 2, 3, 256])
    assert got[:2].tolist() == [0.0, 1.0]
    assert got[2] == pytest.approx(2 * (np.log(2) + gamma) - 4 / 3, rel=1e-12)
    assert got[3] == pytest.approx(2 * (np.log(255) + gamma) - 510 / 256, rel=1e-12)


def test_onnx_equals_sklearn_score_samples(fitted):
    X, model, _, onnx_model = fitted
    rng = np.random.default_rng(1)
    probe = np.vstack([X, rng.normal(scale=4.0, size=(300, X.shape[1])), X[:20] + 50.0])
    ref = model.estimator.score_samples(probe.astype(np.float32))
    got = onnx_model.outputs(probe)
    assert got.shape == (probe.shape[0],)
    assert np.max(np.abs(got - ref)) < 1e-5


def test_onnx_routes_inputs_equal_to_split_thresholds_like_sklearn():
    # Inputs sitting exactly on the float32 image of a split threshold: rounding the float64
    # thresholds to nearest float32 would send some of them down the wrong branch.
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 6))
    model = train_forest(X, names(6), n_estimators=10)
    est = model.estimator
    thr = np.concatenate([t.tree_.threshold[t.tree_.children_left >= 0] for t in est.estimators_])
    feat = np.concatenate([t.tree_.feature[t.tree_.children_left >= 0] for t in est.estimators_])
    probe = np.repeat(X[:1].astype(np.float32), len(thr), axis=0)
    probe[np.arange(len(thr)), feat] = thr.astype(np.float32)
    onnx_model = OnnxModel.from_bytes(export_forest_onnx(model), model.entry())
    assert np.max(np.abs(onnx_model.outputs(probe) - est.score_samples(probe))) < 1e-5


def test_skl2onnx_converter_gives_the_same_scores():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 6))
    model = train_forest(X, names(6), n_estimators=5)
    a = OnnxModel.from_bytes(export_forest_onnx(model, "skl2onnx"), model.entry())
    b = OnnxModel.from_bytes(export_forest_onnx(model, "native"), model.entry())
    probe = np.vstack([X, rng.normal(scale=3.0, size=(100, 6))])
    assert np.max(np.abs(a.outputs(probe) - model.estimator.score_samples(probe.astype(np.float32)))) < 1e-5
    assert np.max(np.abs(a.raw_scores(probe) - b.raw_scores(probe))) < 1e-5
    with pytest.raises(ValueError, match="converter"):
        export_forest_onnx(model, "other")  # type: ignore[arg-type]


def test_exported_graph_is_valid_and_declares_opsets(fitted):
    _, _, blob, _ = fitted
    m = onnx.load_from_string(blob)
    onnx.checker.check_model(m)
    assert {o.domain: o.version for o in m.opset_import} == {"": 17, "ai.onnx.ml": 3}
    assert [o.name for o in m.graph.output] == ["score_samples"]


def test_native_writer_is_one_tree_node_and_refuses_what_it_cannot_translate():
    X = np.random.default_rng(5).normal(size=(100, 4)).astype(np.float32)
    model = train_forest(X, names(4), n_estimators=3)
    m = onnx.load_from_string(native_forest_onnx(model.estimator, model.features))
    assert [n.op_type for n in m.graph.node] == ["TreeEnsembleRegressor", "Reshape", "Mul", "Pow", "Neg"]
    assert {p.key: p.value for p in m.metadata_props} == {
        "features": "f0,f1,f2,f3",
        "kind": "isolation_forest",
    }
    subset = IsolationForest(n_estimators=3, max_features=0.5, random_state=0).fit(X)
    with pytest.raises(ValueError, match="max_features=1.0"):
        native_forest_onnx(subset, names(4))
    single = IsolationForest(n_estimators=3, max_samples=1, random_state=0).fit(X)
    with pytest.raises(ValueError, match="single sample"):
        native_forest_onnx(single, names(4))


def test_raw_score_convention_and_threshold_semantics(fitted):
    X, model, _, onnx_model = fitted
    raw = onnx_model.raw_scores(X)
    # raw = median_train(score_samples) − score_samples: the training median is 0
    assert np.median(model.raw_scores(X)) == pytest.approx(0.0, abs=1e-12)
    assert model.threshold == pytest.approx(model.score_median - model.estimator.offset_, abs=0)
    assert model.threshold > 0
    # the threshold is sklearn's contamination cut: raw > threshold <=> predict() == -1
    assert np.array_equal(
        model.raw_scores(X) > model.threshold, model.estimator.predict(X.astype(np.float32)) == -1
    )
    flagged = np.mean(raw > model.threshold)
    assert 0.01 <= flagged <= 0.03  # contamination = 0.02
    # clear faults: every feature 8σ off -> far beyond twice the threshold -> CRITICAL
    fault = X[:50] + 8.0
    fault_raw = onnx_model.raw_scores(fault)
    assert np.all(fault_raw > 2 * model.threshold)
    assert {classify(float(r), onnx_model.threshold) for r in fault_raw} == {"CRITICAL"}


def test_training_is_deterministic_and_entry_is_complete():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(150, 6))
    a, b = train_forest(X, names(6), random_state=7), train_forest(X, names(6), random_state=7)
    assert a.score_median == b.score_median and a.offset == b.offset
    assert export_forest_onnx(a) == export_forest_onnx(b)
    e = a.entry()
    assert e["features"] == names(6) and e["n_features"] == 6
    assert e["raw_score"] == {
        "transform": "median_minus_score",
        "score_median": a.score_median,
        "offset": a.offset,
        "formula": "raw = score_median - score_samples(x)",
    }
    assert e["params"]["max_samples"] == 150 and e["params"]["n_estimators"] == 100


def test_bad_input_is_rejected():
    X = np.zeros((10, 3))
    with pytest.raises(ValueError, match="contamination"):
        train_forest(X, names(3), contamination=0.6)
    with pytest.raises(ValueError, match="n_estimators"):
        train_forest(X, names(3), n_estimators=0)
    with pytest.raises(ValueError, match="at least 2"):
        train_forest(X[:1], names(3))
    with pytest.raises(ValueError, match="non-finite"):
        train_forest(np.full((10, 3), np.inf), names(3))
    model = train_forest(np.random.default_rng(0).normal(size=(20, 3)), names(3), n_estimators=3)
    with pytest.raises(ValueError, match="expected 3 feature"):
        model.raw_scores(np.zeros((2, 4)))


def sliding_features(rng: np.random.Generator, n_readings: int) -> np.ndarray:
    """Mean and std of 100-reading windows advanced by one reading: heavily overlapping rows."""
    from numpy.lib.stride_tricks import sliding_window_view

    W = sliding_window_view(rng.normal(size=(n_readings, 4)), 100, axis=0)
    return np.concatenate([W.mean(-1), W.std(-1)], axis=1)


def test_holdout_threshold_is_the_heldout_quantile_and_generalises_better():
    default_rates, holdout_rates = [], []
    for seed in (0, 3, 4):
        F = sliding_features(np.random.default_rng(seed), 2500)
        train, fresh = F[:1401], F[1500:]  # fresh: later healthy windows, never seen
        a = train_forest(train, names(8), n_estimators=50)
        b = train_forest(train, names(8), n_estimators=50, holdout_fraction=0.3)
        assert (b.n_holdout, b.n_train) == (420, 981)
        held = b.estimator.score_samples(train[981:].astype(np.float32))
        assert b.threshold == pytest.approx(b.score_median - np.percentile(held, 2.0), abs=1e-12)
        assert b.entry()["threshold_rule"]["n_holdout"] == 420
        default_rates.append(np.mean(a.raw_scores(fresh) > a.threshold))
        holdout_rates.append(np.mean(b.raw_scores(fresh) > b.threshold))
    # the in-sample cut flags far more than 2 % of fresh healthy windows; the held-out cut fewer
    assert np.mean(default_rates) > 0.08
    assert all(h <= d for h, d in zip(holdout_rates, default_rates, strict=True))
    assert np.mean(holdout_rates) < 0.5 * np.mean(default_rates)
    with pytest.raises(ValueError, match="held-out rows"):
        train_forest(np.zeros((20, 2)) + np.arange(20)[:, None], names(2), holdout_fraction=0.3)
