"""features service: thin handlers around :class:`shared.features.engine.FeatureEngine`.

Every reading → legacy (after warm-up) and batch (once a window is full) feature vectors; every
vibration window → one vibration vector with spectral/envelope extras. The asset's retained config
(running speed, bearing geometry) feeds the spectral indicators; a cleared config forgets the asset.

At-least-once in, exactly once out: the session is persistent (``rotorwatch-features``), a re-delivered
reading (same event id) is skipped by the engine, and the per-asset state survives a restart: the
readings taken are journaled (:mod:`services.features.journal`, the service's checkpointed state port)
and a reading is acknowledged to the broker only once it is in the journal.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from services.features.journal import Journal
from shared import topics
from shared.features.engine import FeatureEngine
from shared.messages import AssetConfig, Reading, Window
from shared.service import Delivery, Outbox, Publish, Route, Service, no_arguments
from shared.settings import Settings

SERVICE = "features"

log = structlog.get_logger()


class FeaturesHandlers:
    """The route handlers over one engine (per-asset feature state, in memory, journaled when a
    journal is given)."""

    def __init__(self, engine: FeatureEngine, journal: Journal | None = None) -> None:
        self.engine = engine
        self.journal = journal
        self.duplicates = 0

    async def on_reading(self, d: Delivery[Reading]) -> Outbox:
        r = d.message
        if self.engine.is_duplicate(r):
            self.duplicates += 1
            log.info("duplicate_reading_skipped", asset_id=r.asset_id, event_id=r.event_id)
            return None
        vectors = self.engine.on_reading(r)  # ValueError (out of order): dead letter, state unchanged
        if self.journal is not None:
            self.journal.took(r)
        return [Publish(topics.features(fv.asset_id, fv.kind), fv) for fv in vectors]

    async def on_window(self, d: Delivery[Window]) -> Outbox:
        fv = self.engine.on_window(d.message)
        return [Publish(topics.features(fv.asset_id, "vibration"), fv)]

    async def on_config(self, d: Delivery[AssetConfig | None]) -> Outbox:
        if d.message is None:
            if d.asset_id:
                self.engine.configs.pop(d.asset_id, None)
                self.engine.forget(d.asset_id)
                if self.journal is not None:
                    self.journal.forgot(d.asset_id)
            return None
        self.engine.configs[d.message.asset_id] = d.message
        return None

    def routes(self) -> list[Route]:
        return [
            Route(topics.READING_FILTER, Reading, self.on_reading),
            Route(topics.WINDOW_FILTER, Window, self.on_window),
            Route(topics.ASSET_CONFIG_FILTER, AssetConfig, self.on_config, clears=True),
        ]


def build(settings: Settings, argv: Sequence[str] = (), *, engine: FeatureEngine | None = None) -> Service:
    """The features service; its state is journaled under ``DATA_DIR/features``."""
    no_arguments(SERVICE, argv)
    engine = engine or FeatureEngine(settings.batch_window, legacy_warmup=settings.legacy_warmup)
    journal = Journal(settings.data_dir / "features", engine)
    return Service(
        name=SERVICE,
        routes=FeaturesHandlers(engine, journal).routes(),
        publishes=("features/<a>/legacy", "features/<a>/batch", "features/<a>/vibration"),
        state=journal,
        persistent=True,
    )
