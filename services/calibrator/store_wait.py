"""Waiting for the store to hold a calibration's data (:func:`wait_for_store`) and reading where it
stands (the newest stored point, the newest window's layout); split from :mod:`.data`, which re-exports
these names."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from shared.messages import from_ns
from shared.records import READINGS, WINDOWS, features_measurement
from shared.store import Store, paging
from shared.topics import FEATURE_KINDS


def window_layout(store: Store, asset_id: str, start_ns: int, end_ns: int) -> tuple[float, int] | None:
    """Sample rate (Hz) and samples of the asset's newest stored window in ``[start_ns, end_ns)``."""
    got, _ = paging.newest(store, WINDOWS, asset_id, start_ns=start_ns, end_ns=end_ns, limit=1)
    if not got or "fs_hz" not in got[-1].fields or "n" not in got[-1].fields:
        return None
    return float(got[-1].fields["fs_hz"]), int(got[-1].fields["n"])


#: Measurements a calibration reads, and whose progress :func:`wait_for_store` watches: the data
#: (readings, vibration windows) and the feature vectors derived from it (stored a little later).
WATCHED = (READINGS, WINDOWS, *(features_measurement(k) for k in FEATURE_KINDS))
#: Seconds between two looks at the store while waiting.
POLL_S = 0.1


def newest_ns(store: Store, asset_id: str, end_ns: int | None = None) -> int | None:
    """Stored time (ns) of the asset's newest reading or vibration feature vector before ``end_ns``."""
    latest = [
        ns
        for m in (READINGS, features_measurement("vibration"))
        if (ns := paging.newest_ns(store, m, asset_id, end_ns=end_ns)) is not None
    ]
    return max(latest) if latest else None


@dataclass(frozen=True)
class StoreProgress:
    """How far the store holds an asset's data: the newest stored time (ns) of each watched measurement
    (``None``: none stored)."""

    newest: tuple[int | None, ...]

    @classmethod
    def read(cls, store: Store, asset_id: str) -> StoreProgress:
        return cls(tuple(paging.newest_ns(store, m, asset_id) for m in WATCHED))

    @property
    def data_ns(self) -> int | None:
        """The newest stored reading or window."""
        return max((ns for ns in self.newest[:2] if ns is not None), default=None)


@dataclass(frozen=True)
class StoreWait:
    """How :func:`wait_for_store` ended: the store's progress then, the requested end (ns), the seconds
    waited."""

    progress: StoreProgress
    end_ns: int
    waited_s: float

    @property
    def behind(self) -> bool:
        """The store holds no data of the asset at or after the requested end."""
        newest = self.progress.data_ns
        return newest is None or newest < self.end_ns

    def lag_text(self, asset_id: str) -> str:
        """``the store holds data of <a> up to T, N s before the requested end E (...)``."""
        end = from_ns(self.end_ns).isoformat()
        why = f"waited {self.waited_s:.1f} s for the historian"
        newest = self.progress.data_ns
        if newest is None:
            return f"the store holds no data of {asset_id} (requested end {end}; {why})"
        behind = (self.end_ns - newest) / 1e9
        return (
            f"the store holds data of {asset_id} up to {from_ns(newest).isoformat()}, {behind:.1f} s "
            f"before the requested end {end} ({why})"
        )


def _settled(seen: StoreProgress, moved: list[float], end_ns: int, quiet_s: float, now: float) -> bool:
    """Each watched measurement reached ``end_ns``, or has not moved for ``quiet_s`` s, or holds nothing
    while another reached ``end_ns`` (an asset without vibration windows, say)."""
    reached = [ns is not None and ns >= end_ns for ns in seen.newest]
    return all(
        r or now - t >= quiet_s or (ns is None and any(reached))
        for r, ns, t in zip(reached, seen.newest, moved, strict=True)
    )


async def wait_for_store(
    store: Store, asset_id: str, end_ns: int, *, wait_s: float, quiet_s: float, poll_s: float = POLL_S
) -> StoreWait:
    """Wait until each watched measurement of the asset (readings, windows, feature vectors) is stored
    up to ``end_ns`` or has not moved for ``quiet_s`` s (the historian is idle: nothing more is coming
    for it; an empty one also settles once another reached ``end_ns``), at most ``wait_s`` s. Only the
    calling task waits (``asyncio.sleep``; store reads in a thread): other commands go on."""
    t0 = time.monotonic()
    seen = await asyncio.to_thread(StoreProgress.read, store, asset_id)
    moved = [t0] * len(WATCHED)
    while True:
        now = time.monotonic()
        if _settled(seen, moved, end_ns, quiet_s, now) or now - t0 >= wait_s:
            return StoreWait(seen, end_ns, now - t0)
        await asyncio.sleep(poll_s)
        progress = await asyncio.to_thread(StoreProgress.read, store, asset_id)
        now = time.monotonic()
        moved = [now if a != b else t for a, b, t in zip(progress.newest, seen.newest, moved, strict=True)]
        seen = progress
