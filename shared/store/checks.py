"""Input checks shared by the store adapters: every name and value is validated before it reaches
SQL or InfluxQL, so hostile asset ids or measurement names are refused with :class:`StoreError`."""

from __future__ import annotations

import math
from collections.abc import Mapping

from shared.store.base import NAME_RE, FieldValue, Point, StoreError
from shared.topics import valid_asset_id

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def normalise_fields(point: Point) -> dict[str, FieldValue]:
    """Validate a point and return its fields with ints turned into floats.

    Raises :class:`StoreError` for an invalid name, a non-finite float, a value that is not a
    float/int/bool/str, or a key used both as a tag and as a field, or a timestamp outside int64.
    """
    point.validate()
    ts = point.ts_ns
    if isinstance(ts, bool) or not isinstance(ts, int) or not (INT64_MIN < ts <= INT64_MAX):
        raise StoreError(f"ts_ns must be a 64-bit integer (ns since epoch), got {ts!r}")
    out: dict[str, FieldValue] = {}
    for k, v in point.fields.items():
        if k in point.tags:
            raise StoreError(f"{k!r} is both a tag and a field")
        if isinstance(v, bool | str):
            out[k] = v
        elif isinstance(v, int | float):
            f = float(v)
            if not math.isfinite(f):
                raise StoreError(f"field {k!r} is not finite: {v!r}")
            out[k] = f
        else:
            raise StoreError(f"field {k!r} has unsupported type {type(v).__name__}")
    return out


def check_measurement(measurement: str) -> None:
    if not isinstance(measurement, str) or not NAME_RE.match(measurement):
        raise StoreError(f"invalid measurement name {measurement!r}")


def check_asset(asset_id: str) -> None:
    if not isinstance(asset_id, str) or not valid_asset_id(asset_id):
        raise StoreError(f"invalid asset id {asset_id!r}")


def check_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in (tags or {}).items():
        if not isinstance(k, str) or not NAME_RE.match(k) or k in ("time", "asset_id"):
            raise StoreError(f"invalid tag name {k!r}")
        if not isinstance(v, str) or not valid_asset_id(v):
            raise StoreError(f"invalid tag value {v!r}")
        out[k] = v
    return out


def check_range(start_ns: int | None, end_ns: int | None, limit: int | None) -> None:
    for name, v in (("start_ns", start_ns), ("end_ns", end_ns)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            raise StoreError(f"{name} must be an integer (ns since epoch), got {v!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise StoreError(f"limit must be a non-negative integer, got {limit!r}")
