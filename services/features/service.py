"""features service: thin handlers around :class:`shared.features.engine.FeatureEngine`.

Every reading → legacy (after warm-up) and batch (once a window is full) feature vectors; every
vibration window → one vibration vector with spectral/envelope extras. The asset's retained config
(running speed, bearing geometry) feeds the spectral indicators; a cleared config forgets the asset.

At-least-once in, exactly once out: the session is persistent (``rotorwatch-features``), a re-delivered
reading (same event id) is skipped by the engine, and the per-asset state survives a restart: the
readings taken are journaled (:mod:`services.features.journal`, the service's checkpointed state port)
and a reading is acknowledged to the broker only once it is in the journal.

Sensor health: every reading and window also passes the asset's sensor detectors
(:class:`shared.health.sensor_stream.AssetSensors`: stuck, flat-line, clipping, dropouts, jumps,
sample-rate or length changes), and the retained :class:`SensorStatus` on ``sensor/<a>`` is published
when it changes (an asset never told is ``ok``). The detectors' state is in memory only: after a restart
the service reads its retained statuses back, so a fault told before is cleared by the first clean update
(and reported again if the fault is seen again).

Operating state: every vector carries the asset's state at its time (``operating_state``: running,
stopped, starting; ``None`` while a relative level is not learned yet), from the per-asset tracker of
:mod:`shared.health.operating_state` fed in data order (readings by their current, windows by their
vibration level or the readings' state, per the config's ``operating`` block). The trackers are
functions of the readings taken, so a restart restores them from the journal with the engine; an asset
known only by its windows learns its level afresh.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from services.features.journal import Journal
from shared import topics
from shared.features.engine import FeatureEngine
from shared.health.operating_state import AssetOperating, window_level_g
from shared.health.sensor_stream import AssetSensors
from shared.messages import (
    SIGNALS,
    AssetConfig,
    FeatureVector,
    Reading,
    SensorFindingItem,
    SensorStatus,
    Window,
)
from shared.messages.operating import OperatingState
from shared.service import Delivery, Outbox, Publish, Route, Service, no_arguments
from shared.settings import Settings

SERVICE = "features"

log = structlog.get_logger()


class FeaturesHandlers:
    """The route handlers over one engine (per-asset feature state, in memory, journaled when a
    journal is given)."""

    def __init__(
        self,
        engine: FeatureEngine,
        journal: Journal | None = None,
        operating: dict[str, AssetOperating] | None = None,
    ) -> None:
        self.engine = engine
        self.journal = journal
        #: Per-asset operating-state trackers (shared with the journal, which restores them).
        self.operating = operating if operating is not None else {}
        self.duplicates = 0
        self.sensors: dict[str, AssetSensors] = {}
        self._last_window: dict[str, str] = {}

    async def on_reading(self, d: Delivery[Reading]) -> Outbox:
        r = d.message
        if self.engine.is_duplicate(r):
            self.duplicates += 1
            log.info("duplicate_reading_skipped", asset_id=r.asset_id, event_id=r.event_id)
            return None
        vectors = self.engine.on_reading(r)  # ValueError (out of order): dead letter, state unchanged
        if self.journal is not None:
            self.journal.took(r)
        state = operating_of(self.operating, r.asset_id).on_reading(
            r.ts.timestamp(), r.current_a, r.vibration_g
        )
        vectors = [marked(fv, state) for fv in vectors]
        sensors = self.sensors.setdefault(r.asset_id, AssetSensors())
        changed = sensors.on_reading(r.ts.timestamp(), {k: float(getattr(r, k)) for k in SIGNALS})
        out = self._sensor_status(r.asset_id, r.ts.timestamp()) if changed else []
        return out + [Publish(topics.features(fv.asset_id, fv.kind), fv) for fv in vectors]

    async def on_window(self, d: Delivery[Window]) -> Outbox:
        w = d.message
        fv = self.engine.on_window(w)
        data = w.axis_data()
        level = window_level_g(list(data.values()))
        state = operating_of(self.operating, w.asset_id).on_window(w.ts.timestamp(), level)
        fv = marked(fv, state)
        out = [Publish(topics.features(fv.asset_id, "vibration"), fv)]
        if self._last_window.get(w.asset_id) == w.event_id:
            return out  # a re-delivery: not a repeated window of the sensor
        self._last_window[w.asset_id] = w.event_id
        sensors = self.sensors.setdefault(w.asset_id, AssetSensors())
        if sensors.on_window(w.ts.timestamp(), w.fs_hz, list(data.values()), list(data)):
            return self._sensor_status(w.asset_id, w.ts.timestamp()) + out
        return out

    def _sensor_status(self, asset: str, ts: float) -> list[Publish]:
        """The asset's sensor status, retained (published before the features of the same event, so
        the health stage knows it before that event's window is complete)."""
        s = self.sensors[asset]
        findings = [
            SensorFindingItem(
                kind=f.kind, signal=f.signal, since=f.since, reason=f.reason, values=dict(f.values)
            )
            for f in s.findings
        ]
        status = SensorStatus(
            asset_id=asset, status=s.status or "ok", ts=ts, since=s.since, findings=findings
        )  # type: ignore[arg-type]
        if s.status == "fault":
            log.warning("sensor_fault", asset_id=asset, reasons=[f.reason for f in findings])
        return [Publish(topics.sensor(asset), status, retain=True)]

    async def on_config(self, d: Delivery[AssetConfig | None]) -> Outbox:
        if d.message is None:
            if d.asset_id:
                self.engine.configs.pop(d.asset_id, None)
                self.engine.forget(d.asset_id)
                self.sensors.pop(d.asset_id, None)
                self.operating.pop(d.asset_id, None)
                self._last_window.pop(d.asset_id, None)
                if self.journal is not None:
                    self.journal.forgot(d.asset_id)
            return None
        self.engine.configs[d.message.asset_id] = d.message
        operating_of(self.operating, d.message.asset_id).configure(d.message.operating)
        sensor = d.message.sensor
        full_scale, rate = (None, None) if sensor is None else (sensor.full_scale_g, sensor.sample_rate_hz)
        self.sensors.setdefault(d.message.asset_id, AssetSensors()).configure(full_scale, rate)
        return None

    async def on_sensor(self, d: Delivery[SensorStatus | None]) -> Outbox:
        """Our own retained status, read back after a start (later echoes of it change nothing)."""
        s = d.message
        if s is not None and s.asset_id not in self.sensors:
            self.sensors[s.asset_id] = AssetSensors(status=s.status, since=s.since.timestamp())
        return None

    def routes(self) -> list[Route]:
        return [
            Route(topics.READING_FILTER, Reading, self.on_reading),
            Route(topics.WINDOW_FILTER, Window, self.on_window),
            Route(topics.ASSET_CONFIG_FILTER, AssetConfig, self.on_config, clears=True),
            Route(topics.SENSOR_FILTER, SensorStatus, self.on_sensor, clears=True),
        ]


def operating_of(states: dict[str, AssetOperating], asset_id: str) -> AssetOperating:
    """The asset's operating-state tracker (a new one, relative levels, for an asset not seen yet)."""
    got = states.get(asset_id)
    if got is None:
        got = states[asset_id] = AssetOperating()
    return got


def marked(fv: FeatureVector, state: OperatingState | None) -> FeatureVector:
    """The vector with the asset's operating state at its time."""
    return fv if fv.operating_state == state else fv.model_copy(update={"operating_state": state})


def build(settings: Settings, argv: Sequence[str] = (), *, engine: FeatureEngine | None = None) -> Service:
    """The features service; its state is journaled under ``DATA_DIR/features``."""
    no_arguments(SERVICE, argv)
    engine = engine or FeatureEngine(settings.batch_window, legacy_warmup=settings.legacy_warmup)
    operating: dict[str, AssetOperating] = {}
    journal = Journal(settings.stage_dir("features"), engine, operating)
    return Service(
        name=SERVICE,
        routes=FeaturesHandlers(engine, journal, operating).routes(),
        publishes=(
            "features/<a>/legacy",
            "features/<a>/batch",
            "features/<a>/vibration",
            "sensor/<a> (retained)",
        ),
        state=journal,
        persistent=True,
    )
