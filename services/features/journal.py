"""The features service's state port: a journal of the readings taken, replayed when the service starts.

Per-asset feature state (the legacy warm-up and 1 h horizon, the batch window, the recent event ids)
is a function of the readings taken, so the port journals them (:class:`shared.journal.LineJournal`,
one line ``[event_id, ts_us, voltage_v, current_a, power_factor, vibration_g]`` per reading in
``DATA_DIR/features/<asset>.jsonl``) and replays them through the engine on start.

Why a journal of our own and not a rebuild from the store: the port is a checkpoint
(:class:`shared.session.Checkpointed`), and a reading is acknowledged to the broker only after its line
was appended. So after a crash the journal holds exactly the readings whose effects were acknowledged
and the broker re-delivers exactly the others: no vector is lost and none is made twice (a re-delivered
reading already in the journal is recognised by its event id). The store cannot promise that: the
historian writes it in its own time, and it may be down.

A compaction keeps the newest ``max_horizon_readings`` (36,000) + :data:`KEEP_EXTRA` readings, more than
the legacy horizon, the batch window and the recent event ids need. Replaying them restores the state
exactly except for the rolling mean's running sum, which is summed afresh (differences in the last
bits of ``voltage_rolling_mean_1h``).

The operating-state trackers (:mod:`shared.health.operating_state`, when given) are functions of the
readings too: the replay feeds them the same readings (their config, retained, is applied when it
arrives after the start).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from shared.features.engine import RECENT_IDS, FeatureEngine
from shared.features.legacy import DEFAULT_MAX_HORIZON_READINGS
from shared.health.operating_state import AssetOperating
from shared.journal import LineJournal, Op
from shared.messages import Reading

log = structlog.get_logger()

#: Readings kept beyond the legacy horizon's maximum by a compaction (≥ batch window, recent ids).
KEEP_EXTRA = max(10_000, RECENT_IDS)
#: Readings appended to an asset's journal between two compactions.
COMPACT_AFTER = 20_000


def reading_entry(r: Reading) -> list[Any]:
    ts_us = (int(r.ts.timestamp()) * 1_000_000) + r.ts.microsecond
    return [r.event_id, ts_us, r.voltage_v, r.current_a, r.power_factor, r.vibration_g]


def entry_reading(asset_id: str, entry: list[Any]) -> Reading:
    eid, ts_us, v, c, pf, g = entry
    ts = datetime.fromtimestamp(ts_us // 1_000_000, UTC).replace(microsecond=ts_us % 1_000_000)
    return Reading(
        event_id=eid, asset_id=asset_id, ts=ts, voltage_v=v, current_a=c, power_factor=pf, vibration_g=g
    )


class Journal:
    """Checkpointed state port of the features service (see the module docstring)."""

    def __init__(
        self, directory: Path, engine: FeatureEngine, operating: dict[str, AssetOperating] | None = None
    ) -> None:
        self.engine = engine
        self.operating = operating
        self.lines = LineJournal(
            directory, keep=DEFAULT_MAX_HORIZON_READINGS + KEEP_EXTRA, compact_after=COMPACT_AFTER
        )

    def took(self, r: Reading) -> None:
        self.lines.append(r.asset_id, reading_entry(r))

    def forgot(self, asset_id: str) -> None:
        self.lines.forget(asset_id)

    async def open(self) -> None:
        await asyncio.to_thread(self._restore)

    async def close(self) -> None:
        """Nothing to do: the runner saves a last checkpoint when it is safe to."""

    def snapshot(self) -> list[Op]:
        return self.lines.snapshot()

    async def save(self, snapshot: list[Op]) -> None:
        await self.lines.save(snapshot)

    def _restore(self) -> None:
        for asset, entries in self.lines.load().items():
            readings = []
            for e in entries:
                try:
                    readings.append(entry_reading(asset, e))
                except (ValueError, TypeError) as exc:
                    log.warning("journal_entry_skipped", asset_id=asset, error=str(exc))
            taken = self.engine.replay(readings)
            if self.operating is not None:
                tracker = self.operating.setdefault(asset, AssetOperating())
                for r in readings:
                    tracker.on_reading(r.ts.timestamp(), r.current_a, r.vibration_g)
            log.info("features_state_restored", asset_id=asset, readings=taken)
