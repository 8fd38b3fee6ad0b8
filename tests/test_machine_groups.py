"""Leading and transmitted changes among the sensors of one machine (shared.health.machine)."""

from __future__ import annotations

import pytest

from shared.health.machine import Change, attribute

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
