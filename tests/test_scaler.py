"""The autoencoder's scaler floor (issue 15): relative to each feature's own magnitude by default, the
published FlowFuse pipeline's absolute 0.1 as an option; recorded in the manifest; old manifests read as
absolute. Columns are built so every std and median is known by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from services.calibrator.interchange import training_config
from shared import topics
from shared.bus import MemoryBus
from shared.learning import registry
from shared.learning.autoencoder import AutoencoderConfig, train_autoencoder
from shared.learning.calibration import CalibrationConfig, calibrate
from shared.learning.scaler import ABS_EPS, REL_FLOOR, fit_scaler, floor_of, floored_std
from shared.messages import ModelAnnouncement, ModelManifest
from shared.messages.assets import TrainingParams
from tests.test_frames_services import store_windows
from tests.test_learning_services import calibrate_via_bus, make_calibrator

NAMES = ["x_rms", "x_kurtosis", "x_dead", "x_const", "x_skewness"]


def columns(n: int = 400) -> np.ndarray:
    """Five hand-checkable columns (n even, alternating signs ±1 so each std is exact):

    0. 0.5 ± 0.0018 (an RMS in g with a healthy spread of 0.0018 g): std 0.0018, median |x| 0.5;
    1. 0.5 ± 0.05: std 0.05 (10 % of its level), median |x| 0.5;
    2. identically 0 (scale 0): std 0, median |x| 0;
    3. identically 7: std 0, median |x| 7;
    4. 0 ± 0.2 (a skewness): std 0.2, median |x| 0.2.
    """
    s = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    return np.stack([0.5 + 0.0018 * s, 0.5 + 0.05 * s, 0 * s, 7.0 + 0 * s, 0.2 * s], axis=1)


def test_relative_floor_follows_each_features_own_magnitude() -> None:
    sc = fit_scaler(columns())
    np.testing.assert_allclose(sc.raw_std, [0.0018, 0.05, 0.0, 0.0, 0.2], atol=1e-12)
    np.testing.assert_allclose(sc.scale, [0.5, 0.5, 0.0, 7.0, 0.2], atol=1e-12)
    assert REL_FLOOR == 0.05 and ABS_EPS == 1e-6
    # 0: max(0.0018, 0.05 * 0.5) = 0.025, not 0.1; 1: its own spread (0.05 * 0.5 = 0.025 is below it);
    # 2: the epsilon (scale 0); 3: 0.05 * 7; 4: its own spread (0.05 * 0.2 = 0.01 is below it)
    np.testing.assert_allclose(sc.std, [0.025, 0.05, 1e-6, 0.35, 0.2], rtol=1e-12)
    assert sc.floor == "relative"
    # a 2x change of the RMS (0.5 -> 1.0 g) is 20 floored sigma (the graph clips it at 5), 5 with 0.1
    assert (1.0 - sc.mean[0]) / sc.std[0] == pytest.approx(20.0)
    assert fit_scaler(columns(), rel_floor=0.001).std[0] == pytest.approx(0.0018)  # own spread
    assert (1.0 - sc.mean[0]) / fit_scaler(columns(), "absolute").std[0] == pytest.approx(5.0)


def test_absolute_floor_is_the_published_0_1_exactly() -> None:
    sc = fit_scaler(columns(), "absolute")
    assert sc.std[:4].tolist() == [0.1, 0.1, 0.1, 0.1]  # exactly the constant, whatever the spread below
    assert sc.std[4] == pytest.approx(0.2, rel=1e-12)  # above the floor: its own spread
    assert floored_std([0.0018, 0.3], [0.5, 1.0], "absolute", min_std=0.25).tolist() == [0.25, 0.3]
    assert floored_std([0.0], [0.0], "relative", abs_eps=1e-9).tolist() == [1e-9]


def test_bad_floor_settings_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="scaler_floor: expected one of relative, absolute"):
        fit_scaler(columns(), "median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rel_floor"):
        fit_scaler(columns(), rel_floor=0.0)
    with pytest.raises(ValueError, match=">= 0"):
        floored_std([-1.0], [1.0])
    with pytest.raises(ValueError, match="scaler_floor"):
        AutoencoderConfig(scaler_floor="none").check()  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="abs_eps"):
        AutoencoderConfig(abs_eps=-1.0).check()


def test_the_trained_graph_divides_by_the_floored_std_and_the_entry_records_it() -> None:
    rng = np.random.default_rng(0)
    X = columns() + rng.normal(scale=1e-4, size=(400, 5)) * np.array([1, 1, 0, 0, 1])
    model = train_autoencoder(X, NAMES, AutoencoderConfig(epochs=2))
    sc = fit_scaler(X)
    np.testing.assert_allclose(model.std, sc.std)
    row = sc.mean + np.array([0.025, 0.05, 0.0, 0.35, -0.2])  # one floored sigma each: z = (1, 1, 0, 1, -1)
    z = model.module.standardise(torch.tensor(row[None, :], dtype=torch.float32)).numpy()[0]
    np.testing.assert_allclose(z, [1, 1, 0, 1, -1], atol=2e-3)
    scaler = model.entry()["scaler"]
    assert scaler["floor"] == "relative" and scaler["rel_floor"] == REL_FLOOR and scaler["abs_eps"] == ABS_EPS
    np.testing.assert_allclose(scaler["std"], sc.std)
    np.testing.assert_allclose(scaler["raw_std"], sc.raw_std)
    np.testing.assert_allclose(scaler["scale"], sc.scale)
    assert model.entry()["params"]["scaler_floor"] == "relative"


def old_entry() -> dict:
    """A manifest entry as calibrations wrote it before the floor was recorded (absolute 0.1)."""
    return {
        "kind": "autoencoder",
        "algorithm": "autoencoder",
        "features": ["x_rms", "x_peak"],
        "n_features": 2,
        "input": "input",
        "output": "error",
        "scaler": {
            "mean": [0.5, 1.2],
            "std": [0.1, 0.3],
            "min_std": 0.1,
            "clip": 5.0,
            "formula": "z = clip((x - mean) / std, -clip, clip); std already floored at min_std",
        },
        "raw_score": {"transform": "identity", "formula": "raw = mean_j (zhat_j - z_j)^2"},
        "threshold": 0.02,
    }


def test_an_old_manifest_loads_as_absolute_and_keeps_its_signed_form() -> None:
    old = old_entry()
    manifest = ModelManifest.model_validate(old)
    assert manifest.scaler is not None and manifest.scaler.floor is None
    assert floor_of(old["scaler"]) == "absolute" and floor_of(None) == "absolute"
    # the entry the signature covers is unchanged: no floor fields appear in an old entry
    assert manifest.entry()["scaler"] == old["scaler"]
    new = {**old, "scaler": {**old["scaler"], "floor": "relative", "rel_floor": 0.02, "abs_eps": 1e-6}}
    assert floor_of(ModelManifest.model_validate(new).entry()["scaler"]) == "relative"  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="floor"):
        ModelManifest.model_validate({**old, "scaler": {**old["scaler"], "floor": "median"}})


def test_training_parameters_choose_the_floor_per_preset() -> None:
    assert training_config(None, AutoencoderConfig()).scaler_floor == "relative"
    assert training_config(TrainingParams(), AutoencoderConfig()).scaler_floor == "relative"
    assert training_config(TrainingParams(preset="flowfuse"), AutoencoderConfig()).scaler_floor == "absolute"
    given = TrainingParams(preset="flowfuse", scaler_floor="relative")
    assert training_config(given, AutoencoderConfig()).scaler_floor == "relative"


@pytest.mark.parametrize("floor", ["relative", "absolute"])
def test_calibration_writes_the_floor_into_a_valid_manifest(floor: str) -> None:
    """Calibration end to end (validate, train, export to ONNX, check): the entry it hands the registry
    names the floor and the floored std per feature, and loads as a manifest."""
    rng = np.random.default_rng(1)
    X = columns(300) + rng.normal(scale=1e-3, size=(300, 5))
    cfg = CalibrationConfig(autoencoder=AutoencoderConfig(epochs=20, scaler_floor=floor))  # type: ignore[arg-type]
    res = calibrate({"autoencoder": (X, NAMES)}, cfg)
    _, entry = res.models["autoencoder"]
    scaler = ModelManifest.model_validate(entry).entry()["scaler"]
    assert scaler["floor"] == floor and floor_of(scaler) == floor  # type: ignore[arg-type,index]
    np.testing.assert_allclose(scaler["std"], fit_scaler(X, floor).std)  # type: ignore[arg-type,index]
    assert ("scale" in scaler) == (floor == "relative")  # type: ignore[operator]


async def test_the_calibrator_saves_and_announces_the_floor(tmp_path: Path) -> None:
    """Through the calibrator service (in-memory bus, real SQLite store, real training): the registry's
    manifest and the signed announcement carry the floor and the floored std of every feature."""
    cal, store = make_calibrator(tmp_path)
    store_windows(store, 26)
    bus = MemoryBus()
    reply = await calibrate_via_bus(cal, bus, minutes=24 * 60)
    assert reply["status"] == "completed", reply
    saved = registry.load_manifest(tmp_path / "models", "m1", reply["models"]["autoencoder"])
    sc = saved["models"]["autoencoder"]["scaler"]
    assert sc["floor"] == "relative" and len(sc["std"]) == len(sc["raw_std"]) == len(sc["scale"]) == 11
    floor = np.maximum(np.asarray(sc["raw_std"]), REL_FLOOR * np.asarray(sc["scale"]))
    np.testing.assert_allclose(sc["std"], np.maximum(floor, ABS_EPS))
    retained = bus.retained[topics.model_announce("m1", "autoencoder")].payload
    ann = ModelAnnouncement.model_validate_json(retained)
    assert ann.manifest.scaler is not None and ann.manifest.scaler.floor == "relative"
    assert ann.manifest.scaler.std == sc["std"]
