"""health service: fuses each asset's scores, features and readings into a retained
:class:`HealthUpdate`, opens/escalates/clears alarms (:class:`AlarmEvent`), and handles
ack/resolve/shelve/unshelve commands (:class:`AlarmActionRequest` → :class:`AlarmActionReply`).

Routes (handlers validate, call :mod:`shared.health`, return what to publish):

- ``events/<a>/reading``, ``features/<a>/<kind>``, ``scores/<a>/<model>`` → the parts of one window
  (same event id), joined per asset (:class:`shared.health.join.AssetJoin`) and assessed ONCE per
  window, strictly in data-time order, when the window is complete or has waited ``HEALTH_JOIN_WAIT_S``
  (wall clock): so the verdicts do not depend on how the streams interleave (replay speed, backlog).
  Then alarm transitions are published, and the health (throttled by data time) when the window had
  scores, or was a vibration window of an uncalibrated asset (its ISO 20816 zone is a health before any
  model exists). A part of a window already assessed is dropped (logged); a new window older than the
  last one assessed is dead-lettered;
- ``sync/health/tick`` → its own tick (:meth:`HealthHandlers.ticks`): releases windows whose wait is
  over; a connection's first republishes every asset's last health (a restarted broker forgot it);
- ``config/<a>`` → speed, bearing, zone basis, machine (:mod:`.machines`; cleared: forgotten);
- ``models/<a>/<model>`` → the model's calibration baseline (cleared: dropped); only from announcements
  whose signature verifies (``MODEL_VERIFY_KEY``), others are dead-lettered with the reason;
- ``state/<a>`` → a purge (:class:`StateChange` ``purged``, also retained) forgets the asset's state;
- ``sensor/<a>`` → a sensor fault opens the sensor alarm and holds the health (:mod:`.sensor`);
- ``logs/<a>`` → a maintenance log entry whose type resets (:data:`~.messages.LOG_RESETS`) restarts the
  degradation and prognostics at its data time, once (:class:`~.messages.MaintenanceLedger`);
- ``cmd/alarm_action`` → ack/resolve/shelve/unshelve; failed: ``not_found``, ``conflict``, ``invalid``.

State port :class:`~.repository.AssessorStates` (``DATA_DIR/health``): acked once its state is saved.
Replicas (``PARTITION_COUNT``): partitioned by machine (:func:`.machines.machine_key`)."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import structlog

from services.health.machines import MachineGroups, machine_key
from services.health.messages import (
    Baseline,
    PublishThrottle,
    Tick,
    alarm_action,
    alarm_publishes,
    alarm_reply,
    error_code,
    feature_values,
    merged_baseline,
    reading_signals,
    to_alarm_message,
    to_health_message,
    trusted_baseline,
    with_reset_note,
)
from services.health.repository import AssessorRepository, AssessorStates
from services.health.sensor import SensorHold, sensor_alarm_events
from shared import topics
from shared.bus import Bus, Rejected
from shared.health.alarms import AlarmTransitionError
from shared.health.assessor import HealthAssessor, ModelScore, check_baseline
from shared.health.join import (
    JOIN_WAIT_S,
    AssetJoin,
    Released,
    TooOld,
    features_part,
    reading_part,
    score_part,
)
from shared.learning.signing import ModelVerifier, load_verifier
from shared.messages import (
    AlarmActionRequest,
    AssetConfig,
    FeatureVector,
    HealthUpdate,
    ModelAnnouncement,
    OperatorLog,
    Reading,
    Score,
    SensorStatus,
    StateChange,
)
from shared.service import Delivery, Outbox, Publish, Route, Service, no_arguments
from shared.settings import Settings

log = structlog.get_logger()

SERVICE = "health"
#: Folder of the saved assessor states, under DATA_DIR.
STATE_DIR = "health"
#: Seconds between two checks of the tick task (at most; a quarter of the join wait when shorter).
TICK_EVERY_S = 1.0


#: The service's own tick topic; its route ``sync/health/+``'s other tokens are the runner's markers.
TICK_TOPIC = topics.sync(SERVICE, "tick")


@dataclass
class HealthHandlers:
    """The route handlers over the assessors and joins of every asset (held by the state port)."""

    states: AssessorStates
    #: The trusted model key; without one no model announcement is believed.
    verifier: ModelVerifier | None = None
    configs: dict[str, AssetConfig] = field(default_factory=dict)
    #: asset → model kind → that model's calibration baseline.
    baselines: dict[str, dict[str, Baseline]] = field(default_factory=dict)
    throttle: PublishThrottle = field(default_factory=PublishThrottle)
    sensors: SensorHold = field(default_factory=SensorHold)
    machines: MachineGroups = field(default_factory=MachineGroups)
    #: Seconds (wall clock) an incomplete oldest window waits (:mod:`shared.health.join`).
    join_wait_s: float = JOIN_WAIT_S
    tick_topic: str = TICK_TOPIC
    #: Parts dropped because their window had already been assessed.
    late_parts: int = 0
    partitioned: bool = False  # one of PARTITION_COUNT replicas: silent on another replica's alarm
    _ticks: itertools.count[int] = field(default_factory=itertools.count)
    _process: str = field(default_factory=lambda: uuid.uuid4().hex[:16])

    # -- assessors --------------------------------------------------------------------------------
    def assessor(self, asset: str) -> HealthAssessor:
        """The asset's assessor (a new one with the known config and baseline on first use)."""
        a = self.states.assessors.get(asset)
        if a is None:
            base = merged_baseline(self.baselines.get(asset))
            a = HealthAssessor(asset, config=self.configs.get(asset), baseline=base)
            self.states.assessors[asset] = a
        return a

    def join(self, asset: str) -> AssetJoin:
        """The asset's pending windows (created with its assessor)."""
        self.assessor(asset)
        return self.states.joins.setdefault(asset, AssetJoin())

    def assess(
        self,
        asset: str,
        ts: float,
        *,
        scores: Sequence[ModelScore | Score] = (),
        features: Mapping[str, float] | None = None,
        publish: bool = True,
    ) -> list[Publish]:
        """Update the asset's assessment; alarm transitions are always published, the health when
        ``publish`` and due, or with a transition (or the first after a maintenance reset)."""
        self.states.reset_due(asset, ts)
        status = self.sensors.fault(asset)
        if status is not None:
            return self._held(asset, ts, status, publish)
        a = self.assessor(asset)
        follows = self.machines.attribution(asset, ts, self.states.assessors)
        result = a.update(ts, scores=scores, features=features, follows=follows)
        events = result.alarm_events + sensor_alarm_events(a, ts, None)
        out = alarm_publishes(asset, events)
        self.throttle.restore(asset, self.states.last_health.get(asset))
        due = publish and self.throttle.due(asset, ts, result.risk_level) or asset in self.states.restarted
        hu = to_health_message(asset, result) if due or events else None
        if hu is not None:
            hu = with_reset_note(hu, self.states.last_reset(asset))
            self.states.restarted.discard(asset)
            hu.active_alarms = len(a.alarms.open_alarms(asset))
            out.append(self._publish_health(asset, ts, hu))
        self.states.touch(asset)
        return out

    def _publish_health(self, asset: str, ts: float, hu: HealthUpdate) -> Publish:
        self.throttle.published(asset, ts, hu.risk_level)
        blob = hu.model_dump(mode="json")
        self.states.last_health[asset] = blob
        self.sensors.remember(asset, blob)
        return Publish(topics.health(asset), hu, retain=True)

    def _held(self, asset: str, ts: float, status: SensorStatus, publish: bool) -> list[Publish]:
        """A window during a sensor fault: observed by the sensor alarm only; the health is held."""
        a = self.assessor(asset)
        events = sensor_alarm_events(a, ts, status)
        out = alarm_publishes(asset, events)
        last = self.states.last_health.get(asset)
        self.throttle.restore(asset, last)
        risk = last["risk_level"] if last else None
        if (publish and self.throttle.due(asset, ts, risk)) or events:
            open_n = len(a.alarms.open_alarms(asset))
            hu = self.sensors.held(asset, ts, status, open_n, last)
            if hu is not None:
                out.append(self._publish_health(asset, ts, hu))
        self.states.touch(asset)
        return out

    # -- windows ----------------------------------------------------------------------------------
    def release(self, asset: str, now: float | None = None) -> list[Publish]:
        """Assess every window of ``asset`` that is due, oldest first (one update per window); waits run
        out only on a tick (``now``: its publish time), never while handling a part: a part already
        queued behind the backlog must not count as missing."""
        join = self.states.joins.get(asset)
        if join is None or not join.pending:
            return []
        out: list[Publish] = []
        for w in join.release(now, self.join_wait_s, self.baselines.get(asset, {}).keys()):
            out += self._assess_window(asset, w)
        self.states.touch(asset)
        return out

    def _assess_window(self, asset: str, w: Released) -> list[Publish]:
        if w.missing:
            log.info("window_released_incomplete", asset_id=asset, event_id=w.event_id, missing=w.missing)
        # scores publish; a vibration window of an uncalibrated asset too (its ISO zone is a health)
        publish = bool(w.scores) or ("vibration" in w.kinds and not self.baselines.get(asset))
        try:
            return self.assess(asset, w.ts, scores=w.scores, features=w.features, publish=publish)
        except ValueError as exc:  # parts are checked when added: not expected
            log.error("window_refused", asset_id=asset, event_id=w.event_id, error=str(exc))
            return []

    def _add(self, asset: str, part: list[Any]) -> Outbox:
        """Give the asset's join one part (journal form), journal it, assess the windows now complete."""
        try:
            status = self.join(asset).add_part(part, self.states.clock())
        except TooOld as exc:
            raise Rejected(f"health update refused: {exc}") from exc
        if status in ("new", "joined"):
            self.states.journal(asset, part)
        elif status == "late":
            self.late_parts += 1
            log.info("late_part_dropped", asset_id=asset, event_id=part[1], dropped=self.late_parts)
        return self.release(asset)

    # -- evidence ---------------------------------------------------------------------------------
    async def on_score(self, d: Delivery[Score]) -> Outbox:
        s = d.message
        return self._add(s.asset_id, score_part(s.event_id, s.ts.timestamp(), ModelScore.from_message(s)))

    async def on_features(self, d: Delivery[FeatureVector]) -> Outbox:
        f = d.message
        return self._add(f.asset_id, features_part(f.event_id, f.ts.timestamp(), f.kind, feature_values(f)))

    async def on_reading(self, d: Delivery[Reading]) -> Outbox:
        r = d.message
        return self._add(r.asset_id, reading_part(r.event_id, r.ts.timestamp(), reading_signals(r)))

    async def on_tick(self, d: Delivery[Tick]) -> Outbox:
        """Release the windows whose wait is over; the first tick of a connection also republishes
        the last health of every asset (retained)."""
        if d.message.process != self._process:
            return None  # another process's (a previous run's, or another instance's on this broker)
        out = self.states.republish() if d.message.republish else []
        for asset in [a for a, j in self.states.joins.items() if j.pending]:
            out += self.release(asset, d.message.at)
        return out

    def next_due(self) -> float | None:
        """Monotonic time by which some asset's oldest window is released (None: nothing pending)."""
        dues = [
            j.next_due(self.join_wait_s, self.baselines.get(a, {}).keys())
            for a, j in self.states.joins.items()
        ]
        return min((t for t in dues if t is not None), default=None)

    def tick(self, republish: bool = False) -> Tick:
        return Tick(process=self._process, n=next(self._ticks), at=self.states.clock(), republish=republish)

    async def ticks(self, bus: Bus) -> None:
        """Service task (per connection): a republishing tick first, then a tick whenever a window's
        wait is over (no further message might come, e.g. at the end of a replay)."""
        await bus.publish(self.tick_topic, self.tick(republish=True))
        every = min(TICK_EVERY_S, self.join_wait_s / 4)
        while True:
            await asyncio.sleep(every)
            due = self.next_due()
            if due is not None and due <= self.states.clock():
                await bus.publish(self.tick_topic, self.tick())

    # -- asset context ----------------------------------------------------------------------------
    async def on_config(self, d: Delivery[AssetConfig | None]) -> Outbox:
        if d.message is None:
            if d.asset_id:
                self.configs.pop(d.asset_id, None)
                self.machines.configure(d.asset_id, None)
            return None
        cfg = d.message
        self.configs[cfg.asset_id] = cfg
        self.machines.configure(cfg.asset_id, cfg.machine)
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
            if asset in self.states.joins:
                self.states.joins[asset].drop_model(kind)  # its scores are awaited no more
        else:
            baseline = trusted_baseline(d.message, self.verifier, asset, kind)
            check_baseline(baseline)  # a bad one is refused here, not on every later score
            self.baselines.setdefault(asset, {})[kind] = baseline
        if asset in self.states.assessors:
            self.states.assessors[asset].set_baseline(merged_baseline(self.baselines.get(asset)))
        return self.release(asset)

    async def on_sensor(self, d: Delivery[SensorStatus | None]) -> Outbox:
        """A fault opens the sensor alarm now and holds the health; ``ok`` starts clearing it."""
        s = d.message
        if s is None:
            self.sensors.status.pop(d.asset_id or "", None)
            return None
        self.sensors.status[s.asset_id] = s
        if s.status == "fault":
            return self._held(s.asset_id, s.ts.timestamp(), s, publish=True)
        a = self.states.assessors.get(s.asset_id)
        if a is None:
            return None
        self.states.touch(s.asset_id)
        return alarm_publishes(s.asset_id, a.observe_sensor(s.ts.timestamp(), False))  # re-arms it

    async def on_state(self, d: Delivery[StateChange]) -> Outbox:
        if (sc := d.message).purged:
            await self.forget(sc.asset_id)
            log.info("health_forgotten", asset_id=sc.asset_id, reason=sc.reason)
        return None

    async def forget(self, asset: str) -> None:
        """Drop everything kept for ``asset`` but its configuration (owned by the config topic)."""
        self.baselines.pop(asset, None)
        self.throttle.forget(asset)
        self.sensors.recent.pop(asset, None)
        self.machines.transmitted.pop(asset, None)
        self.states.forget(asset)

    async def on_log(self, d: Delivery[OperatorLog]) -> Outbox:
        """A log entry of a resetting type restarts its asset's tracking (``states.log_entry``)."""
        e = d.message
        if topics.asset_from_topic(d.topic) != e.asset_id:
            raise Rejected(f"log entry of asset {e.asset_id!r} on topic {d.topic!r}")
        self.states.log_entry(e.asset_id, e.log_id, e.event_type, e.ts.timestamp())
        return None

    # -- operator commands ------------------------------------------------------------------------
    async def on_alarm_action(self, d: Delivery[AlarmActionRequest]) -> Outbox:
        req = d.message
        owner = next((k for k, a in self.states.assessors.items() if a.alarms.holds(req.alarm_id)), None)
        if owner is None and self.partitioned:
            return None  # one of several replicas (shared.partition): the one holding it answers
        if owner is None:
            return [
                alarm_reply(req, status="failed", code="not_found", message="unknown alarm " + req.alarm_id)
            ]
        try:
            done = alarm_action(self.states.assessors[owner], req)
        except AlarmTransitionError as exc:
            return [alarm_reply(req, status="failed", code=error_code(exc), message=str(exc))]
        msg = to_alarm_message(owner, done)
        self.states.touch(owner, maintenance=done.maintenance)
        return [
            Publish(topics.alarm(owner), msg),
            alarm_reply(req, status="ok", message=f"alarm {done.kind}", alarm=msg),
        ]

    def routes(self) -> list[Route]:
        return [
            Route(topics.SCORE_FILTER, Score, self.on_score),
            Route(topics.features_filter(), FeatureVector, self.on_features),
            Route(topics.READING_FILTER, Reading, self.on_reading),
            Route(topics.ASSET_CONFIG_FILTER, AssetConfig, self.on_config, clears=True),
            Route(topics.model_announce_filter(), ModelAnnouncement, self.on_model, clears=True),
            Route(topics.STATE_FILTER, StateChange, self.on_state),
            Route(topics.SENSOR_FILTER, SensorStatus, self.on_sensor, clears=True),
            Route(topics.OPLOG_FILTER, OperatorLog, self.on_log),
            Route(topics.command("alarm_action"), AlarmActionRequest, self.on_alarm_action),
            Route(topics.sync_filter(SERVICE), Tick, self.on_tick, retained=False),
        ]


def build(settings: Settings, argv: Sequence[str] = ()) -> Service:
    """The health service; assessor states are saved under ``DATA_DIR/health``."""
    no_arguments(SERVICE, argv)
    states = AssessorStates(AssessorRepository(settings.stage_dir(STATE_DIR)))
    handlers = HealthHandlers(states, load_verifier(settings), join_wait_s=settings.health_join_wait_s)
    handlers.partitioned = settings.partition_count > 1
    return Service(
        name=SERVICE,
        routes=handlers.routes(),
        publishes=("health/<a> (retained)", "alarms/<a>", "reply/<requester>/<id>"),
        tasks=(handlers.ticks,),
        state=states,
        persistent=True,  # rotorwatch-health: scores wait at the broker while health is away
        partition_key=partial(machine_key, handlers.configs),  # a machine's assets on one replica
    )
