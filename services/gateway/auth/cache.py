"""The auth store's in-memory identity cache: an API key's or session's identity is looked up in
SQLite once and then answered from memory, without a thread hop, until anything in the auth store
changes (issue 14).

Every write through the :class:`~services.gateway.auth.store.AuthStore` clears the cache (a revoked
key, a disabled user, a changed role, a logout are refused on the very next request); a write by
another process (the admin CLI, on the same WAL file) is seen through SQLite's ``PRAGMA data_version``,
which the store reads before answering from the cache. A lookup that raced with a write is not cached
(:attr:`IdentityCache.generation`).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict

from services.gateway.auth.roles import Identity

#: Identities kept at most (least recently used dropped first).
CACHE_SIZE = 4096


class IdentityCache:
    """A bounded LRU map ``key -> (identity, expires_at)``, thread-safe.

    Parameters
    ----------
    size
        Entries kept at most.
    """

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[str, tuple[Identity, float]] = OrderedDict()
        self._generation = 0
        self._version: int | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def generation(self) -> int:
        """Bumped by every :meth:`clear`: take it before a lookup and hand it to :meth:`put`."""
        return self._generation

    def clear(self) -> None:
        """Forget every identity (the auth store changed)."""
        with self._lock:
            self._entries.clear()
            self._generation += 1

    def observe(self, data_version: int) -> None:
        """Clear when SQLite's ``data_version`` moved since the last call (another connection wrote)."""
        if data_version != self._version:
            self.clear()
            self._version = data_version

    def get(self, key: str, now: float) -> Identity | None:
        """The cached identity of ``key``, or None (unknown or expired at ``now``)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[1] <= now:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: str, identity: Identity, generation: int, expires_at: float = math.inf) -> None:
        """Keep ``identity`` unless the cache was cleared since ``generation`` was taken."""
        with self._lock:
            if generation != self._generation:
                return
            self._entries[key] = (identity, expires_at)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
