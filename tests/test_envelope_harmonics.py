"""Harmonic envelope evidence and the family with the strongest rise (issue 15, session 2).

Features (:mod:`shared.features.envelope`): ``env_{d}_harm_amp`` sums the envelope amplitudes at the
harmonics 1-3 of f_d that no other defect shares; ``env_{d}_harm_snr`` is that sum over the summed
nearby floors. Rule (:mod:`shared.health.insights.envelope`): a window's evidence at d rose when its
harmonic amplitude reached 2x and its harmonic SNR 1.3x their calibrated 95th percentiles, and d has
the strongest SNR rise; a component is named from 4 of the last 6 windows.

Signals are hand-checkable: an amplitude-modulated carrier ``(1 + sum_h m_h cos(2 pi h f t)) cos(2 pi
fc t)`` has the envelope ``1 + sum_h m_h cos(2 pi h f t)``, so its envelope spectrum shows m_h at h f.
"""

from __future__ import annotations

import numpy as np
import pytest

from shared.features import spectral_features
from shared.features.envelope import distinct_harmonics
from shared.health.assessor import HealthAssessor
from shared.health.insights.envelope import window_flag
from shared.health.insights.envelope_levels import HarmonicRise, strongest
from shared.learning.baseline import envelope_baseline
from shared.messages import AssetConfig, BearingGeometry

FS, N = 12_000.0, 2048
DF = FS / N  # 5.859375 Hz
#: SKF 6205 orders as the CWRU README lists them (its "BSF" is 2x the ball spin: a ball strikes both races).
ORDERS = {"bpfo": 3.5848, "bpfi": 5.4152, "bsf": 4.7135, "ftf": 0.39828}
RPM = 1797.0
FR = RPM / 60.0
CFG = AssetConfig(
    asset_id="m1", rpm=RPM, bearing=BearingGeometry(**{f"{k}_order": v for k, v in ORDERS.items()})
)
T0 = 1_700_000_000.0


def test_distinct_harmonics_drop_shared_bins() -> None:
    # 3 x 100 Hz = 2 x 150 Hz: neither counts there; 1 Hz bins, 1 % of 300 Hz = 3 Hz windows overlap
    assert distinct_harmonics({"bpfo": 100.0, "bpfi": 150.0}, 1.0, (2000.0, 5000.0)) == {
        "bpfo": (1, 2),
        "bpfi": (1, 3),
    }
    # SKF 6205 at 1797 rpm, 2048 samples at 12 kHz: 2 x BPFI 324.4 Hz ~ 3 x BPFO 322.1 Hz
    fds = {k: v * FR for k, v in ORDERS.items()}
    assert distinct_harmonics(fds, DF, (1200.0, 4800.0)) == {
        "bpfo": (1, 2),
        "bpfi": (1, 3),
        "bsf": (1, 2, 3),
        "ftf": (1, 2, 3),
    }
    # a band narrower than 2 x f: the 2nd and 3rd harmonics cannot show (envelope bandwidth = hi - lo)
    assert distinct_harmonics({"bpfo": 100.0}, 1.0, (1000.0, 1180.0)) == {"bpfo": (1,)}


def test_harmonic_amplitude_sums_the_modulation_depths() -> None:
    f = 18 * DF  # 105.47 Hz, on a bin; carrier 3 kHz (bin 512) inside the 1.2-4.8 kHz band
    t = np.arange(N) / FS
    env = 1.0 + 0.2 * np.cos(2 * np.pi * f * t) + 0.1 * np.cos(2 * np.pi * 2 * f * t)
    x = env * np.cos(2 * np.pi * 3000.0 * t)
    out = spectral_features(x, FS, rpm=60.0 * f, bearing_orders={"bpfo": 1.0})
    assert out["env_bpfo_amp"] == pytest.approx(0.2, rel=0.02)
    assert out["env_bpfo_harm_amp"] == pytest.approx(0.2 + 0.1 + 0.0, rel=0.02)  # 3rd harmonic: none
    assert out["env_bpfo_harm_snr"] > 1e3  # a clean signal: the floor is numerical noise
    # no defect left once every harmonic is shared: both 0
    shared = spectral_features(x, FS, rpm=60.0 * f, bearing_orders={"bpfo": 1.0, "bpfi": 1.0})
    assert shared["env_bpfo_harm_amp"] == 0.0 and shared["env_bpfo_harm_snr"] == 0.0


def windows(rng: np.random.Generator, k: int, mod: dict[float, float]) -> np.ndarray:
    """``k`` windows of a noise carrier band-limited to 2-4 kHz, amplitude-modulated by
    ``1 + sum m cos(2 pi f t)`` over ``mod`` (f Hz -> m), plus broadband noise (g)."""
    t = np.arange(N) / FS
    out = []
    for _ in range(k):
        spec = np.fft.rfft(rng.standard_normal(N))
        f = np.fft.rfftfreq(N, 1 / FS)
        spec[(f < 2000) | (f > 4000)] = 0
        carrier = np.fft.irfft(spec, N)
        e = 1.0 + sum(m * np.cos(2 * np.pi * fm * t + rng.uniform(0, 2 * np.pi)) for fm, m in mod.items())
        out.append(0.1 * e * carrier + 0.02 * rng.standard_normal(N))
    return np.asarray(out)


def extras(x: np.ndarray) -> dict[str, np.ndarray]:
    spec = spectral_features(x, FS, rpm=RPM, bearing_orders=ORDERS)
    return {k: v for k, v in spec.items() if k.startswith("env_")}


FAULTS = {
    # inner race: BPFI and its harmonics, amplitude-modulated at shaft speed (sidebands BPFI +- fr)
    "bpfi": {ORDERS["bpfi"] * FR: 0.5, 3 * ORDERS["bpfi"] * FR: 0.2, ORDERS["bpfi"] * FR + FR: 0.15},
    # outer race: BPFO and its harmonics, no sidebands (the defect does not move through the load zone)
    "bpfo": {ORDERS["bpfo"] * FR: 0.5, 2 * ORDERS["bpfo"] * FR: 0.3},
    # ball: 2 x ball spin and harmonics, with cage-rate sidebands
    "bsf": {ORDERS["bsf"] * FR: 0.5, 2 * ORDERS["bsf"] * FR: 0.2, (ORDERS["bsf"] + ORDERS["ftf"]) * FR: 0.15},
}


@pytest.fixture(scope="module")
def calibrated() -> dict[str, dict[str, float]]:
    return envelope_baseline(extras(windows(np.random.default_rng(1), 40, {})))


@pytest.mark.parametrize("family", sorted(FAULTS))
def test_a_modulated_carrier_names_its_own_family_and_only_it(family: str, calibrated) -> None:
    ex = extras(windows(np.random.default_rng(2), 6, FAULTS[family]))
    rows = [{k: float(v[i]) for k, v in ex.items()} for i in range(6)]
    for row in rows:
        assert strongest(row, calibrated) == family
        assert [d for d in ORDERS if window_flag(row, calibrated, d, 3.0, 3.0)] == [family]
    # through the health stage: named from the 4th window on, one component
    a = HealthAssessor("m1", config=CFG, baseline=calibrated)
    named = [
        [i.signal for i in a.update(T0 + 10.0 * j, features=row).insights if i.signal.startswith("env_")]
        for j, row in enumerate(rows)
    ]
    assert named == [[], [], []] + [[f"env_{family}_harm_amp"]] * 3


def test_healthy_windows_name_nothing(calibrated) -> None:
    ex = extras(windows(np.random.default_rng(3), 30, {}))
    a = HealthAssessor("m1", config=CFG, baseline=calibrated)
    for j in range(30):
        r = a.update(T0 + 10.0 * j, features={k: float(v[j]) for k, v in ex.items()})
        assert not [i for i in r.insights if i.signal.startswith("env")]


def test_a_broadband_rise_names_nothing(calibrated) -> None:
    """The whole envelope spectrum 20x louder (no line in it): every amplitude rose, no SNR did."""
    rng = np.random.default_rng(4)
    ex = extras(20.0 * windows(rng, 6, {}))
    for i in range(6):
        row = {k: float(v[i]) for k, v in ex.items()}
        assert row["env_bpfi_harm_amp"] > 2 * calibrated["env_bpfi_harm_amp"]["p95"]
        assert strongest(row, calibrated) is None


def test_the_strongest_snr_rise_wins_and_the_text_states_both_rises() -> None:
    level = {"n": 50, "mean": 1.0, "std": 0.1, "median": 1.0, "mad": 0.1, "p95": 1.2, "max": 1.4}
    amp = {"n": 50, "mean": 0.01, "std": 0.001, "median": 0.01, "mad": 0.001, "p95": 0.012, "max": 0.014}
    base = {
        f"env_{d}_harm_{k}": (amp if k == "amp" else level) for d in ("bpfo", "bpfi") for k in ("amp", "snr")
    }
    # both rose (amplitude 0.05 g >= 2 x 0.012 g; SNR >= 1.3 x 1.2 = 1.56): BPFI's SNR rise 2.5 beats 1.75
    row = {
        "env_bpfo_harm_amp": 0.05,
        "env_bpfo_harm_snr": 2.1,
        "env_bpfi_harm_amp": 0.03,
        "env_bpfi_harm_snr": 3.0,
    }
    assert strongest(row, base) == "bpfi"
    assert window_flag(row, base, "bpfo", 3.0, 3.0) is False and window_flag(row, base, "bpfi", 3.0, 3.0)
    r = HarmonicRise.of(row, base, "bpfi")
    assert r is not None and r.amp_rise == pytest.approx(2.5) and r.snr_rise == pytest.approx(2.5)
    a = HealthAssessor("m1", config=CFG, baseline=base)
    ins = [a.update(T0 + 10.0 * j, features=row) for j in range(4)][-1].insights[0]
    assert ins.text == (
        "Envelope harmonics of BPFI (162 Hz) 3.0× their calibrated level (0.01 g → 0.03 g), harmonic SNR 3.0 "
        "(3.0× its calibrated level) in 4 of the last 4 windows: inner-race defect likely"
    )
    # WARNING: rises 2.5/2 = 1.25 and 2.5/1.3 = 1.9, not both >= 2
    assert ins.severity == "WARNING" and ins.signal == "env_bpfi_harm_amp"
    # a SNR that did not rise 1.3x names nothing, however high the amplitude
    low = row | {"env_bpfi_harm_snr": 1.5, "env_bpfo_harm_snr": 1.5}
    assert strongest(low, base) is None


def test_impacts_recurring_at_cage_speed_name_the_rolling_elements_or_the_cage(calibrated) -> None:
    """A damaged ball is carried through the load zone at cage speed: its impacts recur at FTF (CWRU
    B014 and B028 raise FTF, not BSF). Envelope ``1 + 0.5 cos(2 pi FTF t) + 0.3 cos(2 pi 2 FTF t)``:
    the FTF harmonics rise, and the insight names the rolling elements or the cage."""
    ftf = ORDERS["ftf"] * FR  # 11.93 Hz
    ex = extras(windows(np.random.default_rng(5), 6, {ftf: 0.5, 2 * ftf: 0.3}))
    a = HealthAssessor("m1", config=CFG, baseline=calibrated)
    last = [a.update(T0 + 10.0 * j, features={k: float(v[j]) for k, v in ex.items()}) for j in range(6)][-1]
    named = [i for i in last.insights if i.signal.startswith("env_")]
    assert [i.signal for i in named] == ["env_ftf_harm_amp"]
    assert named[0].text.endswith(
        "in 6 of the last 6 windows: rolling-element or cage defect likely (impacts recurring at cage speed)"
    )


def test_a_ball_resonance_below_the_demodulation_band_names_nothing(calibrated) -> None:
    """What the fixed band cannot do: the ball-fault modulation of FAULTS['bsf'] on a carrier at 0.6-1 kHz
    (below the default 1.2-4.8 kHz band at 12 kHz) leaves the band's envelope unchanged: nothing named."""
    rng = np.random.default_rng(6)
    t = np.arange(N) / FS
    f = np.fft.rfftfreq(N, 1 / FS)
    rows = []
    for _ in range(6):
        spec = np.fft.rfft(rng.standard_normal(N))
        spec[(f < 600) | (f > 1000)] = 0
        e = 1.0 + sum(m * np.cos(2 * np.pi * fm * t) for fm, m in FAULTS["bsf"].items())
        low = 0.1 * e * np.fft.irfft(spec, N)
        normal = windows(rng, 1, {})[0]  # the healthy in-band signal, as calibrated
        rows.append(low + normal)
    ex = extras(np.asarray(rows))
    a = HealthAssessor("m1", config=CFG, baseline=calibrated)
    for j in range(6):
        r = a.update(T0 + 10.0 * j, features={k: float(v[j]) for k, v in ex.items()})
        assert not [i for i in r.insights if i.signal.startswith("env")]
