"""Rolling-element (ball) diagnosis from the envelope spectrum (issue 15): hand-checkable signals.

A damaged ball strikes the races at its spin harmonics (the ``bsf`` order of the CWRU README, 4.7135 on
an SKF 6205, is 2x the ball spin: 141.2 Hz at 1797 rpm) and is carried through the load zone once per
cage turn (FTF, 11.93 Hz), so its impacts are amplitude-modulated at cage speed. Rule
(:mod:`shared.health.insights.envelope`): a window counts as ball evidence when BSF has the strongest
harmonic SNR rise, or when FTF has it and the BSF harmonics also left their healthy range (amplitude
2x, SNR at least its calibrated p95: :func:`ball_under_cage`); the ball is named from 4 of 6 such
windows, as "rolling-element (ball) defect likely", and then replaces the FTF insight. FTF evidence
without the ball's lines keeps "rolling-element or cage defect likely".

Signals: impacts (a 3 kHz ring decaying with a 1 ms time constant, inside the 1.2-4.8 kHz default
band at 12 kHz) every ``1 / f`` s on healthy noise; or a noise carrier amplitude-modulated by
``1 + sum m cos(2 pi f t)``, whose envelope spectrum shows ``m`` at ``f``.
"""

from __future__ import annotations

import numpy as np
import pytest

from shared.features import spectral_features
from shared.health.assessor import HealthAssessor
from shared.health.insights.envelope import window_flag
from shared.health.insights.envelope_levels import BALL_SNR_RISE, RISE_FACTOR, ball_under_cage, strongest
from shared.learning.baseline import envelope_baseline
from shared.messages import AssetConfig, BearingGeometry

FS, N = 12_000.0, 2048
ORDERS = {"bpfo": 3.5848, "bpfi": 5.4152, "bsf": 4.7135, "ftf": 0.39828}
RPM = 1797.0
FR = RPM / 60.0  # 29.95 Hz
BSF, FTF, BPFI = ORDERS["bsf"] * FR, ORDERS["ftf"] * FR, ORDERS["bpfi"] * FR  # 141.2, 11.93, 162.2 Hz
CFG = AssetConfig(
    asset_id="m1", rpm=RPM, bearing=BearingGeometry(**{f"{k}_order": v for k, v in ORDERS.items()})
)
T0 = 1_700_000_000.0


def noise(rng: np.random.Generator, k: int, mod: dict[float, float] | None = None) -> np.ndarray:
    """``k`` healthy windows: a noise carrier band-limited to 2-4 kHz (0.1 g scale), amplitude-modulated
    by ``1 + sum m cos(2 pi f t)`` over ``mod`` (f Hz -> m), plus broadband noise (0.02 g)."""
    t = np.arange(N) / FS
    f = np.fft.rfftfreq(N, 1 / FS)
    out = []
    for _ in range(k):
        spec = np.fft.rfft(rng.standard_normal(N))
        spec[(f < 2000) | (f > 4000)] = 0
        e = 1.0 + sum(
            m * np.cos(2 * np.pi * fm * t + rng.uniform(0, 2 * np.pi)) for fm, m in (mod or {}).items()
        )
        out.append(0.1 * e * np.fft.irfft(spec, N) + 0.02 * rng.standard_normal(N))
    return np.asarray(out)


def impacts(k: int, rate: float, load_hz: float | None, amp: float = 1.0) -> np.ndarray:
    """``k`` consecutive windows of impacts every ``1 / rate`` s (g): each a 3 kHz ring
    ``a exp(-t / 1 ms) sin(2 pi 3 kHz t)``, ``a = amp (1 + cos(2 pi load_hz t_i)) / 2`` (the load zone
    passing at ``load_hz``; ``a = amp`` without)."""
    t = np.arange(N) / FS
    out = np.zeros((k, N))
    for j in range(k):
        start = j * N / FS
        for ti in np.arange(np.ceil(start * rate), (start + N / FS) * rate) / rate:
            a = amp if load_hz is None else amp * 0.5 * (1.0 + np.cos(2 * np.pi * load_hz * ti))
            tt = t - (ti - start)
            on = tt >= 0
            out[j, on] += a * np.exp(-tt[on] / 1e-3) * np.sin(2 * np.pi * 3000.0 * tt[on])
    return out


def rows(x: np.ndarray) -> list[dict[str, float]]:
    spec = spectral_features(x, FS, rpm=RPM, bearing_orders=ORDERS)
    env = {k: v for k, v in spec.items() if k.startswith("env_")}
    return [{k: float(v[i]) for k, v in env.items()} for i in range(x.shape[0])]


def named(base: dict, windows: list[dict[str, float]]) -> list[list[tuple[str, str]]]:
    """Per update, the (signal, text) of the envelope insights that name a component."""
    a = HealthAssessor("m1", config=CFG, baseline=base)
    out = []
    for j, row in enumerate(windows):
        r = a.update(T0 + 10.0 * j, features=row)
        out.append([(i.signal, i.text) for i in r.insights if i.signal.startswith("env_")])
    return out


@pytest.fixture(scope="module")
def calibrated() -> dict[str, dict[str, float]]:
    healthy = rows(noise(np.random.default_rng(1), 40))
    return envelope_baseline({k: np.array([r[k] for r in healthy]) for k in healthy[0]})


def test_ball_impacts_at_2x_bsf_modulated_at_cage_speed_name_the_ball(calibrated) -> None:
    ws = rows(noise(np.random.default_rng(2), 6) + impacts(6, BSF, load_hz=FTF))
    assert [strongest(w, calibrated) for w in ws] == ["bsf"] * 6
    out = named(calibrated, ws)
    assert out[:3] == [[], [], []]  # 4 of 6: nothing before the 4th window
    for got in out[3:]:
        assert [s for s, _ in got] == ["env_bsf_harm_amp"]
        assert got[0][1].startswith("Envelope harmonics of BSF (141 Hz)")
        assert got[0][1].endswith(": rolling-element (ball) defect likely")


def test_impacts_at_bpfi_modulated_at_shaft_speed_name_the_inner_race(calibrated) -> None:
    ws = rows(noise(np.random.default_rng(2), 6) + impacts(6, BPFI, load_hz=FR))
    assert [strongest(w, calibrated) for w in ws] == ["bpfi"] * 6
    last = named(calibrated, ws)[-1]
    assert [s for s, _ in last] == ["env_bpfi_harm_amp"]
    assert last[0][1].startswith("Envelope harmonics of BPFI (162 Hz)")
    assert last[0][1].endswith("in 6 of the last 6 windows: inner-race defect likely")


def test_healthy_noise_names_nothing(calibrated) -> None:
    assert named(calibrated, rows(noise(np.random.default_rng(3), 30))) == [[]] * 30


def test_cage_rate_lines_with_the_ball_line_name_the_ball_and_state_both(calibrated) -> None:
    """Envelope ``1 + 0.5 cos(2 pi FTF t) + 0.3 cos(2 pi 2 FTF t) + 0.3 cos(2 pi BSF t)``, 3x louder than
    calibrated (the defect excites the resonance harder): FTF has the strongest SNR rise in every window
    (0.5 + 0.3 over a floor near DC), and the BSF harmonics left their healthy range too."""
    ws = rows(3.0 * noise(np.random.default_rng(5), 6, {FTF: 0.5, 2 * FTF: 0.3, BSF: 0.3}))
    assert [strongest(w, calibrated) for w in ws] == ["ftf"] * 6
    assert all(ball_under_cage(w, calibrated) is not None for w in ws)
    assert all(window_flag(w, calibrated, "bsf", 3.0, 3.0) for w in ws)
    last = named(calibrated, ws)[-1]
    assert [s for s, _ in last] == ["env_bsf_harm_amp"]  # the ball replaces the FTF insight
    text = last[0][1]
    assert text.startswith("Envelope harmonics of FTF (11.9 Hz)")
    assert ", with those of BSF (141 Hz)" in text and "in 6 of the last 6 windows: " in text
    assert text.endswith(": rolling-element (ball) defect likely (ball impacts recurring at cage speed)")


def test_cage_rate_lines_alone_keep_the_honest_cage_wording(calibrated) -> None:
    """The same cage-rate modulation without the ball line: the FTF insight, worded "rolling-element or
    cage"; a single window whose BSF harmonics exceed their p95 by chance does not make it a ball."""
    ws = rows(3.0 * noise(np.random.default_rng(5), 6, {FTF: 0.5, 2 * FTF: 0.3}))
    assert [strongest(w, calibrated) for w in ws] == ["ftf"] * 6
    assert sum(ball_under_cage(w, calibrated) is not None for w in ws) < 4
    last = named(calibrated, ws)[-1]
    assert [s for s, _ in last] == ["env_ftf_harm_amp"]
    assert last[0][1].endswith(
        "in 6 of the last 6 windows: rolling-element or cage defect likely (impacts recurring at cage speed)"
    )


def level(median: float, p95: float) -> dict[str, float]:
    return {
        "n": 40.0,
        "mean": median,
        "std": 0.1 * median,
        "median": median,
        "mad": 0.1,
        "p95": p95,
        "max": p95,
    }


def test_ball_under_cage_thresholds_by_hand() -> None:
    """BSF amplitude 2x and SNR 1x their calibrated p95 (RISE_FACTOR, BALL_SNR_RISE) under FTF's rise."""
    assert (RISE_FACTOR, BALL_SNR_RISE) == (2.0, 1.0)
    base = {
        "env_ftf_harm_amp": level(0.01, 0.02),
        "env_ftf_harm_snr": level(1.0, 1.5),
        "env_bsf_harm_amp": level(0.01, 0.02),
        "env_bsf_harm_snr": level(1.2, 1.6),
    }
    # FTF: amplitude 0.08 g = 4x p95, SNR 3.0 = 2x p95; BSF: 0.05 g = 2.5x p95, SNR 1.76 = 1.1x p95
    row = {
        "env_ftf_harm_amp": 0.08,
        "env_ftf_harm_snr": 3.0,
        "env_bsf_harm_amp": 0.05,
        "env_bsf_harm_snr": 1.76,
    }
    assert strongest(row, base) == "ftf"
    r = ball_under_cage(row, base)
    assert r is not None and r.amp_rise == pytest.approx(2.5) and r.snr_rise == pytest.approx(1.1)
    assert window_flag(row, base, "bsf", 3.0, 3.0) and window_flag(row, base, "ftf", 3.0, 3.0)
    out = named(base, [row] * 4)[-1]
    assert out == [
        (
            "env_bsf_harm_amp",
            "Envelope harmonics of FTF (11.9 Hz) 8.0× their calibrated level (0.01 g → 0.08 g), harmonic SNR "
            "3.0 (3.0× its calibrated level), with those of BSF (141 Hz) 5.0× their calibrated level "
            "(0.01 g → 0.05 g), harmonic SNR 1.8 (1.1× its calibrated p95) in 4 of the last 4 windows: "
            "rolling-element (ball) defect likely (ball impacts recurring at cage speed)",
        )
    ]
    # the BSF SNR below its p95 (1.5 < 1.6), or its amplitude below 2x (0.03 g < 0.04 g): the cage wording
    for change in ({"env_bsf_harm_snr": 1.5}, {"env_bsf_harm_amp": 0.03}):
        low = row | change
        assert ball_under_cage(low, base) is None and not window_flag(low, base, "bsf", 3.0, 3.0)
        (signal, text) = named(base, [low] * 4)[-1][0]
        assert signal == "env_ftf_harm_amp" and text.endswith(
            "rolling-element or cage defect likely (impacts recurring at cage speed)"
        )
