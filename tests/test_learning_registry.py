"""On-disk model registry (shared.learning.registry): layout, atomic versions, manifests, safety."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import numpy as np
import pytest

from shared.learning import registry
from shared.learning.forest import export_forest_onnx, train_forest


@pytest.fixture(scope="module")
def legacy_model():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 6))
    model = train_forest(X, [f"f{i}" for i in range(6)], n_estimators=10)
    return X, model, export_forest_onnx(model)


def save(tmp_path, legacy_model, asset="motor-1", now=None, stats=None):
    _, model, blob = legacy_model
    return registry.save_version(
        tmp_path,
        asset,
        {"legacy": (blob, model.entry())},
        {"legacy": {"ok": True}},
        stats or {"n": 150},
        now=now,
    )


def test_round_trip_layout_and_manifest(tmp_path, legacy_model):
    X, model, blob = legacy_model
    v = save(tmp_path, legacy_model, now=datetime(2026, 11, 23, 6, 15, 0, tzinfo=UTC))
    assert registry.VERSION_RE.match(v) and v.startswith("v20261123T061500Z-")
    vdir = tmp_path / "motor-1" / v
    assert sorted(p.name for p in vdir.iterdir()) == ["legacy.onnx", "manifest.json"]
    assert (vdir / "legacy.onnx").read_bytes() == blob
    m = registry.load_manifest(tmp_path, "motor-1", v)
    assert m["schema"] == 1 and m["asset_id"] == "motor-1" and m["version"] == v
    assert m["created_at"] == "2026-11-23T06:15:00.000000+00:00"
    entry = m["models"]["legacy"]
    assert entry["file"] == "legacy.onnx" and entry["bytes"] == len(blob)
    assert entry["sha256"] == hashlib.sha256(blob).hexdigest()
    assert entry["threshold"] == model.threshold and entry["features"] == model.features
    assert m["baseline"] == {"legacy": {"ok": True}} and m["training"] == {"n": 150}
    assert {"numpy", "onnxruntime", "scikit-learn", "python"} <= set(m["libraries"])
    loaded = registry.load_model(tmp_path, "motor-1", v, "legacy")
    np.testing.assert_allclose(loaded.raw_scores(X), model.raw_scores(X), atol=1e-5)
    assert registry.list_assets(tmp_path) == ["motor-1"]
    assert not any(p.name.startswith(".tmp") for p in (tmp_path / "motor-1").iterdir())


def test_latest_and_list_versions(tmp_path, legacy_model):
    assert registry.latest_version(tmp_path, "m") is None and registry.list_versions(tmp_path, "m") == []
    t0 = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)
    v_late = save(tmp_path, legacy_model, "m", now=datetime(2026, 1, 2, tzinfo=UTC))
    v_early = save(tmp_path, legacy_model, "m", now=t0)
    # two versions within the same second are ordered by created_at (microseconds)
    v_same1 = save(tmp_path, legacy_model, "m", now=datetime(2026, 1, 3, 0, 0, 0, 1, tzinfo=UTC))
    v_same2 = save(tmp_path, legacy_model, "m", now=datetime(2026, 1, 3, 0, 0, 0, 900, tzinfo=UTC))
    (tmp_path / "m" / ".tmp-v20990101T000000Z-abcdef").mkdir()  # an interrupted write: ignored
    (tmp_path / "m" / "v20990101T000000Z-abcdef").mkdir()  # no manifest: ignored
    (tmp_path / "m" / "notes.txt").write_text("x")
    assert registry.list_versions(tmp_path, "m") == [v_early, v_late, v_same1, v_same2]
    assert registry.latest_version(tmp_path, "m") == v_same2
    assert registry.delete_version(tmp_path, "m", v_same2)
    assert registry.latest_version(tmp_path, "m") == v_same1


def test_hand_edited_threshold_is_picked_up_on_reload(tmp_path, legacy_model):
    v = save(tmp_path, legacy_model)
    path = tmp_path / "motor-1" / v / "manifest.json"
    doc = json.loads(path.read_text())
    doc["models"]["legacy"]["threshold"] = 0.4242
    path.write_text(json.dumps(doc))
    assert registry.load_model(tmp_path, "motor-1", v, "legacy").threshold == 0.4242
    doc["models"]["legacy"]["threshold"] = -1
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="threshold"):
        registry.load_manifest(tmp_path, "motor-1", v)


@pytest.mark.parametrize(
    "bad", ["..", ".", "../etc", "a/b", "", "x" * 65, "a\x00b", "a b", "/abs", "m+", "#"]
)
def test_hostile_asset_ids_are_rejected(tmp_path, legacy_model, bad):
    with pytest.raises(ValueError, match="invalid asset id"):
        save(tmp_path, legacy_model, asset=bad)
    with pytest.raises(ValueError, match="invalid asset id"):
        registry.latest_version(tmp_path, bad)
    with pytest.raises(ValueError, match="invalid asset id"):
        registry.delete_asset(tmp_path, bad)
    assert list(tmp_path.iterdir()) == []


def test_hostile_versions_and_kinds_are_rejected(tmp_path, legacy_model):
    v = save(tmp_path, legacy_model)
    for bad in ("../motor-1", "v1", v + "/..", "latest"):
        with pytest.raises(ValueError, match="invalid model version"):
            registry.load_manifest(tmp_path, "motor-1", bad)
    with pytest.raises(ValueError, match="unknown model kind"):
        registry.load_model(tmp_path, "motor-1", v, "../manifest")
    with pytest.raises(registry.ModelNotFound, match="no batch model"):
        registry.load_model(tmp_path, "motor-1", v, "batch")
    with pytest.raises(registry.ModelNotFound):
        registry.load_manifest(tmp_path, "motor-1", "v20000101T000000Z-000000")


def test_invalid_content_writes_nothing(tmp_path, legacy_model):
    with pytest.raises(ValueError, match="not valid JSON"):
        save(tmp_path, legacy_model, stats={"loss": float("nan")})
    _, model, blob = legacy_model
    with pytest.raises(ValueError, match="unknown model kind"):
        registry.save_version(tmp_path, "motor-1", {"forest": (blob, model.entry())}, {}, {})
    with pytest.raises(ValueError, match="empty"):
        registry.save_version(tmp_path, "motor-1", {"legacy": (b"", model.entry())}, {}, {})
    assert registry.list_versions(tmp_path, "motor-1") == []
    assert [p.name for p in (tmp_path / "motor-1").iterdir()] == []  # no leftover temp dir


def test_delete_asset(tmp_path, legacy_model):
    save(tmp_path, legacy_model, asset="a")
    save(tmp_path, legacy_model, asset="b")
    assert registry.delete_asset(tmp_path, "a") is True
    assert registry.delete_asset(tmp_path, "a") is False
    assert registry.latest_version(tmp_path, "a") is None
    assert registry.list_assets(tmp_path) == ["b"]


def test_model_entries_are_typed_with_the_signal_baseline(tmp_path, legacy_model):
    _, model, blob = legacy_model
    signals = {"voltage_v": {"mean": 230.0, "std": 1.5, "min": 225.0, "max": 235.0}}
    v = registry.save_version(
        tmp_path,
        "m1",
        {"legacy": (blob, {**model.entry(), "kind": "legacy"})},
        {"legacy": {"ok": True}, "signal_baseline": signals},
        {"n": 150},
    )
    manifest = registry.load_manifest(tmp_path, "m1", v)
    entry = registry.model_entries(manifest)["legacy"]
    assert entry.kind == "legacy" and entry.algorithm == "isolation_forest"
    assert entry.sha256 == hashlib.sha256(blob).hexdigest() and entry.bytes == len(blob)
    assert entry.params == model.entry()["params"] and entry.threshold == model.threshold
    assert entry.signal_baseline["voltage_v"].mean == 230.0
    manifest["models"]["legacy"]["colour"] = "red"
    with pytest.raises(ValueError, match="colour"):
        registry.model_entries(manifest)
