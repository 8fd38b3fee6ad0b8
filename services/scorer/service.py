"""scorer service: one worker per model kind. Thin handlers around :mod:`shared.learning.scoring`.

A worker keeps, per asset, the current model version (from the retained ``models/<a>/<model>``
announcement, which carries the ONNX bytes and manifest entry) and a rolling mean of the last
``window`` raw scores. Every feature vector of its kind becomes one ``Score``:
``anomaly_score`` = rolling mean of raw scores, ``is_anomaly`` = anomaly_score > threshold,
severity WARNING above the threshold and CRITICAL above twice the threshold.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import numpy as np
import structlog

from shared import topics
from shared.bus import Bus, Incoming, Rejected, topic_matches
from shared.learning.scoring import OnnxModel, RollingScore, classify
from shared.messages import FeatureVector, ModelAnnouncement, Score, StateChange

log = structlog.get_logger()

FEATURE_KIND_FOR_MODEL = {"legacy": "legacy", "batch": "batch", "autoencoder": "vibration"}


@dataclass
class Slot:
    version: str
    model: OnnxModel
    names: list[str]
    threshold: float
    rolling: RollingScore


@dataclass
class ScorerService:
    model_kind: str
    window: int = 10
    slots: dict[str, Slot] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)
    unscored: int = 0

    def __post_init__(self) -> None:
        if self.model_kind not in FEATURE_KIND_FOR_MODEL:
            raise ValueError(f"unknown model kind {self.model_kind!r}")
        self.feature_kind = FEATURE_KIND_FOR_MODEL[self.model_kind]

    @property
    def subscriptions(self) -> list[str]:
        return [
            topics.model_announce_filter(self.model_kind),
            topics.STATE_FILTER,
            topics.features_filter(self.feature_kind),
        ]

    def load(self, ann: ModelAnnouncement) -> None:
        entry = ann.manifest
        model = OnnxModel.from_bytes(base64.b64decode(ann.onnx_b64), entry)
        self.slots[ann.asset_id] = Slot(
            version=ann.version,
            model=model,
            names=list(entry["features"]),
            threshold=float(entry["threshold"]),
            rolling=RollingScore(self.window),
        )
        log.info("model_loaded", asset_id=ann.asset_id, model=self.model_kind, version=ann.version)

    async def handle(self, bus: Bus, msg: Incoming) -> None:
        asset = topics.asset_from_topic(msg.topic)
        if topic_matches(topics.model_announce_filter(self.model_kind), msg.topic):
            if not msg.payload:  # retained announcement cleared (purge)
                if asset:
                    self.slots.pop(asset, None)
                return
            self.load(ModelAnnouncement.model_validate_json(msg.payload))
        elif topic_matches(topics.STATE_FILTER, msg.topic):
            if asset:
                if msg.payload:
                    self.states[asset] = StateChange.model_validate_json(msg.payload).state
                else:
                    self.states.pop(asset, None)
        elif topic_matches(topics.features_filter(self.feature_kind), msg.topic):
            await self.score(bus, FeatureVector.model_validate_json(msg.payload))

    async def score(self, bus: Bus, fv: FeatureVector) -> None:
        slot = self.slots.get(fv.asset_id)
        if slot is None:
            self.unscored += 1
            return
        index = {n: i for i, n in enumerate(fv.names)}
        missing = [n for n in slot.names if n not in index]
        if missing:
            raise Rejected(
                f"feature vector lacks {len(missing)} feature(s) the {self.model_kind} model "
                f"{slot.version} needs, e.g. {missing[:3]}"
            )
        x = np.asarray([[fv.values[index[n]] for n in slot.names]], dtype=np.float32)
        raw = float(slot.model.raw_scores(x)[0])
        anomaly = slot.rolling.update(raw)
        sev = classify(anomaly, slot.threshold)
        await bus.publish(
            topics.score(fv.asset_id, self.model_kind),
            Score(
                event_id=fv.event_id,
                asset_id=fv.asset_id,
                ts=fv.ts,
                model=self.model_kind,  # type: ignore[arg-type]
                model_version=slot.version,
                anomaly_score=anomaly,
                raw_score=raw,
                threshold=slot.threshold,
                is_anomaly=anomaly > slot.threshold,
                severity=sev,
            ),
        )
        if self.states.get(fv.asset_id) == "CALIBRATED":
            self.states[fv.asset_id] = "MONITORING"
            await bus.publish(
                topics.state(fv.asset_id),
                StateChange(
                    asset_id=fv.asset_id,
                    state="MONITORING",
                    previous="CALIBRATED",
                    reason=f"first data scored by the {self.model_kind} model",
                    models={self.model_kind: slot.version},
                ),
                retain=True,
            )
