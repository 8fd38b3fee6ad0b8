"""Message base: strict models, id and timestamp helpers, physical bounds shared by the contract."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints

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
