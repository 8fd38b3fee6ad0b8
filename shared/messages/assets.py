"""Asset configuration (retained on ``config/<asset>``, owned by the calibrator)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from shared.messages.base import AssetId, Message, utcnow


class BearingGeometry(Message):
    """Rolling-element bearing geometry, or its defect frequencies directly as orders of shaft speed."""

    n_balls: int | None = Field(default=None, ge=3, le=100)
    ball_diameter_mm: float | None = Field(default=None, gt=0, le=1000)
    pitch_diameter_mm: float | None = Field(default=None, gt=0, le=5000)
    contact_angle_deg: float = Field(default=0.0, ge=0, lt=90)
    # Defect frequencies in multiples of shaft frequency (take precedence when given).
    bpfo_order: float | None = Field(default=None, gt=0, le=100)
    bpfi_order: float | None = Field(default=None, gt=0, le=100)
    bsf_order: float | None = Field(default=None, gt=0, le=100)
    ftf_order: float | None = Field(default=None, gt=0, le=1)


class AssetConfig(Message):
    asset_id: AssetId
    name: str = Field(default="", max_length=200)
    type: Literal["motor", "pump", "fan", "compressor", "gearbox", "other"] = "motor"
    rpm: float | None = Field(default=None, gt=0, le=120_000, description="Running speed, rev/min")
    iso_group: Literal[1, 2] = Field(default=2, description="ISO 20816-3 group: 1 large, 2 medium")
    foundation: Literal["rigid", "flexible"] = "rigid"
    bearing: BearingGeometry | None = None
    updated_at: datetime = Field(default_factory=utcnow)
