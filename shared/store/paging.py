"""Reading one asset's history by data time, a page at a time, on the store port alone.

A page holds the points of ``[start_ns, end_ns)`` oldest first, at most ``limit`` of them; its cursor is
the stored time (ns since the Unix epoch) of its last point, and the next page starts strictly after it
(``start_ns = cursor + 1``: stored times are integers). A page never splits the points that share one
stored time (the scores of several models for one event, two transitions of one alarm): when ``limit``
falls among them the page ends before that time, and when one time alone holds more than ``limit``
points the page is exactly those (the one case where a page exceeds ``limit``). So walking the pages
visits every point of the range once, without gaps or duplicates, whatever the limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.store.base import Point, Store


@dataclass(frozen=True)
class Page:
    """Points of one page, oldest first, and the cursor to continue with (``None``: the range is done)."""

    points: list[Point]
    next_after_ns: int | None


def newest_ns(
    store: Store,
    measurement: str,
    asset_id: str,
    *,
    end_ns: int | None = None,
    tags: Mapping[str, str] | None = None,
) -> int | None:
    """Stored time (ns) of the asset's newest point of ``measurement`` before ``end_ns``; ``None`` if none."""
    points = store.query(measurement, asset_id, end_ns=end_ns, limit=1, newest=True, tags=tags)
    return points[-1].ts_ns if points else None


def forward(
    store: Store,
    measurement: str,
    asset_id: str,
    *,
    start_ns: int | None,
    end_ns: int | None,
    limit: int,
    tags: Mapping[str, str] | None = None,
) -> Page:
    """The first page of ``[start_ns, end_ns)`` (module docstring: whole stored times, cursor)."""
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    got = store.query(measurement, asset_id, start_ns=start_ns, end_ns=end_ns, limit=limit + 1, tags=tags)
    if len(got) <= limit:
        return Page(got, None)
    boundary = got[limit].ts_ns
    page = [p for p in got[:limit] if p.ts_ns != boundary]
    if page:
        return Page(page, page[-1].ts_ns)
    # One stored time holds more than `limit` points: that time alone, then whatever follows it.
    page = store.query(measurement, asset_id, start_ns=boundary, end_ns=boundary + 1, tags=tags)
    more = store.query(measurement, asset_id, start_ns=boundary + 1, end_ns=end_ns, limit=1, tags=tags)
    return Page(page, boundary if more else None)


def newest(
    store: Store,
    measurement: str,
    asset_id: str,
    *,
    start_ns: int | None,
    end_ns: int | None,
    limit: int,
    tags: Mapping[str, str] | None = None,
) -> tuple[list[Point], bool]:
    """The newest ``limit`` points of ``[start_ns, end_ns)`` (oldest first), and whether older points of
    the range were left out."""
    got = store.query(
        measurement, asset_id, start_ns=start_ns, end_ns=end_ns, limit=limit + 1, newest=True, tags=tags
    )
    return got[-limit:] if limit else [], len(got) > limit
