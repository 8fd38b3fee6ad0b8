"""Message base: strict models, id and timestamp helpers, physical bounds shared by the contract.

Every message is validated in pydantic's **strict** mode: a number is a JSON number (``"230"`` and
``true`` are not numbers), a boolean is ``true``/``false``, a list holds the declared item type
(``["0.1"]`` is not a list of numbers). Timestamps (:data:`Timestamp`) are the one exception to
strictness: ISO-8601 strings or Unix epochs (seconds, or milliseconds when the value is too large to be
seconds), both held to the same bounds (:func:`check_time`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
)

from shared.topics import ASSET_ID_PATTERN

AssetId = Annotated[str, StringConstraints(pattern=ASSET_ID_PATTERN)]
#: An event's identity (client-supplied or assigned once at the edge): 1..64 safe characters.
EventId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]

# Physical bounds for simple readings (rejects sensor garbage, not unusual-but-real values).
VOLTAGE_MAX_V = 35_000.0  # up to medium-voltage motors
CURRENT_MAX_A = 20_000.0
VIBRATION_MAX_G = 500.0  # range of industrial accelerometers
MIN_WINDOW = 16
MAX_WINDOW = 65_536
FS_MIN_HZ = 1.0
FS_MAX_HZ = 200_000.0
DEFAULT_FS_HZ = 500.0

#: RMS line voltage [V], RMS current [A], power factor [0..1], vibration amplitude [g], sample rate [Hz].
Voltage = Annotated[float, Field(ge=0, le=VOLTAGE_MAX_V, description="RMS line voltage, V")]
Current = Annotated[float, Field(ge=0, le=CURRENT_MAX_A, description="RMS current, A")]
PowerFactor = Annotated[float, Field(ge=0, le=1, description="Power factor, dimensionless 0..1")]
VibrationG = Annotated[float, Field(ge=0, le=VIBRATION_MAX_G, description="Vibration amplitude, g")]
SampleRate = Annotated[float, Field(ge=FS_MIN_HZ, le=FS_MAX_HZ, description="Sample rate, Hz")]

#: Earliest accepted timestamp (no plant data predates it; catches zero/garbage clocks).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
#: Latest time InfluxDB can store (int64 nanoseconds since the epoch).
STORE_LATEST = datetime(2262, 4, 11, 23, 47, 16, tzinfo=UTC)
#: Default of ``MAX_FUTURE_SKEW_S``: how far (s) a timestamp may lie ahead of this host's clock.
DEFAULT_MAX_FUTURE_SKEW_S = 300.0
_max_future_skew_s = DEFAULT_MAX_FUTURE_SKEW_S


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
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True, strict=True)


def set_max_future_skew(seconds: float) -> None:
    """Configure how far (s) timestamps may lie in the future (``MAX_FUTURE_SKEW_S``; process-wide,
    set once at start-up by :func:`shared.service.main`)."""
    global _max_future_skew_s
    if not seconds >= 0:
        raise ValueError(f"MAX_FUTURE_SKEW_S must be >= 0, got {seconds}")
    _max_future_skew_s = float(seconds)


def max_future_skew() -> float:
    return _max_future_skew_s


def _parse_epoch(v: Any) -> Any:
    """Epoch numbers: seconds, or milliseconds above 1e11 (year 5138 in seconds); bounds are checked
    afterwards, on the datetime, the same way as for ISO strings (:func:`check_time`)."""
    if isinstance(v, bool):
        raise ValueError("timestamp must be a number or ISO-8601 string")
    if isinstance(v, int | float):
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError("timestamp must be finite")
        secs = v / 1000.0 if abs(v) > 1e11 else float(v)
        if not (EARLIEST.timestamp() <= secs <= STORE_LATEST.timestamp()):
            raise ValueError(f"timestamp {v} is outside {EARLIEST:%Y-%m-%d} .. {STORE_LATEST:%Y-%m-%d}")
        return datetime.fromtimestamp(secs, UTC)
    if not isinstance(v, str | datetime):
        raise ValueError("timestamp must be a number or ISO-8601 string")
    return v


def check_time(value: datetime, now: datetime | None = None) -> datetime:
    """``value`` as aware UTC (naive times are UTC) when ``EARLIEST`` (2000-01-01) ≤ t ≤
    min(now + ``MAX_FUTURE_SKEW_S``, ``STORE_LATEST``); ``ValueError`` naming the bound otherwise."""
    t = to_utc(value)
    if t < EARLIEST:
        raise ValueError(f"timestamp {t.isoformat()} is before {EARLIEST:%Y-%m-%d}")
    now = now or utcnow()
    latest = min(now + timedelta(seconds=_max_future_skew_s), STORE_LATEST)
    if t > latest:
        ahead = (t - now).total_seconds()
        raise ValueError(
            f"timestamp {t.isoformat()} is {ahead:.0f} s in the future "
            f"(at most MAX_FUTURE_SKEW_S = {_max_future_skew_s:g} s ahead of {now.isoformat()} is accepted)"
        )
    return t


def _whole(v: Any) -> Any:
    """A float with no fractional part (how a store hands integers back) as an int; the rest is left
    to strict integer validation (no strings, no booleans, no fractions)."""
    return int(v) if isinstance(v, float) and v.is_integer() else v


#: A count: an integer, also when written as a whole float (``2.0``).
Count = Annotated[int, BeforeValidator(_whole), Field(ge=0)]

#: Every datetime of the contract: an ISO-8601 string or Unix epoch (s or ms), aware UTC, within
#: 2000-01-01 .. now + ``MAX_FUTURE_SKEW_S`` (and the store's range).
Timestamp = Annotated[datetime, Strict(False), BeforeValidator(_parse_epoch), AfterValidator(check_time)]
