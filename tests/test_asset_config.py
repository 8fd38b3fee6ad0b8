"""Asset configuration contract: the bearing geometry consistency rule on :class:`AssetConfig`."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

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
            "bearing pitch_diameter_mm (39) must be greater than ball_diameter_mm (40)",
        ),
        (
            {"n_balls": 9, "ball_diameter_mm": 7.94},
            "bearing geometry is incomplete: n_balls, ball_diameter_mm given but pitch_diameter_mm missing",
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
