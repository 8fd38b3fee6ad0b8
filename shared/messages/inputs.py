"""Raw input (devices, gateway → ingest) and the normalised events ingest publishes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


#: Axis names of a window, in this order everywhere (payloads, ``Window.axes``, feature names).
AXES: tuple[str, ...] = ("x", "y", "z")


def check_axes(axes: Mapping[str, Sequence[float] | None]) -> list[str]:
    """The axes present (not ``None``) in ``axes``, in x, y, z order: any non-empty subset of x, y, z,
    all of one length, every sample within ±``VIBRATION_MAX_G`` g. ``ValueError`` naming the axis."""
    unknown = [a for a in axes if a not in AXES]
    if unknown:
        raise ValueError(f"unknown axis {unknown[0]!r}: axes are x, y and z")
    present = [a for a in AXES if axes.get(a) is not None]
    if not present:
        raise ValueError("no axis: give at least one of x, y, z")
    n = len(axes[present[0]] or [])
    for name in present[1:]:
        if len(axes[name] or []) != n:
            raise ValueError(
                f"axis lengths differ: {present[0]} has {n} samples, {name} has {len(axes[name] or [])}"
            )
    for name in present:
        arr = axes[name] or []
        if max(abs(min(arr)), abs(max(arr))) > VIBRATION_MAX_G:
            raise ValueError(f"axis {name} exceeds ±{VIBRATION_MAX_G} g")
    return present


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


#: Reason for a window payload without samples.
NO_AXIS = "no axis: give x, y and/or z (arrays of g), or channels (1 to 3 arrays of g, taken as x, y, z)"


class VibrationBatchIn(Message):
    """An accelerometer window in g, as an ESP32-class device sends it: any of the axes ``x``, ``y``,
    ``z`` by name (1, 2 or 3 of them, one length), or ``channels``: 1 to 3 unnamed arrays taken as
    x, y, z in that order (not both forms)."""

    motor_id: AssetId = Field(validation_alias="motor_id")
    ts: Timestamp | None = Field(default=None, description="Time of the window's first sample")
    x: Samples | None = None
    y: Samples | None = None
    z: Samples | None = None
    channels: Annotated[list[Samples], Field(min_length=1, max_length=len(AXES))] | None = Field(
        default=None, description="Unnamed axes, taken as x, y, z in this order (instead of x/y/z)"
    )
    fs_hz: SampleRate = DEFAULT_FS_HZ
    event_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")

    @model_validator(mode="after")
    def _check(self) -> VibrationBatchIn:
        if self.channels is not None:
            named = [a for a in AXES if getattr(self, a) is not None]
            if named:
                raise ValueError(
                    f"give the axes by name (x, y, z) or by position (channels), not both: "
                    f"found channels and {', '.join(named)}"
                )
        data = self.axis_data()
        if not data:
            raise ValueError(NO_AXIS)
        check_axes(data)
        return self

    def axis_data(self) -> dict[str, list[float]]:
        """The window's samples (g) per axis present, in x, y, z order (``channels`` mapped in order)."""
        if self.channels is not None:
            return dict(zip(AXES, self.channels, strict=False))
        return {a: v for a in AXES if (v := getattr(self, a)) is not None}


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
    """``n`` samples per listed axis (g) at ``fs_hz`` Hz, starting at ``ts``. ``axes`` lists exactly the
    axes that carry samples (1, 2 or 3 of x, y, z, in that order)."""

    event_id: EventId
    asset_id: AssetId
    ts: Timestamp
    fs_hz: SampleRate
    n: int = Field(ge=MIN_WINDOW, le=MAX_WINDOW)
    axes: list[Literal["x", "y", "z"]]
    x: Samples | None = None
    y: Samples | None = None
    z: Samples | None = None

    @model_validator(mode="after")
    def _check(self) -> Window:
        present = check_axes({"x": self.x, "y": self.y, "z": self.z})
        if self.axes != present:
            raise ValueError(f"axes {self.axes} do not name the axes given ({present})")
        held = len(getattr(self, present[0]))
        if held != self.n:
            raise ValueError(f"n is {self.n} but the axes hold {held} samples")
        return self

    def axis_data(self) -> dict[str, list[float]]:
        """Samples (g) per listed axis, in ``axes`` order."""
        return {a: getattr(self, a) for a in self.axes}


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
