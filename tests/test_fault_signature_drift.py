"""Baseline screening under slow drift (shared.learning.screening): run-in, wear-in and temperature move the
level of a healthy calibration slowly; that must not be rejected, while spikes and jumps still are (or are
excluded and stated). Synthetic series: a trend × 3 % (windows) or a trend + Gaussian noise (readings),
300 rows, fixed seeds."""

from __future__ import annotations

import numpy as np
import pytest

from shared.learning.screening import screen, screen_windows

N = 300
t = np.arange(N) / N  # 0 .. 1 over the calibration
TRENDS = {
    "linear rise x2 (run-in, wear-in)": 2.0**t,
    "linear fall to x0.5": 0.5**t,
    "warm-up 1 -> 1.6, time constant 20 %": 1.6 - 0.6 * np.exp(-t / 0.2),
    "temperature cycle +-20 %, two periods": 1.0 + 0.2 * np.sin(4 * np.pi * t),
}


def energy(trend: np.ndarray, seed: int = 3) -> np.ndarray:
    """``x_rms`` (g) of 300 windows: 0.5 g × trend × 3 % log-normal noise."""
    return 0.5 * trend * np.exp(np.random.default_rng(seed).normal(0.0, 0.03, N))


@pytest.mark.parametrize("trend", TRENDS.values(), ids=TRENDS.keys())
def test_slow_drift_of_window_energy_is_accepted(trend: np.ndarray) -> None:
    res = screen_windows(energy(trend)[:, None], ["x_rms"])
    assert res.ok and res.n_flagged == 0, res.message()
    assert res.message().startswith("Baseline validated: 0 of 300")


def spiked(trend: np.ndarray, every: int, factor: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    rms = energy(trend)
    idx = np.arange(every // 2, N, every)
    rms[idx] *= factor
    return rms, idx


def test_drift_with_8_percent_spikes_is_rejected() -> None:
    rms, idx = spiked(TRENDS["linear rise x2 (run-in, wear-in)"], every=12)  # 25 windows ×3 = 8.3 %
    res = screen_windows(rms[:, None], ["x_rms"])
    assert not res.ok
    assert set(np.flatnonzero(res.flagged)) == set(idx)
    assert res.message().startswith("Baseline validation failed: 8.3% outliers (25 of 300 vibration windows")


def test_drift_with_3_percent_spikes_excludes_them_and_says_so() -> None:
    rms, idx = spiked(TRENDS["warm-up 1 -> 1.6, time constant 20 %"], every=30)  # 10 windows ×3
    res = screen_windows(rms[:, None], ["x_rms"])
    assert res.ok and set(np.flatnonzero(res.flagged)) == set(idx)
    assert res.message().startswith("Excluded 10 of 300 vibration windows")
    assert "trained on the other 290" in res.message()


def test_drift_with_a_jump_at_the_end_is_rejected() -> None:
    rms = energy(TRENDS["linear rise x2 (run-in, wear-in)"])
    rms[-24:] *= 3.0  # the last 8 %: a step the running median follows, caught against the whole set
    res = screen_windows(rms[:, None], ["x_rms"])
    assert not res.ok and set(np.flatnonzero(res.flagged)) >= set(range(N - 24, N))


def test_fast_run_in_is_excluded_and_stated_not_rejected() -> None:
    # ×3 decaying to ×1 with a time constant of 3 % of the set: the first windows are excluded
    rms = energy(1.0 + 2.0 * np.exp(-t / 0.03))
    res = screen_windows(rms[:, None], ["x_rms"])
    flagged = np.flatnonzero(res.flagged)
    assert res.ok and 0 < flagged.size <= 0.05 * N and flagged.max() < 15
    assert res.message().startswith(f"Excluded {flagged.size} of 300")


def readings(seed: int = 5) -> np.ndarray:
    """[300, 4] readings (V, A, PF, g) at 1 Hz with a slow warm-up drift of every signal: voltage
    225 -> 235 V (10 σ of its noise), current 14 -> 16 A, power factor 0.90 -> 0.93,
    vibration 0.15 -> 0.20 g."""
    rng = np.random.default_rng(seed)
    return np.stack(
        [
            225.0 + 10.0 * t + rng.normal(0, 1.0, N),
            14.0 + 2.0 * t + rng.normal(0, 0.3, N),
            0.90 + 0.03 * t + rng.normal(0, 0.005, N),
            0.15 + 0.05 * t + rng.normal(0, 0.01, N),
        ],
        axis=1,
    )


SIGNALS = ["voltage_v", "current_a", "power_factor", "vibration_g"]


def test_slow_drift_of_readings_is_accepted() -> None:
    res = screen(readings(), SIGNALS, what="readings")
    assert res.ok and res.n_flagged == 0, res.message()


@pytest.mark.parametrize(("every", "ok"), [(12, False), (30, True)])
def test_drifting_readings_with_voltage_spikes(every: int, ok: bool) -> None:
    X = readings()
    idx = np.arange(every // 2, N, every)
    X[idx, 0] = np.linspace(280.0, 330.0, idx.size)  # 25 (8.3 %) or 10 (3.3 %) spikes
    res = screen(X, SIGNALS, what="readings")
    assert res.ok is ok and set(np.flatnonzero(res.flagged)) == set(idx)
    assert res.per_column["voltage_v"] == idx.size


def test_drifting_readings_with_a_current_jump_are_rejected() -> None:
    X = readings()
    X[-24:, 1] *= 2.0  # the last 8 %: current doubles
    res = screen(X, SIGNALS, what="readings")
    assert not res.ok and set(np.flatnonzero(res.flagged)) >= set(range(N - 24, N))


def test_a_faulty_window_among_frames_is_found_with_frames_per_window() -> None:
    # 60 windows × 20 frames of RMS 0.5 g × 3 % noise; window 30's frames are ×1.6 (a faulty window)
    k = 20
    rms = 0.5 * np.exp(np.random.default_rng(9).normal(0.0, 0.03, 60 * k))
    rms[30 * k : 31 * k] *= 1.6
    framed = screen_windows(rms[:, None], ["x_rms"], what="vibration frames", frames_per_window=k)
    assert framed.ok and set(np.flatnonzero(framed.flagged)) == set(range(30 * k, 31 * k))
    assert framed.message().startswith("Excluded 20 of 1200 vibration frames")
    # without it the running median of 21 rows lies inside the 20 faulty frames and follows them
    assert screen_windows(rms[:, None], ["x_rms"]).n_flagged < k
    with pytest.raises(ValueError, match="frames_per_window"):
        screen_windows(rms[:, None], ["x_rms"], frames_per_window=0)
