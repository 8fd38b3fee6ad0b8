"""Raw device/API input: parse and validate, then normalise into the contract's events (pure, no I/O).

Every check raises :class:`~shared.bus.Rejected` (or a pydantic ``ValidationError``) with a precise
reason naming the field and, for arrays, the index. Used by the ingest service; usable by anything
that takes raw input (the gateway, scripts).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pydantic_core
from pydantic import ValidationError

from shared import topics
from shared.bus import Rejected, describe_error
from shared.messages import (
    MAX_WINDOW,
    MIN_WINDOW,
    SIGNALS,
    VIBRATION_MAX_G,
    Reading,
    SimpleReadingIn,
    VibrationBatchIn,
    Window,
    new_event_id,
    to_utc,
)
from shared.messages.inputs import AXES, NO_AXIS

#: Most readings one bulk payload may carry (``POST /data/simple/batch``).
MAX_BULK_ITEMS = 10_000

#: Field of the positional form: 1 to 3 unnamed arrays, taken as x, y, z in this order.
CHANNELS = "channels"


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type (for error messages)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _decode_json(payload: bytes) -> Any:
    """Any JSON value, ``NaN``/``Infinity`` decoded as floats (so that the field checks can name the
    field that holds them); :class:`Rejected` for an empty or malformed payload."""
    if not payload.strip():
        raise Rejected("malformed JSON: empty payload")
    try:
        return pydantic_core.from_json(payload, allow_inf_nan=True)
    except ValueError as exc:
        raise Rejected(f"malformed JSON: {exc}") from None


def parse_json_object(payload: bytes) -> dict[str, Any]:
    """Decode a JSON object (:func:`_decode_json`); anything that is not a JSON object is rejected."""
    obj = _decode_json(payload)
    if not isinstance(obj, dict):
        raise Rejected(f"payload must be a JSON object, got {json_type(obj)}")
    return obj


def check_asset_field(obj: dict[str, Any], name: str) -> str:
    """The asset id in field ``name``: a string matching ``topics.ASSET_ID_PATTERN``."""
    if name not in obj:
        raise Rejected(f"{name}: field required")
    value = obj[name]
    if not isinstance(value, str):
        raise Rejected(f"{name}: must be a string, got {json_type(value)}")
    if not topics.valid_asset_id(value):
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise Rejected(
            f"{name}: invalid asset id {shown!r} ({len(value)} chars): must match {topics.ASSET_ID_PATTERN}"
        )
    return value


def check_number_field(obj: dict[str, Any], name: str) -> None:
    """A present field ``name`` must be a JSON number (not a string or boolean) and finite."""
    if name not in obj:
        return
    value = obj[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Rejected(f"{name}: must be a number, got {json_type(value)}")
    if isinstance(value, float) and not np.isfinite(value):
        raise Rejected(f"{name}: must be a finite number, got {value}")


def check_axis(name: str, value: Any, label: str | None = None) -> int:
    """Check one accelerometer axis (JSON array of g values) and return its length. Errors start with
    ``label`` (default ``axis <name>``, e.g. ``channels[1]`` for the positional form).

    Rules: an array of ``MIN_WINDOW..MAX_WINDOW`` numbers (no strings, booleans, nulls), all finite,
    each with ``|a| <= VIBRATION_MAX_G`` g. The finiteness and bound checks are vectorised with numpy
    (a 65,536-sample axis takes about a millisecond).
    """
    label = label or f"axis {name}"
    if not isinstance(value, list):
        raise Rejected(f"{label}: must be an array of numbers, got {json_type(value)}")
    n = len(value)
    if n < MIN_WINDOW or n > MAX_WINDOW:
        raise Rejected(f"{label}: has {n} samples; a window needs {MIN_WINDOW}..{MAX_WINDOW}")
    if not set(map(type, value)) <= {float, int}:
        i = next(i for i, v in enumerate(value) if type(v) not in (float, int))
        raise Rejected(f"{label}[{i}]: must be a number, got {json_type(value[i])}")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (OverflowError, ValueError) as exc:
        raise Rejected(f"{label}: not representable as 64-bit floats ({exc})") from None
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.argmax(bad))
        raise Rejected(
            f"{label}[{i}]: must be a finite number, got {arr[i]} "
            f"({int(bad.sum())} non-finite samples in total)"
        )
    mag = np.abs(arr)
    i = int(np.argmax(mag))
    if mag[i] > VIBRATION_MAX_G:
        raise Rejected(f"{label}[{i}]: {arr[i]} g is outside ±{VIBRATION_MAX_G} g")
    return n


def topic_asset(topic: str) -> str:
    """The asset segment of ``rotorwatch/v1/raw/<asset>/...``; rejected when it is not a valid id."""
    parts = topic.split("/")
    seg = parts[3] if len(parts) > 3 else ""
    if not topics.valid_asset_id(seg):
        shown = seg if len(seg) <= 80 else seg[:77] + "..."
        raise Rejected(f"invalid asset id {shown!r} in topic: must match {topics.ASSET_ID_PATTERN}")
    return seg


def _same_asset(in_topic: str | None, field: str, in_payload: str) -> None:
    if in_topic is not None and in_topic != in_payload:
        raise Rejected(f"topic asset {in_topic!r} does not match payload {field} {in_payload!r}")


def parse_simple(payload: bytes, asset_in_topic: str | None = None) -> SimpleReadingIn:
    """Validate a raw simple reading; ``asset_in_topic`` (when given) must equal its ``asset_id``."""
    return check_simple(parse_json_object(payload), asset_in_topic)


def check_simple(obj: dict[str, Any], asset_in_topic: str | None = None) -> SimpleReadingIn:
    """Validate a decoded simple reading (the checks of :func:`parse_simple`)."""
    asset = check_asset_field(obj, "asset_id")
    _same_asset(asset_in_topic, "asset_id", asset)
    for name in SIGNALS:
        check_number_field(obj, name)
    faulty = obj.get("is_faulty")
    if faulty is not None and not isinstance(faulty, bool):
        raise Rejected(f"is_faulty: must be true, false or null, got {json_type(faulty)}")
    return SimpleReadingIn.model_validate(obj)


class TooManyItems(Rejected):
    """A bulk payload with more items than its endpoint takes (HTTP 413)."""


@dataclass(frozen=True)
class ItemRefused:
    """Item ``index`` (0-based, in the payload's order) of a bulk payload, refused for ``reason``."""

    index: int
    reason: str


def parse_simple_many(
    payload: bytes, *, ndjson: bool = False, max_items: int = MAX_BULK_ITEMS
) -> list[SimpleReadingIn | ItemRefused]:
    """Validate a bulk payload of simple readings item by item: a JSON array of reading objects, or
    (``ndjson``) one reading object per line (blank lines skipped; item ``i`` is the ``i``-th non-blank
    line). Each item gets the checks of :func:`parse_simple`; a bad item becomes an
    :class:`ItemRefused` with its index and reason and does not affect the others.

    Raises :class:`~shared.bus.Rejected` for a payload that is not such a sequence at all (malformed
    JSON array, not an array, no item) and :class:`TooManyItems` beyond ``max_items`` items."""
    if ndjson:
        lines = [line for line in payload.split(b"\n") if line.strip()]
        _check_count(len(lines), max_items)
        return [_item(i, lambda line=line: parse_json_object(line)) for i, line in enumerate(lines)]
    items = _decode_json(payload)
    if not isinstance(items, list):
        raise Rejected(f"payload must be a JSON array of readings, got {json_type(items)}")
    _check_count(len(items), max_items)
    return [_item(i, lambda obj=obj: _object(obj)) for i, obj in enumerate(items)]


def _check_count(n: int, max_items: int) -> None:
    if n == 0:
        raise Rejected("no readings: the batch is empty")
    if n > max_items:
        raise TooManyItems(f"too many readings: {n} > limit {max_items} per request; split the batch")


def _object(obj: Any) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise Rejected(f"must be a JSON object, got {json_type(obj)}")
    return obj


def _item(index: int, decode: Callable[[], dict[str, Any]]) -> SimpleReadingIn | ItemRefused:
    try:
        return check_simple(decode())
    except (Rejected, ValidationError) as exc:
        return ItemRefused(index, describe_error(exc))


def parse_vibration(payload: bytes, asset_in_topic: str | None = None) -> VibrationBatchIn:
    """Validate a raw vibration batch; ``asset_in_topic`` (when given) must equal its ``motor_id``."""
    obj = parse_json_object(payload)
    asset = check_asset_field(obj, "motor_id")
    _same_asset(asset_in_topic, "motor_id", asset)
    check_number_field(obj, "fs_hz")
    labelled = _labelled_axes(obj)
    lengths = {key: check_axis(key, value, label) for key, label, value in labelled}
    if len(set(lengths.values())) > 1:
        raise Rejected(
            "axis lengths differ: " + ", ".join(f"{k} has {v} samples" for k, v in lengths.items())
        )
    return VibrationBatchIn.model_validate(obj)


def _labelled_axes(obj: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """``(key, label, value)`` of each axis in a window payload: named ``x``/``y``/``z`` (null = absent)
    or positional ``channels`` (x, y, z in order). Rejects both forms at once, neither, and more than
    3 channels."""
    named = [a for a in AXES if obj.get(a) is not None]
    chans = obj.get(CHANNELS)
    if chans is None:
        if not named:
            raise Rejected(NO_AXIS)
        return [(a, f"axis {a}", obj[a]) for a in named]
    if named:
        raise Rejected(
            f"give the axes by name (x, y, z) or by position ({CHANNELS}), not both: "
            f"found {CHANNELS} and {', '.join(named)}"
        )
    if not isinstance(chans, list) or not 1 <= len(chans) <= len(AXES):
        got = f"{len(chans)} channels" if isinstance(chans, list) else json_type(chans)
        raise Rejected(f"{CHANNELS}: must be an array of 1 to 3 arrays of numbers (x, y, z), got {got}")
    return [
        (f"{CHANNELS}[{i}]", f"{CHANNELS}[{i}] ({a})", v)
        for i, (a, v) in enumerate(zip(AXES, chans, strict=False))
    ]


def normalise_simple(raw: SimpleReadingIn, arrival: datetime) -> Reading:
    """Reading with the given event id (else a new one) and the measurement time (else ``arrival``)."""
    return Reading(
        event_id=raw.event_id or new_event_id(),
        asset_id=raw.asset_id,
        ts=to_utc(raw.timestamp) if raw.timestamp is not None else to_utc(arrival),
        voltage_v=raw.voltage_v,
        current_a=raw.current_a,
        power_factor=raw.power_factor,
        vibration_g=raw.vibration_g,
        is_faulty=raw.is_faulty,
    )


def to_window(batch: VibrationBatchIn, arrival: datetime) -> Window:
    """Window of ``n`` samples per axis at ``fs_hz`` Hz; ``axes`` lists the axes sent (x, y, z order;
    ``channels`` are x, y, z in order)."""
    data = batch.axis_data()
    return Window(
        event_id=batch.event_id or new_event_id(),
        asset_id=batch.motor_id,
        ts=to_utc(batch.ts) if batch.ts is not None else to_utc(arrival),
        fs_hz=batch.fs_hz,
        n=len(next(iter(data.values()))),
        axes=list(data),  # type: ignore[arg-type]
        **data,
    )
