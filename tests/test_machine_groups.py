"""Leading and transmitted changes among the sensors of one machine (shared.health.machine)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from services.health.machines import MachineGroups
from services.health.service import build
from shared import topics
from shared.bus import MemoryBus
from shared.health.machine import Change, attribute, hold_transmitted
from shared.health.policy import Condition, one_alarm_per_fault
from shared.messages import AlarmEvent, AssetConfig, HealthUpdate
from shared.service import deliver
from shared.settings import Settings
from tests.support.signing import VERIFY_KEY
from tests.test_health_service_prognostics import RMS_CAL, announcement, window_parts

T = 1_700_000_000.0


def test_a_sensor_alone_or_without_neighbours_is_alone() -> None:
    assert attribute("b1", 1.0, None, [], T).role == "alone"
    own = Change("b1", T, 3.0)
    assert attribute("b1", 3.0, own, [own], T + 10).role == "alone"  # its own entry is not a neighbour


def test_the_neighbour_of_a_failing_bearing_is_transmitted_not_a_second_fault() -> None:
    """b1 failed first (RMS 4x); b2's RMS rose to 1.8x 300 s later: carried, not a fault."""
    failing = Change("b1", T, 4.0, "RMS 4.0× calibrated")
    a = attribute("b2", 1.8, None, [failing], T + 300)
    assert (a.role, a.source, a.lag_s) == ("transmitted", "b1", 300.0)
    assert a.reason == (
        "b2's change follows b1: b1 changed 300 s earlier and more (4.00× its normal (RMS 4.0× calibrated) "
        "against 1.80× here): carried through the machine, not a second fault"
    )
    # b1's view: it leads, b2 (its transmitted change since T + 300) follows
    lead = attribute("b1", 4.0, failing, [Change("b2", T + 300, 1.8)], T + 300)
    assert (lead.role, lead.followers) == ("leading", ("b2",))
    assert "b2 followed" in lead.reason


def test_a_larger_later_change_is_a_fault_of_its_own() -> None:
    """A later change larger than the earlier one is not explained by it."""
    first = Change("b1", T, 1.5)
    assert attribute("b2", 3.0, None, [first], T + 60).role == "alone"
    assert attribute("b1", 1.5, first, [Change("b2", T + 60, 3.0)], T + 60).role == "alone"


def test_the_earliest_larger_neighbour_is_the_source() -> None:
    ns = [Change("c", T + 50, 5.0), Change("a", T + 10, 2.0), Change("b", T + 20, 6.0)]
    assert attribute("d", 2.5, None, ns, T + 100).source == "b"  # a is earlier but smaller than d
    assert attribute("d", 1.5, None, ns, T + 100).source == "a"


def test_a_change_that_began_first_is_never_transmitted() -> None:
    own = Change("b2", T, 1.2)
    assert attribute("b2", 1.2, own, [Change("b1", T + 5, 4.0)], T + 10).role == "alone"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"asset_id": "bad id", "since": T, "level": 1.0}, "invalid asset id"),
        ({"asset_id": "a", "since": float("nan"), "level": 1.0}, "since must be a finite"),
        ({"asset_id": "a", "since": T, "level": 0.0}, "level must be a finite ratio > 0"),
    ],
)
def test_bad_changes_are_refused(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Change(**kwargs)  # type: ignore[arg-type]


def test_bad_levels_and_times_are_refused() -> None:
    with pytest.raises(ValueError, match="level must be"):
        attribute("a", float("inf"), None, [], T)
    with pytest.raises(ValueError, match="now must be"):
        attribute("a", 1.0, None, [], float("nan"))


# -- the health service: two bearings of one machine -------------------------------------------------


async def _run_machine(tmp_path: Path, grouped: bool) -> MemoryBus:
    """b1 steps to 4x its calibrated RMS at window 100; b2 (its neighbour) to 3x at window 110."""
    bus = MemoryBus()
    svc = build(Settings(data_dir=tmp_path, model_verify_key=VERIFY_KEY))
    for asset in ("b1", "b2"):
        config = AssetConfig(asset_id=asset, machine="m1" if grouped else None)
        await deliver(svc, bus, topics.asset_config(asset), config, retain=True)
        await deliver(svc, bus, topics.model_announce(asset, "autoencoder"), announcement(asset), retain=True)
    for i in range(200):
        levels = {"b1": 4.0 if i >= 100 else 1.0, "b2": 3.0 if i >= 110 else 1.0}
        for asset, level in levels.items():
            for topic, msg in window_parts(i, RMS_CAL * level, asset):
                await deliver(svc, bus, topic, msg)
    return bus


def _alarms(bus: MemoryBus, asset: str) -> list[AlarmEvent]:
    return [AlarmEvent.model_validate_json(m.payload) for m in bus.on(topics.alarm(asset))]


def _health(bus: MemoryBus, asset: str) -> HealthUpdate:
    return HealthUpdate.model_validate_json(bus.retained[topics.health(asset)].payload)


async def test_a_neighbours_transmitted_rise_opens_no_second_fault(tmp_path: Path) -> None:
    bus = await _run_machine(tmp_path, grouped=True)
    (opened,) = [a for a in _alarms(bus, "b1") if a.state == "ACTIVE"]
    assert opened.source == "trend"
    assert _alarms(bus, "b2") == []  # its own CUSUM alarmed (see the ungrouped run) but it carries b1's
    b1, b2 = _health(bus, "b1").machine, _health(bus, "b2").machine
    assert b1 is not None and (b1.machine, b1.role, b1.followers) == ("m1", "leading", ["b2"])
    assert b2 is not None and (b2.role, b2.source) == ("transmitted", "b1")
    assert b2.lag_s is not None and b2.lag_s > 0
    first = _health(bus, "b2").insights[0]
    assert first.signal == "machine" and first.text.startswith("b2's change follows b1: b1 changed")
    assert "4.00× its normal (RMS 4.00× calibrated) against 3.00× here" in first.text


async def test_without_a_machine_the_neighbour_opens_its_own_alarm(tmp_path: Path) -> None:
    bus = await _run_machine(tmp_path, grouped=False)
    assert [a.source for a in _alarms(bus, "b2") if a.state == "ACTIVE"] == ["trend"]
    assert _health(bus, "b2").machine is None


def test_one_fault_one_alarm_the_trend_waits_while_an_anomaly_alarm_is_open() -> None:
    trend, anomaly = Condition("trend", True, "WARNING", "CUSUM"), Condition("anomaly", True, "WARNING", "x")
    assert one_alarm_per_fault([anomaly, trend], {"anomaly"}) == [anomaly, replace(trend, active=False)]
    assert one_alarm_per_fault([trend], {"iso20816"})[0].active is False
    assert one_alarm_per_fault([trend], set()) == [trend]  # nothing open: the early warning opens
    assert one_alarm_per_fault([trend], {"anomaly", "trend"}) == [trend]  # already open: runs its course
    assert one_alarm_per_fault([trend], {"sensor"}) == [trend]  # a sensor fault is not a machine fault


def test_a_transmitted_change_holds_only_machine_faults_not_yet_open() -> None:
    follows = attribute("b2", 1.5, None, [Change("b1", T, 3.0)], T + 60)
    conds = [Condition(s, True, "WARNING", "r") for s in ("anomaly", "trend", "iso20816", "sensor")]
    held = hold_transmitted(conds, {"iso20816"}, follows)
    assert [c.active for c in held] == [False, False, True, True]
    assert hold_transmitted(conds, set(), attribute("b2", 5.0, None, [Change("b1", T, 3.0)], T)) == conds


def test_machine_membership_follows_the_configs() -> None:
    g = MachineGroups()
    g.configure("b1", "m1")
    g.configure("b2", "m1")
    g.transmitted["b2"] = Change("b2", T, 1.5)
    g.configure("b2", "m1")  # the same config again: nothing changes
    assert g.members == {"m1": {"b1", "b2"}} and "b2" in g.transmitted
    g.configure("b2", "m2")  # moved: out of m1, its transmitted mark (m1's) forgotten
    assert g.members == {"m1": {"b1"}, "m2": {"b2"}} and g.transmitted == {}
    g.configure("b1", None)
    assert g.members == {"m2": {"b2"}} and g.machine_of == {"b2": "m2"}
