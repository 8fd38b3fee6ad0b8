"""The frame rule (shared.features.frames), the features engine's frame rows and their storage."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from pydantic import ValidationError

from shared import records
from shared.features import axes_features
from shared.features.engine import FeatureEngine
from shared.features.frames import FRAME_MIN_SAMPLES, MAX_FRAMES, frame_rule, split_frames
from shared.messages import FeatureVector, Window


@pytest.mark.parametrize(
    ("n", "frames", "samples", "dropped"),
    [
        (16, 1, 16, 0),
        (256, 1, 256, 0),  # the guide's window: unchanged
        (511, 1, 511, 0),
        (512, 4, 128, 0),
        (1000, 7, 142, 6),
        (2048, 16, 128, 0),
        (2560, 20, 128, 0),  # FEMTO / 25.6 kHz snapshots
        (4096, 32, 128, 0),
        (5000, 32, 156, 8),
        (65536, 32, 2048, 0),
    ],
)
def test_frame_rule_examples(n: int, frames: int, samples: int, dropped: int) -> None:
    rule = frame_rule(n)
    assert (rule.frames, rule.samples, rule.dropped) == (frames, samples, dropped)
    assert rule.split == (frames > 1)


def test_frame_rule_bounds_for_every_length() -> None:
    for n in range(2, 70_000, 7):
        r = frame_rule(n)
        assert 1 <= r.frames <= MAX_FRAMES and r.frames * r.samples + r.dropped == n
        assert 0 <= r.dropped < r.frames or r.frames == 1 and r.dropped == 0
        if r.split:
            assert r.samples >= FRAME_MIN_SAMPLES and n >= 512
        else:
            assert r.samples == n < 512


@pytest.mark.parametrize("bad", [0, 1, -5, 2.5, True, "256"])
def test_frame_rule_refuses_bad_lengths(bad: object) -> None:
    with pytest.raises(ValueError, match="window length"):
        frame_rule(bad)  # type: ignore[arg-type]


def test_split_frames_consecutive_and_drops_the_tail() -> None:
    x = np.arange(1000.0)
    f = split_frames(np.stack([x, -x]))
    assert f.shape == (2, 7, 142)
    np.testing.assert_array_equal(f[0].reshape(-1), x[:994])
    np.testing.assert_array_equal(f[1, 3], -x[3 * 142 : 4 * 142])


def _window(n: int, axes: tuple[str, ...] = ("x",), fs: float = 25_600.0, seed: int = 0) -> Window:
    rng = np.random.default_rng(seed)
    data = {a: [float(v) for v in rng.normal(0.0, 0.3, n)] for a in axes}
    return Window(
        event_id=f"w{seed}",
        asset_id="m1",
        ts=datetime(2026, 1, 1, tzinfo=UTC),
        fs_hz=fs,
        n=n,
        axes=list(axes),
        **data,
    )


def test_short_window_vector_unchanged_without_frames() -> None:
    fv = FeatureEngine().on_window(_window(256, fs=500.0))
    assert fv.frames is None and fv.frame_samples is None
    assert len(fv.values) == 11


@pytest.mark.parametrize("axes", [("x",), ("x", "y", "z")])
def test_long_window_carries_each_frames_features(axes: tuple[str, ...]) -> None:
    w = _window(2560, axes)
    fv = FeatureEngine().on_window(w)
    assert fv.frame_samples == 128 and fv.frames is not None and len(fv.frames) == 20
    # frame 5 of the window: samples 640..767 of each axis, features in the vector's names order
    names, want = axes_features({a: np.asarray(getattr(w, a))[640:768] for a in axes})
    assert names == fv.names
    np.testing.assert_allclose(fv.frames[5], want, rtol=1e-12)
    # the whole-window values stay the window's own features
    _, whole = axes_features({a: np.asarray(getattr(w, a)) for a in axes})
    np.testing.assert_allclose(fv.values, whole, rtol=1e-12)


def test_frames_round_trip_through_the_store_point_within_influx_limits() -> None:
    fv = FeatureEngine().on_window(_window(4096, ("x", "y", "z")))
    point = records.features_to_point(fv)
    assert isinstance(point.fields["frames"], str) and len(point.fields["frames"]) < 64_000
    got = records.point_to_frames(point)
    assert got is not None and got[0] == 128
    np.testing.assert_array_equal(np.asarray(got[1]), np.asarray(fv.frames))
    assert records.point_to_features(point)[0] == fv.names  # frames are not features
    short = records.features_to_point(FeatureEngine().on_window(_window(256, fs=500.0)))
    assert "frames" not in short.fields and records.point_to_frames(short) is None


def test_feature_vector_refuses_inconsistent_frames() -> None:
    base = {"event_id": "e", "asset_id": "m1", "ts": datetime(2026, 1, 1, tzinfo=UTC), "kind": "vibration"}
    with pytest.raises(ValidationError, match="frame 1 holds 1 values"):
        FeatureVector(
            **base, names=["a", "b"], values=[1.0, 2.0], frames=[[1.0, 2.0], [1.0]], frame_samples=128
        )
    with pytest.raises(ValidationError, match="go together"):
        FeatureVector(**base, names=["a"], values=[1.0], frames=[[1.0], [2.0]])
    with pytest.raises(ValidationError, match="more than 1056 values"):
        FeatureVector(
            **base,
            names=[f"f{i}" for i in range(40)],
            values=[0.0] * 40,
            frames=[[0.0] * 40] * 30,
            frame_samples=128,
        )


def test_flagged_frames_leave_the_training_rows() -> None:
    from services.calibrator.data import Collected, Frames, frame_datasets

    rows = np.arange(12.0).reshape(6, 2)  # 3 windows × 2 frames, 2 features
    frames = Frames(rows, np.array([0, 0, 1, 1, 2, 2]), samples=128, per_window=2)
    kept = frames.without(np.array([False, False, True, False, False, True]))  # the screening flagged 2
    np.testing.assert_array_equal(kept.rows, rows[[0, 1, 3, 4]])
    np.testing.assert_array_equal(kept.window, [0, 0, 1, 2])
    c = Collected("m1", 60.0, None, counts={"vibration": 3}, frames=kept)
    datasets = {"autoencoder": (np.zeros((3, 2)), ["x_rms", "x_peak"])}
    frame_datasets(c, datasets)
    np.testing.assert_array_equal(datasets["autoencoder"][0], rows[[0, 1, 3, 4]])
    assert datasets["autoencoder"][1] == ["x_rms", "x_peak"] and c.autoencoder_rows == 4
