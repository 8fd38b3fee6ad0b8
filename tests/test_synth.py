"""Synthetic data: statistics of simple readings and the spectral physics of vibration windows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared import synth
from shared.messages import SimpleReadingIn

N_SIMPLE = 5000
SIGNALS = ("voltage_v", "current_a", "power_factor", "vibration_g")


def _simple(seed: int, faulty: bool, fault: str | None = None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows = [synth.simple_reading(rng, faulty, fault) for _ in range(N_SIMPLE)]
    return {k: np.array([r[k] for r in rows]) for k in (*SIGNALS, "is_faulty", "fault")}


def amplitude_spectrum(x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Single-sided peak-amplitude spectrum (rectangular window): 2|X_k|/n, in the unit of x."""
    n = x.shape[-1]
    return np.fft.rfftfreq(n, 1 / fs), 2 * np.abs(np.fft.rfft(x)) / n


def amp_at(x: np.ndarray, fs: float, f: float) -> float:
    freqs, amp = amplitude_spectrum(x, fs)
    return float(amp[np.argmin(np.abs(freqs - f))])


def envelope_spectrum(x: np.ndarray, fs: float, band: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Band-pass (FFT bins outside ``band`` zeroed), |analytic signal| via FFT, then its spectrum."""
    n = x.shape[-1]
    spec = np.fft.fft(x)
    f = np.fft.fftfreq(n, 1 / fs)
    spec[(np.abs(f) < band[0]) | (np.abs(f) > band[1])] = 0
    h = np.zeros(n)  # analytic-signal weights: 1 at DC/Nyquist, 2 for positive, 0 for negative freqs
    h[0] = 1
    if n % 2 == 0:
        h[n // 2] = 1
        h[1 : n // 2] = 2
    else:
        h[1 : (n + 1) // 2] = 2
    env = np.abs(np.fft.ifft(spec * h))
    # Hann window and 4x zero padding so a line between bins keeps its height (no scalloping loss)
    win = np.hanning(n)
    e = (env - env.mean()) * win
    return np.fft.rfftfreq(4 * n, 1 / fs), 2 * np.abs(np.fft.rfft(e, 4 * n)) / win.sum()


def value_at(freqs: np.ndarray, spec: np.ndarray, f: float) -> float:
    """The spectrum value at the bin nearest to ``f``."""
    return float(spec[np.argmin(np.abs(freqs - f))])


# ------------------------------------------------------------------------------------------
# Simple readings
# ------------------------------------------------------------------------------------------
def test_healthy_simple_readings_have_the_stated_means_and_sigmas() -> None:
    d = _simple(1, faulty=False)
    # σ/√5000 is 0.040 V, 0.004 A, 0.00014, 0.00028 g: the tolerances are ≥ 3.5 standard errors.
    expected = {
        "voltage_v": (230.0, 2.8, 0.14),
        "current_a": (15.0, 0.3, 0.015),
        "power_factor": (0.92, 0.01, 0.0005),
        "vibration_g": (0.15, 0.02, 0.001),
    }
    for name, (mean, sigma, tol) in expected.items():
        assert abs(d[name].mean() - mean) < tol, name
        assert abs(d[name].std() - sigma) < 0.05 * sigma, name  # SE of σ is σ/√(2n) = 1 %
    assert not d["is_faulty"].any()
    assert all(f is None for f in d["fault"])


@pytest.mark.parametrize(
    ("fault", "signal", "lo", "hi"),
    [
        ("voltage_spike", "voltage_v", 280.0, 330.0),
        ("vibration_jump", "vibration_g", 0.5, 1.5),
        ("pf_drop", "power_factor", 0.55, 0.75),
    ],
)
def test_each_single_signal_fault_moves_its_signal_into_the_stated_range(
    fault: str, signal: str, lo: float, hi: float
) -> None:
    d = _simple(2, faulty=True, fault=fault)
    v = d[signal]
    assert v.min() >= lo and v.max() <= hi
    assert abs(v.mean() - (lo + hi) / 2) < 0.02 * (hi - lo)  # uniform: mean at the middle
    assert d["is_faulty"].all() and set(d["fault"]) == {fault}
    for other in SIGNALS:  # the other signals stay healthy
        if other != signal:
            assert abs(d[other].mean() - synth.HEALTHY_MEAN[other]) < 4 * synth.HEALTHY_SIGMA[other] / 70


def test_jitter_keeps_the_means_but_multiplies_the_spread() -> None:
    healthy, jit = _simple(3, faulty=False), _simple(4, faulty=True, fault="jitter")
    for name in SIGNALS:
        sigma = synth.HEALTHY_SIGMA[name]
        # 5σ noise: standard error of the mean is 5σ/√5000 = 0.07σ; PF clipping at 1 shifts ≈ 0.02σ·5.
        assert abs(jit[name].mean() - synth.HEALTHY_MEAN[name]) < 0.5 * sigma, name
        assert jit[name].std() >= 3 * healthy[name].std(), name
    assert jit["power_factor"].max() <= 1.0


def test_random_fault_kinds_cover_every_kind_and_stay_within_message_bounds() -> None:
    rng = np.random.default_rng(5)
    seen = set()
    for _ in range(2000):
        r = synth.simple_reading(rng, faulty=True)
        seen.add(r["fault"])
        SimpleReadingIn(asset_id="motor_01", **{k: r[k] for k in (*SIGNALS, "is_faulty")})
        assert 0 <= r["power_factor"] <= 1 and min(r[k] for k in SIGNALS) >= 0
    assert seen == set(synth.FAULT_KINDS_SIMPLE)


def test_simple_reading_rejects_bad_arguments() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown simple fault 'bogus'"):
        synth.simple_reading(rng, True, "bogus")
    with pytest.raises(ValueError, match="healthy reading"):
        synth.simple_reading(rng, False, "pf_drop")
    with pytest.raises(ValueError, match="Generator"):
        synth.simple_reading(42, False)  # type: ignore[arg-type]


def test_simple_readings_are_reproducible_from_the_seed() -> None:
    a = [synth.simple_reading(np.random.default_rng(9), True) for _ in range(3)]
    b = [synth.simple_reading(np.random.default_rng(9), True) for _ in range(3)]
    assert a == b


# ------------------------------------------------------------------------------------------
# Vibration windows
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("fs", "rpm"), [(500, 1800), (12000, 1800), (500, 1500), (12000, 3000)])
def test_healthy_window_peaks_at_running_speed(fs: int, rpm: float) -> None:
    w = synth.vibration_window(np.random.default_rng(0), fs, fs, rpm=rpm)  # 1 s: 1 Hz bins
    assert w.shape == (3, fs) and w.dtype == np.float64
    freqs, amp = amplitude_spectrum(w, fs)
    for axis in range(3):
        assert freqs[1:][np.argmax(amp[axis, 1:])] == rpm / 60
    # 1x peak amplitudes are the documented constants (noise adds ≈ 2σ/√n ≈ 0.002 g at most)
    for axis, expected in enumerate(synth.HEALTHY_TONES_G[1.0]):
        assert amp_at(w[axis], fs, rpm / 60) == pytest.approx(expected, abs=0.005)


def test_axes_differ_x_and_y_are_a_quarter_turn_apart_and_z_is_smaller() -> None:
    fs, f1 = 12000, 30.0
    w = synth.vibration_window(np.random.default_rng(0), fs, fs, fault="imbalance", noise=False)
    spec = np.fft.rfft(w)
    k = int(f1)  # 1 Hz bins
    lag = np.angle(spec[0, k] / spec[1, k])
    assert lag == pytest.approx(math.pi / 2, abs=1e-6)  # y lags x by 90°
    r = synth.rms(w)
    assert r[2] < 0.25 * r[0]  # imbalance is radial


@pytest.mark.parametrize("fs", [500, 12000])
def test_imbalance_raises_1x_and_misalignment_raises_2x_and_axial(fs: int) -> None:
    f1 = 30.0

    def win(fault: str | None) -> np.ndarray:
        return synth.vibration_window(np.random.default_rng(1), fs, fs, fault=fault)

    healthy, imb, mis = win(None), win("imbalance"), win("misalignment")
    # 1x on x: healthy 0.05 g, imbalance 0.05 + 0.25 = 0.30 g
    assert amp_at(healthy[0], fs, f1) == pytest.approx(0.05, abs=0.005)
    assert amp_at(imb[0], fs, f1) == pytest.approx(0.30, abs=0.005)
    assert amp_at(imb[0], fs, 2 * f1) == pytest.approx(amp_at(healthy[0], fs, 2 * f1), abs=0.005)
    # 2x on x: healthy 0.02 g, misalignment 0.02 + 0.20 = 0.22 g, larger than its 1x (0.11 g)
    assert amp_at(mis[0], fs, 2 * f1) == pytest.approx(0.22, abs=0.005)
    assert amp_at(mis[0], fs, 2 * f1) > amp_at(mis[0], fs, f1)
    # axial: misalignment z 2x 0.008 + 0.15 g; imbalance leaves z alone
    assert amp_at(mis[2], fs, 2 * f1) == pytest.approx(0.158, abs=0.005)
    assert amp_at(imb[2], fs, f1) == pytest.approx(amp_at(healthy[2], fs, f1), abs=0.005)


def test_looseness_has_subharmonics_many_harmonics_and_a_truncated_waveform() -> None:
    fs, f1 = 12000, 30.0
    w = synth.vibration_window(np.random.default_rng(2), fs, 2 * fs, fault="looseness")  # 0.5 Hz bins
    healthy = synth.vibration_window(np.random.default_rng(2), fs, 2 * fs)
    y = w[1]
    for order in (0.5, 1.5, 2.5):
        assert amp_at(y, fs, order * f1) > 0.02 > 5 * amp_at(healthy[1], fs, order * f1)
    strong = [k for k in range(1, 11) if amp_at(y, fs, k * f1) > 0.02]
    assert len(strong) >= 8  # healthy has only 1x above 0.02 g
    assert sum(amp_at(healthy[1], fs, k * f1) > 0.02 for k in range(1, 11)) == 1
    clean = synth.vibration_window(np.random.default_rng(2), fs, 2 * fs, fault="looseness", noise=False)
    top = clean[1].max()
    assert np.mean(clean[1] >= top - 1e-12) > 0.05  # flat-topped: ≥ 5 % of samples at the clip level
    assert top < 0.8 * -clean[1].min()  # one-sided: the positive side is cut
    assert abs(clean.mean(axis=-1)).max() < 0.005  # AC coupled: DC removed (2 revolutions per 1/15 s)


@pytest.mark.parametrize(("fs", "n", "band"), [(12000, 12000, (2000.0, 4000.0)), (500, 2000, (100.0, 249.0))])
def test_bearing_outer_envelope_spectrum_peaks_at_bpfo(fs: int, n: int, band: tuple[float, float]) -> None:
    bpfo = 3.5848 * 30.0  # 107.544 Hz at 1800 rpm
    w = synth.vibration_window(np.random.default_rng(3), fs, n, fault="bearing_outer")
    freqs, env = envelope_spectrum(w[0], fs, band)
    sel = (freqs > 5) & (freqs < 500)
    peak = freqs[sel][np.argmax(env[sel])]
    assert abs(peak - bpfo) <= fs / n  # within one bin
    healthy = synth.vibration_window(np.random.default_rng(3), fs, n)
    _, env_h = envelope_spectrum(healthy[0], fs, band)
    assert env[sel].max() > 5 * env_h[sel].max()


def test_bearing_outer_resonance_is_where_stated() -> None:
    assert synth.bearing_resonance_hz(12000) == 3000.0
    assert synth.bearing_resonance_hz(500) == 175.0
    fs = 12000
    w = synth.vibration_window(np.random.default_rng(3), fs, fs, fault="bearing_outer", noise=False)
    healthy = synth.vibration_window(np.random.default_rng(3), fs, fs, noise=False)
    freqs, amp = amplitude_spectrum(w[0] - healthy[0], fs)  # the impulse train alone
    assert abs(freqs[np.argmax(amp)] - 3000) < 3 * 107.544  # strongest lines around the resonance


def test_bearing_inner_envelope_peaks_at_bpfi_with_running_speed_sidebands() -> None:
    fs, n, f1 = 12000, 24000, 30.0  # 0.5 Hz bins
    bpfi = 5.4152 * f1  # 162.456 Hz
    w = synth.vibration_window(np.random.default_rng(4), fs, n, fault="bearing_inner")
    freqs, env = envelope_spectrum(w[0], fs, (2000.0, 4000.0))
    sel = (freqs > 40) & (freqs < 500)  # above the 1x modulation line itself
    assert abs(freqs[sel][np.argmax(env[sel])] - bpfi) <= 0.5
    floor = np.median(env[sel])
    carrier = value_at(freqs, env, bpfi)
    for side in (bpfi - f1, bpfi + f1):  # modulation (0.625 + 0.375 cos): sidebands ≈ 0.3 × carrier
        assert 0.15 * carrier < value_at(freqs, env, side) < 0.6 * carrier
        assert value_at(freqs, env, side) > 10 * floor


def test_custom_bearing_orders_move_the_defect_frequency() -> None:
    fs = 12000
    w = synth.vibration_window(
        np.random.default_rng(5), fs, fs, fault="bearing_outer", bearing_orders={"bpfo": 3.0, "bpfi": 5.0}
    )
    freqs, env = envelope_spectrum(w[0], fs, (2000.0, 4000.0))
    sel = (freqs > 5) & (freqs < 500)
    assert freqs[sel][np.argmax(env[sel])] == 90.0  # 3.0 × 30 Hz


def test_jitter_keeps_the_mean_signal_and_raises_broadband_noise() -> None:
    fs, n = 12000, 12000
    healthy = synth.vibration_window(np.random.default_rng(6), fs, n)
    jit = synth.vibration_window(np.random.default_rng(7), fs, n, fault="jitter")
    assert amp_at(jit[0], fs, 30.0) == pytest.approx(0.05, abs=0.01)  # 1x unchanged
    assert abs(jit.mean(axis=-1)).max() < 0.01  # 5 × 0.02 g / √12000 ≈ 0.001 g standard error
    resid_h = healthy - synth.vibration_window(np.random.default_rng(0), fs, n, noise=False)
    resid_j = jit - synth.vibration_window(np.random.default_rng(0), fs, n, fault="jitter", noise=False)
    ratio = resid_j.std(axis=-1) / resid_h.std(axis=-1)
    assert np.allclose(ratio, 5.0, rtol=0.05)  # medium: σ × (1 + 4)


@pytest.mark.parametrize("fault", synth.FAULT_KINDS_VIBRATION)
@pytest.mark.parametrize("fs", [500, 12000])
def test_severities_are_ordered_by_rms(fault: str, fs: int) -> None:
    r = [
        synth.rms(synth.vibration_window(np.random.default_rng(8), fs, 4096, fault=fault, severity=s))[0]
        for s in synth.SEVERITIES
    ]
    assert r[0] < r[1] < r[2]
    healthy = synth.rms(synth.vibration_window(np.random.default_rng(8), fs, 4096))[0]
    assert healthy < r[0]


@pytest.mark.parametrize("fault", [None, *synth.FAULT_KINDS_VIBRATION])
@pytest.mark.parametrize("fs", [500, 12000])
def test_consecutive_windows_are_phase_continuous(fault: str | None, fs: int) -> None:
    n = 256
    t0 = 12.345  # arbitrary absolute start time
    whole = synth.vibration_window(np.random.default_rng(0), fs, 3 * n, fault=fault, t0_s=t0, noise=False)
    parts = [
        synth.vibration_window(rng, fs, n, fault=fault, t0_s=t0 + i * n / fs, noise=False)
        for i, rng in enumerate(np.random.default_rng(i) for i in range(3))
    ]
    assert np.allclose(np.concatenate(parts, axis=-1), whole, atol=1e-9, rtol=0)


def test_windows_are_finite_shaped_and_reproducible() -> None:
    for fault in (None, *synth.FAULT_KINDS_VIBRATION):
        a = synth.vibration_window(np.random.default_rng(11), 500, 256, fault=fault, severity="severe")
        b = synth.vibration_window(np.random.default_rng(11), 500, 256, fault=fault, severity="severe")
        assert a.shape == (3, 256) and np.isfinite(a).all() and np.array_equal(a, b)
    assert synth.vibration_window(np.random.default_rng(0), 500, 1).shape == (3, 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fs_hz": 0.0}, "fs_hz must be in"),
        ({"fs_hz": float("nan")}, "fs_hz must be a finite number"),
        ({"n": 0}, "n must be an integer"),
        ({"n": 2.5}, "n must be an integer"),
        ({"rpm": -5}, "rpm must be > 0"),
        ({"rpm": 18000, "fs_hz": 500}, "at or above Nyquist"),
        ({"fault": "rust"}, "unknown vibration fault 'rust'"),
        ({"severity": "extreme"}, "unknown severity 'extreme'"),
        ({"bearing_orders": {"bpfo": -1.0, "bpfi": 5.0}}, "bpfo must be a finite number > 0"),
        ({"bearing_orders": {"bpfo": 3.0}}, "need"),
        ({"bearing_orders": {"bpfo": 3.0, "bpfi": 5.0, "cage": 0.4}}, "unknown bearing order keys"),
    ],
)
def test_vibration_window_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    args = {"fs_hz": 500.0, "n": 256, **kwargs}
    with pytest.raises(ValueError, match=message):
        synth.vibration_window(np.random.default_rng(0), **args)


def test_rms_is_the_root_mean_square() -> None:
    assert synth.rms(np.array([3.0, -4.0, 3.0, -4.0])) == pytest.approx(math.sqrt(12.5))
    assert np.allclose(synth.rms(np.array([[1.0, -1.0], [2.0, 2.0]])), [1.0, 2.0])
    with pytest.raises(ValueError, match="at least one sample"):
        synth.rms(np.array([]))
