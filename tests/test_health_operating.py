"""A stopped or starting asset is not assessed (issue 16): no anomaly, trend or ISO alarm opens (or
clears) while it stands still or runs up, and its health says why instead of a score.

Goes to tests/test_health_operating.py once /work/notes/opstate-assessor.patch is applied."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from shared import topics
from shared.bus import MemoryBus
from shared.health import HealthAssessor
from shared.messages import AlarmEvent, AssetConfig, BearingGeometry, FeatureVector, HealthUpdate, IsoSettings
from shared.service import deliver
from tests.support.ids import Ids
from tests.test_health_assessor import T0, healthy, scores, severe
from tests.test_health_service import T0 as HT0
from tests.test_health_service import parts, service

# What a stopped machine's vectors score against a model of the running machine: far off (no current,
# no vibration), the ratio 3-5x the threshold, as a severe fault.
STANDSTILL = severe


def feed(a: HealthAssessor, t: float, seconds: int, draw, rng, operating: str | None) -> tuple[float, list]:
    out = []
    for _ in range(seconds):
        out.append(a.update(t, scores(draw(rng)), operating=operating))
        t += 1.0
    return t, out


def cycle(operating: tuple[str | None, str | None]) -> tuple[HealthAssessor, list, list, list]:
    """10 min running, a 5 min stop, a 30 s start (both scoring like a severe fault), 10 min running;
    ``operating``: the states the stop and the start are marked with."""
    rng = np.random.default_rng(11)
    a = HealthAssessor("m1", id_factory=Ids())
    t, before = feed(a, T0, 600, healthy, rng, "running")
    t, stop = feed(a, t, 300, STANDSTILL, rng, operating[0])
    t, start = feed(a, t, 30, STANDSTILL, rng, operating[1])
    t, after = feed(a, t, 600, healthy, rng, "running")
    return a, before, stop + start, after


def test_a_stop_start_cycle_opens_no_alarm() -> None:
    a, before, stopped, after = cycle(("stopped", "starting"))
    assert a.alarms.alarms() == [] and all(r.alarm_events == [] for r in before + stopped + after)
    assert all(r.health_score is None and r.risk_level is None and r.iso is None for r in stopped)
    assert stopped[0].maintenance_explanation == "stopped: no anomaly assessment"
    assert stopped[-1].maintenance_explanation == "starting: no anomaly assessment"
    assert [r.operating_state for r in (before[-1], stopped[0], stopped[-1])] == [
        "running",
        "stopped",
        "starting",
    ]
    # the stopped scores left the evidence as it was: running again, the health is where it was
    assert after[0].health_score == pytest.approx(before[-1].health_score, abs=5)
    assert min(r.health_score for r in after) >= 90
    json.dumps(stopped[0].to_dict())


def test_the_same_cycle_unmarked_opens_an_alarm() -> None:
    # what the marking prevents: the standstill's scores, read as a running machine's, open an alarm
    a, _, stopped, _ = cycle((None, None))
    assert [e.kind for r in stopped for e in r.alarm_events][:1] == ["opened"]


def test_an_open_alarm_neither_clears_nor_reopens_during_a_stop() -> None:
    rng = np.random.default_rng(5)
    a = HealthAssessor("m1", id_factory=Ids())
    t, _ = feed(a, T0, 600, healthy, rng, "running")
    t, fault = feed(a, t, 120, severe, rng, "running")
    opened = [e for r in fault for e in r.alarm_events if e.kind == "opened"]
    assert len(opened) == 1
    # stopped for an hour with quiet scores: the alarm stays open (a stop is no repair), unchanged
    t, stop = feed(a, t, 3600, healthy, rng, "stopped")
    assert all(r.alarm_events == [] for r in stop)
    assert [x.alarm_id for x in a.alarms.open_alarms("m1")] == [opened[0].alarm["alarm_id"]]
    # running again with the fault: still that one alarm, no second one
    t, again = feed(a, t, 60, severe, rng, "running")
    assert not [e for r in again for e in r.alarm_events if e.kind == "opened"]
    assert len(a.alarms.open_alarms("m1")) == 1


def test_the_iso_zone_is_not_judged_while_stopped() -> None:
    iso = IsoSettings(applies=True, group=1, foundation="rigid", power_kw=400)  # confirmed: may alarm
    cfg = AssetConfig(asset_id="p1", iso=iso, rpm=1800, bearing=BearingGeometry(bpfo_order=3.5667))
    a = HealthAssessor("p1", config=cfg, id_factory=Ids())
    res = [a.update(T0 + i, features={"velocity_rms_mm_s": 5.1}, operating="stopped") for i in range(1, 6)]
    assert all(r.iso is None and r.alarm_events == [] for r in res)
    # running, the same velocity is zone C and opens the ISO alarm
    res = [a.update(T0 + 10 + i, features={"velocity_rms_mm_s": 5.1}, operating="running") for i in range(5)]
    assert res[-1].iso is not None and res[-1].iso.zone == "C"
    assert [e.alarm["source"] for r in res for e in r.alarm_events if e.kind == "opened"] == ["iso20816"]


def test_stopped_inputs_are_still_checked() -> None:
    a = HealthAssessor("m1", id_factory=Ids())
    with pytest.raises(ValueError):
        a.update(T0, features={"velocity_rms_mm_s": -1.0}, operating="stopped")


async def test_the_health_service_assesses_no_stopped_window(tmp_path: Path) -> None:
    """Through the health service: the vectors' operating_state reaches the assessor with the window's
    features (the join journals it as a number); a stop scoring like a severe fault opens no alarm and
    publishes no health of its time, the same windows unmarked open one."""

    async def cycle(marked: bool) -> MemoryBus:
        bus, svc = MemoryBus(), service(tmp_path / str(marked))
        await svc.state.open()  # type: ignore[union-attr]
        for i in range(900):
            stopped = 600 <= i < 660
            state = ("stopped" if stopped else "running") if marked else None
            for topic, msg in parts(i, 4.0 if stopped else 0.3):
                if isinstance(msg, FeatureVector):
                    msg = msg.model_copy(update={"operating_state": state})
                await deliver(svc, bus, topic, msg)
        return bus

    bus = await cycle(True)
    assert not bus.on(topics.alarm("p1"))
    published = [HealthUpdate.model_validate_json(m.payload) for m in bus.on(topics.health("p1"))]
    stop = (HT0 + timedelta(seconds=600), HT0 + timedelta(seconds=660))
    assert published and not [h for h in published if stop[0] <= h.ts < stop[1]]
    assert published[-1].health_score >= 90 and published[-1].active_alarms == 0
    unmarked = [
        AlarmEvent.model_validate_json(m.payload) for m in (await cycle(False)).on(topics.alarm("p1"))
    ]
    assert unmarked and unmarked[0].state == "ACTIVE"
