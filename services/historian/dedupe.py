"""The historian's event index: an event id already stored with another timestamp is not stored again.

The store's identity (``shared.store.identity``) makes a re-delivered or retried event one point as long
as it carries the same timestamp. An edge-stamped event can come back with *another* timestamp: a
client retrying without a timestamp after its first attempt was stamped on arrival, or a raw MQTT
message without a timestamp re-delivered to ingest. For the measurements stamped at the edge
(``readings``, ``windows``) the index remembers, per asset, the newest :data:`KEEP` event ids and the
time they were stored at; a point whose event id is known with another time is dropped (first write
wins). It is rebuilt from the store when the historian starts (so it survives restarts) and kept up to
date as points are buffered.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence

import structlog

from shared import records
from shared.store import Point, Store, StoreUnavailable

log = structlog.get_logger(service="historian")

#: Event ids remembered per (measurement, asset).
KEEP = 10_000
#: Measurements whose timestamps are stamped at the edge (the only ones a retry can re-stamp).
EDGE_MEASUREMENTS = (records.READINGS, records.WINDOWS)


class EventIndex:
    """``(measurement, asset) -> {event_id: ts_ns}``, the newest :data:`KEEP` of each."""

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self._ids: dict[tuple[str, str], OrderedDict[str, int]] = {}
        self.dropped = 0

    def _book(self, measurement: str, asset_id: str) -> OrderedDict[str, int]:
        return self._ids.setdefault((measurement, asset_id), OrderedDict())

    def remember(self, point: Point, *, newer: bool = True) -> None:
        eid = point.fields.get("event_id")
        if point.measurement not in EDGE_MEASUREMENTS or not isinstance(eid, str):
            return
        book = self._book(point.measurement, point.asset_id)
        if not newer:  # rebuilt from the store: never overrides what was seen live
            book.setdefault(eid, point.ts_ns)
        else:
            book[eid] = book.get(eid, point.ts_ns)
            book.move_to_end(eid)
        while len(book) > self.keep:
            book.popitem(last=False)

    def fresh(self, points: Sequence[Point]) -> list[Point]:
        """The points to store: all but those of an event already stored at another time."""
        out = []
        for p in points:
            eid = p.fields.get("event_id")
            known = self._book(p.measurement, p.asset_id).get(eid) if isinstance(eid, str) else None
            if p.measurement in EDGE_MEASUREMENTS and known is not None and known != p.ts_ns:
                self.dropped += 1
                log.warning(
                    "duplicate_event_dropped",
                    measurement=p.measurement,
                    asset_id=p.asset_id,
                    event_id=eid,
                    stored_ts_ns=known,
                    ts_ns=p.ts_ns,
                    reason="event id already stored with another timestamp",
                )
                continue
            self.remember(p)
            out.append(p)
        return out

    def load(self, store: Store) -> int:
        """Remember the newest events of every asset in the store (blocking; run it in a thread)."""
        n = 0
        for asset in store.assets():
            for m in EDGE_MEASUREMENTS:
                for p in store.query(m, asset, newest=True, limit=self.keep):
                    self.remember(p, newer=False)
                    n += 1
        return n


async def rebuild(index: EventIndex, store: Store, max_backoff_s: float = 5.0) -> None:
    """Load the index from the store, retrying while the store is unavailable."""
    backoff = 0.2
    while True:
        try:
            n = await asyncio.to_thread(index.load, store)
            log.info("event_index_loaded", events=n)
            return
        except StoreUnavailable as exc:
            log.warning("event_index_unavailable", error=str(exc), retry_in_s=backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff_s)
