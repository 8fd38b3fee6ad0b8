"""Robust 3σ screening of calibration data: flagging, exclusion, rejection, and the calibrator's use of it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.special import ndtri

from services.calibrator.data import Collected, reading_features, signal_baseline
from services.calibrator.job import MIN_WINDOWS, default_config, select_datasets, train_config, validate_data
from shared.features.vibration import vibration_feature_names, window_features
from shared.learning.baseline import familywise_cutoff
from shared.learning.calibration import InsufficientData, calibrate
from shared.learning.screening import ContaminatedData, screen, screen_windows
from shared.messages import SIGNALS

MEANS = (230.0, 15.0, 0.92, 0.15)
SIGMAS = (2.0, 0.3, 0.01, 0.01)


def healthy(n: int) -> np.ndarray:
    """n readings whose columns are the exact normal quantiles (i + 0.5) / n of N(mean, σ²), each column
    in its own fixed order: the robust scale of such a column is σ (to about 1 %), and no value lies
    beyond Φ⁻¹(1 − 0.5/n) σ (2.58σ for n = 100)."""
    z = ndtri((np.arange(n) + 0.5) / n)
    order = np.random.default_rng(0)
    cols = [m + s * z[order.permutation(n)] for m, s in zip(MEANS, SIGMAS, strict=True)]
    return np.stack(cols, axis=1)


def with_spikes(n: int, k: int, volts: float = 300.0) -> np.ndarray:
    x = healthy(n)
    x[np.linspace(5, n - 5, k).astype(int), 0] = volts
    return x


def test_healthy_data_has_nothing_beyond_the_cutoff() -> None:
    res = screen(healthy(100), list(SIGNALS), what="readings")
    assert res.n_flagged == 0 and res.ok
    assert res.cutoff == pytest.approx(familywise_cutoff(3.0, 4)) and 3.39 < res.cutoff < 3.41
    assert res.message().startswith("Baseline validated: 0 of 100 readings beyond 3σ")


def test_spikes_are_flagged_and_cannot_inflate_the_scale() -> None:
    x = with_spikes(100, 4)  # 4 % voltage spikes of 300 V
    res = screen(x, list(SIGNALS), what="readings")
    assert res.n_flagged == 4 and res.per_column == {"voltage_v": 4, "current_a": 0, "power_factor": 0,
                                                      "vibration_g": 0}  # fmt: skip
    assert np.flatnonzero(res.flagged).tolist() == np.flatnonzero(x[:, 0] == 300.0).tolist()
    assert res.ok  # 4 % <= 5 %: excluded, not rejected
    # the plain σ of the voltage is inflated to ≈ 14 V by the spikes, the robust one stays ≈ 2 V
    assert x[:, 0].std() > 13.0
    assert res.scale_high[0] == pytest.approx(2.0, rel=0.05) and res.scale_low[0] == pytest.approx(
        2.0, rel=0.05
    )
    assert res.message() == (
        "Excluded 4 of 100 readings beyond 3σ (robust median/MAD σ, 3.40σ per column for 4 columns) "
        "from training (voltage_v 4; trained on the other 96); 4.0% outliers, limit 5.0%"
    )
    d = res.to_dict()
    assert d["excluded"] == 4 and d["n"] == 100 and d["per_column"]["voltage_v"] == 4


def test_cutoff_is_the_familywise_three_sigma() -> None:
    x = healthy(100)
    x[10, 1] = 15.0 + 3.2 * 0.3  # 3.2σ: within the 3.40σ cut-off for 4 columns
    x[20, 3] = 0.15 + 3.7 * 0.01  # 3.7σ: beyond it
    res = screen(x, list(SIGNALS))
    assert np.flatnonzero(res.flagged).tolist() == [20]
    assert screen(x[:, [1]], ["current_a"]).n_flagged == 1  # one column alone: the plain 3σ rule


def test_at_most_five_percent_is_accepted_more_is_rejected_with_the_reason() -> None:
    assert screen(with_spikes(100, 5), list(SIGNALS)).ok  # exactly 5 %: the limit itself is allowed
    res = screen(with_spikes(100, 6), list(SIGNALS), what="readings")
    assert not res.ok and res.n_flagged == 6
    msg = str(ContaminatedData(res))
    assert msg.startswith("Baseline validation failed: 6.0% outliers (6 of 100 readings beyond 3σ")
    assert "voltage_v 6" in msg and "limit 5.0%" in msg
    assert res.to_dict()["excluded"] == 0


def test_a_mostly_constant_count_is_not_judged() -> None:
    counts = np.zeros((100, 1))
    counts[[3, 50, 90], 0] = 1.0  # a spike count: 0 in 97 % of the rows
    assert screen(counts, ["current_spike_count"]).n_flagged == 0


def collected(x: np.ndarray) -> tuple[Collected, dict]:
    ts = 1_700_000_000.0 + np.arange(x.shape[0], dtype=np.float64)
    c = Collected("m1", 5.0, None, signals=x.copy(), reading_ts=ts)
    c.datasets = reading_features(ts, x, 8, 30)  # the stored vectors: computed from every reading
    c.signal_baseline = signal_baseline(x)
    return c, dict(c.datasets)


def test_calibrator_excludes_flagged_readings_and_recomputes_the_features() -> None:
    x = with_spikes(200, 8)  # 4 %
    c, datasets = collected(x)
    assert c.signal_baseline["voltage_v"]["std"] > 13.0  # what the baseline would have been
    assert datasets["legacy"][0][:, 4].max() > 60.0  # voltage_stability |V - 230 V| carries the spikes
    notes = validate_data(c, datasets, default_config(), batch_window=8)
    assert notes == [c.screenings[0].message()] and notes[0].startswith("Excluded 8 of 200 readings")
    assert c.signals is not None and c.signals.shape[0] == 192 and c.signals[:, 0].max() < 240.0
    assert c.signal_baseline["voltage_v"]["std"] == pytest.approx(2.0, rel=0.05)
    legacy, batch = datasets["legacy"][0], datasets["batch"][0]
    assert legacy.shape[0] == 192 - 29 and batch.shape[0] == 192 - 7  # warm-up 30, window 8, step 1
    assert legacy[:, 0].max() < 231.5 and batch[:, 2].max() < 20.0  # 1 h mean, voltage peak-to-peak
    assert legacy[:, 4].max() < 15.0  # voltage_stability: recomputed without the spikes
    assert c.datasets["legacy"] is datasets["legacy"]


def test_calibrator_rejects_more_than_five_percent_and_keeps_the_data() -> None:
    x = with_spikes(200, 12)  # 6 %
    c, datasets = collected(x)
    with pytest.raises(ContaminatedData, match=r"Baseline validation failed: 6\.0% outliers"):
        validate_data(c, datasets, default_config(), batch_window=8)
    assert c.signals is not None and c.signals.shape[0] == 200


def test_healthy_readings_pass_unchanged() -> None:
    c, datasets = collected(healthy(200))
    before = datasets["legacy"]
    assert validate_data(c, datasets, default_config(), batch_window=8) == []
    assert datasets["legacy"] is before and c.screenings[0].n_flagged == 0


# --- vibration windows (screen_windows): heavy tails, drift, real data ---

FEMTO = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "femto_pronostia"
NAMES = vibration_feature_names(["x"])


def quantiles(n: int, seed: int) -> np.ndarray:
    """The standard normal quantiles (i + 0.5) / n in a seeded random order (|z| ≤ 2.94 for n = 300)."""
    return ndtri((np.arange(n) + 0.5) / n)[np.random.default_rng(seed).permutation(n)]


def window_rows(level: np.ndarray) -> np.ndarray:
    """Feature rows [n, 11] (order of ``NAMES``) around RMS ``level`` (g): the shape features heavy-tailed
    like real impacts (crest and kurtosis Pareto-distributed, up to ≈ 18 and ≈ 150), the median excess
    kurtosis 0.3 as on real healthy bearings (-0.3..0.5; a fault signature is refused above 1.0)."""
    n = level.shape[0]
    u = (np.arange(n) + 0.5) / n
    pareto = (1.0 / u[np.random.default_rng(7).permutation(n)]) ** 0.5  # 1 .. 24, heavy upper tail
    crest, kurt = 2.5 + 0.65 * pareto, -0.2 + 0.25 * pareto**2
    cols = {"rms": level, "peak": level * crest, "ptp": 2 * level * crest, "crest_factor": crest,
            "variance": level**2, "std": level, "skewness": 0.05 * pareto, "kurtosis": kurt,
            "shape_factor": 1.25 + 0.01 * pareto, "impulse_factor": 1.25 * crest,
            "clearance_factor": 1.4 * crest}  # fmt: skip
    return np.stack([cols[name[2:]] for name in NAMES], axis=1)


def lognormal_level(n: int, median: float = 0.4, sigma_ln: float = 0.25) -> np.ndarray:
    return median * np.exp(sigma_ln * quantiles(n, 1))


def test_heavy_tailed_healthy_windows_are_not_rejected() -> None:
    X = window_rows(lognormal_level(300))  # log-normal RMS: its upper tail reaches 2.1× the median
    res = screen_windows(X, NAMES)
    assert res.ok and res.n_flagged == 0 and res.names == ("x_rms",)
    assert res.center[0] == pytest.approx(0.4, rel=0.02)
    assert res.scale_low[0] == pytest.approx(0.25, rel=0.05)  # robust σ of ln RMS
    assert not screen(X, NAMES).ok  # the per-column rule rejects the same healthy data (its tails)


def test_run_in_and_slow_drift_are_not_outliers() -> None:
    n = 300
    level = 0.37 * np.exp(0.04 * quantiles(n, 2)) * np.linspace(1.0, 0.8, n)  # drifts down by 20 %
    level[:24] *= 1.6  # run-in: the first 24 windows 1.6× louder (FEMTO Bearing1_1: 0.56 vs 0.37 g)
    res = screen_windows(window_rows(level), NAMES)
    assert res.n_flagged == 0 and res.ok
    assert not screen(window_rows(level), NAMES).ok


def test_loud_windows_are_flagged_isolated_or_as_a_block() -> None:
    level = lognormal_level(300, sigma_ln=0.05)
    isolated, block = [17, 90, 151, 230], np.arange(290, 300)  # 4 isolated, 10 at the end: 14 = 4.7 %
    level[isolated] *= 1.6  # within ×2 of the median of all, but far from their neighbours
    level[block] *= 3.0  # too long for the running median to stay put: the ×2 rule catches it
    res = screen_windows(window_rows(level), NAMES)
    assert np.flatnonzero(res.flagged).tolist() == [*isolated, *block.tolist()]
    assert res.ok and res.per_column == {"x_rms": 14}
    assert res.message().startswith("Excluded 14 of 300 vibration windows whose RMS is beyond 3σ")
    assert "trained on the other 286" in res.message()
    level[[40, 120, 200]] *= 4.0  # 17 = 5.7 %: rejected
    res = screen_windows(window_rows(level), NAMES)
    assert not res.ok and str(ContaminatedData(res)).startswith("Baseline validation failed: 5.7% outliers")


def test_a_dead_window_is_flagged_and_names_without_rms_use_the_column_rule() -> None:
    X = window_rows(lognormal_level(100))
    X[5] = 0.0  # an all-zero (dead sensor) window: every feature 0
    assert np.flatnonzero(screen_windows(X, NAMES).flagged).tolist() == [5]
    other = [f"f{j}" for j in range(11)]
    assert screen_windows(X, other).rule is None and screen_windows(X, other).names == tuple(other)


def test_excluded_windows_never_make_a_sufficient_calibration_insufficient() -> None:
    level = lognormal_level(MIN_WINDOWS, sigma_ln=0.1)
    level[np.arange(5, MIN_WINDOWS, 21)[:14]] *= 3.0  # 14 loud windows (4.7 %)
    X = window_rows(level)
    c = Collected("m1", 60.0, None, counts={"vibration": MIN_WINDOWS}, datasets={"autoencoder": (X, NAMES)})
    datasets, _ = select_datasets(c)
    notes = validate_data(c, datasets, default_config())
    assert notes[0].startswith(f"Excluded 14 of {MIN_WINDOWS} vibration windows")
    assert datasets["autoencoder"][0].shape[0] == MIN_WINDOWS - 14
    cfg = train_config(default_config())
    assert cfg.min_windows <= MIN_WINDOWS * 0.95 and not cfg.validate
    with pytest.raises(InsufficientData, match=f"found {MIN_WINDOWS - 14} windows, need {MIN_WINDOWS}"):
        calibrate(datasets, replace(default_config(), validate=False))  # what the calibrator did before


def femto_rows(first: slice, channel: int) -> np.ndarray:
    z = np.load(FEMTO / "femto_Bearing1_1.npz")
    return window_features(z["acc"][first, :, channel] * float(z["scale_g"]))[1]


def test_real_femto_early_life_passes_and_late_life_windows_are_caught() -> None:
    """FEMTO Bearing1_1 (real data, ../shared): the first 60 snapshots hold the run-in step (24 snapshots
    at 0.55 g, then 0.38 g) and impacts; three of the last snapshots (≈ 5 g RMS) mixed in are flagged."""
    healthy = femto_rows(slice(0, 60), 0)
    res = screen_windows(healthy, NAMES)
    assert res.ok and res.n_flagged <= 1
    late = femto_rows(slice(-3, None), 0)
    X = healthy.copy()
    X[[10, 35, 59]] = late
    res = screen_windows(X, NAMES)
    assert np.flatnonzero(res.flagged).tolist() == [10, 35, 59] and res.ok  # 5 %: excluded, and said
    assert res.message().startswith("Excluded 3 of 60 vibration windows")
