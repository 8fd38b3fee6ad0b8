"""The named steps behind spectral_features and LegacyFeatureState, tested on their own."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.features import bearing_orders, spectral_features
from shared.features._spectrum import bin_freqs, window
from shared.features.envelope import (
    ENV_TOL,
    band_carries,
    check_defect_orders,
    check_env_band,
    envelope_features,
)
from shared.features.legacy import pf_efficiency_score, spike_count
from shared.features.spectral import (
    G0,
    band_energies,
    dominant_frequency,
    order_amplitudes,
    velocity_rms,
)

FS = 12_000.0
N = 4096
RPM = 1797.0


def _signal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    t = np.arange(N) / FS
    return 0.1 * rng.standard_normal(shape + (N,)) + 0.3 * np.sin(2 * np.pi * RPM / 60.0 * t)


def test_spectral_features_is_the_composition_of_its_steps() -> None:
    x = _signal(np.random.default_rng(1), (2, 3))
    orders = bearing_orders(9, 0.3126, 1.537)
    got = spectral_features(x, FS, rpm=RPM, bearing_orders=orders, n_bands=5)
    d = x - x.mean(axis=-1, keepdims=True)
    xh = np.fft.rfft(d * window("hann", N), axis=-1)
    want = {"dominant_freq_hz": dominant_frequency(np.abs(xh), FS / N)}
    want |= order_amplitudes(d, FS, RPM / 60.0)
    energies = band_energies(d, 5)
    want |= {f"band_{i}_energy": energies[..., i] for i in range(5)}
    want["velocity_rms_mm_s"] = velocity_rms(xh, N, FS)
    want |= envelope_features(xh, N, FS, RPM / 60.0, orders, check_env_band(None, FS))
    assert list(got) == list(want)
    for k in got:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
        assert got[k].shape == (2, 3)


def test_band_energies_sum_to_the_variance() -> None:
    x = _signal(np.random.default_rng(2), (4,))
    d = x - x.mean(axis=-1, keepdims=True)
    energies = band_energies(d, 7)
    assert energies.shape == (4, 7)
    np.testing.assert_allclose(energies.sum(axis=-1), x.var(axis=-1), rtol=1e-12)


@pytest.mark.parametrize("f_hz", [25.0, 160.0, 900.0])
def test_velocity_rms_of_a_sine(f_hz: float) -> None:
    amp_g = 0.5
    x = amp_g * np.sin(2 * np.pi * f_hz * np.arange(N) / FS)
    xh = np.fft.rfft((x - x.mean()) * window("hann", N))
    want = amp_g * G0 / (2 * np.pi * f_hz) / math.sqrt(2) * 1000.0
    assert velocity_rms(xh, N, FS) == pytest.approx(want, rel=0.01)


def test_velocity_rms_is_zero_when_the_band_is_empty() -> None:
    xh = np.fft.rfft(np.ones((3, 32)))
    np.testing.assert_array_equal(velocity_rms(xh, 32, 20.0), np.zeros(3))


def test_order_amplitudes_read_a_tone_and_zero_above_nyquist() -> None:
    fs, n = 500.0, 1000
    t = np.arange(n) / fs
    d = 0.2 * np.sin(2 * np.pi * 100.0 * t)  # 1x at 100 Hz; 3x = 300 Hz > nyquist
    amps = order_amplitudes(d, fs, 100.0)
    assert amps["order1_amp_g"] == pytest.approx(0.2, rel=0.003)
    assert amps["order3_amp_g"] == 0.0


def test_dominant_frequency_is_zero_for_a_zero_spectrum() -> None:
    np.testing.assert_array_equal(dominant_frequency(np.zeros((2, 9)), 1.0), np.zeros(2))


def test_band_carries_limits() -> None:
    lo, hi = 1200.0, 4800.0
    assert band_carries(100.0, lo, hi)
    assert not band_carries(lo, lo, hi)
    edge = (hi - lo) / (1.0 + ENV_TOL)  # envelope content only below the bandwidth hi - lo
    assert band_carries(edge - 1.0, 5000.0, 5000.0 + hi - lo)
    assert not band_carries(edge + 1.0, 5000.0, 5000.0 + hi - lo)


def test_envelope_features_are_zero_when_the_band_cannot_carry_the_defect() -> None:
    xh = np.fft.rfft(np.random.default_rng(3).standard_normal((2, 256)))
    out = envelope_features(xh, 256, 500.0, RPM / 60.0, {"bpfo": 3.58}, check_env_band(None, 500.0))
    assert list(out) == ["env_bpfo_amp", "env_bpfo_snr", "env_bpfo_harm_amp", "env_bpfo_harm_snr"]
    for v in out.values():
        np.testing.assert_array_equal(v, np.zeros(2))


def test_check_defect_orders_keeps_canonical_order_and_names_the_argument() -> None:
    assert list(check_defect_orders({"ftf": 0.4, "bpfo": 3.0}, 30.0)) == ["bpfo", "ftf"]
    assert check_defect_orders(None, None) == {}
    with pytest.raises(ValueError, match="bearing_orders: needs rpm"):
        check_defect_orders({"bpfo": 3.0}, None)
    with pytest.raises(ValueError, match=r"bearing_orders\['bpfi'\]"):
        check_defect_orders({"bpfi": 0.0}, 30.0)


def test_check_env_band() -> None:
    assert check_env_band(None, 12_000.0) == (1200.0, 4800.0)
    assert check_env_band((100, 200), 1000.0) == (100.0, 200.0)
    with pytest.raises(ValueError, match="env_band_hz"):
        check_env_band((100.0, 600.0), 1000.0)
    with pytest.raises(ValueError, match="env_band_hz"):
        check_env_band("ab", 1000.0)


def test_bin_freqs() -> None:
    np.testing.assert_array_equal(bin_freqs(8, 16.0), [0.0, 2.0, 4.0, 6.0, 8.0])


def test_legacy_steps() -> None:
    flat = np.full(10, 15.0)
    assert spike_count(flat, 2.0) == 0.0
    currents = np.array([15.0] * 9 + [30.0])
    assert spike_count(currents, 2.0) == 1.0
    assert spike_count(np.array([15.0] * 9 + [0.0]), 2.0) == 1.0  # a drop is a spike too
    assert pf_efficiency_score(0.92, 0.4) == pytest.approx(86.667, abs=1e-3)
    assert pf_efficiency_score(0.3, 0.4) == 0.0
