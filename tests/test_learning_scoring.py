"""ONNX scoring, rolling mean and severity (shared.learning.scoring)."""

from __future__ import annotations

import copy
import hashlib

import numpy as np
import pytest

from shared.learning.forest import export_forest_onnx, train_forest
from shared.learning.scoring import OnnxModel, RollingScore, classify, raw_from_output


@pytest.fixture(scope="module")
def forest():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 6))
    model = train_forest(X, [f"f{i}" for i in range(6)], n_estimators=20)
    return X, model, export_forest_onnx(model)


def test_raw_scores_follow_the_manifest_convention(forest):
    X, model, blob = forest
    m = OnnxModel.from_bytes(blob, model.entry())
    assert m.features == [f"f{i}" for i in range(6)] and m.n_features == 6
    np.testing.assert_allclose(m.raw_scores(X), model.raw_scores(X), atol=1e-5)
    # the transform is read from the entry: raw = score_median − y
    y = m.outputs(X[:3])
    assert m.raw_scores(X[:3]) == pytest.approx(model.score_median - y.astype(np.float64))
    identity = {"raw_score": {"transform": "identity"}}
    assert raw_from_output(identity, np.array([[1.5], [2.0]])).tolist() == [1.5, 2.0]


def test_threshold_comes_from_the_entry(forest, tmp_path):
    _, model, blob = forest
    entry = model.entry()
    assert OnnxModel.from_bytes(blob, entry).threshold == model.threshold
    edited = {**entry, "threshold": 0.5}
    path = tmp_path / "legacy.onnx"
    path.write_bytes(blob)
    assert OnnxModel.load(path, edited).threshold == 0.5


def test_bad_models_and_entries_are_rejected(forest):
    X, model, blob = forest
    entry = model.entry()
    with pytest.raises(ValueError, match="sha256"):
        OnnxModel.from_bytes(blob, {**entry, "sha256": hashlib.sha256(b"other").hexdigest()})
    assert OnnxModel.from_bytes(blob, {**entry, "sha256": hashlib.sha256(blob).hexdigest()}).threshold > 0
    with pytest.raises(ValueError, match="could not be loaded"):
        OnnxModel.from_bytes(b"not onnx", entry)
    for bad, msg in (
        ({k: v for k, v in entry.items() if k != "threshold"}, "missing 'threshold'"),
        ({**entry, "threshold": 0.0}, "must be > 0"),
        ({**entry, "threshold": float("nan")}, "finite"),
        ({**entry, "features": entry["features"][:5]}, "does not fit"),
        ({**entry, "output": "nope"}, "no output 'nope'"),
        ({**entry, "raw_score": {"transform": "log"}}, "transform"),
    ):
        with pytest.raises(ValueError, match=msg):
            OnnxModel.from_bytes(blob, bad)
    bad_median = copy.deepcopy(entry)
    bad_median["raw_score"]["score_median"] = None
    with pytest.raises(ValueError, match="score_median"):
        OnnxModel.from_bytes(blob, bad_median)
    m = OnnxModel.from_bytes(blob, entry)
    with pytest.raises(ValueError, match="expected 6 feature"):
        m.raw_scores(np.zeros((1, 5)))
    with pytest.raises(ValueError, match="non-finite"):
        m.raw_scores(np.full((1, 6), np.nan))


def test_rolling_score_hand_values():
    r = RollingScore(window=3)
    assert r.value is None
    assert [r.update(v) for v in (1.0, 2.0, 3.0, 4.0, 8.0)] == [1.0, 1.5, 2.0, 3.0, 5.0]
    assert len(r) == 3 and r.value == 5.0
    r.reset()
    assert r.value is None and r.update(0.3) == 0.3
    with pytest.raises(ValueError, match="finite"):
        r.update(float("nan"))
    with pytest.raises(ValueError, match="window"):
        RollingScore(window=0)


def test_classify_boundaries():
    assert classify(0.0, 1.0) == "NORMAL"
    assert classify(1.0, 1.0) == "NORMAL"  # "above" is strict
    assert classify(1.0001, 1.0) == "WARNING"
    assert classify(2.0, 1.0) == "WARNING"
    assert classify(2.0001, 1.0) == "CRITICAL"
    assert classify(-5.0, 0.1) == "NORMAL"
    with pytest.raises(ValueError, match="> 0"):
        classify(1.0, 0.0)
    with pytest.raises(ValueError, match="finite"):
        classify(float("inf"), 1.0)
