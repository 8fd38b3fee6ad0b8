"""scorer service: one worker per model kind (``--model legacy|batch|autoencoder``).

A worker keeps, per asset, the current model (from the retained ``models/<a>/<model>`` announcement, which
carries the ONNX bytes and the typed manifest entry) and a rolling mean of the last ``window`` raw scores.
Every feature vector of its kind becomes one :class:`Score`: ``raw_score`` = the model's raw score of the
vector, or the mean over its frames for an autoencoder trained on frames (long windows:
:mod:`shared.features.frames`); ``anomaly_score`` = rolling mean of raw scores, ``is_anomaly`` =
anomaly_score > threshold, severity by the contract's ratios (:func:`shared.messages.severity_of`). The
first score of a CALIBRATED asset moves it to MONITORING. The worker's status (``status/scorer-<kind>``)
carries ``models_loaded``: the number of assets with a loaded model, published again whenever it changes
(the gateway's ``/readyz`` compares it with the announcements it holds).

Only trusted models are loaded (:func:`shared.learning.signing.admit`): the announcement's Ed25519
signature verifies with the configured public key (``MODEL_VERIFY_KEY``), the ONNX graph has the
tensors the manifest names, a probe inference gives finite raw scores and an autoencoder's scores pass
the sign check (≥ 0, higher far from its training mean: :func:`shared.learning.signing.check_model`,
the same checks an imported model passes before it is saved). A refused announcement leaves
the previous model in place and is reported twice: a dead letter with the reason and a
:class:`ModelRejected` event on ``rejections/<asset>/<model>`` (the gateway shows it).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import structlog

from services.scorer.ledger import Ledger
from shared import topics
from shared.bus import Rejected
from shared.features.frames import feature_axes
from shared.learning.scoring import OnnxModel, RollingScore, classify
from shared.learning.signing import ModelVerifier, UntrustedModel, admit, load_verifier
from shared.messages import DeadLetter, FeatureVector, ModelAnnouncement, ModelRejected, Score, StateChange
from shared.readiness import Readiness
from shared.service import Delivery, Outbox, Publish, Route, Service
from shared.settings import Settings

log = structlog.get_logger()

FEATURE_KIND_FOR_MODEL = {"legacy": "legacy", "batch": "batch", "autoencoder": "vibration"}


@dataclass
class Slot:
    """One asset's loaded model and its rolling score."""

    version: str
    model: OnnxModel
    names: list[str]
    threshold: float
    rolling: RollingScore
    #: Samples per frame the model was trained on (``None``: whole windows; see ``ModelManifest.frames``).
    frame_samples: int | None = None

    @classmethod
    def from_announcement(
        cls, ann: ModelAnnouncement, window: int, verifier: ModelVerifier, topic_asset: str | None = None
    ) -> Slot:
        """The announced model when it is trusted (:func:`admit`); :class:`UntrustedModel` otherwise. The
        rolling mean spans the manifest's ``rolling_window`` when it names one, else ``window``."""
        frames = ann.manifest.frames or {}
        split = int(frames.get("frames_per_window") or 1) > 1  # type: ignore[call-overload]
        return cls(
            version=ann.version,
            model=admit(ann, verifier, topic_asset=topic_asset),
            names=list(ann.manifest.features),
            threshold=ann.manifest.threshold,
            rolling=RollingScore(ann.manifest.rolling_window or window),
            frame_samples=int(frames["frame_samples"]) if split else None,  # type: ignore[call-overload]
        )

    def rows(self, fv: FeatureVector, model_kind: str) -> np.ndarray:
        """The rows to score, features picked by name in the model's order: the vector's frames for a
        model trained on frames, else the vector itself. :class:`Rejected` (a dead letter) when the
        vector does not fit the model: other axes, missing features or other frames."""
        index = {n: i for i, n in enumerate(fv.names)}
        calibrated, received = feature_axes(self.names), feature_axes(fv.names)
        if fv.kind == "vibration" and calibrated != received:
            raise Rejected(
                f"axis layout changed: the {model_kind} model {self.version} was calibrated on axes "
                f"{','.join(calibrated)} but this window has {','.join(received)}; recalibrate the asset"
            )
        missing = [n for n in self.names if n not in index]
        if missing:
            raise Rejected(
                f"feature vector lacks {len(missing)} feature(s) the {model_kind} model "
                f"{self.version} needs, e.g. {missing[:3]}"
            )
        cols = [index[n] for n in self.names]
        if self.frame_samples is None:
            return np.asarray([[fv.values[i] for i in cols]], dtype=np.float32)
        if fv.frames is None or fv.frame_samples != self.frame_samples:
            got = f"frames of {fv.frame_samples} samples" if fv.frames else "a window that is one frame"
            raise Rejected(
                f"window length changed: the {model_kind} model {self.version} was calibrated on frames "
                f"of {self.frame_samples} samples but this vector has {got}; recalibrate the asset"
            )
        return np.asarray(fv.frames, dtype=np.float32)[:, cols]

    def score(self, fv: FeatureVector, model_kind: str) -> Score:
        """Score one feature vector: raw score = the mean of its rows' raw scores (:meth:`rows`: one row,
        or one per frame), then the rolling mean and threshold as for any vector."""
        raw = float(np.mean(self.model.raw_scores(self.rows(fv, model_kind))))
        anomaly = self.rolling.update(raw)
        return Score(
            event_id=fv.event_id,
            asset_id=fv.asset_id,
            ts=fv.ts,
            model=model_kind,  # type: ignore[arg-type]
            model_version=self.version,
            anomaly_score=anomaly,
            raw_score=raw,
            threshold=self.threshold,
            is_anomaly=anomaly > self.threshold,
            severity=classify(anomaly, self.threshold),
        )


@dataclass
class ScorerHandlers:
    """Route handlers of one scorer worker."""

    model_kind: str
    verifier: ModelVerifier
    window: int = 10
    slots: dict[str, Slot] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)
    unscored: int = 0
    #: Scored event ids and raw scores (exactly-once scoring; the service's state port).
    ledger: Ledger = field(default_factory=Ledger.in_memory)
    duplicates: int = 0
    #: Announced on ``status/scorer-<kind>``: detail ``models_loaded`` = assets with a loaded model.
    readiness: Readiness = field(default_factory=Readiness)

    def __post_init__(self) -> None:
        if self.model_kind not in FEATURE_KIND_FOR_MODEL:
            raise ValueError(f"unknown model kind {self.model_kind!r}")
        self.feature_kind = FEATURE_KIND_FOR_MODEL[self.model_kind]
        self.readiness.update(models_loaded=0)

    async def on_model(self, d: Delivery[ModelAnnouncement | None]) -> Outbox:
        if d.message is None:  # retained announcement cleared (purge)
            if d.asset_id:
                self.slots.pop(d.asset_id, None)
                self.readiness.update(models_loaded=len(self.slots))
            return None
        ann = d.message
        try:
            if ann.model != self.model_kind:
                raise UntrustedModel(f"a {ann.model} model announced on the {self.model_kind} topic")
            load = Slot.from_announcement
            slot = await asyncio.to_thread(load, ann, self.window, self.verifier, d.asset_id)
        except UntrustedModel as exc:
            return self.rejected(d, ann, str(exc))
        previous = self.slots.get(ann.asset_id)
        if previous is not None and previous.version == slot.version:
            # The same version announced again (a calibrator restart): the rolling mean goes on.
            slot.rolling = previous.rolling
        self.slots[ann.asset_id] = slot
        self.readiness.update(models_loaded=len(self.slots))
        log.info("model_loaded", asset_id=ann.asset_id, model=self.model_kind, version=ann.version)
        return None

    def rejected(self, d: Delivery[ModelAnnouncement | None], ann: ModelAnnouncement, reason: str) -> Outbox:
        """Keep the previous model; publish the refusal as a dead letter and a :class:`ModelRejected`."""
        asset = d.asset_id or ann.asset_id
        kept = self.slots.get(asset)
        service = f"scorer-{self.model_kind}"
        log.warning(
            "model_rejected",
            asset_id=asset,
            model=self.model_kind,
            version=ann.version,
            key_id=ann.key_id,
            kept_version=kept.version if kept else None,
            reason=reason,
        )
        excerpt = {"asset_id": ann.asset_id, "model": ann.model, "version": ann.version, "key_id": ann.key_id}
        dead = DeadLetter(
            service=service,
            source_topic=d.topic,
            reason=f"model rejected: {reason}",
            payload_excerpt=str(excerpt)[:512],
            payload_bytes=len(ann.onnx_b64),
        )
        event = ModelRejected(
            asset_id=asset,
            model=self.model_kind,  # type: ignore[arg-type]
            version=ann.version,
            service=service,
            reason=reason,
            kept_version=kept.version if kept else None,
        )
        return [
            Publish(topics.dead_letter(service), dead),
            Publish(topics.model_rejected(asset, self.model_kind), event),
        ]

    async def on_state(self, d: Delivery[StateChange | None]) -> Outbox:
        if d.asset_id:
            if d.message is None:
                self.states.pop(d.asset_id, None)
            else:
                self.states[d.asset_id] = d.message.state
        return None

    async def on_features(self, d: Delivery[FeatureVector]) -> Outbox:
        """Score a vector once: a vector of an event scored before (re-delivered, or made again by the
        features service) is skipped (:class:`~services.scorer.ledger.Ledger`)."""
        fv = d.message
        if self.ledger.is_duplicate(fv.asset_id, fv.event_id):
            self.duplicates += 1
            log.info("duplicate_vector_skipped", asset_id=fv.asset_id, event_id=fv.event_id)
            return None
        slot = self.slots.get(fv.asset_id)
        if slot is None:
            self.unscored += 1
            return None
        self.ledger.resume(fv.asset_id, slot.version, slot.rolling)
        score = slot.score(fv, self.model_kind)
        self.ledger.took(fv.asset_id, fv.event_id, slot.version, score.raw_score)
        out = [Publish(topics.score(fv.asset_id, self.model_kind), score)]
        if self.states.get(fv.asset_id) == "CALIBRATED":
            self.states[fv.asset_id] = "MONITORING"
            change = StateChange(
                asset_id=fv.asset_id,
                state="MONITORING",
                previous="CALIBRATED",
                reason=f"first data scored by the {self.model_kind} model",
                models={self.model_kind: slot.version},
            )
            out.append(Publish(topics.state(fv.asset_id), change, retain=True))
        return out

    def routes(self) -> list[Route]:
        return [
            Route(
                topics.model_announce_filter(self.model_kind), ModelAnnouncement, self.on_model, clears=True
            ),
            Route(topics.STATE_FILTER, StateChange, self.on_state, clears=True),
            Route(topics.features_filter(self.feature_kind), FeatureVector, self.on_features),
        ]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m services.scorer", description="One scorer worker per model.")
    p.add_argument("--model", choices=topics.MODEL_KINDS, required=True)
    p.add_argument("--window", type=int, default=10, help="rolling mean over this many windows")
    return p.parse_args(list(argv))


def build(settings: Settings, argv: Sequence[str] = ("--model", "legacy")) -> Service:
    args = parse_args(argv)
    ledger = Ledger(settings.stage_dir("scorer", args.model), window=args.window)
    handlers = ScorerHandlers(args.model, load_verifier(settings), window=args.window, ledger=ledger)
    return Service(
        name=f"scorer-{args.model}",
        routes=handlers.routes(),
        state=ledger,
        persistent=True,
        readiness=handlers.readiness,
        publishes=(f"scores/<a>/{args.model}", "state/<a> (MONITORING)", f"rejections/<a>/{args.model}"),
    )
