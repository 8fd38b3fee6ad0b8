"""calibrator service: owns the asset lifecycle (configuration, models, state); thin command handlers.

Commands (request/reply with a correlation id, see ``docs/ARCHITECTURE.md``):

- ``cmd/calibrate`` (:class:`CalibrationRequest` → :class:`CalibrationReply`): runs the calibration use
  case (:mod:`.job`) in the background, at most ``CALIBRATION_WORKERS`` at once (:mod:`.workers`: the
  others wait, CALIBRATING with their place in the queue); a second request for an asset being
  calibrated or queued is rejected with code ``busy``.
- ``cmd/purge`` (:class:`AssetCommand` → :class:`PurgeReply`): deletes stored data, models and
  configuration, clears the retained topics; state → IDLE (:mod:`.lifecycle`).
- ``cmd/reload`` (:class:`AssetCommand` → :class:`ReloadReply`): re-reads the newest registry version
  from disk (hand-edited thresholds take effect) and re-announces it.
- ``cmd/model_import`` / ``cmd/model_export`` (FlowFuse three-file autoencoder form, :mod:`.interchange`):
  import as a new registry version (announced; refused files answered ``invalid`` with the reason) or
  return the current autoencoder's three files.
- ``cmd/config`` (:class:`ConfigRequest` → :class:`ConfigReply`): validates the configuration (an
  invalid one is answered with code ``invalid``), persists it (:mod:`.configs`) and publishes it
  retained on ``config/<asset>``.

Once per broker connection: the registry is re-announced once the retained ``state/+`` messages have
arrived (:mod:`.startup`: a marker round trip, not a fixed sleep), then every asset's last state the broker
did not send is published again (from memory or the store: :func:`.lifecycle.restore`), and every
persisted configuration is re-published retained.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from shared import topics
from shared.bus import Bus, Incoming
from shared.learning import registry
from shared.learning.calibration import CalibrationConfig
from shared.learning.signing import load_signer
from shared.messages import (
    AssetCommand,
    CalibrationReply,
    CalibrationRequest,
    ConfigReply,
    ConfigRequest,
    ErrorCode,
    PurgeReply,
    ReloadReply,
    Reply,
    StateChange,
)
from shared.messages.commands import ModelExportRequest, ModelImportReply, ModelImportRequest
from shared.readiness import Readiness
from shared.service import Delivery, Outbox, Publish, Route, Service, no_arguments
from shared.settings import Settings
from shared.store import Store, open_store

from . import configs, lifecycle
from .interchange import model_export, model_import
from .job import Calibration, default_config
from .startup import (
    SYNC_TIMEOUT_S,
    RetainedSync,
    models_announced,
    parse_sync_marker,
    retrying,
    startup_readiness,
)
from .workers import WorkerPool, calibrate_with_worker, default_workers

log = structlog.get_logger()

SERVICE = "calibrator"


# ---------------------------------------------------------------------------------------------
# cmd/config input: a request whose configuration is invalid is still answered (code "invalid")
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InvalidConfig:
    """A ``cmd/config`` request whose envelope is fine but whose configuration is not."""

    correlation_id: str
    reply_to: str
    reason: str


class _ReplyAddress(BaseModel):
    model_config = ConfigDict(extra="ignore")
    correlation_id: str
    reply_to: str


def _config_errors(exc: ValidationError) -> str:
    """``field: problem`` per error, fields relative to the configuration; a violated rule of the whole
    configuration (e.g. bearing geometry) in its own words."""
    parts = []
    for e in exc.errors()[:5]:
        loc = ".".join(str(p) for p in e["loc"][1:])
        rule = (e.get("ctx") or {}).get("error") if e["type"] == "value_error" else None
        if rule is not None and not loc:
            parts.append(str(rule))
        else:
            parts.append(f"{loc or 'config'}: {rule if rule is not None else e['msg']}")
    return "; ".join(parts)


def parse_config_request(msg: Incoming) -> ConfigRequest | InvalidConfig:
    """Route parser for ``cmd/config``: a :class:`ConfigRequest`, or :class:`InvalidConfig` when only the
    configuration is at fault (a broken envelope raises: dead letter, nobody to answer)."""
    try:
        return ConfigRequest.model_validate_json(msg.payload)
    except ValidationError as exc:
        if not all(e["loc"][:1] == ("config",) for e in exc.errors()):
            raise
        address = _ReplyAddress.model_validate_json(msg.payload)
        return InvalidConfig(address.correlation_id, address.reply_to, _config_errors(exc))


def unsafe_asset(req: AssetCommand) -> str | None:
    """Why the command's asset id cannot name registry files (``.``, ``..``); ``None`` when it can."""
    if req.asset_id is None:
        return None
    try:
        registry.check_asset_id(req.asset_id)
    except ValueError as exc:
        return str(exc)
    return None


# ---------------------------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------------------------
@dataclass
class StorePort:
    """State port: opens the store (when given an opener) before the bus connects, closes it after."""

    cal: Calibration
    opener: Callable[[], Store] | None = None

    async def open(self) -> None:
        if self.opener is not None:
            self.cal.store = await asyncio.to_thread(self.opener)

    async def close(self) -> None:
        store, opened = self.cal.store, self.opener is not None
        if opened and store is not None:
            self.cal.store = None
            await asyncio.to_thread(store.close)


@dataclass
class CalibratorHandlers:
    """Route handlers and background tasks of the calibrator."""

    cal: Calibration
    config_dir: Path
    sync: RetainedSync
    #: Accepted calibration requests, started by :meth:`run_jobs` (which has the bus).
    jobs: asyncio.Queue[CalibrationRequest] = field(default_factory=asyncio.Queue)
    #: Assets with a calibration queued or running.
    running: set[str] = field(default_factory=set)
    #: Serialises config files and their retained copies (save, purge, re-publish).
    config_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: Ready once the start-up steps (:mod:`.startup`) are done on the connection.
    readiness: Readiness = field(default_factory=startup_readiness)
    #: At most this many calibrations run at once (``CALIBRATION_WORKERS``).
    workers: WorkerPool = field(default_factory=lambda: WorkerPool(default_workers()))

    async def on_state(self, d: Delivery[StateChange | None]) -> Outbox:
        if d.asset_id:
            self.cal.states.observe(d.asset_id, d.message, retained=d.retain)
        return None

    async def on_calibrate(self, d: Delivery[CalibrationRequest]) -> Outbox:
        req = d.message
        if req.asset_id in self.running:
            busy = CalibrationReply(
                correlation_id=req.correlation_id,
                asset_id=req.asset_id,
                status="rejected",
                code="busy",
                message=f"calibration of {req.asset_id} is already running",
            )
            return [Publish(req.reply_to, busy)]
        self.running.add(req.asset_id)
        if req.training is None:  # the asset configuration's training parameters, if any
            cfg = await asyncio.to_thread(configs.load_config, self.config_dir, req.asset_id)
            if cfg is not None and cfg.training is not None:
                req = req.model_copy(update={"training": cfg.training})
        self.jobs.put_nowait(req)
        return None

    async def on_model_import(self, d: Delivery[ModelImportRequest]) -> Outbox:
        """``cmd/model_import``: the three files become the asset's autoencoder (:mod:`.interchange`)."""
        req = d.message
        if req.asset_id in self.running:
            busy = f"calibration of {req.asset_id} is running; import after it"
            return [Publish(req.reply_to, _failed(ModelImportReply, req.correlation_id, "busy", busy))]
        return await model_import(self.cal, req)

    async def on_model_export(self, d: Delivery[ModelExportRequest]) -> Outbox:
        """``cmd/model_export``: the three files of the asset's autoencoder (:mod:`.interchange`)."""
        return await model_export(self.cal.model_dir, d.message)

    async def on_purge(self, d: Delivery[AssetCommand]) -> Outbox:
        req = d.message
        if refused := unsafe_asset(req):
            return [Publish(req.reply_to, _failed(PurgeReply, req.correlation_id, "invalid", refused))]
        try:
            async with self.config_lock:
                done = await lifecycle.purge(
                    self.cal.opened_store(),
                    self.cal.model_dir,
                    self.config_dir,
                    self.cal.states,
                    req.asset_id,
                )
        except Exception as exc:
            log.exception("purge_failed", asset_id=req.asset_id)
            return [Publish(req.reply_to, _failed(PurgeReply, req.correlation_id, "internal", str(exc)))]
        reply = PurgeReply(
            correlation_id=req.correlation_id,
            status="ok",
            message=f"purged {len(done.assets)} asset(s)",
            assets=done.assets,
            deleted=done.deleted,
        )
        return [*done.publishes, Publish(req.reply_to, reply)]

    async def on_reload(self, d: Delivery[AssetCommand]) -> Outbox:
        req = d.message
        if refused := unsafe_asset(req):
            return [Publish(req.reply_to, _failed(ReloadReply, req.correlation_id, "invalid", refused))]
        try:
            pubs, versions = await lifecycle.reload(
                self.cal.model_dir, self.cal.states, req.asset_id, signer=self.cal.signer
            )
        except Exception as exc:
            log.exception("reload_failed", asset_id=req.asset_id)
            return [Publish(req.reply_to, _failed(ReloadReply, req.correlation_id, "internal", str(exc)))]
        reply = ReloadReply(
            correlation_id=req.correlation_id,
            status="ok",
            message=f"reloaded {len(versions)} asset(s)",
            versions=versions,
        )
        return [*pubs, Publish(req.reply_to, reply)]

    async def on_config(self, d: Delivery[ConfigRequest | InvalidConfig]) -> Outbox:
        req = d.message
        if isinstance(req, InvalidConfig):
            invalid = ConfigReply(
                correlation_id=req.correlation_id, status="failed", code="invalid", message=req.reason
            )
            return [Publish(req.reply_to, invalid)]
        cfg = req.config
        try:
            async with self.config_lock:
                await asyncio.to_thread(configs.save_config, self.config_dir, cfg)
        except Exception as exc:
            log.exception("config_save_failed", asset_id=cfg.asset_id)
            return [Publish(req.reply_to, _failed(ConfigReply, req.correlation_id, "internal", str(exc)))]
        log.info("config_saved", asset_id=cfg.asset_id)
        ok = ConfigReply(
            correlation_id=req.correlation_id,
            status="ok",
            message=f"configuration of {cfg.asset_id} saved",
            config=cfg,
        )
        return [Publish(topics.asset_config(cfg.asset_id), cfg, retain=True), Publish(req.reply_to, ok)]

    # -- background tasks (once per broker connection) ---------------------------------------------
    async def run_jobs(self, bus: Bus) -> None:
        """Start every accepted calibration; cancel the running ones when the connection drops."""
        started: set[asyncio.Task[None]] = set()
        try:
            while True:
                req = await self.jobs.get()
                task = asyncio.create_task(self._calibrate(bus, req))
                started.add(task)
                task.add_done_callback(started.discard)
        finally:
            for task in started:
                task.cancel()
            await asyncio.gather(*started, return_exceptions=True)

    async def _calibrate(self, bus: Bus, req: CalibrationRequest) -> None:
        try:
            await calibrate_with_worker(self.workers, self.cal, bus, req)
        finally:
            self.running.discard(req.asset_id)

    async def announce_registry(self, bus: Bus) -> None:
        """Once the retained states have arrived: re-announce the newest version of every asset, then
        restore the states (:func:`.lifecycle.restore`: lost ones again, interrupted calibrations
        settled, IDLE assets with models CALIBRATED)."""
        cal = self.cal
        try:
            await self.sync.wait(bus)
            announced = await lifecycle.announce_registry(cal.model_dir, signer=cal.signer)
            await _publish_all(bus, announced.publishes)
            models_announced(self.readiness, announced.publishes)
            if announced.versions:
                log.info("registry_announced", versions=announced.versions)
            restore = lifecycle.restore
            pubs = await retrying(
                lambda: restore(cal.opened_store(), cal.model_dir, cal.states, self.running, announced),
                "states",
            )
            await _publish_all(bus, pubs)
            self.readiness.done("states")
        except Exception:
            log.exception("registry_announce_failed")
            raise
        finally:  # what a later connection's broker sends is counted afresh
            cal.states.retained.clear()

    async def republish_configs(self, bus: Bus) -> None:
        """Publish every persisted configuration retained (a fresh broker learns them again)."""
        async with self.config_lock:
            found, errors = await asyncio.to_thread(configs.load_all, self.config_dir)
            for err in errors:
                log.warning("config_unreadable", error=err)
            for cfg in found:
                await bus.publish(topics.asset_config(cfg.asset_id), cfg, retain=True)
        log.info("configs_republished", count=len(found), unreadable=len(errors))
        self.readiness.done("configs")

    def routes(self) -> list[Route]:
        return [
            Route(topics.STATE_FILTER, StateChange, self.on_state, clears=True),
            Route(topics.command("calibrate"), CalibrationRequest, self.on_calibrate),
            Route(topics.command("purge"), AssetCommand, self.on_purge),
            Route(topics.command("reload"), AssetCommand, self.on_reload),
            Route(topics.command("config"), parse_config_request, self.on_config),
            Route(topics.command("model_import"), ModelImportRequest, self.on_model_import),
            Route(topics.command("model_export"), ModelExportRequest, self.on_model_export),
            Route(self.sync.filter, parse_sync_marker, self.sync.on_marker),
        ]


R = TypeVar("R", bound=Reply)


async def _publish_all(bus: Bus, pubs: Sequence[Publish]) -> None:
    for p in pubs:
        await bus.publish(p.topic, p.payload, retain=p.retain)


def _failed(cls: type[R], correlation_id: str, code: ErrorCode, message: str) -> R:
    """A failed reply of type ``cls``."""
    return cls(correlation_id=correlation_id, status="failed", code=code, message=message)


def build(
    settings: Settings,
    argv: Sequence[str] = (),
    *,
    store: Store | None = None,
    config: CalibrationConfig | None = None,
    sync_timeout_s: float = SYNC_TIMEOUT_S,
) -> Service:
    """The calibrator; ``store`` (tests) replaces the configured store, which it then does not close."""
    no_arguments(SERVICE, argv)
    cal = Calibration(
        settings.models_path,
        load_signer(settings),
        config=config or default_config(),
        batch_window=settings.batch_window,
        store=store,
        store_wait_s=settings.calibration_store_wait_s,
        store_quiet_s=settings.calibration_store_quiet_s,
        config_dir=configs.config_dir(settings.data_dir),
    )
    handlers = CalibratorHandlers(
        cal,
        configs.config_dir(settings.data_dir),
        RetainedSync(SERVICE, sync_timeout_s),
        workers=WorkerPool(settings.calibration_workers or default_workers()),
    )
    return Service(
        name=SERVICE,
        routes=handlers.routes(),
        publishes=(
            "reply/<requester>/<id>",
            "state/<a>",
            "models/<a>/{legacy,batch,autoencoder}",
            "config/<a>",
            "health/<a> (cleared on purge)",
            "sync/calibrator/<token>",
        ),
        tasks=(handlers.run_jobs, handlers.announce_registry, handlers.republish_configs),
        readiness=handlers.readiness,
        state=StorePort(cal, None if store is not None else lambda: open_store(settings)),
    )
