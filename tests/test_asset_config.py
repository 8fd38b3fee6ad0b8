"""Asset configuration contract: the bearing geometry consistency rule on :class:`AssetConfig`, and
its diameters in mm or inches (configs with ``*_diameter_mm`` keys still read)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import ValidationError

from shared.features.engine import config_bearing_orders
from shared.messages import AssetConfig, BearingGeometry


@pytest.mark.parametrize(
    "bearing",
    [
        {"n_balls": 9, "ball_diameter_mm": 7.94, "pitch_diameter_mm": 39.04},
        {"bpfo_order": 3.5848},
        {"n_balls": 9, "ball_diameter_mm": 7.94, "pitch_diameter_mm": 39.04, "bpfi_order": 5.4},
        {"bpfo_order": 3.5848, "bpfi_order": 5.4152, "bsf_order": 4.7135, "ftf_order": 0.39828},
    ],
)
def test_consistent_bearings_are_accepted(bearing: dict[str, Any]) -> None:
    cfg = AssetConfig(asset_id="p1", rpm=1480, bearing=BearingGeometry(**bearing))
    assert cfg.bearing is not None
    assert AssetConfig.model_validate_json(cfg.model_dump_json()) == cfg


@pytest.mark.parametrize(
    ("bearing", "reason"),
    [
        (
            {"n_balls": 9, "ball_diameter_mm": 40, "pitch_diameter_mm": 39},
            "bearing pitch_diameter (39 mm) must be greater than ball_diameter (40 mm)",
        ),
        (
            {"n_balls": 9, "ball_diameter_mm": 7.94},
            "bearing geometry is incomplete: n_balls, ball_diameter given but pitch_diameter missing",
        ),
        ({}, "bearing needs its geometry"),
        ({"contact_angle_deg": 15}, "bearing needs its geometry"),
    ],
)
def test_inconsistent_bearings_are_rejected(bearing: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        AssetConfig.model_validate({"asset_id": "p1", "bearing": bearing})
    assert reason in (BearingGeometry.model_validate(bearing).consistency_error() or "")


def test_no_bearing_is_fine() -> None:
    assert AssetConfig(asset_id="p1").bearing is None


def test_inches_give_the_cwru_orders_and_equal_mm() -> None:
    """SKF 6205 (CWRU drive end): 9 balls, d 0.3126 in, D 1.537 in → BPFO 3.5848, BPFI 5.4152 × shaft
    (shared/datasets/cwru/README.md); the same bearing in mm gives the same orders."""
    inch = BearingGeometry(n_balls=9, ball_diameter=0.3126, pitch_diameter=1.537, unit="in")
    mm = BearingGeometry(n_balls=9, ball_diameter=0.3126 * 25.4, pitch_diameter=1.537 * 25.4)
    assert inch.ball_diameter_mm == pytest.approx(7.94004)
    assert inch.pitch_diameter_mm == pytest.approx(39.0398)
    for b in (inch, mm):
        orders = config_bearing_orders(AssetConfig(asset_id="de", rpm=1797, bearing=b))
        assert orders is not None
        assert orders["bpfo"] == pytest.approx(3.5848, abs=5e-5)
        assert orders["bpfi"] == pytest.approx(5.4152, abs=5e-5)
    cfg = AssetConfig(asset_id="de", bearing=inch)
    assert AssetConfig.model_validate_json(cfg.model_dump_json()) == cfg
    assert cfg.model_dump()["bearing"]["unit"] == "in"


def test_legacy_mm_keys_still_load() -> None:
    old = {"asset_id": "p1", "bearing": {"n_balls": 9, "ball_diameter_mm": 7.94, "pitch_diameter_mm": 39.04}}
    b = AssetConfig.model_validate_json(json.dumps(old)).bearing
    assert b is not None and (b.ball_diameter, b.pitch_diameter, b.unit) == (7.94, 39.04, "mm")


@pytest.mark.parametrize(
    ("bearing", "reason"),
    [
        (
            {"n_balls": 9, "ball_diameter": 1.6, "pitch_diameter": 1.537, "unit": "in"},
            "bearing pitch_diameter (1.537 in) must be greater than ball_diameter (1.6 in)",
        ),
        (
            {"n_balls": 9, "ball_diameter": 60, "pitch_diameter": 300, "unit": "in"},
            "bearing ball_diameter 60 in is above 39.3701 in (1000 mm): check the unit",
        ),
        (
            {"n_balls": 9, "ball_diameter_mm": 7.94, "pitch_diameter_mm": 39.04, "unit": "in"},
            "ball_diameter_mm is in mm but unit is 'in': give ball_diameter instead",
        ),
        (
            {"n_balls": 9, "ball_diameter_mm": 7.94, "ball_diameter": 7.94, "pitch_diameter": 39.04},
            "give ball_diameter (in unit) or the older ball_diameter_mm, not both",
        ),
        (
            {"n_balls": 9, "ball_diameter": 8, "pitch_diameter": 39, "unit": "cm"},
            "Input should be 'mm' or 'in'",
        ),
    ],
)
def test_unit_errors_name_the_unit(bearing: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(reason)):
        AssetConfig.model_validate({"asset_id": "p1", "bearing": bearing})


def test_geometry_gives_the_ball_defect_line_twice_the_spin() -> None:
    """A spalled ball strikes both races once per spin revolution: the geometry's BSF is the ball defect
    line, 2 x D/(2d) (1 - (d/D)^2) = 4.7134 for the SKF 6205 (the CWRU table's 4.7135), and an explicit
    bsf_order still wins."""
    b = BearingGeometry(n_balls=9, ball_diameter=0.3126, pitch_diameter=1.537, unit="in")
    orders = config_bearing_orders(AssetConfig(asset_id="de", rpm=1797, bearing=b))
    assert orders is not None
    spin = 1.537 / (2 * 0.3126) * (1 - (0.3126 / 1.537) ** 2)
    assert orders["bsf"] == pytest.approx(2 * spin) and orders["bsf"] == pytest.approx(4.7135, abs=2e-4)
    explicit = b.model_copy(update={"bsf_order": 2.3567})
    assert config_bearing_orders(AssetConfig(asset_id="de", rpm=1797, bearing=explicit))["bsf"] == 2.3567  # type: ignore[index]
