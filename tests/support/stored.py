"""Waiting, through the gateway's history API, until a stack has stored what a test published (never a
fixed sleep): readings or windows, and the feature vectors of one kind that follow them through the
features service and the historian."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

from tests.support.stack import Stack, api

#: Look back this far (minutes): test data is stamped at most a few weeks back.
LOOKBACK_MIN = 43_200


def stored_count(stack: Stack, asset: str, what: str, **params: Any) -> int:
    """How many ``what`` (``readings`` or ``features`` with ``kind=``) of ``asset`` the store holds."""
    query = {"minutes": LOOKBACK_MIN, "limit": 100_000, **params}
    r = api(stack, "GET", f"/assets/{asset}/{what}", params=query)
    return int(r.json()["count"]) if r.status_code == 200 else 0


async def wait_stored(
    stack: Stack, asset: str, what: str, n: int, timeout: float = 120, **params: Any
) -> None:
    """Until at least ``n`` ``what`` of ``asset`` are stored (``AssertionError`` with the stack's log
    tail after ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while (got := await asyncio.to_thread(stored_count, stack, asset, what, **params)) < n:
        if time.monotonic() > deadline:
            raise AssertionError(f"{asset}: {got}/{n} {what} {params or ''} stored\n{stack.tail()}")
        await asyncio.sleep(0.3)


def newest_ts(stack: Stack, asset: str, what: str, **params: Any) -> str:
    """Data time (ISO-8601) of the newest stored ``what`` of ``asset`` ("" when none)."""
    r = api(stack, "GET", f"/assets/{asset}/{what}", params={"minutes": LOOKBACK_MIN, "limit": 1, **params})
    items = r.json().get(what, []) if r.status_code == 200 else []
    return str(items[-1]["ts"]) if items else ""


async def wait_features_caught_up(stack: Stack, asset: str, kind: str, timeout: float = 120) -> None:
    """Until the newest stored ``kind`` feature vector is as new as the newest stored reading (the
    features of the last readings are no longer in flight; a model's warm-up readings have none)."""
    deadline = time.monotonic() + timeout
    while True:
        last = await asyncio.to_thread(newest_ts, stack, asset, "readings")
        got = await asyncio.to_thread(newest_ts, stack, asset, "features", kind=kind)
        if last and got and datetime.fromisoformat(got) >= datetime.fromisoformat(last):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{asset}: newest {kind} features {got or 'none'} < reading {last}")
        await asyncio.sleep(0.3)
