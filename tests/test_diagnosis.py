"""Bearing-defect diagnosis against the asset's own calibrated envelope spectrum (issue 15).

The calibration stores, per envelope indicator, its healthy distribution
(:func:`shared.learning.baseline.envelope_baseline`); the manifest carries it to the health stage
(``ModelManifest.envelope_baseline``); a component is named only when its envelope amplitude rose
above ``ENVELOPE_RISE_FACTOR`` × the calibrated p95 with an SNR of at least ``envelope_snr_min`` in
``ENVELOPE_K`` of the last ``ENVELOPE_N`` windows (:mod:`shared.health.insights.envelope`).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from services.health.messages import baseline_from_manifest
from shared.features.engine import FeatureEngine
from shared.learning import registry
from shared.learning.baseline import envelope_baseline
from shared.learning.forest import export_forest_onnx, train_forest
from shared.messages import AssetConfig, BearingGeometry, ModelManifest, Window
from shared.records import features_to_point, window_to_point


# ---------------------------------------------------------------------------------------------
# Calibration: the envelope baseline from hand-made extras
# ---------------------------------------------------------------------------------------------
def test_envelope_baseline_from_hand_made_extras() -> None:
    amp = np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.10, np.nan])
    extras = {
        "env_bpfo_amp": amp,
        "env_bpfo_snr": np.full(11, 1.5),
        "env_ftf_amp": np.zeros(11),  # the band cannot carry FTF: not a baseline
        "env_bsf_amp": np.full(11, np.nan),  # no window carries it
        "order1_amp_g": np.ones(11),  # not an envelope indicator
    }
    b = envelope_baseline(extras)
    assert set(b) == {"env_bpfo_amp", "env_bpfo_snr"}
    s = b["env_bpfo_amp"]
    assert s["n"] == 10  # the NaN window is left out
    assert s["median"] == pytest.approx(0.055)
    assert s["mean"] == pytest.approx(0.055)
    assert s["mad"] == pytest.approx(0.025)  # |x - 0.055|: 0.005, 0.015, ..., 0.045 -> median 0.025
    assert s["p95"] == pytest.approx(0.0955)  # linear: 0.09 + 0.55 * 0.01
    assert s["max"] == pytest.approx(0.10)
    assert s["std"] == pytest.approx(float(np.std(amp[:10])))
    flat = {"n": 11.0, "mean": 1.5, "std": 0.0, "median": 1.5, "mad": 0.0, "p95": 1.5, "max": 1.5}
    assert b["env_bpfo_snr"] == flat


def test_envelope_baseline_needs_enough_windows_and_a_mapping() -> None:
    assert envelope_baseline({"env_bpfi_amp": np.full(9, 0.02)}) == {}
    assert set(envelope_baseline({"env_bpfi_amp": np.full(9, 0.02)}, min_windows=9)) == {"env_bpfi_amp"}
    with pytest.raises(ValueError, match="extras"):
        envelope_baseline([0.1, 0.2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="min_windows"):
        envelope_baseline({}, min_windows=0)


def test_manifest_carries_the_envelope_baseline_to_the_health_stage(tmp_path) -> None:
    rng = np.random.default_rng(0)
    model = train_forest(rng.normal(size=(60, 3)), ["a", "b", "c"], n_estimators=5)
    env = envelope_baseline({"env_bpfo_amp": np.linspace(0.01, 0.03, 40), "env_bpfo_snr": np.full(40, 1.4)})
    info = {"legacy": {"ok": True}, "signal_baseline": {}, "envelope_baseline": env}
    models = {"legacy": (export_forest_onnx(model), {**model.entry(), "kind": "legacy"})}
    v = registry.save_version(tmp_path, "m1", models, info, {})
    entry = registry.model_entries(registry.load_manifest(tmp_path, "m1", v))["legacy"]
    assert entry.envelope_baseline is not None
    assert entry.envelope_baseline["env_bpfo_amp"].p95 == pytest.approx(env["env_bpfo_amp"]["p95"])
    assert "envelope_baseline" in entry.entry()  # signed with the entry
    base = baseline_from_manifest(entry)
    assert base["env_bpfo_amp"]["p95"] == pytest.approx(0.029)  # 0.01 + 0.95 * 0.02
    assert base["env_bpfo_amp"]["median"] == pytest.approx(0.02)
    assert base["env_bpfo_snr"]["mean"] == pytest.approx(1.4)


def test_old_manifest_without_envelope_baseline_keeps_its_entry(tmp_path) -> None:
    rng = np.random.default_rng(1)
    model = train_forest(rng.normal(size=(60, 3)), ["a", "b", "c"], n_estimators=5)
    models = {"legacy": (export_forest_onnx(model), {**model.entry(), "kind": "legacy"})}
    v = registry.save_version(tmp_path, "m1", models, {"legacy": {"ok": True}}, {})
    entry = registry.model_entries(registry.load_manifest(tmp_path, "m1", v))["legacy"]
    assert entry.envelope_baseline is None
    assert "envelope_baseline" not in entry.entry()  # old signatures stay valid
    assert not any(k.startswith("env_") for k in baseline_from_manifest(entry))
    assert ModelManifest.model_validate(entry.entry()).envelope_baseline is None


async def test_calibration_stores_the_envelope_baseline_of_its_windows(tmp_path: Path) -> None:
    """Through the calibrator (in-memory bus, SQLite store, the features engine with rpm and bearing
    orders): the manifest keeps the envelope baseline of the calibration windows, and the announced
    entries carry it."""
    from tests.test_learning_services import T0, make_calibrator
    from tests.test_real_calibration_acceptance import calibrate

    rng = np.random.default_rng(3)
    eng = FeatureEngine()
    eng.configs["m1"] = AssetConfig(
        asset_id="m1", rpm=1800.0, bearing=BearingGeometry(n_balls=13, ball_diameter=3.5, pitch_diameter=25.6)
    )  # FEMTO's test bearing: BPFO 168.3 Hz, BPFI 221.7 Hz, BSF 107.7 Hz, FTF 12.9 Hz
    windows = [
        Window(
            event_id=f"w{i}",
            asset_id="m1",
            ts=T0 + timedelta(seconds=10.0 * i),
            fs_hz=25_600.0,
            n=2560,
            axes=["x"],
            x=(0.3 * rng.standard_normal(2560)).tolist(),
        )
        for i in range(60)
    ]
    cal, store = make_calibrator(tmp_path)
    store.write([p for w in windows for p in (window_to_point(w), features_to_point(eng.on_window(w)))])
    reply = await calibrate(cal)
    assert reply["status"] == "completed", reply
    manifest = registry.load_manifest(tmp_path / "models", "m1", reply["models"]["autoencoder"])
    env = manifest["baseline"]["envelope_baseline"]
    assert set(env) == {f"env_{d}_{k}" for d in ("bpfo", "bpfi", "bsf", "ftf") for k in ("amp", "snr")}
    assert 0.95 * 60 <= env["env_bpfo_amp"]["n"] <= 60  # the screening may exclude a few windows
    assert 0 < env["env_bpfo_amp"]["median"] < env["env_bpfo_amp"]["p95"] <= env["env_bpfo_amp"]["max"]
    entry = registry.model_entries(manifest)["autoencoder"]
    assert entry.envelope_baseline is not None and set(entry.envelope_baseline) == set(env)
