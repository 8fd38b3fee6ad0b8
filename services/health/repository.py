"""Where the health stage keeps each asset's assessor state between restarts.

:class:`AssessorRepository` is plain blocking file I/O (JSON files ``<dir>/<asset>.json``, written
atomically: a temporary file, then ``os.replace``). :class:`AssessorStates` is the service's state
port over it: it holds the live :class:`~shared.health.assessor.HealthAssessor` of every asset with its
pending windows (:class:`~shared.health.join.AssetJoin`) and last published health, loads them all on
:meth:`~AssessorStates.open`, saves what changed at every checkpoint (a message is acknowledged to the
broker only after that) and everything on :meth:`~AssessorStates.close`; every file access runs in a
worker thread (``asyncio.to_thread``).
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
from shared.health.join import AssetJoin

log = structlog.get_logger()


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
        self.write(asset, json.dumps(state, allow_nan=False))

    def write(self, asset: str, text: str) -> None:
        """Write JSON ``text`` atomically (a temporary file, then ``os.replace``)."""
        path = self.path(asset)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)

    def write_all(self, texts: dict[str, str | None]) -> None:
        """Write each asset's JSON text (None: delete its file)."""
        for asset, text in texts.items():
            if text is None:
                self.delete(asset)
            else:
                self.write(asset, text)

    def delete(self, asset: str) -> None:
        path = self.path(asset)
        if path is not None:
            path.unlink(missing_ok=True)


@dataclass
class AssessorStates:
    """The state port: per asset the live assessor, its pending windows (:class:`AssetJoin`) and the
    last published health (``HealthUpdate`` JSON), persisted through an :class:`AssessorRepository`.

    Checkpointed (:class:`shared.session.Checkpointed`): handlers :meth:`touch` what they change,
    :meth:`snapshot` serialises the touched assets between two messages and :meth:`save` writes them,
    so a message is acknowledged only once the state it produced is on disk."""

    repository: AssessorRepository
    assessors: dict[str, HealthAssessor] = field(default_factory=dict)
    joins: dict[str, AssetJoin] = field(default_factory=dict)
    last_health: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Monotonic seconds (the joins' waits); injectable for tests.
    clock: Callable[[], float] = time.monotonic
    _dirty: set[str] = field(default_factory=set)

    async def open(self) -> None:
        """Load every saved asset (so alarms of all assets can be acted on after a restart)."""
        blobs = await asyncio.to_thread(self.repository.load_all)
        now = self.clock()
        for asset, blob in blobs.items():
            try:
                assessor = HealthAssessor.from_dict(blob)
                join = AssetJoin.from_dict(blob["join"], now) if blob.get("join") else AssetJoin()
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("health_state_unreadable", asset_id=asset, error=str(exc))
                continue
            self.assessors[asset], self.joins[asset] = assessor, join
            if isinstance(blob.get("last_health"), dict):
                self.last_health[asset] = blob["last_health"]
        pending = sum(j.pending for j in self.joins.values())
        log.info("health_state_loaded", assets=sorted(self.assessors), pending_windows=pending)

    async def close(self) -> None:
        """Save every asset (and apply pending deletions)."""
        self._dirty |= set(self.assessors)
        await self.save(self.snapshot())

    def touch(self, asset: str) -> None:
        """``asset``'s state changed: saved at the next checkpoint."""
        self._dirty.add(asset)

    def pending(self) -> int:
        """Windows waiting in every asset's join."""
        return sum(j.pending for j in self.joins.values())

    def text(self, asset: str) -> str:
        """The saved form of one asset as JSON: the assessor's state plus ``last_health`` and ``join``
        (its pending entries serialised once each, :meth:`AssetJoin.to_json`)."""
        head = json.dumps(
            {**self.assessors[asset].to_dict(), "last_health": self.last_health.get(asset)}, allow_nan=False
        )
        join = self.joins.get(asset)
        return head[:-1] + ', "join": ' + (join.to_json() if join is not None else "null") + "}"

    def snapshot(self) -> dict[str, str | None]:
        """The touched assets serialised now (JSON text; None: deleted)."""
        out = {a: self.text(a) if a in self.assessors else None for a in self._dirty}
        self._dirty.clear()
        return out

    async def save(self, snapshot: dict[str, str | None]) -> None:
        """Write a :meth:`snapshot` (in a worker thread)."""
        if snapshot:
            await asyncio.to_thread(self.repository.write_all, snapshot)

    def forget(self, asset: str) -> None:
        """Drop ``asset``'s state; its file is deleted at the next checkpoint."""
        self.assessors.pop(asset, None)
        self.joins.pop(asset, None)
        self.last_health.pop(asset, None)
        self._dirty.add(asset)
