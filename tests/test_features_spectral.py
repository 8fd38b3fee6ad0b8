"""Spectral, order and envelope features: golden values on synthetic signals, shapes, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.features import (
    BEARING_KEYS,
    bearing_orders,
    spectral_feature_names,
    spectral_features,
    stack_features,
)
from shared.features.spectral import G0

RPM = 1797.0
SHAFT_HZ = RPM / 60.0
# SKF 6205 drive-end bearing of the CWRU rig, orders as published by the CWRU data centre
CWRU_ORDERS = {"bpfo": 3.5848, "bpfi": 5.4152, "bsf": 4.7135, "ftf": 0.39828}


def tone(amp: float, f: float, fs: float, n: int, phase: float = 0.3) -> np.ndarray:
    return amp * np.sin(2 * np.pi * f * np.arange(n) / fs + phase)


def scalars(d: dict[str, np.ndarray]) -> dict[str, float]:
    return {k: float(v) for k, v in d.items()}


def bearing_signal(
    fault: bool, fs: float = 12_000.0, n_windows: int = 6, n: int = 4096, seed: int = 0
) -> np.ndarray:
    """[n_windows, n] windows: 1x shaft tone + white noise (+ impacts at BPFO ringing a 3 kHz mode)."""
    rng = np.random.default_rng(seed)
    total = n_windows * n
    t = np.arange(total) / fs
    x = 0.2 * np.sin(2 * np.pi * SHAFT_HZ * t) + 0.1 * rng.standard_normal(total)
    if fault:
        bpfo_hz = CWRU_ORDERS["bpfo"] * SHAFT_HZ  # 107.4 Hz
        period = 1.0 / bpfo_hz
        hits = np.arange(0.0, total / fs, period)
        hits = hits + rng.normal(0.0, 0.01 * period, hits.size)  # 1 % slip jitter
        idx = np.round(hits * fs).astype(int)
        idx = idx[(idx >= 0) & (idx < total)]
        train = np.zeros(total)
        np.add.at(train, idx, 1.0)
        th = np.arange(256) / fs
        ring = np.exp(-th / 0.0008) * np.sin(2 * np.pi * 3000.0 * th)  # decaying 3 kHz resonance
        x += np.convolve(train, ring)[:total]
    return x.reshape(n_windows, n)


# --- bearing kinematics ----------------------------------------------------------------------
def test_bearing_orders_skf_6205_match_cwru_table() -> None:
    o = bearing_orders(9, 0.3126, 1.537, 0.0)
    assert o["bpfo"] == pytest.approx(3.5848, rel=1e-4)
    assert o["bpfi"] == pytest.approx(5.4152, rel=1e-4)
    assert o["ftf"] == pytest.approx(0.39828, rel=1e-3)
    assert 2 * o["bsf"] == pytest.approx(4.7135, rel=1e-4)  # CWRU's "BSF" is twice the spin frequency
    # hand formula with a contact angle: r = d/D cos(a)
    r = 0.25 * math.cos(math.radians(15))
    o15 = bearing_orders(10, 1.0, 4.0, 15)
    expected = {"bpfo": 5 * (1 - r), "bpfi": 5 * (1 + r), "bsf": 2 * (1 - r * r), "ftf": (1 - r) / 2}
    assert o15 == pytest.approx(expected)
    assert o15["bpfo"] + o15["bpfi"] == pytest.approx(10)  # always n_balls


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 1.0, 4.0), "n_balls: must be >= 1"),
        ((9, 4.0, 4.0), "ball_d: must be smaller than pitch_d"),
        ((9, -1.0, 4.0), "ball_d: must be > 0"),
        ((9, 1.0, 4.0, 90), r"contact_angle_deg: must be in \[0, 90\)"),
    ],
)
def test_bearing_orders_errors(args: tuple[float, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bearing_orders(*args)


# --- names -------------------------------------------------------------------------------------
def test_names_follow_the_arguments() -> None:
    x = tone(1.0, 50.0, 500.0, 256)
    assert list(spectral_features(x, 500.0)) == (
        ["dominant_freq_hz"] + [f"band_{i}_energy" for i in range(8)] + ["velocity_rms_mm_s"]
    )
    full = spectral_features(x, 500.0, rpm=RPM, bearing_orders={"bpfi": 5.4, "bpfo": 3.6}, n_bands=4)
    assert list(full) == [
        "dominant_freq_hz", "order1_amp_g", "order2_amp_g", "order3_amp_g",
        "band_0_energy", "band_1_energy", "band_2_energy", "band_3_energy", "velocity_rms_mm_s",
        "env_bpfo_amp", "env_bpfo_snr", "env_bpfo_harm_amp", "env_bpfo_harm_snr",
        "env_bpfi_amp", "env_bpfi_snr", "env_bpfi_harm_amp", "env_bpfi_harm_snr",
    ]  # fmt: skip
    assert list(full) == spectral_feature_names(4, True, ("bpfi", "bpfo"))
    names, values = stack_features(full)
    assert names == list(full) and values.shape == (17,)


# --- golden values -----------------------------------------------------------------------------
@pytest.mark.parametrize(("fs", "n"), [(500.0, 256), (12_000.0, 4096), (48_000.0, 16384)])
def test_dominant_frequency_of_a_50_hz_sine(fs: float, n: int) -> None:
    x = tone(0.7, 50.0, fs, n) + 0.1 * tone(1.0, 130.0, fs, n)
    f = float(spectral_features(x, fs)["dominant_freq_hz"])
    assert f == pytest.approx(50.0, abs=0.1 * fs / n)  # within a tenth of a bin


@pytest.mark.parametrize(("amp", "f", "fs", "n"), [(1.0, 50.0, 500.0, 256), (0.5, 80.0, 12_000.0, 4096),
                                                    (0.2, 317.0, 48_000.0, 8192)])  # fmt: skip
def test_velocity_rms_of_an_acceleration_sine(amp: float, f: float, fs: float, n: int) -> None:
    expected = amp * G0 / (2 * math.pi * f) / math.sqrt(2) * 1000.0  # mm/s
    got = float(spectral_features(tone(amp, f, fs, n), fs)["velocity_rms_mm_s"])
    assert got == pytest.approx(expected, rel=0.01)


def test_velocity_band_excludes_out_of_band_tones() -> None:
    fs, n = 12_000.0, 4096
    in_band = float(spectral_features(tone(1.0, 100.0, fs, n), fs)["velocity_rms_mm_s"])
    low = float(spectral_features(tone(1.0, 3.0, fs, n), fs)["velocity_rms_mm_s"])
    high = float(spectral_features(tone(1.0, 3000.0, fs, n), fs)["velocity_rms_mm_s"])
    assert low < 0.05 * 1.0 * G0 / (2 * math.pi * 3.0) / math.sqrt(2) * 1000.0
    assert high < 1e-3 * in_band
    # fs = 20 Hz: the band's upper edge 0.9 * 10 Hz is below 10 Hz -> 0.0 by definition
    assert float(spectral_features(tone(1.0, 5.0, 20.0, 64), 20.0)["velocity_rms_mm_s"]) == 0.0


def test_band_energies_partition_the_power() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 1000)) + 3.0  # DC offset is removed first
    d = spectral_features(x, 1000.0, n_bands=8)
    total = sum(d[f"band_{i}_energy"] for i in range(8))
    np.testing.assert_allclose(total, np.var(x, axis=-1), rtol=1e-10)
    # a 50 Hz sine with whole periods at 500 Hz lies entirely in band 1 = [31.25, 62.5) Hz
    s = scalars(spectral_features(tone(2.0, 50.0, 500.0, 500), 500.0))
    assert s["band_1_energy"] == pytest.approx(2.0**2 / 2, rel=1e-10)
    assert sum(s[f"band_{i}_energy"] for i in range(8) if i != 1) < 1e-20


def test_order_amplitudes() -> None:
    fs, n = 12_000.0, 8192
    x = tone(0.3, SHAFT_HZ, fs, n) + tone(0.1, 2 * SHAFT_HZ, fs, n, phase=1.1)
    x += 0.01 * np.random.default_rng(1).standard_normal(n)
    s = scalars(spectral_features(x, fs, rpm=RPM))
    assert s["order1_amp_g"] == pytest.approx(0.3, rel=0.01)
    assert s["order2_amp_g"] == pytest.approx(0.1, rel=0.02)
    assert s["order3_amp_g"] < 0.01
    # a 1 % speed error is still found (search is +-3 %)
    s2 = scalars(spectral_features(x, fs, rpm=RPM * 1.01))
    assert s2["order1_amp_g"] == pytest.approx(0.3, rel=0.01)


def test_orders_above_nyquist_are_zero() -> None:
    fs, n = 100.0, 256  # Nyquist 50 Hz: 1x = 29.95 Hz is inside, 2x and 3x are not
    x = tone(1.0, SHAFT_HZ, fs, n) + tone(1.0, 45.0, fs, n)
    s = scalars(spectral_features(x, fs, rpm=RPM))
    assert s["order1_amp_g"] == pytest.approx(1.0, rel=0.02)
    assert s["order2_amp_g"] == 0.0 and s["order3_amp_g"] == 0.0


# --- envelope ----------------------------------------------------------------------------------
def test_envelope_detects_outer_race_impacts() -> None:
    fault = spectral_features(bearing_signal(True), 12_000.0, rpm=RPM, bearing_orders=CWRU_ORDERS)
    noise = spectral_features(bearing_signal(False, seed=1), 12_000.0, rpm=RPM, bearing_orders=CWRU_ORDERS)
    assert np.all(noise["env_bpfo_snr"] < 4.0)
    assert np.all(fault["env_bpfo_snr"] > 10.0)
    assert np.min(fault["env_bpfo_snr"]) > 3 * np.max(noise["env_bpfo_snr"])
    assert np.all(fault["env_bpfo_amp"] > 5 * noise["env_bpfo_amp"])
    # specific: the other defect frequencies do not light up
    for k in ("bpfi", "bsf", "ftf"):
        assert np.median(fault[f"env_{k}_snr"]) < 0.3 * np.median(fault["env_bpfo_snr"])


def test_envelope_snr_is_gain_independent() -> None:
    x = bearing_signal(True, n_windows=2)
    a = spectral_features(x, 12_000.0, rpm=RPM, bearing_orders=CWRU_ORDERS)
    b = spectral_features(25.0 * x, 12_000.0, rpm=RPM, bearing_orders=CWRU_ORDERS)
    np.testing.assert_allclose(b["env_bpfo_snr"], a["env_bpfo_snr"], rtol=1e-9)
    np.testing.assert_allclose(b["env_bpfo_amp"], 25.0 * a["env_bpfo_amp"], rtol=1e-9)


def test_envelope_custom_band_and_low_sample_rate() -> None:
    x = bearing_signal(True, n_windows=2)
    bpfo = {"bpfo": 3.5848}
    narrow = spectral_features(x, 12_000.0, rpm=RPM, bearing_orders=bpfo, env_band_hz=(2500, 3500))
    assert np.all(narrow["env_bpfo_snr"] > 10.0)
    # a band entirely away from the 3 kHz resonance sees only noise
    away = spectral_features(x, 12_000.0, rpm=RPM, bearing_orders=bpfo, env_band_hz=(4800, 5900))
    assert np.all(away["env_bpfo_snr"] < narrow["env_bpfo_snr"] / 3)
    # at 500 Hz the default band (50-200 Hz) cannot carry BPFO = 107 Hz: 0.0 by definition
    low = scalars(spectral_features(tone(1.0, 50.0, 500.0, 256), 500.0, rpm=RPM, bearing_orders=CWRU_ORDERS))
    for k in ("bpfo", "bpfi", "bsf"):
        assert low[f"env_{k}_amp"] == 0.0 and low[f"env_{k}_snr"] == 0.0


# --- shapes, degenerate input, errors ---------------------------------------------------------
def test_vectorised_over_leading_axes() -> None:
    x = np.random.default_rng(2).standard_normal((5, 3, 512))
    d = spectral_features(x, 12_000.0, rpm=RPM, bearing_orders=CWRU_ORDERS)
    for name, v in d.items():
        assert v.shape == (5, 3), name
    one = spectral_features(x[3, 2], 12_000.0, rpm=RPM, bearing_orders=CWRU_ORDERS)
    for name, v in one.items():
        assert v.shape == ()
        assert float(v) == pytest.approx(float(d[name][3, 2]), rel=1e-10, abs=1e-15), name


@pytest.mark.parametrize("n", [16, 17, 31, 100, 1024])
@pytest.mark.parametrize("fs", [500.0, 12_000.0, 48_000.0])
def test_any_length_and_rate_gives_finite_features(n: int, fs: float) -> None:
    x = np.random.default_rng(n).standard_normal((2, n))
    d = spectral_features(x, fs, rpm=RPM, bearing_orders=CWRU_ORDERS)
    assert list(d) == spectral_feature_names(8, True, BEARING_KEYS)
    for name, v in d.items():
        assert v.shape == (2,) and np.all(np.isfinite(v)) and np.all(v >= 0), name


@pytest.mark.parametrize("value", [0.0, 2.5])
def test_constant_signal_gives_zeros(value: float) -> None:
    d = scalars(spectral_features(np.full(64, value), 500.0, rpm=RPM, bearing_orders=CWRU_ORDERS))
    assert d == dict.fromkeys(d, 0.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"x": np.zeros(15)}, "x: too short: 15 samples on the last axis, need at least 16"),
        ({"x": np.r_[np.zeros(20), np.nan]}, "x: 1 non-finite"),
        ({"fs_hz": 0.0}, "fs_hz: must be > 0"),
        ({"fs_hz": float("nan")}, "fs_hz: must be finite"),
        ({"fs_hz": "12k"}, "fs_hz: expected a number"),
        ({"rpm": -10.0}, "rpm: must be > 0"),
        ({"bearing_orders": {"bpfo": 3.6}}, "bearing_orders: needs rpm"),
        ({"rpm": RPM, "bearing_orders": {"bpfx": 3.6}}, r"bearing_orders: unknown key\(s\) \['bpfx'\]"),
        ({"rpm": RPM, "bearing_orders": {"bpfo": 0.0}}, r"bearing_orders\['bpfo'\]: must be > 0"),
        ({"rpm": RPM, "bearing_orders": {}}, "bearing_orders: expected a non-empty mapping"),
        ({"n_bands": 0}, "n_bands: must be >= 1"),
        ({"env_band_hz": (3000.0, 2000.0)}, "env_band_hz: need 0 < lo < hi <= fs/2"),
        ({"env_band_hz": (1000.0, 7000.0)}, "env_band_hz: need 0 < lo < hi <= fs/2 = 6000.0"),
        ({"env_band_hz": 3000.0}, r"env_band_hz: expected \(lo, hi\)"),
    ],
)
def test_bad_arguments_raise_precise_errors(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"x": np.zeros(64), "fs_hz": 12_000.0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        spectral_features(**args)
