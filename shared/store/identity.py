"""Point identity of events: the same event is one point, two events sharing a timestamp are two.

A stored point is identified by ``(measurement, asset_id, tags, ts_ns)`` in both adapters (InfluxDB's
own series + time identity; SQLite's primary key). Messages of one event carry an ``event_id``; putting
it in a tag would create one InfluxDB series per event (unbounded series cardinality), so instead it
chooses the point's nanoseconds below the microsecond: stored times are
``ts_ns = ts (µs precision) * 1000 + sha256(event_id) mod 1000``. Times are read back at microsecond
precision (:func:`shared.messages.from_ns`), so messages keep their timestamps exactly.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from shared.messages import ts_ns

#: Sub-microsecond slots (ns) an event's point time is spread over.
EVENT_SLOTS = 1000


def event_slot(event_id: str) -> int:
    """``sha256(event_id) mod EVENT_SLOTS``: the event's offset below the microsecond, ns."""
    return int.from_bytes(hashlib.sha256(event_id.encode()).digest()[:8], "big") % EVENT_SLOTS


def event_ts_ns(ts: datetime, event_id: str) -> int:
    """Stored time of an event's point, ns: ``ts`` at microsecond precision plus :func:`event_slot`.

    The same event always maps to the same time (a redelivery or retry overwrites itself); two events
    at one timestamp map to two times unless their slots collide (probability 1/1000 for a pair).
    """
    return ts_ns(ts) + event_slot(event_id)
