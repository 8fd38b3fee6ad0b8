"""No chatter (issue 16): the alarm book's re-open delay and chatter count on scripted observations, the
anomaly alarm's clearing hysteresis, the config's ``alarms`` block, and the new state's round trip.

Every script below is short enough to check by hand: ``clear_windows=2`` (two condition-off observations
auto-clear), ``reopen_delay_s=100`` and ``reopen_worse_factor=1.5`` unless a test says otherwise; data
time in seconds from 0.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from shared.health import AssessorParams, HealthAssessor, ModelScore
from shared.health.alarms import AlarmBook
from shared.messages import AssetConfig
from tests.support.ids import Ids

A = "pump_1"
SRC = "anomaly"


def book(**kw: Any) -> AlarmBook:
    settings: dict[str, Any] = {"clear_windows": 2, "reopen_delay_s": 100.0, "reopen_worse_factor": 1.5}
    return AlarmBook(id_factory=Ids(), **(settings | kw))


def on(b: AlarmBook, ts: float, magnitude: float | None = 1.2, severity: str = "WARNING") -> list[str]:
    return [t.kind for t in b.observe(A, SRC, ts, True, severity, "r", ("batch",), magnitude)]


def off(b: AlarmBook, ts: float) -> list[str]:
    return [t.kind for t in b.observe(A, SRC, ts, False)]


def opened_then_cleared(b: AlarmBook, peak: float = 1.4) -> str:
    """Open at t=0 (magnitude 1.2), peak ``peak`` at t=1, off at t=2 and t=3: auto-cleared at t=3."""
    assert on(b, 0.0) == ["opened"]
    assert on(b, 1.0, peak) == []
    assert off(b, 2.0) == []
    assert off(b, 3.0) == ["resolved"]
    first = b.alarms()[0]
    assert first.peak == peak and first.auto_cleared and first.resolved_at == 3.0 and first.reopens == 0
    return first.alarm_id


def test_a_new_rising_edge_within_the_delay_is_held_and_counted() -> None:
    b = book()
    first = opened_then_cleared(b)
    assert on(b, 10.0) == [] and on(b, 11.0) == []  # one rising edge held (t=10), still on at t=11
    assert off(b, 12.0) == [] and on(b, 13.0) == []  # a second rising edge, held
    assert b.open_alarms() == [] and b.get(first).held_reopens == 2
    assert off(b, 14.0) == []
    assert on(b, 102.9) == []  # 3 + 100 = 103: still within the delay
    assert b.get(first).held_reopens == 3
    assert off(b, 103.5) == [] and on(b, 104.0) == ["opened"]  # after the delay: opens
    second = b.open_alarms()[0]
    # opened 101 s after the first cleared (within the 600 s chatter window): a re-open of it
    assert (second.reopens, second.reopen_of) == (1, first)


def test_a_condition_that_persists_through_the_delay_opens_when_it_ends() -> None:
    b = book()
    opened_then_cleared(b)
    kinds = {t: on(b, float(t)) for t in range(10, 110)}
    assert [t for t, k in kinds.items() if k] == [103] and kinds[103] == ["opened"]  # 3 + 100
    assert b.alarms()[0].held_reopens == 1  # one rising edge, held until the delay passed


def test_clearly_worse_reopens_at_once() -> None:
    b = book()
    opened_then_cleared(b, peak=2.0)  # 1.5 x 2.0 = 3.0
    assert on(b, 10.0, magnitude=2.9) == []  # worse than before, but not clearly
    assert on(b, 11.0, magnitude=3.0) == ["opened"]  # 3.0 >= 1.5 x peak: at once, never hidden
    new = b.open_alarms()[0]
    assert (new.reopens, new.peak) == (1, 3.0)


def test_a_higher_severity_reopens_at_once() -> None:
    b = book()
    opened_then_cleared(b)  # a WARNING
    assert on(b, 10.0, magnitude=None) == []  # no magnitude, same severity: held
    assert on(b, 11.0, magnitude=None, severity="CRITICAL") == ["opened"]


def test_no_magnitude_and_no_delay_behave_as_before() -> None:
    """``reopen_delay_s`` 0 (the book's default): a new rising edge opens at once, as before the delay
    existed, and the chatter count still records it."""
    b = book(reopen_delay_s=0.0)
    first = opened_then_cleared(b)
    assert on(b, 4.0) == ["opened"]
    assert b.open_alarms()[0].reopens == 1 and b.open_alarms()[0].reopen_of == first
    assert off(b, 5.0) == [] and off(b, 6.0) == ["resolved"]
    assert on(b, 7.0) == ["opened"] and b.open_alarms()[0].reopens == 2  # a chain: 3 alarms in 7 s


def test_the_chatter_window_ends_a_chain() -> None:
    b = book(reopen_delay_s=0.0, chatter_window_s=600.0)
    opened_then_cleared(b)
    assert on(b, 604.0) == ["opened"]  # 601 s after the clear at t=3: a new alarm, not a re-open
    assert (b.open_alarms()[0].reopens, b.open_alarms()[0].reopen_of) == (0, None)


def test_an_operators_resolve_sets_no_delay() -> None:
    b = book()
    assert on(b, 0.0) == ["opened"]
    alarm = b.open_alarms()[0].alarm_id
    b.resolve(alarm, "ops", action_code="bearing_replaced", ts=1.0)  # maintenance: re-armed at once
    assert on(b, 2.0) == ["opened"]
    second = b.open_alarms()[0]
    assert second.reopens == 0 and second.reopen_of is None


def test_maintenance_clears_a_pending_delay() -> None:
    b = book()
    opened_then_cleared(b)
    assert on(b, 10.0) == []  # held
    assert off(b, 11.0) == [] and on(b, 12.0) == [] and off(b, 13.0) == []
    # an operator cannot resolve a resolved alarm, but a repair of a new one re-arms: open it clearly worse
    assert on(b, 14.0, magnitude=5.0) == ["opened"]
    b.resolve(b.open_alarms()[0].alarm_id, "ops", action_code="bearing_replaced", ts=15.0)
    assert on(b, 16.0) == ["opened"]  # no delay after a repair


def test_invalid_settings_are_refused() -> None:
    for kw in ({"reopen_delay_s": -1.0}, {"reopen_worse_factor": 1.0}, {"chatter_window_s": float("nan")}):
        with pytest.raises(ValueError):
            book(**kw)
    with pytest.raises(ValueError, match="magnitude"):
        on(book(), 0.0, magnitude=-0.5)


def test_state_round_trip_mid_delay() -> None:
    """The held state, the cleared alarm's peak and the settings survive to_dict -> JSON -> from_dict:
    the restored book holds and opens exactly as the original."""
    b = book()
    opened_then_cleared(b)
    assert on(b, 10.0) == []
    restored = AlarmBook.from_dict(json.loads(json.dumps(b.to_dict())), id_factory=Ids())
    assert restored.to_dict() == b.to_dict()
    for x in (b, restored):
        assert on(x, 50.0) == []
        assert on(x, 103.0) == ["opened"]
    assert restored.open_alarms()[0].reopens == 1


def test_state_saved_before_the_delay_loads() -> None:
    """A state of the earlier layout (no delay settings, no chatter fields on alarms or keys) loads
    with no delay and zero counts, and works on."""
    b = book(reopen_delay_s=0.0)
    assert on(b, 0.0) == ["opened"]
    d = b.to_dict()
    for k in ("reopen_delay_s", "reopen_worse_factor", "chatter_window_s"):
        del d[k]
    for a in d["alarms"]:
        for k in ("peak", "reopens", "reopen_of", "held_reopens"):
            del a[k]
    for key in d["keys"].values():
        for k in (
            "cleared_alarm_id",
            "cleared_at",
            "cleared_peak",
            "cleared_severity",
            "cleared_reopens",
            "held",
        ):
            del key[k]
    old = AlarmBook.from_dict(json.loads(json.dumps(d)), id_factory=Ids())
    assert old.reopen_delay_s == 0.0 and old.open_alarms()[0].reopens == 0
    assert old.open_alarms()[0].peak is None
    assert off(old, 1.0) == [] and off(old, 2.0) == ["resolved"]
    assert on(old, 3.0) == ["opened"]


# -- the assessor: hysteresis and the config's alarms block --------------------------------------------


def feed(a: HealthAssessor, t: float, ratios: list[float]) -> tuple[float, list[str]]:
    """One batch-model score per data second at the given ratios (threshold 0.5); the transitions."""
    kinds = []
    for r in ratios:
        sev = "CRITICAL" if r > 2 else "WARNING" if r > 1 else "NORMAL"
        res = a.update(t, [ModelScore("batch", r * 0.5, 0.5, r > 1, sev)])
        kinds += [e.kind for e in res.alarm_events]
        t += 1.0
    return t, kinds


def test_anomaly_alarm_clears_only_below_the_clear_ratio() -> None:
    """Open at ratio 3; then 0.95 for 10 minutes: below the opening level 1.0 but not below the clearing
    level 0.9 (default): the alarm stays open (hysteresis). At 0.5 it clears once the smoothed ratio
    (tau 30 s) falls below 0.9 and 10 more updates pass."""
    a = HealthAssessor(A, id_factory=Ids())
    t, kinds = feed(a, 0.0, [0.3] * 60 + [3.0] * 30)
    assert kinds == ["opened"]
    t, kinds = feed(a, t, [0.95] * 600)
    assert kinds == [] and len(a.alarms.open_alarms()) == 1
    t, kinds = feed(a, t, [0.5] * 120)
    assert kinds == ["resolved"]


def test_the_alarms_block_of_the_config_sets_the_lifecycle() -> None:
    cfg = AssetConfig(
        asset_id=A,
        alarms={"clear_ratio": 1.0, "clear_windows": 5, "reopen_delay_s": 0, "reopen_worse_factor": 2},
    )
    a = HealthAssessor(A, config=cfg, id_factory=Ids())
    assert (a.params.alarm_clear_ratio, a.params.clear_windows) == (1.0, 5)
    assert (a.alarms.reopen_delay_s, a.alarms.reopen_worse_factor, a.alarms.clear_windows) == (0.0, 2.0, 5)
    # clear_ratio 1.0 = the opening level: 0.95 no longer holds the alarm
    t, kinds = feed(a, 0.0, [0.3] * 60 + [3.0] * 30)
    t, kinds = feed(a, t, [0.95] * 600)
    assert kinds == ["resolved"]
    # a config without the block restores the defaults
    a.set_config(AssetConfig(asset_id=A))
    assert a.params == AssessorParams() and a.alarms.reopen_delay_s == AssessorParams().reopen_delay_s


def test_the_alarms_block_is_validated() -> None:
    with pytest.raises(ValidationError, match="clear_ratio"):
        AssetConfig(asset_id=A, alarms={"open_ratio": 1.0, "clear_ratio": 1.2})
    with pytest.raises(ValidationError):
        AssetConfig(asset_id=A, alarms={"reopen_worse_factor": 1.0})
    with pytest.raises(ValidationError):
        AssetConfig(asset_id=A, alarms={"reopen_delay_s": -5})
    # a lower opening level alone pulls the clearing level down with it
    a = HealthAssessor(A, config=AssetConfig(asset_id=A, alarms={"open_ratio": 0.7}))
    assert (a.params.alarm_min_smoothed_ratio, a.params.alarm_clear_ratio) == (0.7, 0.7)
    # configs without the block (all earlier ones) load and serialise as before
    assert "alarms" not in AssetConfig(asset_id=A).model_dump(exclude_none=True)


def test_assessor_state_round_trip_keeps_the_delay_and_applies_the_current_params() -> None:
    a = HealthAssessor(A, id_factory=Ids())
    t, _ = feed(a, 0.0, [0.3] * 60 + [3.0] * 30 + [0.2] * 200)
    assert [x.auto_cleared for x in a.alarms.alarms()] == [True]
    d = json.loads(json.dumps(a.to_dict()))
    b = HealthAssessor.from_dict(d, id_factory=Ids(), params=AssessorParams(reopen_delay_s=5000.0))
    assert b.alarms.reopen_delay_s == 5000.0
    # a second burst of the same size within the delay: held in the restored assessor
    _, kinds = feed(b, t, [3.0] * 30)
    assert kinds == [] and b.alarms.alarms()[0].held_reopens == 1
    assert np.isfinite(b.alarms.alarms()[0].peak or np.nan)
