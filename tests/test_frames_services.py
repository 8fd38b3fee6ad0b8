"""Frames through the services (in-memory bus, real SQLite store, real training): the features handler
adds frame rows to long windows, the calibrator trains the autoencoder on frame rows (the minimum counts
frames; too little data is said in seconds), the scorer scores a window as the mean of its frames'
errors and refuses a window whose axes differ from the calibrated ones."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from services.features.service import FeaturesHandlers
from services.scorer.service import build as build_scorer
from shared import topics
from shared.bus import MemoryBus
from shared.features.engine import FeatureEngine
from shared.features.frames import minimum_text
from shared.learning import registry
from shared.learning.scoring import OnnxModel
from shared.messages import DeadLetter, FeatureVector, ModelAnnouncement, Score, Window
from shared.records import features_to_point, window_to_point
from shared.service import Delivery, deliver
from shared.settings import Settings
from shared.store.sqlite import SqliteStore
from tests.test_learning_services import T0, calibrate_via_bus, make_calibrator

FS = 25_600.0
N = 2_560


def window(i: int, axes: tuple[str, ...] = ("x",), *, seed: int = 0, gain: float = 1.0) -> Window:
    """A 0.1 s snapshot every 10 s (as FEMTO's): a 160 Hz tone plus broadband noise, in g."""
    rng = np.random.default_rng(seed * 10_000 + i)
    t = np.arange(N) / FS
    data = {
        a: [float(v) for v in gain * (0.2 * np.sin(2 * np.pi * 160 * t + k) + rng.normal(0, 0.1, N))]
        for k, a in enumerate(axes)
    }
    ts = T0 + timedelta(seconds=10 * i)
    return Window(event_id=f"w{seed}-{i}", asset_id="m1", ts=ts, fs_hz=FS, n=N, axes=list(axes), **data)


def store_windows(store: SqliteStore, count: int, axes: tuple[str, ...] = ("x",)) -> FeatureEngine:
    eng = FeatureEngine()
    pts = []
    for i in range(count):
        w = window(i, axes)
        pts += [window_to_point(w), features_to_point(eng.on_window(w))]
    store.write(pts)
    return eng


async def test_features_handler_publishes_frame_rows_of_a_long_window() -> None:
    handlers = FeaturesHandlers(FeatureEngine())
    out = await handlers.on_window(Delivery(topics.window("m1"), window(0, ("x", "y", "z")), "m1"))
    assert out is not None and len(out) == 1
    payload = out[0].payload
    assert isinstance(payload, FeatureVector)
    fv = FeatureVector.model_validate_json(payload.model_dump_json())  # as a consumer reads it
    assert (fv.frame_samples, len(fv.frames or [])) == (128, 20)
    assert len(fv.names) == 33 and all(len(row) == 33 for row in fv.frames or [])


async def test_26_long_windows_calibrate_on_520_frame_rows_and_the_manifest_says_so(tmp_path: Path) -> None:
    cal, store = make_calibrator(tmp_path)
    store_windows(store, 26)
    reply = await calibrate_via_bus(cal, MemoryBus(), minutes=24 * 60)
    assert reply["status"] == "completed", reply
    manifest = registry.load_manifest(tmp_path / "models", "m1", reply["models"]["autoencoder"])
    entry = manifest["models"]["autoencoder"]
    assert entry["training"]["n"] == 520
    frames = entry["frames"]
    assert (frames["frame_samples"], frames["frames_per_window"], frames["window_samples"]) == (128, 20, N)
    assert (frames["fs_hz"], frames["axes"]) == (FS, ["x"])


async def test_12_long_windows_are_insufficient_and_the_message_says_how_much_in_seconds(
    tmp_path: Path,
) -> None:
    cal, store = make_calibrator(tmp_path)
    store_windows(store, 12)
    reply = await calibrate_via_bus(cal, MemoryBus(), minutes=24 * 60)
    assert (reply["status"], reply["code"]) == ("failed", "insufficient_data")
    assert (
        "vibration data (need 300 frames of 128 samples = 1.5 s at 25.6 kHz = 15 windows of 2,560; "
        "found 12 windows (1.2 s, 240 frames))"
    ) in reply["message"]


def test_minimum_text_for_the_guides_windows() -> None:
    assert minimum_text(300, 500.0, 256, 12) == (
        "need 300 windows of 256 samples = 153.6 s at 500 Hz; found 12 windows (6.144 s)"
    )


async def calibrated_scorer(tmp_path: Path, axes: tuple[str, ...]) -> tuple[object, MemoryBus]:
    """Calibrate m1 on 30 long windows with ``axes``; a development scorer (same DATA_DIR key) with the
    announced autoencoder loaded."""
    cal, store = make_calibrator(tmp_path)
    store_windows(store, 30, axes)
    bus = MemoryBus()
    assert (await calibrate_via_bus(cal, bus, minutes=24 * 60))["status"] == "completed"
    scorer = build_scorer(
        Settings(data_dir=tmp_path, rotorwatch_env="development"), ["--model", "autoencoder"]
    )
    m = bus.retained[topics.model_announce("m1", "autoencoder")]
    await deliver(scorer, bus, m.topic, m.payload, retain=True)
    return scorer, bus


async def test_scorer_scores_a_window_as_the_mean_of_its_frames_errors(tmp_path: Path) -> None:
    scorer, bus = await calibrated_scorer(tmp_path, ("x",))
    ann = ModelAnnouncement.model_validate_json(
        bus.retained[topics.model_announce("m1", "autoencoder")].payload
    )
    model = OnnxModel.from_bytes(base64.b64decode(ann.onnx_b64), ann.manifest.entry())
    eng = FeatureEngine()
    vectors = [eng.on_window(window(100 + i, seed=1)) for i in range(3)]
    vectors.append(eng.on_window(window(200, seed=2, gain=4.0)))  # four times louder
    for fv in vectors:
        await deliver(scorer, bus, topics.features("m1", "vibration"), fv)
    scores = [Score.model_validate_json(m.payload) for m in bus.on(topics.score("m1", "autoencoder"))]
    assert len(scores) == 4
    for fv, s in zip(vectors, scores, strict=True):
        per_frame = model.raw_scores(np.asarray(fv.frames, dtype=np.float32))
        assert s.raw_score == pytest.approx(float(np.mean(per_frame)), rel=1e-6)
        whole = float(model.raw_scores(np.asarray([fv.values], dtype=np.float32))[0])
        assert s.raw_score != pytest.approx(whole, rel=1e-3)  # the frames, not the whole window
    assert scores[0].anomaly_score == scores[0].raw_score  # then the rolling mean, as for any vector
    assert scores[2].anomaly_score == pytest.approx(np.mean([s.raw_score for s in scores[:3]]))
    assert not any(s.is_anomaly for s in scores[:3]) and scores[3].raw_score > scores[3].threshold


async def test_scorer_refuses_a_window_with_other_axes_than_calibrated(tmp_path: Path) -> None:
    scorer, bus = await calibrated_scorer(tmp_path, ("x", "y", "z"))
    await deliver(
        scorer, bus, topics.features("m1", "vibration"), FeatureEngine().on_window(window(100, ("x",)))
    )
    assert bus.on(topics.score("m1", "autoencoder")) == []
    dead = [
        DeadLetter.model_validate_json(m.payload) for m in bus.on(topics.dead_letter("scorer-autoencoder"))
    ]
    assert len(dead) == 1
    assert "calibrated on axes x,y,z but this window has x; recalibrate the asset" in dead[0].reason


FEMTO = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "femto_pronostia"


async def test_femto_bearing1_2_first_10_percent_calibrates_on_screened_frames(tmp_path: Path) -> None:
    """FEMTO Bearing1_2's first 10 % of life (57 snapshots, horizontal + vertical as x, y): 5 snapshots
    stand out at ×1.2-1.5 of their neighbours' RMS, which rejected it when whole windows were screened
    (9-21 %); screened as the frame rows the autoencoder trains on, a few frames are excluded."""
    with np.load(FEMTO / "femto_Bearing1_2.npz") as z:
        acc, t_s = z["acc"][:57].astype(np.float64) * z["scale_g"], z["t_s"][:57]
    cal, store = make_calibrator(tmp_path)
    eng, pts = FeatureEngine(), []
    for i in range(57):
        axes = {"x": acc[i, :, 0].tolist(), "y": acc[i, :, 1].tolist()}
        ts = T0 + timedelta(seconds=float(t_s[i]))
        w = Window(event_id=f"b12-{i}", asset_id="m1", ts=ts, fs_hz=FS, n=N, axes=["x", "y"], **axes)
        pts += [window_to_point(w), features_to_point(eng.on_window(w))]
    store.write(pts)
    reply = await calibrate_via_bus(cal, MemoryBus(), minutes=24 * 60)
    assert reply["status"] == "completed", reply
    manifest = registry.load_manifest(tmp_path / "models", "m1", reply["models"]["autoencoder"])
    [screening] = [s for s in manifest["baseline"]["screening"] if s["what"] == "vibration frames"]
    n = manifest["models"]["autoencoder"]["training"]["n"]
    assert 0 < 57 * 20 - n <= 0.05 * 57 * 20  # some frames excluded, fewer than 5 %
    assert screening["n_flagged"] == 57 * 20 - n
