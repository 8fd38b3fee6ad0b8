"""features service: thin handlers around :class:`shared.features.engine.FeatureEngine`.

Every reading → legacy (after warm-up) and batch (once a window is full) feature vectors; every
vibration window → one vibration vector with spectral/envelope extras. The asset's retained config
(running speed, bearing geometry) feeds the spectral indicators; a cleared config forgets the asset.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared import topics
from shared.features.engine import FeatureEngine
from shared.messages import AssetConfig, Reading, Window
from shared.service import Delivery, Outbox, Publish, Route, Service, no_arguments
from shared.settings import Settings

SERVICE = "features"


class FeaturesHandlers:
    """The route handlers over one engine (per-asset feature state, in memory)."""

    def __init__(self, engine: FeatureEngine) -> None:
        self.engine = engine

    async def on_reading(self, d: Delivery[Reading]) -> Outbox:
        return [
            Publish(topics.features(fv.asset_id, fv.kind), fv) for fv in self.engine.on_reading(d.message)
        ]

    async def on_window(self, d: Delivery[Window]) -> Outbox:
        fv = self.engine.on_window(d.message)
        return [Publish(topics.features(fv.asset_id, "vibration"), fv)]

    async def on_config(self, d: Delivery[AssetConfig | None]) -> Outbox:
        if d.message is None:
            if d.asset_id:
                self.engine.configs.pop(d.asset_id, None)
                self.engine.forget(d.asset_id)
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
    no_arguments(SERVICE, argv)
    engine = engine or FeatureEngine(settings.batch_window, legacy_warmup=settings.legacy_warmup)
    return Service(
        name=SERVICE,
        routes=FeaturesHandlers(engine).routes(),
        publishes=("features/<a>/legacy", "features/<a>/batch", "features/<a>/vibration"),
    )
