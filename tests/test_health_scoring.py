"""Health score mapping, fusion, ISO cap, risk level and grade (hand-checkable values)."""

from __future__ import annotations

import numpy as np
import pytest

from shared.health.iso20816 import iso_zone, iso_zone_index, zone_limits
from shared.health.scoring import (
    fuse_health,
    grade,
    health_from_scores,
    iso_health_cap,
    ratio_to_health,
    risk_level,
)


@pytest.mark.parametrize(
    ("ratio", "health"),
    [
        (-3.0, 100.0),
        (0.0, 100.0),
        (0.5, 100.0),
        (0.75, 87.5),
        (1.0, 75.0),
        (1.5, 55.0),
        (2.0, 35.0),
        (2.5, 25.0),
        (3.0, 15.0),
        (4.0, 7.5),
        (5.0, 0.0),
        (50.0, 0.0),
    ],
)
def test_ratio_to_health_knots(ratio: float, health: float) -> None:
    assert float(ratio_to_health(ratio)) == pytest.approx(health)


def test_ratio_to_health_is_monotone_and_vectorised() -> None:
    r = np.linspace(-1, 8, 1000)
    h = ratio_to_health(r)
    assert h.shape == r.shape
    assert np.all(np.diff(h) <= 0)
    assert ratio_to_health(np.array([[0.2, 1.0], [2.0, 9.0]])).tolist() == [[100.0, 75.0], [35.0, 0.0]]


def test_single_model_health_equals_mapping() -> None:
    assert health_from_scores({"batch": 1.0}) == pytest.approx(75.0)
    assert health_from_scores({"batch": 0.3}) == 100.0


def test_fusion_is_worst_dominant() -> None:
    # one model at ratio 2 (35), two healthy (100): mean 78.33 -> 35 + 0.2 * 43.33 = 43.67
    h = health_from_scores({"legacy": 0.1, "batch": 2.0, "autoencoder": 0.2})
    assert h == pytest.approx(35 + 0.2 * ((35 + 200) / 3 - 35))
    assert risk_level(h) == "HIGH"
    # a corroborated fault scores lower than a single-model one
    assert health_from_scores({"legacy": 2.0, "batch": 2.0, "autoencoder": 0.2}) < h
    # worst model at 0 and two healthy ones is still CRITICAL
    assert risk_level(health_from_scores({"legacy": 6, "batch": 0.0, "autoencoder": 0.0})) == "CRITICAL"
    assert fuse_health([40.0, 40.0]) == 40.0


def test_iso_cap() -> None:
    assert iso_health_cap("A") == iso_health_cap("B") == iso_health_cap(None) == 100.0
    assert health_from_scores({"batch": 0.1}, "C") == 60.0
    assert health_from_scores({"batch": 0.1}, "D") == 20.0
    assert health_from_scores({"batch": 2.0}, "C") == pytest.approx(35.0)  # model is worse than cap
    assert health_from_scores({}, "B") == 100.0  # before calibration: ISO alone
    assert health_from_scores({}, "C") == 60.0


@pytest.mark.parametrize(
    "bad",
    [{"batch": float("nan")}, {"batch": float("inf")}, {"batch": "1"}, {"batch": True}],
)
def test_health_rejects_bad_ratios(bad: dict) -> None:
    with pytest.raises(ValueError, match="batch"):
        health_from_scores(bad)


def test_health_unknown_without_inputs() -> None:
    with pytest.raises(ValueError, match="unknown"):
        health_from_scores({})
    with pytest.raises(ValueError, match="zone"):
        health_from_scores({}, "E")


@pytest.mark.parametrize(
    ("health", "risk"),
    [
        (100, "LOW"),
        (75, "LOW"),
        (74.999, "MODERATE"),
        (50, "MODERATE"),
        (49.99, "HIGH"),
        (25, "HIGH"),
        (24.99, "CRITICAL"),
        (0, "CRITICAL"),
    ],
)
def test_risk_boundaries(health: float, risk: str) -> None:
    assert risk_level(health) == risk


@pytest.mark.parametrize(
    ("health", "g"),
    [
        (100, "A"),
        (90, "A"),
        (89.9, "B"),
        (75, "B"),
        (74.9, "C"),
        (50, "C"),
        (49.9, "D"),
        (25, "D"),
        (24.9, "F"),
        (0, "F"),
    ],
)
def test_grade_boundaries(health: float, g: str) -> None:
    assert grade(health) == g


@pytest.mark.parametrize("bad", [-0.1, 100.1, float("nan"), "80", None])
def test_risk_and_grade_reject_out_of_range(bad: object) -> None:
    with pytest.raises(ValueError):
        risk_level(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        grade(bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# ISO 20816-3
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("group", "foundation", "limits"),
    [
        (1, "rigid", (2.3, 4.5, 7.1)),
        (1, "flexible", (3.5, 7.1, 11.0)),
        (2, "rigid", (1.4, 2.8, 4.5)),
        (2, "flexible", (2.3, 4.5, 7.1)),
    ],
)
def test_iso_zone_boundaries(group: int, foundation: str, limits: tuple[float, float, float]) -> None:
    ab, bc, cd = limits
    assert zone_limits(group, foundation) == limits
    cases = [
        (0.0, "A"),
        (ab, "A"),
        (ab + 0.01, "B"),
        (bc, "B"),
        (bc + 0.01, "C"),
        (cd, "C"),
        (cd + 0.01, "D"),
        (100.0, "D"),
    ]
    for v, zone in cases:
        res = iso_zone(v, group, foundation)
        assert res.zone == zone, (v, group, foundation)
        assert res.limits == limits
        assert res.velocity_mm_s == v
    vs = np.array([v for v, _ in cases])
    assert iso_zone_index(vs, group, foundation).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_iso_zone_descriptions_follow_the_standard() -> None:
    assert "newly commissioned" in iso_zone(1.0, 2, "rigid").description
    assert "unrestricted long-term operation" in iso_zone(2.0, 2, "rigid").description
    assert "long-term continuous operation" in iso_zone(3.0, 2, "rigid").description
    assert "damage" in iso_zone(5.0, 2, "rigid").description
    d = iso_zone(5.1, 1, "rigid").to_dict()
    assert d["zone"] == "C" and d["limits"] == [2.3, 4.5, 7.1] and d["group"] == 1


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((-1.0, 2, "rigid"), "negative"),
        ((float("nan"), 2, "rigid"), "finite"),
        ((1.0, 3, "rigid"), "group"),
        ((1.0, 2, "soft"), "foundation"),
        (("1", 2, "rigid"), "number"),
    ],
)
def test_iso_zone_rejects_bad_input(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        iso_zone(*args)
