"""Raw input (devices, gateway → ingest) and the normalised events ingest publishes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from shared.messages.base import (
    DEFAULT_FS_HZ,
    MAX_WINDOW,
    MIN_WINDOW,
    VIBRATION_MAX_G,
    AssetId,
    Current,
    EventId,
    Message,
    PowerFactor,
    SampleRate,
    Timestamp,
    VibrationG,
    Voltage,
    utcnow,
)

#: The four signals of a simple reading, in this order everywhere (features, baselines, insights).
SIGNALS: tuple[str, ...] = ("voltage_v", "current_a", "power_factor", "vibration_g")

Samples = Annotated[list[float], Field(min_length=MIN_WINDOW, max_length=MAX_WINDOW)]


def check_axes(x: list[float], y: list[float] | None, z: list[float] | None) -> None:
    """x alone (single-axis) or x, y and z of one length, every sample within ±``VIBRATION_MAX_G`` g."""
    n = len(x)
    for name, arr in (("y", y), ("z", z)):
        if arr is not None and len(arr) != n:
            raise ValueError(f"axis lengths differ: x has {n} samples, {name} has {len(arr)}")
    if (y is None) != (z is None):
        raise ValueError("give x alone (single-axis) or x, y and z together")
    for name, arr in (("x", x), ("y", y), ("z", z)):
        if arr is not None and max(abs(min(arr)), abs(max(arr))) > VIBRATION_MAX_G:
            raise ValueError(f"axis {name} exceeds ±{VIBRATION_MAX_G} g")


# ---------------------------------------------------------------------------------------------
# Raw input (devices, gateway) -> ingest
# ---------------------------------------------------------------------------------------------
class SimpleReadingIn(Message):
    """One electrical/vibration reading as a device or the REST API sends it."""

    asset_id: AssetId
    voltage_v: Voltage
    current_a: Current
    power_factor: PowerFactor
    vibration_g: VibrationG
    is_faulty: bool | None = Field(default=None, description="Label from a test generator, if known")
    timestamp: Timestamp | None = Field(default=None, description="Measurement time; default: arrival")
    event_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")


class VibrationBatchIn(Message):
    """A 3-axis (or single-axis: x only) accelerometer window in g, as an ESP32-class device sends it."""

    motor_id: AssetId = Field(validation_alias="motor_id")
    ts: Timestamp | None = Field(default=None, description="Time of the window's first sample")
    x: Samples
    y: Samples | None = None
    z: Samples | None = None
    fs_hz: SampleRate = DEFAULT_FS_HZ
    event_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")

    @model_validator(mode="after")
    def _check(self) -> VibrationBatchIn:
        check_axes(self.x, self.y, self.z)
        return self


# ---------------------------------------------------------------------------------------------
# Normalised events (ingest ->): the same bounds as the raw input, whoever publishes them
# ---------------------------------------------------------------------------------------------
class Reading(Message):
    event_id: EventId
    asset_id: AssetId
    ts: Timestamp
    voltage_v: Voltage
    current_a: Current
    power_factor: PowerFactor
    vibration_g: VibrationG
    is_faulty: bool | None = None


class Window(Message):
    """``n`` samples per listed axis (g) at ``fs_hz`` Hz, starting at ``ts``."""

    event_id: EventId
    asset_id: AssetId
    ts: Timestamp
    fs_hz: SampleRate
    n: int = Field(ge=MIN_WINDOW, le=MAX_WINDOW)
    axes: list[Literal["x", "y", "z"]]
    x: Samples
    y: Samples | None = None
    z: Samples | None = None

    @model_validator(mode="after")
    def _check(self) -> Window:
        check_axes(self.x, self.y, self.z)
        if len(self.x) != self.n:
            raise ValueError(f"n is {self.n} but the axes hold {len(self.x)} samples")
        expected = ["x"] if self.y is None else ["x", "y", "z"]
        if self.axes != expected:
            raise ValueError(f"axes {self.axes} do not name the axes given ({expected})")
        return self


class DeadLetter(Message):
    service: str
    source_topic: str
    reason: str
    payload_excerpt: str
    payload_bytes: int
    ts: Timestamp = Field(default_factory=utcnow)


class ServiceDetail(Message):
    """Service-specific readiness facts on a :class:`ServiceStatus` (each ``None`` when not reported)."""

    #: Scorer: assets that have a loaded (trusted) model of the scorer's kind.
    models_loaded: int | None = Field(default=None, ge=0)
    #: Calibrator: model announcements (asset × kind) re-published from the registry at start-up.
    models_announced: int | None = Field(default=None, ge=0)
    #: Start-up steps of the service not done yet on this connection (e.g. ``models``).
    waiting_for: list[str] = Field(default_factory=list)


class ServiceStatus(Message):
    """Retained on ``status/<service>``. ``online`` once subscribed; ``ready`` once the connection's
    retained state has been handled and the service's own start-up is done (``detail`` says more)."""

    service: str
    state: Literal["online", "offline"]
    pid: int | None = None
    ts: Timestamp = Field(default_factory=utcnow)
    ready: bool = False
    detail: ServiceDetail | None = None
