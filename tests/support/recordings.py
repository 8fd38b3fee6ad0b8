"""Synthetic vibration recordings for replay tests (``scripts/replay.py`` reads them as generic npz)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shared.synth import vibration_window

#: The ESP32 default: 256-sample windows at 500 Hz.
FS_HZ, WINDOW = 500.0, 256


def vibration_recording(
    path: Path,
    segments: list[tuple[int, str | None]],
    seed: int,
    t0_s: float,
    *,
    fs_hz: float = FS_HZ,
    window: int = WINDOW,
    rpm: float = 1800,
) -> Path:
    """A continuous 3-axis recording (g) written as npz (``x``, ``y``, ``z``, ``fs_hz``): ``(count,
    fault)`` segments of ``window``-sample windows (fault ``None`` = healthy, else a
    :func:`shared.synth.vibration_window` fault at severity "severe"); ``t0_s`` is the data time of the
    first sample in seconds (the fault signals are phase-continuous from it)."""
    rng = np.random.default_rng(seed)
    parts, t = [], t0_s
    for count, fault in segments:
        for _ in range(count):
            parts.append(
                vibration_window(rng, fs_hz, window, rpm=rpm, fault=fault, severity="severe", t0_s=t)
            )
            t += window / fs_hz
    data = np.concatenate(parts, axis=1)
    np.savez(path, x=data[0], y=data[1], z=data[2], fs_hz=np.float64(fs_hz))
    return path
