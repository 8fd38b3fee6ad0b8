"""features service: thin handlers around :mod:`services.features.engine`."""

from __future__ import annotations

from shared import topics
from shared.bus import Bus, Incoming, topic_matches
from shared.messages import AssetConfig, Reading, Window

from .engine import FeatureEngine

SUBSCRIPTIONS = [topics.READING_FILTER, topics.WINDOW_FILTER, topics.ASSET_CONFIG_FILTER]


class FeaturesService:
    def __init__(self, engine: FeatureEngine | None = None) -> None:
        self.engine = engine or FeatureEngine()

    async def handle(self, bus: Bus, msg: Incoming) -> None:
        if topic_matches(topics.ASSET_CONFIG_FILTER, msg.topic):
            asset = topics.asset_from_topic(msg.topic)
            if asset and not msg.payload:
                self.engine.configs.pop(asset, None)
                self.engine.forget(asset)
                return
            cfg = AssetConfig.model_validate_json(msg.payload)
            self.engine.configs[cfg.asset_id] = cfg
        elif topic_matches(topics.READING_FILTER, msg.topic):
            for fv in self.engine.on_reading(Reading.model_validate_json(msg.payload)):
                await bus.publish(topics.features(fv.asset_id, fv.kind), fv)
        elif topic_matches(topics.WINDOW_FILTER, msg.topic):
            fv = self.engine.on_window(Window.model_validate_json(msg.payload))
            await bus.publish(topics.features(fv.asset_id, "vibration"), fv)
