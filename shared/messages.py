"""Message schemas: the contract between services. Every MQTT payload is one of these, as JSON.

All models forbid unknown fields and reject NaN/inf. Timestamps are timezone-aware UTC; inputs may
give ISO-8601 strings or Unix epoch numbers (seconds, or milliseconds when the value is too large to
be seconds).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from shared.topics import ASSET_ID_PATTERN

AssetId = Annotated[str, StringConstraints(pattern=ASSET_ID_PATTERN)]

# Physical bounds for simple readings (rejects sensor garbage, not unusual-but-real values).
VOLTAGE_MAX_V = 35_000.0  # up to medium-voltage motors
CURRENT_MAX_A = 20_000.0
VIBRATION_MAX_G = 500.0  # range of industrial accelerometers
MIN_WINDOW = 16
MAX_WINDOW = 65_536
FS_MIN_HZ = 1.0
FS_MAX_HZ = 200_000.0
DEFAULT_FS_HZ = 500.0


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_event_id() -> str:
    return uuid.uuid4().hex


def to_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC; aware ones are converted."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def ts_ns(value: datetime) -> int:
    """Nanoseconds since the Unix epoch (exact for microsecond datetimes)."""
    v = to_utc(value)
    return (int(v.timestamp()) * 1_000_000 + v.microsecond) * 1000


def from_ns(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // 1000 / 1_000_000, UTC)


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True)


def _parse_epoch(v: Any) -> Any:
    """Epoch numbers: seconds, or milliseconds above 1e11 (year 5138 in seconds)."""
    if isinstance(v, bool):
        raise ValueError("timestamp must be a number or ISO-8601 string")
    if isinstance(v, int | float):
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError("timestamp must be finite")
        secs = v / 1000.0 if abs(v) > 1e11 else float(v)
        if not (0 <= secs < 4_102_444_800):  # 1970 .. 2100
            raise ValueError(f"timestamp {v} is outside 1970-2100")
        return datetime.fromtimestamp(secs, UTC)
    return v


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


# ---------------------------------------------------------------------------------------------
# Features, scores, models, state (learning core)
# ---------------------------------------------------------------------------------------------
FeatureKind = Literal["legacy", "batch", "vibration"]
ModelKind = Literal["legacy", "batch", "autoencoder"]
Severity = Literal["NORMAL", "WARNING", "CRITICAL"]
AssetState = Literal["IDLE", "CALIBRATING", "CALIBRATED", "MONITORING"]


class FeatureVector(Message):
    """Named features computed from one reading (legacy), a reading window (batch) or a vibration window."""

    event_id: str
    asset_id: AssetId
    ts: datetime
    kind: FeatureKind
    names: list[str]
    values: list[float]
    # Extra (non-model) indicators, e.g. spectral/envelope values; may be empty.
    extras: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _same_length(self) -> FeatureVector:
        if len(self.names) != len(self.values):
            raise ValueError(f"{len(self.names)} names but {len(self.values)} values")
        return self


class Score(Message):
    event_id: str
    asset_id: AssetId
    ts: datetime
    model: ModelKind
    model_version: str
    anomaly_score: float
    raw_score: float
    threshold: float
    is_anomaly: bool
    severity: Severity


class ModelAnnouncement(Message):
    """Retained on ``models/<asset>/<model>``: the current version of a model, carried whole (ONNX bytes,
    base64, plus its manifest entry), so a worker that starts later or on another machine gets it."""

    asset_id: AssetId
    model: ModelKind
    version: str
    path: str
    created_at: datetime
    manifest: dict[str, Any]
    onnx_b64: str


class StateChange(Message):
    """Retained on ``state/<asset>``."""

    asset_id: AssetId
    state: AssetState
    previous: AssetState | None = None
    reason: str = ""
    models: dict[str, str] = Field(default_factory=dict)  # model kind -> version
    ts: datetime = Field(default_factory=utcnow)


class CalibrationRequest(Message):
    correlation_id: str
    reply_to: str
    asset_id: AssetId
    lookback_minutes: float = Field(default=10.0, gt=0, le=60 * 24 * 30)


class CalibrationReply(Message):
    correlation_id: str
    asset_id: AssetId
    status: Literal["accepted", "completed", "failed", "rejected"]
    data_points_collected: int = 0
    message: str = ""
    models: dict[str, str] = Field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Asset configuration (retained on ``config/<asset>``)
# ---------------------------------------------------------------------------------------------
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


class AssetCommand(Message):
    """Request on ``cmd/purge`` or ``cmd/reload``: one asset, or every asset when ``asset_id`` is None."""

    correlation_id: str
    reply_to: str
    asset_id: AssetId | None = None


class CommandReply(Message):
    correlation_id: str
    status: Literal["ok", "failed"]
    message: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Health, alarms, operator logs (health stage and gateway)
# ---------------------------------------------------------------------------------------------
RiskLevel = Literal["LOW", "MODERATE", "HIGH", "CRITICAL"]
AlarmState = Literal["ACTIVE", "ACKNOWLEDGED", "RESOLVED"]
ACTION_CODES = (
    "bearing_replaced",
    "realigned",
    "lubricated",
    "balanced",
    "tightened",
    "electrical_repair",
    "false_alarm",
    "other",
)
ActionCode = Literal[
    "bearing_replaced", "realigned", "lubricated", "balanced", "tightened", "electrical_repair",
    "false_alarm", "other",
]
LOG_EVENT_TYPES = (
    "preventive_lubrication",
    "preventive_inspection",
    "preventive_cleaning",
    "corrective_bearing_replacement",
    "corrective_alignment",
    "corrective_balancing",
    "corrective_electrical",
    "observation",
    "other",
)
LogEventType = Literal[
    "preventive_lubrication", "preventive_inspection", "preventive_cleaning",
    "corrective_bearing_replacement", "corrective_alignment", "corrective_balancing",
    "corrective_electrical", "observation", "other",
]


class InsightItem(Message):
    text: str
    severity: Literal["info", "warning", "critical"]
    signal: str
    value: float | None = None


class HealthUpdate(Message):
    """Retained on ``health/<asset>``: the latest fused assessment (times are data times)."""

    asset_id: AssetId
    ts: datetime
    health_score: float = Field(ge=0, le=100)
    risk_level: RiskLevel
    grade: Literal["A", "B", "C", "D", "F"]
    degradation_index: float = Field(ge=0, le=1)
    maintenance_window_days: float
    maintenance_reason: str = ""
    iso_zone: Literal["A", "B", "C", "D"] | None = None
    velocity_rms_mm_s: float | None = None
    insights: list[InsightItem] = Field(default_factory=list)
    model_ratios: dict[str, float] = Field(default_factory=dict)
    active_alarms: int = 0


class AlarmEvent(Message):
    """One alarm transition, published on ``alarms/<asset>`` and stored."""

    alarm_id: str
    asset_id: AssetId
    state: AlarmState
    previous: AlarmState | None = None
    source: str
    severity: Literal["WARNING", "CRITICAL"]
    reason: str
    opened_at: datetime
    ts: datetime
    who: str | None = None
    note: str | None = None
    action_code: ActionCode | None = None
    auto_cleared: bool = False


class AlarmActionRequest(Message):
    """Request on ``cmd/alarm_action`` (gateway → health)."""

    correlation_id: str
    reply_to: str
    alarm_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    action: Literal["ack", "resolve"]
    who: str = Field(min_length=1, max_length=100)
    note: str = Field(default="", max_length=2000)
    action_code: ActionCode | None = None


class OperatorLog(Message):
    """A maintenance/operator log entry, published on ``logs/<asset>`` and stored."""

    log_id: str
    asset_id: AssetId
    event_type: LogEventType
    severity: Literal["info", "low", "medium", "high", "critical"] = "info"
    description: str = Field(default="", max_length=4000)
    ts: datetime
    author: str | None = Field(default=None, max_length=100)
