"""Early warning (shared/health/warning.py): CUSUM step response at a known sample, k-of-n, tuning."""

from __future__ import annotations

import numpy as np
import pytest

from shared.health.warning import (
    CusumParams,
    TrainingRun,
    alarm_times,
    cusum,
    cusum_step,
    k_of_n_alarms,
    persistence_step,
    persistent_level,
    score_run,
    tune_cusum,
)


def test_cusum_step_response_at_the_known_sample() -> None:
    t = np.arange(0.0, 200.0, 10.0)  # 10 s spacing
    z = np.where(t >= 50.0, 2.0, 0.0)  # a step of 2 at t = 50 s
    # k = 1, h = 25: each window after the step adds (2 - 1) * 10 = 10 -> 10, 20, 30 > 25 at t = 70 s
    flags = cusum(t, z, k=1.0, h=25.0)
    hits = t[flags[:, 0]]
    assert hits[0] == 70.0
    # reset after each alarm: the next one 30 s later
    assert list(hits[:3]) == [70.0, 100.0, 130.0]


def test_cusum_ignores_shifts_below_the_allowance_and_caps_gaps() -> None:
    t = np.arange(0.0, 1000.0, 10.0)
    assert not cusum(t, np.full(t.size, 0.9), k=1.0, h=1.0).any()
    # one window after a 1000 s gap credits only max_gap_s = 60 s: (3 - 1) * 60 = 120 < 200
    assert not cusum([0.0, 1000.0], [0.0, 3.0], k=1.0, h=200.0).any()
    assert cusum([0.0, 1000.0], [0.0, 3.0], k=1.0, h=200.0, max_gap_s=1000.0).any()


def test_cusum_refuses_bad_input() -> None:
    with pytest.raises(ValueError):
        cusum([0.0, 1.0], [0.0], k=1.0, h=1.0)
    with pytest.raises(ValueError):
        cusum([1.0, 0.0], [0.0, 0.0], k=1.0, h=1.0)
    with pytest.raises(ValueError):
        cusum([0.0, 1.0], [0.0, 0.0], k=1.0, h=0.0)


def test_k_of_n() -> None:
    z = np.array([0, 5, 0, 5, 5, 0, 0, 0], dtype=float)
    assert list(k_of_n_alarms(z, 3.0, 3, 5)) == [False, False, False, False, True, True, False, False]


def test_score_run_counts_first_half_alarms_as_false_and_leads_from_the_second_half() -> None:
    out = score_run(np.array([100.0, 600.0, 900.0]), life_s=1000.0)
    assert (out.early_alarms, out.first_any_s, out.first_alarm_s, out.lead_s) == (1, 100.0, 600.0, 400.0)
    assert score_run(np.array([]), 1000.0).lead_s is None


def _run(step_at: float, life: float, level: float) -> TrainingRun:
    t = np.arange(0.0, life, 10.0)
    return TrainingRun(t, np.where(t >= step_at, level, 0.0)[:, None], life)


def test_tune_cusum_prefers_no_failures_then_the_longest_lead() -> None:
    runs = [_run(700.0, 1000.0, 1.0), _run(1400.0, 2000.0, 1.0)]
    p, (failed, neg_lead) = tune_cusum(runs, ks=(0.5, 2.0), hs=(10.0, 100.0), column_sets=[(0,)])
    # k = 2 never alarms (a miss). k = 0.5, h = 10: S = 5, 10, 15 at the step's windows 0, 10, 20 s,
    # so the alarm is 20 s after each step: leads 280 s and 580 s
    assert (p.k, p.h) == (0.5, 10.0) and failed == 0
    assert -neg_lead == pytest.approx(np.median([280 / 1000, 580 / 2000]))
    assert alarm_times(runs[0].t_s, runs[0].z, p)[0] == 720.0
    with pytest.raises(ValueError):
        CusumParams(k=1.0, h=1.0, columns=())


def test_persistent_level_is_the_lowest_value_over_the_span_in_data_time() -> None:
    t = np.array([0.0, 20.0, 40.0, 60.0, 70.0, 80.0])
    z = np.array([0.0, 1.3, 0.1, 1.6, 1.5, 1.4])
    # span 30 s: window i sees t_i - 30 < t_j <= t_i -> {0}, {0,20}, {20,40}, {40,60}, {60,70}, {60,70,80}
    lvl = persistent_level(t, z, 30.0)[:, 0]
    assert list(lvl) == [0.0, 0.0, 0.1, 0.1, 1.5, 1.4]
    assert list(persistent_level(t, z, 0.0)[:, 0]) == list(z)
    with pytest.raises(ValueError):
        persistent_level(t, z, -1.0)


def test_persistence_stops_single_window_spikes_but_not_a_sustained_rise() -> None:
    t = np.arange(0.0, 400.0, 20.0)
    z = np.zeros(t.size)
    z[[5, 8]] = 1.6  # two isolated one-window spikes (as FEMTO Bearing1_1 at 47 % of life)
    z[15:] = 1.5  # a sustained rise from t = 300 s
    raw = CusumParams(k=0.7, h=10.0)
    held = CusumParams(k=0.7, h=10.0, persist_s=30.0)
    # raw: (1.6 - 0.7) * 20 = 18 > 10 at the first spike (t = 100 s)
    assert alarm_times(t, z, raw)[0] == 100.0
    # persistent: the level is 1.5 only once two windows (20 s apart) are above: t = 320 s, S = 16 > 10
    assert alarm_times(t, z, held)[0] == 320.0


def test_tune_cusum_breaks_ties_towards_the_most_conservative_setting() -> None:
    runs = [_run(700.0, 1000.0, 3.0)]
    # k = 0.5 and k = 1.0 with h = 10 both alarm at the step's own window (S = 25 and 20 > 10):
    # the same lead, so the larger k wins
    p, (failed, _) = tune_cusum(runs, ks=(0.5, 1.0), hs=(10.0,), column_sets=[(0,)])
    assert (p.k, p.h, failed) == (1.0, 10.0, 0)


def test_the_one_window_steps_give_the_batch_functions_results() -> None:
    rng = np.random.default_rng(3)
    t = np.cumsum(rng.choice([0.0, 5.0, 10.0, 20.0, 90.0], size=300))  # equal stamps and gaps > 60 s
    z = rng.normal(0.5, 0.6, size=t.size)
    p = CusumParams(k=0.7, h=10.0, persist_s=30.0)
    recent: list[tuple[float, float]] = []
    s, last, levels, hits = 0.0, None, [], []
    for ti, zi in zip(t, z, strict=True):
        recent, level = persistence_step(recent, float(ti), float(zi), p.persist_s)
        s, crossed = cusum_step(s, level, 0.0 if last is None else float(ti - last), p.k, p.h, p.max_gap_s)
        last = ti
        levels.append(level)
        hits.append(crossed)
    np.testing.assert_array_equal(levels, persistent_level(t, z, p.persist_s)[:, 0])
    np.testing.assert_array_equal(t[hits], alarm_times(t, z, p))
    assert any(hits)
    with pytest.raises(ValueError):
        cusum_step(-1.0, 0.0, 1.0, 0.7, 10.0)
