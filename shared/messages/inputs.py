"""Raw input (devices, gateway → ingest) and the normalised events ingest publishes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator, model_validator

from shared.messages.base import (
    CURRENT_MAX_A,
    DEFAULT_FS_HZ,
    FS_MAX_HZ,
    FS_MIN_HZ,
    MAX_WINDOW,
    MIN_WINDOW,
    VIBRATION_MAX_G,
    VOLTAGE_MAX_V,
    AssetId,
    Message,
    _parse_epoch,
    utcnow,
)

#: The four signals of a simple reading, in this order everywhere (features, baselines, insights).
SIGNALS: tuple[str, ...] = ("voltage_v", "current_a", "power_factor", "vibration_g")


# ---------------------------------------------------------------------------------------------
# Raw input (devices, gateway) -> ingest
# ---------------------------------------------------------------------------------------------
class SimpleReadingIn(Message):
    """One electrical/vibration reading as a device or the REST API sends it."""

    asset_id: AssetId
    voltage_v: float = Field(ge=0, le=VOLTAGE_MAX_V, description="RMS line voltage, V")
    current_a: float = Field(ge=0, le=CURRENT_MAX_A, description="RMS current, A")
    power_factor: float = Field(ge=0, le=1, description="Power factor, dimensionless 0..1")
    vibration_g: float = Field(ge=0, le=VIBRATION_MAX_G, description="Vibration amplitude, g")
    is_faulty: bool | None = Field(default=None, description="Label from a test generator, if known")
    timestamp: datetime | None = Field(default=None, description="Measurement time; default: arrival")
    event_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")

    _epoch = field_validator("timestamp", mode="before")(lambda v: _parse_epoch(v))


class VibrationBatchIn(Message):
    """A 3-axis (or single-axis: x only) accelerometer window in g, as an ESP32-class device sends it."""

    motor_id: AssetId = Field(validation_alias="motor_id")
    ts: datetime | None = Field(default=None, description="Time of the window's first sample")
    x: list[float] = Field(min_length=MIN_WINDOW, max_length=MAX_WINDOW)
    y: list[float] | None = Field(default=None, min_length=MIN_WINDOW, max_length=MAX_WINDOW)
    z: list[float] | None = Field(default=None, min_length=MIN_WINDOW, max_length=MAX_WINDOW)
    fs_hz: float = Field(default=DEFAULT_FS_HZ, ge=FS_MIN_HZ, le=FS_MAX_HZ, description="Sample rate, Hz")
    event_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")

    _epoch = field_validator("ts", mode="before")(lambda v: _parse_epoch(v))

    @model_validator(mode="after")
    def _check(self) -> VibrationBatchIn:
        n = len(self.x)
        for name in ("y", "z"):
            arr = getattr(self, name)
            if arr is not None and len(arr) != n:
                raise ValueError(f"axis lengths differ: x has {n} samples, {name} has {len(arr)}")
        if (self.y is None) != (self.z is None):
            raise ValueError("give x alone (single-axis) or x, y and z together")
        for name in ("x", "y", "z"):
            arr = getattr(self, name)
            if arr is not None and max(abs(min(arr)), abs(max(arr))) > VIBRATION_MAX_G:
                raise ValueError(f"axis {name} exceeds ±{VIBRATION_MAX_G} g")
        return self


# ---------------------------------------------------------------------------------------------
# Normalised events (ingest ->)
# ---------------------------------------------------------------------------------------------
class Reading(Message):
    event_id: str
    asset_id: AssetId
    ts: datetime
    voltage_v: float
    current_a: float
    power_factor: float
    vibration_g: float
    is_faulty: bool | None = None


class Window(Message):
    event_id: str
    asset_id: AssetId
    ts: datetime
    fs_hz: float
    n: int
    axes: list[Literal["x", "y", "z"]]
    x: list[float]
    y: list[float] | None = None
    z: list[float] | None = None


class DeadLetter(Message):
    service: str
    source_topic: str
    reason: str
    payload_excerpt: str
    payload_bytes: int
    ts: datetime = Field(default_factory=utcnow)


class ServiceStatus(Message):
    service: str
    state: Literal["online", "offline"]
    pid: int | None = None
    ts: datetime = Field(default_factory=utcnow)
