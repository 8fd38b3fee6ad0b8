"""A scorer's state port: which events it scored, and the raw scores its rolling mean needs.

Exactly-once scoring: a feature vector whose event id was scored before (a re-delivery, or a vector the
features service made again after a restart) is neither scored nor added to the rolling mean again.
The ledger remembers the newest :data:`RECENT_IDS` scored event ids per asset and journals each score
(``[event_id, model_version, raw_score]``, :class:`shared.journal.LineJournal` under
``DATA_DIR/scorer/<model>/<asset>.jsonl``). It is a checkpointed state port: a vector is acknowledged
to the broker only once its line is saved, so after a crash the scorer knows every event it scored and
acknowledged, the broker re-delivers the others, and the rolling mean resumes from the journaled raw
scores of the same model version (:meth:`Ledger.resume`).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from pathlib import Path

import structlog

from shared.journal import LineJournal, Op
from shared.learning.scoring import RollingScore

log = structlog.get_logger()

#: Scored event ids remembered per asset.
RECENT_IDS = 5_000


class Ledger:
    """Scored event ids and recent raw scores per asset (see the module docstring)."""

    def __init__(self, directory: Path, window: int = 10) -> None:
        self.window = window
        self.lines = LineJournal(directory, keep=RECENT_IDS, compact_after=2 * RECENT_IDS)
        self._seen: dict[str, OrderedDict[str, None]] = {}
        self._restored: dict[str, deque[tuple[str, float]]] = {}

    @classmethod
    def in_memory(cls) -> Ledger:
        """A ledger whose journal is never opened nor saved (handler tests): duplicates still skipped."""
        return cls(Path("/nonexistent/rotorwatch-ledger"))

    def is_duplicate(self, asset_id: str, event_id: str) -> bool:
        return event_id in self._seen.get(asset_id, ())

    def took(self, asset_id: str, event_id: str, version: str, raw_score: float) -> None:
        """Record one scored event (journaled at the next checkpoint)."""
        self._remember(asset_id, event_id)
        self.lines.append(asset_id, [event_id, version, raw_score])

    def forget(self, asset_id: str) -> None:
        self._seen.pop(asset_id, None)
        self._restored.pop(asset_id, None)
        self.lines.forget(asset_id)

    def resume(self, asset_id: str, version: str, rolling: RollingScore) -> None:
        """Refill an empty rolling mean with the journaled raw scores of ``version`` (once, after start)."""
        restored = self._restored.pop(asset_id, None)
        if not restored or len(rolling):
            return
        raws = [raw for v, raw in restored if v == version]
        for raw in raws[-rolling.window :]:
            rolling.update(raw)
        log.info("rolling_score_resumed", asset_id=asset_id, version=version, scores=len(raws))

    def _remember(self, asset_id: str, event_id: str) -> None:
        seen = self._seen.setdefault(asset_id, OrderedDict())
        seen[event_id] = None
        if len(seen) > RECENT_IDS:
            seen.popitem(last=False)

    # -- state port ------------------------------------------------------------------------------------
    async def open(self) -> None:
        for asset, entries in (await asyncio.to_thread(self.lines.load)).items():
            tail: deque[tuple[str, float]] = deque(maxlen=self.window)
            for entry in entries:
                try:
                    event_id, version, raw = entry
                    tail.append((str(version), float(raw)))
                except (ValueError, TypeError):
                    continue
                self._remember(asset, str(event_id))
            self._restored[asset] = tail
            log.info("scorer_state_restored", asset_id=asset, scored=len(self._seen.get(asset, ())))

    async def close(self) -> None:
        """Nothing to do: the runner saves a last checkpoint when it is safe to."""

    def snapshot(self) -> list[Op]:
        return self.lines.snapshot()

    async def save(self, snapshot: list[Op]) -> None:
        await self.lines.save(snapshot)
