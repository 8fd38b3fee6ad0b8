"""health service: fuses each asset's scores, features and readings into a retained
:class:`HealthUpdate`, opens/escalates/clears alarms (:class:`AlarmEvent`), and handles
acknowledge/resolve commands (:class:`AlarmActionRequest` → :class:`AlarmActionReply`).

Routes (handlers validate, call :class:`shared.health.HealthAssessor`, return what to publish):

- ``scores/<a>/<model>`` → assess, publish alarm transitions and the health (throttled);
- ``features/<a>/<kind>`` → refresh the evidence (a vibration window of an uncalibrated asset
  publishes: its ISO 20816 zone is a health before any model exists);
- ``events/<a>/reading`` → refresh the raw-signal evidence (the signals track);
- ``config/<a>`` → running speed, bearing, ISO group/foundation (cleared: forgotten);
- ``models/<a>/<model>`` → the model's calibration baseline (cleared: dropped); only from announcements
  whose signature verifies (``MODEL_VERIFY_KEY``, :mod:`shared.learning.signing`), others are
  dead-lettered with the reason and the previous baseline stays;
- ``state/<a>`` → a :class:`StateChange` with ``purged`` set (the calibrator's purge deleted the
  asset's data and models and cleared its retained topics) forgets the asset: its assessor and saved
  state. A retained one seen on (re)connect forgets too: the service may have been down during the
  purge. (Evidence gathered between a purge and a restart before the next calibration is then lost:
  ISO-zone evidence only, as no model exists then.)
- ``cmd/alarm_action`` → ack/resolve; a failed reply's ``code`` is ``not_found`` (unknown alarm),
  ``conflict`` (e.g. resolving a resolved alarm) or ``invalid``.

State port: :class:`~services.health.repository.AssessorStates` (JSON per asset under
``DATA_DIR/health``, saved at most every 5 s per asset or at once on an alarm transition).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import structlog

from services.health.messages import (
    Baseline,
    PublishThrottle,
    error_code,
    feature_values,
    merged_baseline,
    reading_signals,
    to_alarm_message,
    to_health_message,
    trusted_baseline,
)
from services.health.repository import AssessorRepository, AssessorStates
from shared import topics
from shared.bus import Rejected
from shared.health.alarms import AlarmTransition, AlarmTransitionError
from shared.health.assessor import HealthAssessor, check_baseline
from shared.learning.signing import ModelVerifier, load_verifier
from shared.messages import (
    AlarmActionReply,
    AlarmActionRequest,
    AssetConfig,
    FeatureVector,
    ModelAnnouncement,
    Reading,
    Score,
    StateChange,
)
from shared.service import Delivery, Outbox, Publish, Route, Service, no_arguments
from shared.settings import Settings

log = structlog.get_logger()

SERVICE = "health"
#: Folder of the saved assessor states, under DATA_DIR.
STATE_DIR = "health"


@dataclass
class HealthHandlers:
    """The route handlers over the assessors of every asset (held by the state port)."""

    states: AssessorStates
    #: The trusted model key; without one no model announcement is believed.
    verifier: ModelVerifier | None = None
    configs: dict[str, AssetConfig] = field(default_factory=dict)
    #: asset → model kind → that model's calibration baseline.
    baselines: dict[str, dict[str, Baseline]] = field(default_factory=dict)
    throttle: PublishThrottle = field(default_factory=PublishThrottle)

    # -- assessors --------------------------------------------------------------------------------
    def assessor(self, asset: str) -> HealthAssessor:
        """The asset's assessor (a new one with the known config and baseline on first use)."""
        a = self.states.assessors.get(asset)
        if a is None:
            base = merged_baseline(self.baselines.get(asset))
            a = HealthAssessor(asset, config=self.configs.get(asset), baseline=base)
            self.states.assessors[asset] = a
        return a

    async def assess(
        self,
        asset: str,
        ts: float,
        *,
        scores: Sequence[Score] = (),
        features: Mapping[str, float] | None = None,
        publish: bool = True,
    ) -> Outbox:
        """Update the asset's assessment; alarm transitions are always published, the health when
        ``publish`` and due (scores; features and readings only refresh the evidence) or with a
        transition."""
        try:
            result = self.assessor(asset).update(ts, scores=scores, features=features)
        except ValueError as exc:  # e.g. out-of-order data time
            raise Rejected(f"health update refused: {exc}") from exc
        out = [Publish(topics.alarm(asset), to_alarm_message(asset, t)) for t in result.alarm_events]
        due = publish and self.throttle.due(asset, ts, result.risk_level)
        hu = to_health_message(asset, result) if due or result.alarm_events else None
        if hu is not None:
            self.throttle.published(asset, ts, result.risk_level)
            out.append(Publish(topics.health(asset), hu, retain=True))
        await self.states.save(asset, force=bool(result.alarm_events))
        return out

    # -- evidence ---------------------------------------------------------------------------------
    async def on_score(self, d: Delivery[Score]) -> Outbox:
        s = d.message
        return await self.assess(s.asset_id, s.ts.timestamp(), scores=[s])

    async def on_features(self, d: Delivery[FeatureVector]) -> Outbox:
        fv = d.message
        uncalibrated = not self.baselines.get(fv.asset_id)
        publish = fv.kind == "vibration" and uncalibrated
        return await self.assess(fv.asset_id, fv.ts.timestamp(), features=feature_values(fv), publish=publish)

    async def on_reading(self, d: Delivery[Reading]) -> Outbox:
        r = d.message
        return await self.assess(r.asset_id, r.ts.timestamp(), features=reading_signals(r), publish=False)

    # -- asset context ----------------------------------------------------------------------------
    async def on_config(self, d: Delivery[AssetConfig | None]) -> Outbox:
        if d.message is None:
            if d.asset_id:
                self.configs.pop(d.asset_id, None)
            return None
        cfg = d.message
        self.configs[cfg.asset_id] = cfg
        if cfg.asset_id in self.states.assessors:
            self.states.assessors[cfg.asset_id].set_config(cfg)
        return None

    async def on_model(self, d: Delivery[ModelAnnouncement | None]) -> Outbox:
        asset = d.asset_id
        if asset is None:
            return None
        kind = d.topic.rsplit("/", 1)[-1]
        if d.message is None:
            self.baselines.get(asset, {}).pop(kind, None)
        else:
            baseline = trusted_baseline(d.message, self.verifier, asset, kind)
            check_baseline(baseline)  # a bad one is refused here, not on every later score
            self.baselines.setdefault(asset, {})[kind] = baseline
        if asset in self.states.assessors:
            self.states.assessors[asset].set_baseline(merged_baseline(self.baselines.get(asset)))
        return None

    async def on_state(self, d: Delivery[StateChange]) -> Outbox:
        sc = d.message
        if sc.purged:
            await self.forget(sc.asset_id)
            log.info("health_forgotten", asset_id=sc.asset_id, reason=sc.reason)
        return None

    async def forget(self, asset: str) -> None:
        """Drop everything kept for ``asset`` but its configuration (owned by the config topic)."""
        self.baselines.pop(asset, None)
        self.throttle.forget(asset)
        await self.states.forget(asset)

    # -- operator commands ------------------------------------------------------------------------
    async def on_alarm_action(self, d: Delivery[AlarmActionRequest]) -> Outbox:
        req = d.message
        owner = next((k for k, a in self.states.assessors.items() if a.alarms.holds(req.alarm_id)), None)
        if owner is None:
            return [_reply(req, status="failed", code="not_found", message=f"unknown alarm {req.alarm_id}")]
        try:
            done = self._act(self.states.assessors[owner], req)
        except AlarmTransitionError as exc:
            return [_reply(req, status="failed", code=error_code(exc), message=str(exc))]
        msg = to_alarm_message(owner, done)
        await self.states.save(owner, force=True)
        return [
            Publish(topics.alarm(owner), msg),
            _reply(req, status="ok", message=f"alarm {msg.state.lower()}", alarm=msg),
        ]

    @staticmethod
    def _act(a: HealthAssessor, req: AlarmActionRequest) -> AlarmTransition:
        if req.action == "ack":
            return a.acknowledge(req.alarm_id, req.who, req.note)
        return a.resolve(req.alarm_id, req.who, req.note, req.action_code or "other")

    def routes(self) -> list[Route]:
        return [
            Route(topics.SCORE_FILTER, Score, self.on_score),
            Route(topics.features_filter(), FeatureVector, self.on_features),
            Route(topics.READING_FILTER, Reading, self.on_reading),
            Route(topics.ASSET_CONFIG_FILTER, AssetConfig, self.on_config, clears=True),
            Route(topics.model_announce_filter(), ModelAnnouncement, self.on_model, clears=True),
            Route(topics.STATE_FILTER, StateChange, self.on_state),
            Route(topics.command("alarm_action"), AlarmActionRequest, self.on_alarm_action),
        ]


def _reply(req: AlarmActionRequest, **fields: object) -> Publish:
    return Publish(req.reply_to, AlarmActionReply(correlation_id=req.correlation_id, **fields))  # type: ignore[arg-type]


def build(settings: Settings, argv: Sequence[str] = ()) -> Service:
    """The health service; assessor states are saved under ``DATA_DIR/health``."""
    no_arguments(SERVICE, argv)
    states = AssessorStates(AssessorRepository(settings.data_dir / STATE_DIR))
    handlers = HealthHandlers(states, load_verifier(settings))
    return Service(
        name=SERVICE,
        routes=handlers.routes(),
        publishes=("health/<a> (retained)", "alarms/<a>", "reply/<requester>/<id>"),
        state=states,
        persistent=True,  # rotorwatch-health: scores wait at the broker while health is away
    )
