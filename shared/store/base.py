"""Store contract shared by both adapters.

A point is identified by ``(measurement, asset_id, tags, ts_ns)``. Writing a point with the same
identity again replaces it, so re-delivered messages (MQTT QoS 1) and retried batches never create
duplicates. Field values are floats, bools or strings (ints are stored as floats).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from shared.topics import valid_asset_id

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
FieldValue = float | bool | str


class StoreError(Exception):
    """The store refused a request (bad input, bad query)."""


class StoreUnavailable(StoreError):
    """The store cannot be reached right now; the caller may retry later."""


@dataclass(frozen=True)
class Point:
    measurement: str
    asset_id: str
    ts_ns: int
    fields: Mapping[str, FieldValue]
    tags: Mapping[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        if not NAME_RE.match(self.measurement):
            raise StoreError(f"invalid measurement name {self.measurement!r}")
        if not valid_asset_id(self.asset_id):
            raise StoreError(f"invalid asset id {self.asset_id!r}")
        if not self.fields:
            raise StoreError("a point needs at least one field")
        for k in list(self.fields) + list(self.tags):
            if not NAME_RE.match(k) or k in ("time", "asset_id"):
                raise StoreError(f"invalid field/tag name {k!r}")
        for v in self.tags.values():
            if not valid_asset_id(v):
                raise StoreError(f"invalid tag value {v!r}")


class Store(ABC):
    """Time-series store. Methods are synchronous; async services call them via ``asyncio.to_thread``."""

    @abstractmethod
    def write(self, points: Sequence[Point]) -> None:
        """Write points idempotently. Raises :class:`StoreUnavailable` when the backend is down."""

    @abstractmethod
    def query(
        self,
        measurement: str,
        asset_id: str,
        *,
        start_ns: int | None = None,
        end_ns: int | None = None,
        limit: int | None = None,
        newest: bool = False,
        tags: Mapping[str, str] | None = None,
    ) -> list[Point]:
        """Points of one asset in ``[start_ns, end_ns)``, oldest first. With ``newest`` and ``limit``,
        the newest ``limit`` points (still returned oldest first)."""

    @abstractmethod
    def count(
        self, measurement: str, asset_id: str, *, start_ns: int | None = None, end_ns: int | None = None
    ) -> int:
        """Number of points of one asset in ``[start_ns, end_ns)``."""

    @abstractmethod
    def assets(self) -> list[str]:
        """Asset ids with at least one point in any measurement, sorted."""

    @abstractmethod
    def delete_asset(self, asset_id: str) -> None:
        """Delete every point of one asset."""

    @abstractmethod
    def ping(self) -> bool:
        """True when the backend answers."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
