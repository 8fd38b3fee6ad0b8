"""Append-only JSON-lines journals, one file per key, for checkpointed service state.

A service whose state is a function of the messages it took (the features engine, a scorer's rolling
mean and seen event ids) keeps those messages' essentials here and replays them on start. Used as a
:class:`shared.session.Checkpointed` state port: handlers :meth:`LineJournal.append` entries while they
run, the runner takes :meth:`LineJournal.snapshot` between two messages and awaits
:meth:`LineJournal.save` (a worker thread appends the lines and flushes them to the OS) before it
acknowledges those messages to the broker. Lines survive the process being killed (not a power cut);
a line cut off by a crash belonged to a message never acknowledged, and is skipped on load.

Each file is compacted (rewritten with its newest ``keep`` lines, atomically) once ``compact_after``
lines were appended since the last compaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import Any

import structlog

from shared.topics import valid_asset_id

log = structlog.get_logger()

Op = tuple[str, Any]  # (key, entry) appends; (key, None) forgets the key


class LineJournal:
    """Per-key JSON-lines files under ``directory`` (keys are asset ids)."""

    def __init__(self, directory: Path, *, keep: int, compact_after: int) -> None:
        if keep < 1 or compact_after < 1:
            raise ValueError("keep and compact_after must be >= 1")
        self.directory = directory
        self.keep = keep
        self.compact_after = compact_after
        self.pending: list[Op] = []
        self._appended: dict[str, int] = {}

    def path(self, key: str) -> Path:
        if not valid_asset_id(key):
            raise ValueError(f"invalid journal key {key!r}")
        return self.directory / f"{key}.jsonl"

    # -- event loop ---------------------------------------------------------------------------------
    def append(self, key: str, entry: Any) -> None:
        """Journal one JSON-able entry under ``key`` at the next checkpoint."""
        self.pending.append((key, entry))

    def forget(self, key: str) -> None:
        """Delete ``key``'s journal at the next checkpoint."""
        self.pending.append((key, None))

    def snapshot(self) -> list[Op]:
        ops, self.pending = self.pending, []
        return ops

    async def save(self, snapshot: list[Op]) -> None:
        if snapshot:
            await asyncio.to_thread(self.write, snapshot)

    # -- worker thread ------------------------------------------------------------------------------
    def load(self) -> dict[str, list[Any]]:
        """Every key's entries, oldest first (blocking)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        out: dict[str, list[Any]] = {}
        for path in sorted(self.directory.glob("*.jsonl")):
            key = path.name.removesuffix(".jsonl")
            entries = out[key] = []
            with path.open(encoding="utf-8") as f:
                for i, line in enumerate(f):
                    try:
                        entries.append(json.loads(line))
                    except ValueError as exc:
                        log.warning("journal_line_skipped", journal=str(path), line=i + 1, error=str(exc))
        return out

    def write(self, ops: list[Op]) -> None:
        """Apply appends and forgets in order (blocking)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        i = 0
        while i < len(ops):
            key, entry = ops[i]
            if entry is None:
                with contextlib.suppress(FileNotFoundError):
                    self.path(key).unlink()
                self._appended.pop(key, None)
                i += 1
                continue
            lines = []
            while i < len(ops) and ops[i][0] == key and ops[i][1] is not None:
                lines.append(json.dumps(ops[i][1], separators=(",", ":"), allow_nan=False) + "\n")
                i += 1
            with self.path(key).open("a", encoding="utf-8") as f:
                f.writelines(lines)
            self._appended[key] = self._appended.get(key, 0) + len(lines)
            if self._appended[key] >= self.compact_after:
                self.compact(key)

    def compact(self, key: str) -> None:
        """Keep the newest ``keep`` lines of ``key``'s journal (atomic replace)."""
        path = self.path(key)
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = lines[-self.keep :]
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(kept), encoding="utf-8")
        os.replace(tmp, path)
        self._appended[key] = 0
        log.info("journal_compacted", journal=str(path), kept=len(kept), dropped=len(lines) - len(kept))
