"""End-to-end calibration (shared.learning.calibration) and hand-off to the registry."""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest

from shared.learning import calibration, registry
from shared.learning.autoencoder import AutoencoderConfig
from shared.learning.calibration import (
    BaselineRejected,
    CalibrationConfig,
    DegenerateData,
    InsufficientData,
    ModelCheckFailed,
    calibrate,
)
from shared.learning.forest import export_forest_onnx, train_forest
from shared.learning.scoring import OnnxModel, classify
from shared.messages import ModelManifest

FAST = CalibrationConfig(n_estimators=30, autoencoder=AutoencoderConfig(epochs=20))


def data(rng: np.random.Generator, n: int, d: int, prefix: str) -> tuple[np.ndarray, list[str]]:
    F = rng.normal(size=(n, 3))
    X = F @ rng.normal(size=(3, d)) / 2 + 0.5 * rng.normal(size=(n, d)) + 10.0
    return X, [f"{prefix}_{j}" for j in range(d)]


@pytest.fixture(scope="module")
def datasets():
    rng = np.random.default_rng(0)
    return {
        "legacy": data(rng, 300, 6, "l"),
        "batch": data(rng, 300, 16, "b"),
        "autoencoder": data(rng, 300, 33, "v"),
    }


@pytest.fixture(scope="module")
def result(datasets):
    messages: list[str] = []
    res = calibrate(datasets, FAST, progress=messages.append)
    return res, messages


def test_progress_messages(result):
    _, messages = result
    assert "Collected 300 data points for the legacy forest" in messages
    assert "Training legacy forest..." in messages
    assert "Training batch forest..." in messages
    assert "Training autoencoder (20 epochs)..." in messages
    assert any(re.match(r"Legacy forest data: Baseline validated: \d+\.\d% outliers", m) for m in messages)
    assert messages[-1] == "Validated"


def test_result_has_models_entries_and_stats(result, datasets):
    res, _ = result
    assert list(res.models) == ["legacy", "batch", "autoencoder"]
    assert res.data_points == {"legacy": 300, "batch": 300, "autoencoder": 300}
    for kind, (blob, entry) in res.models.items():
        X, names = datasets[kind]
        onnx.checker.check_model(onnx.load_from_string(blob))
        assert entry["kind"] == kind and entry["features"] == names
        assert entry["baseline"]["n"] == 300 and len(entry["baseline"]["features"]) == len(names)
        assert entry["baseline"]["features"][0]["mean"] == pytest.approx(X[:, 0].mean())
        assert entry["validation"]["ok"] is True
        t = entry["training"]
        assert t["n"] == 300 and t["onnx_max_abs_diff"] < 1e-5
        assert t["train_seconds"] > 0 and t["raw_score"]["std"] > 0
    assert res.models["legacy"][1]["training"]["flagged_fraction"] == pytest.approx(0.02, abs=0.01)
    assert res.models["autoencoder"][1]["training"]["flagged_fraction"] <= 0.03
    assert res.models["autoencoder"][1]["scaler"]["clip"] == 5.0
    assert set(res.timings) >= {"validate", "legacy_train", "autoencoder_export", "total"}
    assert res.training_stats["data_points"] == res.data_points


def test_saved_models_score_like_training(result, datasets, tmp_path):
    res, _ = result
    v = registry.save_version(tmp_path, "pump-7", res.models, res.baseline_info, res.training_stats)
    manifest = registry.load_manifest(tmp_path, "pump-7", v)
    assert manifest["baseline"]["legacy"]["ok"] is True
    for kind in ("legacy", "batch", "autoencoder"):
        model = registry.load_model(tmp_path, "pump-7", v, kind)
        X, _ = datasets[kind]
        raw = model.raw_scores(X)
        entry = manifest["models"][kind]
        assert np.mean(raw) == pytest.approx(entry["training"]["raw_score"]["mean"], rel=1e-6, abs=1e-9)
        # every key calibration writes into a saved entry is declared by the typed contract
        typed = ModelManifest.model_validate(entry)
        assert typed.kind == kind and typed.file == f"{kind}.onnx" and typed.params
        typed_model = OnnxModel.from_bytes(model_bytes(tmp_path, v, kind), typed.entry())
        assert typed_model.threshold == model.threshold
        # a gross fault in every feature is CRITICAL for every model
        fault_raw = model.raw_scores(X[:5] + 20.0 * X.std(axis=0))
        assert {classify(float(r), model.threshold) for r in fault_raw} == {"CRITICAL"}


def model_bytes(root, version: str, kind: str) -> bytes:
    return registry.model_path(root, "pump-7", version, kind).read_bytes()


def test_insufficient_data_names_the_count(datasets):
    X, names = datasets["legacy"]
    with pytest.raises(InsufficientData) as exc:
        calibrate({"legacy": (X[:99], names)}, FAST)
    assert str(exc.value) == "Insufficient data for calibration: found 99 readings, need 100"
    assert (exc.value.found, exc.value.needed, exc.value.kind) == (99, 100, "legacy")
    V, vnames = datasets["autoencoder"]
    with pytest.raises(
        InsufficientData, match=r"^Insufficient data for calibration: found 299 windows, need 300$"
    ):
        calibrate({"legacy": (X, names), "autoencoder": (V[:299], vnames)}, FAST)
    cfg = CalibrationConfig(min_readings=20, n_estimators=5, autoencoder=AutoencoderConfig(epochs=2))
    assert list(calibrate({"legacy": (X[:20], names)}, cfg).models) == ["legacy"]


def test_contaminated_baseline_is_rejected_before_training(datasets):
    X, names = datasets["batch"]
    bad = X.copy()
    bad[:36, :3] += 8.0 * X[:, :3].std(axis=0)  # 12 % of the rows
    messages: list[str] = []
    with pytest.raises(BaselineRejected) as exc:
        calibrate({"legacy": datasets["legacy"], "batch": (bad, names)}, FAST, progress=messages.append)
    assert re.fullmatch(r"Baseline validation failed: \d+\.\d% outliers", str(exc.value))
    assert 0.12 <= exc.value.result.outlier_fraction <= 0.14  # the 36 fault rows (+ a few healthy tails)
    assert exc.value.kind == "batch"
    assert not any(m.startswith("Training") for m in messages)


def test_validation_can_use_the_underlying_readings(datasets):
    # Features of overlapping windows wander slowly (not independent rows) and can fail the rule...
    rng = np.random.default_rng(9)
    walk = np.cumsum(rng.normal(size=(300, 16)), axis=0)
    names = [f"b_{j}" for j in range(16)]
    with pytest.raises(BaselineRejected):
        calibrate({"batch": (walk, names)}, FAST)
    # ...so the caller may validate the readings the windows were cut from instead.
    readings = rng.normal(size=(400, 4))
    res = calibrate({"batch": (walk, names)}, FAST, validation={"batch": (readings, ["v", "i", "pf", "g"])})
    assert res.baseline_info["batch"]["n"] == 400
    with pytest.raises(ValueError, match="have no dataset"):
        calibrate({"batch": (walk, names)}, FAST, validation={"legacy": (readings, ["v", "i", "pf", "g"])})


def test_sanity_checks_catch_bad_exports(datasets, monkeypatch):
    # flagged fraction on training data above the plausible limit
    cfg = CalibrationConfig(autoencoder=AutoencoderConfig(epochs=5), max_ae_flagged=0.001)
    with pytest.raises(ModelCheckFailed, match="autoencoder: .* above its own threshold"):
        calibrate({"autoencoder": datasets["autoencoder"]}, cfg)

    # an exported graph that is not the trained model
    def wrong_export(model, converter="native"):
        X = np.random.default_rng(1).normal(size=(100, len(model.features)))
        return export_forest_onnx(train_forest(X, model.features, n_estimators=5))

    monkeypatch.setattr(calibration, "export_forest_onnx", wrong_export)
    with pytest.raises(ModelCheckFailed, match="legacy forest: ONNX output differs"):
        calibrate({"legacy": datasets["legacy"]}, FAST)


def test_bad_arguments(datasets):
    with pytest.raises(ValueError, match="unknown kind"):
        calibrate({"vibration": datasets["autoencoder"]}, FAST)
    with pytest.raises(ValueError, match="at least one"):
        calibrate({}, FAST)
    with pytest.raises(ValueError, match="names"):
        calibrate({"legacy": (datasets["legacy"][0], ["a"])}, FAST)
    with pytest.raises(ValueError, match="contamination"):
        calibrate({"legacy": datasets["legacy"]}, CalibrationConfig(contamination=0.0))
    with pytest.raises(ValueError, match="only the forests"):
        calibrate({"legacy": datasets["legacy"]}, CalibrationConfig(holdout={"autoencoder": 0.2}))


def test_holdout_config_reaches_the_batch_forest(datasets):
    cfg = CalibrationConfig(n_estimators=20, holdout={"batch": 0.3})
    res = calibrate({"legacy": datasets["legacy"], "batch": datasets["batch"]}, cfg)
    assert res.models["batch"][1]["threshold_rule"]["n_holdout"] == 90
    assert "n_holdout" not in res.models["legacy"][1]["threshold_rule"]


def test_constant_data_is_refused_and_a_single_varying_feature_suffices():
    X = np.full((120, 6), 3.0)
    with pytest.raises(DegenerateData, match="all 6 features are constant over 120 readings"):
        calibrate({"legacy": (X, [f"c{j}" for j in range(6)])}, FAST)
    X[:, 2] = np.random.default_rng(0).normal(size=120)
    res = calibrate({"legacy": (X, [f"c{j}" for j in range(6)])}, FAST)
    blob, entry = res.models["legacy"]
    assert entry["threshold"] > 1e-3
    assert OnnxModel.from_bytes(blob, entry).raw_scores(X).shape == (120,)
