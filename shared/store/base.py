"""Store contract shared by both adapters.

**Point identity.** A point is identified by ``(measurement, asset_id, tags, ts_ns)`` in both adapters
(InfluxDB: series key + time; SQLite: the primary key). Writing a point with the same identity again
replaces it, so re-delivered messages (MQTT QoS 1) and retried batches never create duplicates. Field
values are floats, bools or strings (ints are stored as floats).

**Events.** Readings, windows, feature vectors and scores belong to one event, named by its
``event_id`` (given by the client, else assigned once at the edge: the gateway for HTTP, ingest for
MQTT). Their identity must be the event, not the timestamp: a retried or re-delivered event is stored
once, two events sharing a timestamp are both kept. ``event_id`` is *not* a tag (one InfluxDB series per
event would grow the series index without bound); instead :mod:`shared.records` writes an event's
point at :func:`shared.store.identity.event_ts_ns`: the timestamp at microsecond precision plus
``sha256(event_id) mod 1000`` ns. The same event always lands on the same identity; two events with one
timestamp land on two, and times still read back exactly at microsecond precision.

Limits (both adapters behave alike):

* Two *different* events with the same timestamp (to the microsecond) collide when their event ids
  fall in the same of the 1000 slots: probability 1/1000 for a pair, ``k(k-1)/2000`` for ``k`` events
  at one instant. The later write then replaces the earlier one.
* Identity includes the timestamp: an event written again with a *different* timestamp (a client that
  retries without a timestamp after its first attempt was stamped on arrival) is a second point. The
  gateway returns the timestamp it stamped; the historian additionally drops an event id it already
  stored with another timestamp (first write wins, for the newest events of each asset).
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
