"""The operating-state classifier (issue 16) on scripted series whose answers can be checked by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from shared.health.operating_state import (
    REFERENCE_MIN,
    AssetOperating,
    Levels,
    OperatingTracker,
    classify,
    classify_series,
    window_level_g,
)
from shared.messages import AssetConfig
from shared.messages.operating import OperatingSettings

# stopped below 1.0 A, running from 1.5 A (hysteresis 0.5)
LEVELS = Levels.of(1.0, 0.5)


def test_levels_carry_the_hysteresis() -> None:
    assert (LEVELS.stopped_below, LEVELS.running_from) == (1.0, 1.5)
    with pytest.raises(ValueError, match="stopped_below"):
        Levels.of(0.0)


def test_hysteresis_holds_the_state_between_the_levels() -> None:
    # 10 A, down to 0.5 A (stopped), 1.2 A (between: still stopped), 0.5, 1.6 A (running again: a start)
    x = [10, 10, 0.5, 1.2, 0.5, 1.6, 1.2, 10, 1.2, 0.5]
    got = classify(np.arange(len(x), dtype=float), x, LEVELS, start_settle_s=0).states
    assert got.tolist() == [
        "running", "running", "stopped", "stopped", "stopped", "running", "running", "running", "running",
        "stopped",
    ]  # fmt: skip


def test_a_start_is_starting_for_the_settle_time_in_data_time() -> None:
    ts = [0, 10, 20, 21, 25, 29.9, 30.9, 31, 60]  # seconds; the start at 21 s
    x = [10, 0, 0, 12, 20, 11, 11, 0, 11]
    got = classify(ts, x, LEVELS, start_settle_s=9.0).states.tolist()
    # 21, 25, 29.9: < 9 s after the start at 21 s; 30.9 is 9.9 s after: running
    assert got == [
        "running", "stopped", "stopped", "starting", "starting", "starting", "running", "stopped", "starting",
    ]  # fmt: skip


def test_the_state_before_a_series_carries_over() -> None:
    # the series opens between the levels: it keeps the state it was in
    assert classify([0, 1], [1.2, 1.2], LEVELS, state="stopped").states.tolist() == ["stopped"] * 2
    assert classify([0, 1], [1.2, 1.2], LEVELS, state="running").states.tolist() == ["running"] * 2
    # a start observed before the series still settles
    got = classify([5, 12], [10, 10], LEVELS, state="starting", started_at=0.0, start_settle_s=10)
    assert got.states.tolist() == ["starting", "running"]
    # unknown before: the first value decides, and an unobserved start does not settle
    assert classify([0, 1], [1.2, 0.2], LEVELS).states.tolist() == ["running", "stopped"]
    # NaN holds
    assert classify([0, 1, 2], [10, np.nan, 0], LEVELS).states.tolist() == ["running", "running", "stopped"]


def test_the_tracker_agrees_with_the_vectorised_classifier_at_fixed_levels() -> None:
    rng = np.random.default_rng(3)
    x = np.where(rng.random(400) < 0.5, rng.uniform(0, 3, 400), rng.uniform(5, 15, 400))
    ts = np.cumsum(rng.uniform(0.5, 3, 400))
    want = classify(ts, x, LEVELS, start_settle_s=5).states.tolist()
    t = OperatingTracker(stopped_below=1.0, hysteresis=0.5, start_settle_s=5)
    assert [t.step(a, b) for a, b in zip(ts.tolist(), x.tolist(), strict=True)] == want
    assert {"running", "stopped", "starting"} <= set(want)


def test_relative_levels_are_unknown_until_learned_then_ten_percent_of_the_running_median() -> None:
    t = OperatingTracker(start_settle_s=3)
    got = [t.step(float(i), 10.0) for i in range(REFERENCE_MIN + 2)]
    assert got[: REFERENCE_MIN - 1] == [None] * (REFERENCE_MIN - 1)
    assert got[-1] == "running" and t.levels() == Levels(1.0, 1.5)
    # 0.9 A < 10 % of 10 A: stopped; 1.4 A is between 1.0 and 1.5: holds; 10 A: a start, settling 3 s
    seq = [(20, 0.9), (21, 1.4), (22, 10.0), (24, 10.0), (25, 10.0)]
    assert [t.step(a, b) for a, b in seq] == ["stopped", "stopped", "starting", "starting", "running"]
    # the stopped and starting values did not move the running median
    assert t.reference == 10.0


def test_a_tracker_started_at_a_standstill_restarts_its_reference_when_the_machine_runs() -> None:
    t = OperatingTracker(start_settle_s=0)
    for i in range(REFERENCE_MIN + 5):  # a stopped motor: 0.05 A of clamp noise, learned as "running"
        t.step(float(i), 0.05 + 0.01 * (i % 2))
    assert t.reference is not None and t.reference < 0.1
    assert t.step(100.0, 10.0) == "running" and t.reference == 10.0 and t.restarts == 1
    assert t.step(101.0, 0.05) == "stopped"
    # a direct-on-line inrush (7x) does not restart it
    t.step(102.0, 70.0)
    assert t.restarts == 1


def test_a_given_state_starts_and_settles_in_data_time() -> None:
    a = AssetOperating()
    a.configure(OperatingSettings(source="given", state="stopped", start_settle_s=5))
    assert a.on_reading(0.0, 10.0, 0.3) == "stopped"  # the measured current does not matter
    assert a.on_window(1.0, 1.0) == "stopped"
    a.configure(OperatingSettings(source="given", state="running", start_settle_s=5))
    assert [a.on_reading(t, 0.0, 0.0) for t in (2.0, 6.0, 7.0)] == ["starting", "starting", "running"]


def test_sources_pick_the_signal() -> None:
    cur = AssetOperating()
    cur.configure(OperatingSettings(stopped_below_a=2.0))
    assert cur.on_reading(0.0, 1.0, 5.0) == "stopped"  # current decides, not vibration
    assert cur.on_window(0.5, 5.0) == "stopped"  # auto: an asset with readings -> their state
    vib = AssetOperating()
    vib.configure(OperatingSettings(source="vibration", stopped_below_g=0.1))
    assert vib.on_reading(0.0, 1.0, 0.5) == "running"
    assert vib.on_window(0.5, 0.01) == "stopped"
    windows_only = AssetOperating()
    windows_only.configure(OperatingSettings(stopped_below_g=0.1))
    assert windows_only.on_window(0.0, 0.02) == "stopped"
    only_current = AssetOperating()
    only_current.configure(OperatingSettings(source="current"))
    assert only_current.on_window(0.0, 0.5) is None  # no reading yet: unknown


def test_window_level_removes_gravity() -> None:
    t = np.arange(1000) / 1000
    z = 1.0 + 0.2 * np.sin(2 * np.pi * 50 * t)  # 1 g of gravity plus a 0.2 g tone
    assert window_level_g([np.zeros(1000), z]) == pytest.approx(0.2 / np.sqrt(2), rel=1e-3)


def test_tracker_and_asset_round_trip_through_json() -> None:
    a = AssetOperating()
    a.configure(OperatingSettings(hysteresis=0.2, start_settle_s=4))
    for i in range(30):
        a.on_reading(float(i), 10.0 if i < 20 or i > 24 else 0.1, 0.2)
        a.on_window(float(i) + 0.5, 0.3)
    back = AssetOperating.from_dict(json.loads(json.dumps(a.to_dict())))
    assert back.to_dict() == a.to_dict()
    for t, v in [(30.0, 0.1), (31.0, 10.0), (32.0, 10.0), (40.0, 10.0)]:
        assert back.on_reading(t, v, 0.2) == a.on_reading(t, v, 0.2)
    assert a.trackers["current_a"].state == "running"


def test_classify_series_learns_the_running_median_of_the_whole_series() -> None:
    # stopped first (the tracker alone would learn the standstill), then 12 A; stopped below 1.2 A
    ts = np.arange(60.0)
    x = np.r_[np.full(20, 0.05), np.full(40, 12.0)]
    states, levels = classify_series(ts, x, OperatingSettings(start_settle_s=10))
    assert levels is not None
    assert (levels.stopped_below, levels.running_from) == pytest.approx((1.2, 1.8))
    assert states[:20].tolist() == ["stopped"] * 20
    assert states[20:30].tolist() == ["starting"] * 10 and states[30:].tolist() == ["running"] * 30
    # too few values to learn a level: all running (nothing excluded)
    few, none = classify_series(ts[:5], x[:5])
    assert none is None and few.tolist() == ["running"] * 5
    # absolute levels and given states
    assert classify_series(ts, x, OperatingSettings(stopped_below_a=20.0))[0].tolist() == ["stopped"] * 60
    given = classify_series(ts, x, OperatingSettings(source="given", state="stopped"))[0]
    assert set(given.tolist()) == {"stopped"}


def test_settings_validate() -> None:
    with pytest.raises(ValidationError, match="needs operating.state"):
        OperatingSettings(source="given")
    with pytest.raises(ValidationError, match="only with operating.source 'given'"):
        OperatingSettings(state="stopped")
    with pytest.raises(ValidationError):
        OperatingSettings(stopped_below_a=0.0)
    cfg = AssetConfig.model_validate_json('{"asset_id": "m1", "operating": {"stopped_below_a": 2.5}}')
    assert cfg.operating is not None and cfg.operating.stopped_below_a == 2.5
    assert AssetConfig(asset_id="m1").operating is None  # configs without the block still read


def test_state_codes_round_trip() -> None:
    from shared.messages.operating import OPERATING_CODE_FEATURE, code_state, state_feature

    for state in ("running", "stopped", "starting"):
        [(name, code)] = state_feature(state).items()  # type: ignore[arg-type]
        assert name == OPERATING_CODE_FEATURE and code_state(code) == state
    assert state_feature(None) == {} and code_state(7.0) is None
