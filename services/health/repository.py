"""Where the health stage keeps each asset's state between restarts.

:class:`AssessorRepository` is plain blocking file I/O, per asset: the state ``<dir>/<asset>.json``
(assessor, join bookkeeping, last published health; written atomically: a temporary file, then
``os.replace``) and the journal of the parts of its pending windows ``<dir>/parts/<asset>.jsonl`` (one
JSON line per reading, feature vector or score taken, appended; rewritten with just the pending windows
once it holds more than twice as many lines as there are pending windows).

:class:`AssessorStates` is the service's state port over it: it holds the live
:class:`~shared.health.assessor.HealthAssessor` of every asset, its pending windows
(:class:`~shared.health.join.AssetJoin`) and its last published health; loads them all on
:meth:`~AssessorStates.open` (the windows rebuilt from the journal, :meth:`AssetJoin.replay`), and is
checkpointed (:class:`shared.session.Checkpointed`): what the handlers changed since the last checkpoint
is saved before the messages are acknowledged to the broker; everything on
:meth:`~AssessorStates.close`. A checkpoint costs the small state plus the new parts, however many
windows wait. Every file access runs in a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from services.health.messages import MaintenanceLedger, MaintenanceReset
from shared import topics
from shared.health.assessor import HealthAssessor
from shared.health.join import AssetJoin, entry_line
from shared.messages import HealthUpdate
from shared.service import Publish

log = structlog.get_logger()

#: A parts journal is rewritten once it holds more than max(this, 2 × pending windows) lines.
COMPACT_MIN_LINES = 1_000


@dataclass(frozen=True)
class AssetSave:
    """What one checkpoint writes for an asset: its state (None: delete the asset), the journal lines to
    append, or (compaction) the lines that replace the journal."""

    state: str | None
    append: Sequence[str] = ()
    rewrite: Sequence[str] | None = None


@dataclass(frozen=True)
class AssessorRepository:
    """Asset states and parts journals under ``directory`` (None: keep nothing). Blocking."""

    directory: Path | None

    def path(self, asset: str, suffix: str = ".json") -> Path | None:
        if self.directory is None or not topics.valid_asset_id(asset):
            return None
        return (self.directory / "parts" if suffix == ".jsonl" else self.directory) / f"{asset}{suffix}"

    def load_all(self) -> dict[str, tuple[dict[str, Any], list[Any]]]:
        """Every readable saved state by asset, with its journal lines (unreadable files are logged and
        skipped; so is a journal line cut off by a crash: its message was never acknowledged)."""
        if self.directory is None or not self.directory.exists():
            return {}
        out: dict[str, tuple[dict[str, Any], list[Any]]] = {}
        for path in sorted(self.directory.glob("*.json")):
            if not topics.valid_asset_id(path.stem):
                continue
            try:
                out[path.stem] = (json.loads(path.read_text()), self._lines(path.stem))
            except (OSError, ValueError) as exc:
                log.warning("health_state_unreadable", asset_id=path.stem, error=str(exc))
        return out

    def _lines(self, asset: str) -> list[Any]:
        path = self.path(asset, ".jsonl")
        if path is None or not path.exists():
            return []
        out = []
        for i, line in enumerate(path.read_text().splitlines()):
            try:
                out.append(json.loads(line))
            except ValueError:
                log.warning("health_journal_line_skipped", asset_id=asset, line=i + 1)
        return out

    def write_all(self, saves: dict[str, AssetSave]) -> None:
        """Apply one checkpoint: per asset the journal first, then the state (a crash in between leaves
        parts the older state replays; their messages were not acknowledged and come again)."""
        for asset, save in saves.items():
            if save.state is None:
                self.delete(asset)
                continue
            if save.rewrite is not None:
                self._replace(self.path(asset, ".jsonl"), "".join(f"{line}\n" for line in save.rewrite))
            elif save.append and (path := self.path(asset, ".jsonl")) is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("a") as f:
                    f.writelines(f"{line}\n" for line in save.append)
            self._replace(self.path(asset), save.state)

    @staticmethod
    def _replace(path: Path | None, text: str) -> None:
        """Write ``text`` atomically (readers see the old file or the new one, never half)."""
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)

    def delete(self, asset: str) -> None:
        for suffix in (".json", ".jsonl"):
            path = self.path(asset, suffix)
            if path is not None:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()


@dataclass
class AssessorStates:
    """The state port (see the module docstring)."""

    repository: AssessorRepository
    assessors: dict[str, HealthAssessor] = field(default_factory=dict)
    joins: dict[str, AssetJoin] = field(default_factory=dict)
    last_health: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Each asset's maintenance log entries (saved with its state: a redelivered entry resets nothing).
    maintenance: dict[str, MaintenanceLedger] = field(default_factory=dict)
    #: Assets just reset by a log entry: their next health is published whatever the throttle.
    restarted: set[str] = field(default_factory=set)
    #: Monotonic seconds (the joins' waits); injectable for tests.
    clock: Callable[[], float] = time.monotonic
    _dirty: set[str] = field(default_factory=set)
    _new_lines: dict[str, list[str]] = field(default_factory=dict)
    _journal_lines: dict[str, int] = field(default_factory=dict)

    async def open(self) -> None:
        """Load every saved asset (so alarms of all assets can be acted on after a restart)."""
        blobs = await asyncio.to_thread(self.repository.load_all)
        now = self.clock()
        for asset, (blob, lines) in blobs.items():
            try:
                assessor = HealthAssessor.from_dict(blob)
                join = AssetJoin.from_dict(blob["join"], now) if blob.get("join") else AssetJoin()
                join.replay(lines, now)
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                log.warning("health_state_unreadable", asset_id=asset, error=str(exc))
                continue
            self.assessors[asset], self.joins[asset] = assessor, join
            self._journal_lines[asset] = len(lines)
            if isinstance(blob.get("last_health"), dict):
                self.last_health[asset] = blob["last_health"]
            if isinstance(blob.get("maintenance"), dict):
                try:
                    self.maintenance[asset] = MaintenanceLedger.from_dict(blob["maintenance"])
                except (TypeError, ValueError) as exc:
                    log.warning("maintenance_ledger_unreadable", asset_id=asset, error=str(exc))
        pending = sum(j.pending for j in self.joins.values())
        log.info("health_state_loaded", assets=sorted(self.assessors), pending_windows=pending)

    async def close(self) -> None:
        """Save every asset (journals compacted) and apply pending deletions."""
        self._dirty |= set(self.assessors)
        await self.save(self.snapshot(compact=True))

    def touch(self, asset: str, maintenance: bool = False) -> None:
        """``asset``'s state changed: saved at the next checkpoint. ``maintenance``: its tracking was reset
        otherwise than by a log entry (an alarm resolved with a maintenance code): the last log entry's
        reset no longer explains it."""
        self._dirty.add(asset)
        if maintenance and (ledger := self.maintenance.get(asset)) is not None:
            ledger.last = None

    def journal(self, asset: str, part: Sequence[Any]) -> None:
        """A part the asset's join took (journal form, :func:`shared.health.join.reading_part` etc.)."""
        self._new_lines.setdefault(asset, []).append(json.dumps(part, allow_nan=False))
        self._dirty.add(asset)

    def pending(self) -> int:
        """Windows waiting in every asset's join."""
        return sum(j.pending for j in self.joins.values())

    def state_text(self, asset: str) -> str:
        """One asset's saved state: the assessor's, the join's (without its entries) and the last health."""
        join = self.joins.get(asset)
        blob = {
            **self.assessors[asset].to_dict(),
            "join": None if join is None else join.to_dict(entries=False),
            "last_health": self.last_health.get(asset),
        }
        if asset in self.maintenance:
            blob["maintenance"] = self.maintenance[asset].to_dict()
        return json.dumps(blob, allow_nan=False)

    def snapshot(self, compact: bool = False) -> dict[str, AssetSave]:
        """What changed since the last checkpoint, serialised now."""
        out: dict[str, AssetSave] = {}
        for asset in self._dirty:
            lines = self._new_lines.pop(asset, [])
            if asset not in self.assessors:
                out[asset] = AssetSave(None)
                self._journal_lines.pop(asset, None)
                continue
            n = self._journal_lines[asset] = self._journal_lines.get(asset, 0) + len(lines)
            join = self.joins.get(asset)
            pending = 0 if join is None else join.pending
            if compact or n > max(COMPACT_MIN_LINES, 2 * pending):
                rewrite = [] if join is None else [entry_line(e) for e in join.entries()]
                self._journal_lines[asset] = len(rewrite)
                out[asset] = AssetSave(self.state_text(asset), rewrite=rewrite)
            else:
                out[asset] = AssetSave(self.state_text(asset), append=lines)
        self._dirty.clear()
        return out

    async def save(self, snapshot: dict[str, AssetSave]) -> None:
        """Write a :meth:`snapshot` (in a worker thread)."""
        if snapshot:
            await asyncio.to_thread(self.repository.write_all, snapshot)

    def forget(self, asset: str) -> None:
        """Drop ``asset``'s state; its files are deleted at the next checkpoint."""
        self.assessors.pop(asset, None)
        self.joins.pop(asset, None)
        self.last_health.pop(asset, None)
        self.maintenance.pop(asset, None)
        self.restarted.discard(asset)
        self._new_lines.pop(asset, None)
        self._dirty.add(asset)

    # -- maintenance log entries (decisions: :class:`~services.health.messages.MaintenanceLedger`) -----
    def log_entry(self, asset: str, log_id: str, event_type: str, ts: float) -> str:
        """Take a log entry at data time ``ts`` (s): a resetting one whose time is already assessed resets
        the assessor now, at the newest assessed window's time (``"apply"``); a later one waits for
        :meth:`reset_due` (``"pending"``). Returns the ledger's outcome (``"untracked"``: no assessor)."""
        a = self.assessors.get(asset)
        if a is None:  # nothing tracked yet, nothing to reset
            log.info(
                "maintenance_log", asset_id=asset, log_id=log_id, event_type=event_type, outcome="untracked"
            )
            return "untracked"
        join = self.joins.get(asset)
        assessed = None if join is None else join.last_released_ts
        reset_at = a.to_dict()["degradation"].get("reset_at")  # e.g. its alarm resolved as maintenance
        ledger = self.maintenance.setdefault(asset, MaintenanceLedger())
        what, r = ledger.take(log_id, event_type, ts, assessed, reset_at)
        if what == "apply" and r is not None and r.applied is not None:
            a.record_maintenance(r.action, r.applied)
            self.restarted.add(asset)
        self._dirty.add(asset)
        log.info("maintenance_log", asset_id=asset, log_id=log_id, event_type=event_type, outcome=what)
        return what

    def reset_due(self, asset: str, ts: float) -> MaintenanceReset | None:
        """Before the window at data time ``ts``: apply the pending reset it comes after (None: none)."""
        ledger = self.maintenance.get(asset)
        r = None if ledger is None or not ledger.pending else ledger.due(ts)
        if r is not None:
            self.assessors[asset].record_maintenance(r.action, r.logged)
            self.restarted.add(asset)
            self._dirty.add(asset)
            log.info(
                "maintenance_reset", asset_id=asset, log_id=r.log_id, event_type=r.event_type, at=r.logged
            )
        return r

    def last_reset(self, asset: str) -> MaintenanceReset | None:
        """The asset's last reset from a log entry (None: none)."""
        ledger = self.maintenance.get(asset)
        return None if ledger is None else ledger.last

    def republish(self) -> list[Publish]:
        """Each asset's last published health again, retained (a restarted broker forgot it)."""
        out = []
        for asset, blob in sorted(self.last_health.items()):
            try:
                out.append(Publish(topics.health(asset), HealthUpdate.model_validate(blob), retain=True))
            except ValueError as exc:
                log.warning("last_health_unreadable", asset_id=asset, error=str(exc))
        log.info("health_republished", assets=len(out))
        return out
