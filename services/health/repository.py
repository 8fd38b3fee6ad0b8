"""Where the health stage keeps each asset's assessor state between restarts.

:class:`AssessorRepository` is plain blocking file I/O (JSON files ``<dir>/<asset>.json``, written
atomically: a temporary file, then ``os.replace``). :class:`AssessorStates` is the service's state
port over it: it holds the live :class:`~shared.health.assessor.HealthAssessor` of every asset,
loads them all on :meth:`~AssessorStates.open`, saves them all on :meth:`~AssessorStates.close`,
and in between saves one asset at most every ``save_every_s`` seconds (wall clock) unless forced
(an alarm transition); every file access runs in a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from shared import topics
from shared.health.assessor import HealthAssessor

log = structlog.get_logger()

#: Save an asset's state at most this often (s, wall clock) unless an alarm changed.
SAVE_EVERY_S = 5.0


@dataclass(frozen=True)
class AssessorRepository:
    """Assessor states as JSON files under ``directory`` (None: keep nothing). Blocking."""

    directory: Path | None

    def path(self, asset: str) -> Path | None:
        if self.directory is None or not topics.valid_asset_id(asset):
            return None
        return self.directory / f"{asset}.json"

    def load_all(self) -> dict[str, dict[str, Any]]:
        """Every readable saved state by asset (unreadable files are logged and skipped)."""
        if self.directory is None or not self.directory.exists():
            return {}
        out: dict[str, dict[str, Any]] = {}
        for path in sorted(self.directory.glob("*.json")):
            if not topics.valid_asset_id(path.stem):
                continue
            try:
                out[path.stem] = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                log.warning("health_state_unreadable", asset_id=path.stem, error=str(exc))
        return out

    def save(self, asset: str, state: dict[str, Any]) -> None:
        """Write ``state`` atomically (readers see the old file or the new one, never half)."""
        path = self.path(asset)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, allow_nan=False))
        os.replace(tmp, path)

    def delete(self, asset: str) -> None:
        path = self.path(asset)
        if path is not None:
            path.unlink(missing_ok=True)


@dataclass
class AssessorStates:
    """The state port: live assessors by asset, persisted through an :class:`AssessorRepository`."""

    repository: AssessorRepository
    save_every_s: float = SAVE_EVERY_S
    assessors: dict[str, HealthAssessor] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    _last_save: dict[str, float] = field(default_factory=dict)

    async def open(self) -> None:
        """Load every saved assessor (so alarms of all assets can be acted on after a restart)."""
        blobs = await asyncio.to_thread(self.repository.load_all)
        for asset, blob in blobs.items():
            try:
                self.assessors[asset] = HealthAssessor.from_dict(blob)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("health_state_unreadable", asset_id=asset, error=str(exc))
        log.info("health_state_loaded", assets=sorted(self.assessors))

    async def close(self) -> None:
        """Save every assessor."""
        for asset in list(self.assessors):
            await self.save(asset, force=True)

    async def save(self, asset: str, *, force: bool = False) -> None:
        """Save ``asset``'s assessor unless it was saved less than ``save_every_s`` ago (``force``:
        regardless). The state is snapshotted here; only the file write runs in the thread."""
        a = self.assessors.get(asset)
        if a is None:
            return
        now = self.clock()
        if not force and now - self._last_save.get(asset, float("-inf")) < self.save_every_s:
            return
        self._last_save[asset] = now
        await asyncio.to_thread(self.repository.save, asset, a.to_dict())

    async def forget(self, asset: str) -> None:
        """Drop ``asset``'s assessor and its saved state."""
        self.assessors.pop(asset, None)
        self._last_save.pop(asset, None)
        await asyncio.to_thread(self.repository.delete, asset)
