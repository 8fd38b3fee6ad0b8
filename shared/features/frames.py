"""Frames: how a vibration window is split into rows of independent information (pure, no I/O).

The guide's sensor sends 256 samples at 500 Hz per window, and its autoencoder needs
``MIN_WINDOWS`` = 300 rows of 11 features per axis. A row's features (RMS, peak, kurtosis, ...)
need enough samples to be stable, but a 2,560-sample window at 25.6 kHz is not "one row": it holds
as much signal as ten of the guide's windows. So the unit the minimum counts is the *frame*, a
stretch of at least :data:`FRAME_MIN_SAMPLES` samples, not the message that carried it.

The rule (from the window length ``n`` alone, so the features service, the calibrator and the
scorer agree without talking to each other)::

    n <  SPLIT_FROM (512):  k = 1 frame of L = n samples        (the guide's windows, unchanged)
    n >= SPLIT_FROM:        k = min(n // 128, 32) frames of L = n // k samples

Frames are consecutive and equal; the trailing ``n - k * L`` samples (fewer than ``k``: less
than 1/128 of the window and at most 31 samples) are dropped. Examples: 2,560
samples → 20 frames of 128; 4,096 → 32 of 128; 65,536 → 32 of 2,048; 511 → 1 of 511.

Why: ``SPLIT_FROM`` = two of the guide's 256-sample windows, so any window the guide's pipeline
would count as one row stays one row; a frame is never shorter than 128 samples (half the guide's
window, enough for stable moments: kurtosis of Gaussian noise over 128 samples has a standard
deviation of ~0.4); at most 32 frames per window keeps a feature vector's frame rows small (32 ×
33 numbers, ~22 KB as JSON) and the scorer's work per window bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shared.features.vibration import VIBRATION_FEATURES

#: Shortest frame (samples) when a window is split.
FRAME_MIN_SAMPLES = 128
#: Most frames per window.
MAX_FRAMES = 32
#: Windows of at least this many samples (two of the guide's 256-sample windows) are split.
SPLIT_FROM = 2 * 256
#: The rule in one line (recorded in model manifests).
RULE_TEXT = (
    f"n >= {SPLIT_FROM}: k = min(n // {FRAME_MIN_SAMPLES}, {MAX_FRAMES}) frames of n // k samples "
    "(remainder dropped); else 1 frame (the window)"
)


@dataclass(frozen=True)
class FrameRule:
    """How one window length splits: ``frames`` frames of ``samples`` samples each (``dropped`` left)."""

    window: int
    frames: int
    samples: int

    @property
    def dropped(self) -> int:
        """Trailing samples of the window not in any frame."""
        return self.window - self.frames * self.samples

    @property
    def split(self) -> bool:
        """More than one frame per window."""
        return self.frames > 1

    def seconds(self, fs_hz: float) -> float:
        """Duration of one frame, s (``samples / fs_hz``)."""
        return self.samples / fs_hz


def frame_rule(n: int) -> FrameRule:
    """The frame rule for windows of ``n`` samples (see the module docstring); ``ValueError`` for n < 2."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 2:
        raise ValueError(f"n: a window length of at least 2 samples, got {n!r}")
    n = int(n)
    if n < SPLIT_FROM:
        return FrameRule(n, 1, n)
    k = min(n // FRAME_MIN_SAMPLES, MAX_FRAMES)
    return FrameRule(n, k, n // k)


def split_frames(x: Any) -> NDArray[np.float64]:
    """``x [..., n]`` → ``[..., k, L]`` by :func:`frame_rule` (float64; the remainder dropped)."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim < 1:
        raise ValueError("x: expected an array with samples on its last axis")
    rule = frame_rule(a.shape[-1])
    used = a[..., : rule.frames * rule.samples]
    return used.reshape(*a.shape[:-1], rule.frames, rule.samples)


def rate_text(fs_hz: float) -> str:
    """A sample rate for people: ``25.6 kHz``, ``500 Hz``."""
    return f"{fs_hz / 1000:g} kHz" if fs_hz >= 1000 else f"{fs_hz:g} Hz"


def need_text(min_rows: int, fs_hz: float, n: int) -> str:
    """How much signal ``min_rows`` training rows take for windows of ``n`` samples at ``fs_hz`` Hz
    (seconds = samples / fs_hz): ``need 300 frames of 128 samples = 1.5 s at 25.6 kHz = 15 windows of
    2,560``, or ``need 300 windows of 256 samples = 153.6 s at 500 Hz`` when a window is one frame."""
    rule = frame_rule(n)
    if not rule.split:
        return (
            f"need {min_rows:,} windows of {n:,} samples = {min_rows * n / fs_hz:.4g} s at {rate_text(fs_hz)}"
        )
    windows = -(-min_rows // rule.frames)
    need_s = min_rows * rule.samples / fs_hz
    return (
        f"need {min_rows:,} frames of {rule.samples:,} samples = {need_s:.4g} s at {rate_text(fs_hz)} = "
        f"{windows:,} windows of {n:,}"
    )


def minimum_text(min_rows: int, fs_hz: float, n: int, found_windows: int) -> str:
    """:func:`need_text` and what ``found_windows`` windows hold: ``...; found 12 windows (1.2 s, 240
    frames)`` (``found 12 windows (6.144 s)`` when a window is one frame)."""
    rule = frame_rule(n)
    found = f"{found_windows * n / fs_hz:.4g} s"
    if rule.split:
        found += f", {found_windows * rule.frames:,} frames"
    return f"{need_text(min_rows, fs_hz, n)}; found {found_windows:,} windows ({found})"


def feature_axes(names: list[str]) -> list[str]:
    """The axes of the vibration feature names ``{axis}_{feature}`` among ``names`` (``feature`` one of
    :data:`~shared.features.vibration.VIBRATION_FEATURES`), in order of first appearance."""
    split = (n.split("_", 1) for n in names if "_" in n)
    return list(dict.fromkeys(axis for axis, feature in split if feature in VIBRATION_FEATURES))
