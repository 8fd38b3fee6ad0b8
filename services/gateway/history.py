"""History by data time for the ``/assets/{id}/...`` endpoints (readings, scores, health, features).

The query (:func:`history_query`, one dependency for every history endpoint):

- ``from`` / ``to``: the data-time range ``[from, to)``, ISO-8601 (naive = UTC; ``Z`` or an offset,
  a ``+`` sent as ``%2B``) or Unix epoch seconds (milliseconds above 1e11, as everywhere in the
  contract). Anything else, or ``from`` ≥ ``to``, is HTTP 422 with the reason. No cap on the span: pages
  bound the answer.
- ``after``: the ``next`` of the previous page (the stored time, ns, of its last point): the page starts
  strictly after it.
- ``minutes``: the look-back when ``from`` is not given: ``from = to - minutes``.
- ``limit``: points per answer.

Without ``from``, ``to`` and ``after`` the answer is **the last ``minutes`` of this asset's data**: the
window ends just after the asset's newest stored point of that measurement (not at the wall clock, so
replayed or backfilled data shows), and holds its newest ``limit`` points (``truncated`` when older
ones were left out): the live view. With any of them it is **one page** of ``[from, to)``, oldest
first (:mod:`shared.store.paging`): ``next`` is the cursor for the following page (``null`` when the
range is done); ``to`` defaults to just after the newest stored point. A page never splits the points
of one stored time, so it may hold fewer than ``limit`` points (or more, when one time alone holds
more). Each answer gives the range it used as ``start`` / ``end``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from services.gateway.deps import GatewayContext
from shared.messages import from_ns, to_utc, ts_ns, utcnow
from shared.messages.base import STORE_LATEST
from shared.store import Point, Store, paging

MAX_MINUTES = 43_200  # 30 days: the default window's look-back (explicit ranges have no cap)
DEFAULT_LIMIT = 10_000
MAX_LIMIT = 100_000
#: Epoch numbers above this are milliseconds (1e11 s is the year 5138), as in the contract.
_MS_ABOVE = 1e11
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LAST_NS = 2**63 - 2


class HistoryRange(BaseModel):
    """What a history answer covers (the fields every history endpoint shares)."""

    asset_id: str
    #: The look-back the range's start came from; ``null`` when ``from`` or ``after`` set it.
    minutes: int | None
    #: The data-time range used, ``[start, end)``: ``from``/``to`` as given, else derived (module doc).
    start: datetime
    end: datetime
    count: int
    #: True when the range holds more than this answer: older points (the default window, which
    #: returns the newest ``limit``) or later ones (a page: continue with ``after=next``).
    truncated: bool
    #: Cursor of the next page (pass it as ``after`` with the same ``from``/``to``); ``null`` at the end.
    next: int | None = Field(default=None, description="Pass as `after` for the next page")


@dataclass(frozen=True)
class HistoryQuery:
    start: datetime | None
    end: datetime | None
    after: int | None
    minutes: int
    limit: int

    @property
    def paged(self) -> bool:
        """A page of an explicit range (else the default window, newest points)."""
        return self.start is not None or self.end is not None or self.after is not None


def _invalid(name: str, reason: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("query", name), "msg": reason, "type": "value_error"}])


def parse_time(name: str, raw: str | None) -> datetime | None:
    """An ISO-8601 time or Unix epoch (s, or ms above 1e11) as aware UTC; a 422 naming ``name`` else."""
    if raw is None:
        return None
    text = raw.strip()
    try:
        if _NUMBER.match(text):
            value = float(text)
            t = datetime.fromtimestamp(value / 1000 if abs(value) > _MS_ABOVE else value, UTC)
        else:
            t = to_utc(datetime.fromisoformat(text))
    except (ValueError, OverflowError, OSError):
        hint = " (a '+' in a URL must be sent as %2B)" if " " in text else ""
        raise _invalid(name, f"not an ISO-8601 time or Unix epoch seconds: {raw!r}{hint}") from None
    if not _EARLIEST <= t <= STORE_LATEST:
        raise _invalid(name, f"{t.isoformat()} is outside {_EARLIEST:%Y-%m-%d} .. {STORE_LATEST:%Y-%m-%d}")
    return t


def history_query(
    from_: Annotated[
        str | None, Query(alias="from", description="Start of the data-time range (ISO-8601 or epoch s)")
    ] = None,
    to: Annotated[str | None, Query(description="End (exclusive) of the range (ISO-8601 or epoch s)")] = None,
    after: Annotated[
        int | None, Query(ge=0, le=_LAST_NS, description="The `next` of the previous page")
    ] = None,
    minutes: Annotated[
        int, Query(ge=1, le=MAX_MINUTES, description="Look-back when `from` is not given, minutes")
    ] = 60,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="At most this many per answer")] = (
        DEFAULT_LIMIT
    ),
) -> HistoryQuery:
    """The history query of a request (module docstring); 422 for unreadable times or ``from`` ≥ ``to``."""
    return HistoryQuery(*history_range(from_, to), after, minutes, limit)


def history_range(from_: str | None, to: str | None) -> tuple[datetime | None, datetime | None]:
    """``from`` and ``to`` of a query (:func:`parse_time`); 422 unless ``from`` < ``to`` when both given."""
    start, end = parse_time("from", from_), parse_time("to", to)
    if start is not None and end is not None and start >= end:
        raise _invalid("from", f"from ({start.isoformat()}) must be before to ({end.isoformat()})")
    return start, end


HistoryDep = Annotated[HistoryQuery, Depends(history_query)]


@dataclass(frozen=True)
class History:
    """Points of one answer and the range they were taken from."""

    points: list[Point]
    start: datetime
    end: datetime
    minutes: int | None
    truncated: bool
    next: int | None

    def summary(self, asset_id: str) -> dict[str, object]:
        """The :class:`HistoryRange` fields (``count`` is the caller's: converted items)."""
        return {
            "asset_id": asset_id,
            "minutes": self.minutes,
            "start": self.start,
            "end": self.end,
            "truncated": self.truncated,
            "next": self.next,
        }


def _after_newest(store: Store, measurement: str, asset_id: str, tags: Mapping[str, str] | None) -> datetime:
    """Just after the asset's newest stored point (1 µs: stored times read back at µs); now if none."""
    newest = paging.newest_ns(store, measurement, asset_id, tags=tags)
    return utcnow() if newest is None else from_ns(newest) + timedelta(microseconds=1)


def read_history(
    store: Store, q: HistoryQuery, measurement: str, asset_id: str, tags: Mapping[str, str] | None = None
) -> History:
    """The points ``q`` asks for (module docstring), blocking: call it in a thread."""
    end = q.end or _after_newest(store, measurement, asset_id, tags)
    minutes: int | None = None
    if q.start is not None:
        start = q.start
    elif q.after is not None:
        start = from_ns(q.after)
    else:
        start, minutes = end - timedelta(minutes=q.minutes), q.minutes
    start_ns, end_ns = ts_ns(start), ts_ns(end)
    if not q.paged:
        points, older = paging.newest(
            store, measurement, asset_id, start_ns=start_ns, end_ns=end_ns, limit=q.limit, tags=tags
        )
        return History(points, start, end, minutes, older, None)
    lower = start_ns if q.after is None else max(start_ns, q.after + 1)
    page = paging.forward(
        store, measurement, asset_id, start_ns=lower, end_ns=end_ns, limit=q.limit, tags=tags
    )
    return History(page.points, start, end, minutes, page.next_after_ns is not None, page.next_after_ns)


async def known_or_404(ctx: GatewayContext, asset_id: str) -> None:
    """HTTP 404 unless the asset has stored data or retained state/config/health/models."""
    if asset_id in ctx.view.known_assets():
        return
    stored = await asyncio.to_thread(ctx.store.assets)
    if asset_id not in stored:
        reason = f"unknown asset {asset_id!r}: no stored data and no retained state/config"
        raise HTTPException(404, reason)


async def history(
    ctx: GatewayContext,
    q: HistoryQuery,
    measurement: str,
    asset_id: str,
    tags: Mapping[str, str] | None = None,
) -> History:
    """:func:`read_history` off the event loop; 404 for an asset nobody knows."""
    got = await asyncio.to_thread(read_history, ctx.store, q, measurement, asset_id, tags)
    if not got.points:
        await known_or_404(ctx, asset_id)
    return got
