"""calibrator service: thin handlers around :mod:`shared.learning` and :mod:`.data`.

Commands (request/reply with a correlation id, see ``docs/ARCHITECTURE.md``):

- ``cmd/calibrate`` (:class:`CalibrationRequest`): allowed from IDLE, CALIBRATED or MONITORING (re-calibration
  keeps all data). Publishes retained ``state/<a>`` = CALIBRATING with progress text, collects the
  lookback window, validates, trains, exports, saves a registry version, announces every model
  (retained, ONNX bytes inside) and publishes CALIBRATED. On failure the previous models stay active
  and the state returns to what it was, with the reason.
- ``cmd/purge`` (:class:`AssetCommand`): deletes stored data, models and baselines; state → IDLE.
- ``cmd/reload`` (:class:`AssetCommand`): re-reads the newest registry version from disk (hand-edited
  thresholds take effect) and re-announces it. The same happens once at start-up.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from shared import topics
from shared.bus import Bus, Incoming, topic_matches
from shared.learning import registry
from shared.learning.baseline import validate_baseline
from shared.learning.calibration import BaselineRejected, CalibrationConfig, CalibrationError, calibrate
from shared.messages import (
    AssetCommand,
    CalibrationReply,
    CalibrationRequest,
    CommandReply,
    ModelAnnouncement,
    StateChange,
)
from shared.store import Store

from .data import Collected, collect

log = structlog.get_logger()

MIN_READINGS = 100
MIN_WINDOWS = 300
#: The batch forest needs this many *non-overlapping* windows' worth of readings: sliding windows
#: overlap, so 1,500 readings with BATCH_WINDOW=100 hold only 15 independent windows, far too few to
#: learn 16 features from (measured: 15% of fresh healthy windows flagged).
MIN_INDEPENDENT_BATCH_WINDOWS = 30
#: Legacy vectors start after a 30-reading warm-up and batch vectors after a full 100-reading window,
#: so 100 readings yield fewer rows; the models still need this many rows to train on.
MIN_FEATURE_ROWS = 50


def insufficient_message(c: Collected) -> str:
    return (
        f"Insufficient data for calibration: found {c.readings} readings (need {MIN_READINGS}) and "
        f"{c.windows} vibration windows (need {MIN_WINDOWS}) in the last {c.lookback_minutes:g} minutes "
        f"of data for asset {c.asset_id}"
    )


def validate_data(c: Collected, datasets: dict[str, Any], config: CalibrationConfig) -> None:
    """Reject contaminated calibration data before training (previous models stay active).

    The check runs on the *data*, not on derived features: on the raw readings (voltage, current,
    power factor, vibration — independent samples) when the legacy/batch models are trained, and on
    the per-window vibration features for the autoencoder. Rolling features (1 h mean, 100-sample
    windows) are autocorrelated and would make a fraction-beyond-3σ rule unreliable.
    """
    checks: list[tuple[str, Any, list[str]]] = []
    if "legacy" in datasets and c.signals is not None:
        checks.append(("legacy", c.signals, ["voltage_v", "current_a", "power_factor", "vibration_g"]))
    if "autoencoder" in datasets:
        checks.append(("autoencoder", *datasets["autoencoder"]))
    for kind, X, names in checks:
        res = validate_baseline(
            X, names, sigma=config.sigma, max_outlier_fraction=config.max_outlier_fraction
        )
        if not res.ok:
            raise BaselineRejected(kind, res)


def select_datasets(c: Collected, batch_window: int = 100) -> tuple[dict[str, Any], list[str]]:
    """Datasets with enough rows to train on, and notes about the ones skipped."""
    chosen: dict[str, Any] = {}
    notes: list[str] = []
    if c.readings >= MIN_READINGS:
        for kind in ("legacy", "batch"):
            n = c.counts.get(kind, 0)
            if n < MIN_FEATURE_ROWS:
                notes.append(f"{kind} model skipped: {n} feature vectors (need {MIN_FEATURE_ROWS})")
            elif kind == "batch" and c.readings // batch_window < MIN_INDEPENDENT_BATCH_WINDOWS:
                notes.append(
                    f"batch model skipped: {c.readings} readings hold {c.readings // batch_window} "
                    f"non-overlapping windows of {batch_window} (need {MIN_INDEPENDENT_BATCH_WINDOWS}); "
                    "calibrate on a longer look-back or set a shorter BATCH_WINDOW"
                )
            else:
                chosen[kind] = c.datasets[kind]
    if "legacy" in chosen and c.reading_span_s < 3600:
        notes.append(
            f"legacy model: the data spans {c.reading_span_s / 60:.0f} min, less than the 1 h of the "
            "rolling voltage mean, which is still settling; calibrate on 60+ minutes to avoid drift warnings"
        )
    if c.windows >= MIN_WINDOWS:
        chosen["autoencoder"] = c.datasets["autoencoder"]
    return chosen, notes


@dataclass
class Calibrator:
    store: Store
    model_dir: Path
    # Batch vectors overlap by all but one reading (and the legacy ones share a 1 h mean), so their
    # in-sample scores are optimistic; the forests' thresholds come from the newest 30% held out.
    config: CalibrationConfig = field(
        default_factory=lambda: CalibrationConfig(holdout={"legacy": 0.3, "batch": 0.3})
    )
    states: dict[str, str] = field(default_factory=dict)
    running: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    batch_window: int = 100

    subscriptions = (
        topics.command("calibrate"),
        topics.command("purge"),
        topics.command("reload"),
        topics.STATE_FILTER,
    )

    async def handle(self, bus: Bus, msg: Incoming) -> None:
        if topic_matches(topics.STATE_FILTER, msg.topic):
            asset = topics.asset_from_topic(msg.topic)
            if asset:
                if msg.payload:
                    self.states[asset] = StateChange.model_validate_json(msg.payload).state
                else:
                    self.states.pop(asset, None)
        elif msg.topic == topics.command("calibrate"):
            req = CalibrationRequest.model_validate_json(msg.payload)
            if req.asset_id in self.running:
                await bus.publish(
                    req.reply_to,
                    CalibrationReply(
                        correlation_id=req.correlation_id,
                        asset_id=req.asset_id,
                        status="rejected",
                        message=f"calibration of {req.asset_id} is already running",
                    ),
                )
                return
            task = asyncio.create_task(self.run_calibration(bus, req))
            self.running[req.asset_id] = task
            task.add_done_callback(lambda _t, a=req.asset_id: self.running.pop(a, None))
        elif msg.topic == topics.command("purge"):
            req = AssetCommand.model_validate_json(msg.payload)
            data = await self.purge(bus, req.asset_id)
            await bus.publish(
                req.reply_to,
                CommandReply(
                    correlation_id=req.correlation_id,
                    status="ok",
                    message=f"purged {len(data['assets'])} asset(s)",
                    data=data,
                ),
            )
        elif msg.topic == topics.command("reload"):
            req = AssetCommand.model_validate_json(msg.payload)
            reloaded = await self.announce_all(bus, req.asset_id)
            await bus.publish(
                req.reply_to,
                CommandReply(
                    correlation_id=req.correlation_id,
                    status="ok",
                    message=f"reloaded {len(reloaded)} asset(s)",
                    data={"versions": reloaded},
                ),
            )

    async def set_state(
        self, bus: Bus, asset: str, state: str, reason: str, models: dict[str, str] | None = None
    ) -> None:
        prev = self.states.get(asset, "IDLE")
        self.states[asset] = state
        await bus.publish(
            topics.state(asset),
            StateChange(asset_id=asset, state=state, previous=prev, reason=reason, models=models or {}),  # type: ignore[arg-type]
            retain=True,
        )

    async def run_calibration(self, bus: Bus, req: CalibrationRequest) -> None:
        asset = req.asset_id
        previous = self.states.get(asset, "IDLE")
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()

        def progress(text: str) -> None:
            log.info("calibration_progress", asset_id=asset, step=text)
            asyncio.run_coroutine_threadsafe(self.set_state(bus, asset, "CALIBRATING", text), loop)

        async def fail(status: str, message: str, points: int) -> None:
            log.warning("calibration_failed", asset_id=asset, reason=message)
            await self.set_state(bus, asset, previous, message)
            await bus.publish(
                req.reply_to,
                CalibrationReply(
                    correlation_id=req.correlation_id,
                    asset_id=asset,
                    status=status,  # type: ignore[arg-type]
                    data_points_collected=points,
                    message=message,
                ),
            )

        try:
            await self.set_state(
                bus, asset, "CALIBRATING", f"Collecting the last {req.lookback_minutes:g} minutes of data"
            )
            c = await asyncio.to_thread(collect, self.store, asset, req.lookback_minutes)
            points = c.readings + c.windows
            log.info("calibration_collected", asset_id=asset, readings=c.readings, windows=c.windows)
            progress(f"Collected {points} data points")
            datasets, notes = select_datasets(c, self.batch_window)
            if not datasets:
                await fail("failed", insufficient_message(c), points)
                return
            await asyncio.to_thread(validate_data, c, datasets, self.config)
            progress("Validated baseline; training...")
            cfg = replace(self.config, validate=False, min_readings=MIN_FEATURE_ROWS)
            result = await asyncio.to_thread(calibrate, datasets, cfg, progress)
            baseline_info = dict(result.baseline_info)
            baseline_info["signal_baseline"] = c.signal_baseline
            version = await asyncio.to_thread(
                registry.save_version,
                self.model_dir,
                asset,
                result.models,
                baseline_info,
                {**result.training_stats, "timings_s": result.timings, "data_points": result.data_points},
            )
            manifest = registry.load_manifest(self.model_dir, asset, version)
            await self.announce(bus, asset, version, manifest)
            elapsed = time.perf_counter() - t0
            models = {k: version for k in manifest["models"]}
            text = f"Calibrated from {points} data points in {elapsed:.1f} s"
            if notes:
                text += "; " + "; ".join(notes)
            await self.set_state(bus, asset, "CALIBRATED", text, models)
            log.info("calibration_done", asset_id=asset, version=version, seconds=round(elapsed, 3))
            await bus.publish(
                req.reply_to,
                CalibrationReply(
                    correlation_id=req.correlation_id,
                    asset_id=asset,
                    status="completed",
                    data_points_collected=points,
                    message=text,
                    models=models,
                ),
            )
        except (CalibrationError, ValueError) as exc:
            await fail("failed", str(exc), locals().get("points", 0))
        except Exception as exc:  # a calibration bug must not take the service down
            log.exception("calibration_crashed", asset_id=asset)
            await fail("failed", f"internal error: {type(exc).__name__}: {exc}", 0)

    async def announce(self, bus: Bus, asset: str, version: str, manifest: dict[str, Any]) -> None:
        created = datetime.fromisoformat(manifest["created_at"])
        for kind, entry in manifest["models"].items():
            path = registry.model_path(self.model_dir, asset, version, kind)
            data = await asyncio.to_thread(path.read_bytes)
            baseline = manifest.get("baseline") or {}
            ann = ModelAnnouncement(
                asset_id=asset,
                model=kind,
                version=version,
                path=str(path),
                created_at=created,
                manifest={
                    **entry,
                    "signal_baseline": baseline.get("signal_baseline") or {},
                },
                onnx_b64=base64.b64encode(data).decode(),
            )
            await bus.publish(topics.model_announce(asset, kind), ann, retain=True)

    async def announce_all(self, bus: Bus, only: str | None = None) -> dict[str, str]:
        """Announce the newest registry version of every asset (or one); CALIBRATED where state is unknown."""
        assets = [only] if only else await asyncio.to_thread(registry.list_assets, self.model_dir)
        done: dict[str, str] = {}
        for asset in assets:
            version = await asyncio.to_thread(registry.latest_version, self.model_dir, asset)
            if version is None:
                continue
            manifest = await asyncio.to_thread(registry.load_manifest, self.model_dir, asset, version)
            await self.announce(bus, asset, version, manifest)
            if self.states.get(asset, "IDLE") == "IDLE":
                await self.set_state(
                    bus,
                    asset,
                    "CALIBRATED",
                    f"models {version} reloaded from the registry",
                    {k: version for k in manifest["models"]},
                )
            done[asset] = version
        return done

    async def purge(self, bus: Bus, only: str | None) -> dict[str, Any]:
        if only:
            assets = {only}
        else:
            stored = await asyncio.to_thread(self.store.assets)
            reg = await asyncio.to_thread(registry.list_assets, self.model_dir)
            assets = set(stored) | set(reg) | set(self.states)
        deleted: dict[str, Any] = {}
        for asset in sorted(assets):
            models = await asyncio.to_thread(registry.delete_asset, self.model_dir, asset)
            await asyncio.to_thread(self.store.delete_asset, asset)
            for kind in topics.MODEL_KINDS:
                await bus.publish(topics.model_announce(asset, kind), b"", retain=True)
            await bus.publish(topics.health(asset), b"", retain=True)
            await self.set_state(bus, asset, "IDLE", "purged: stored data, models and baselines deleted")
            deleted[asset] = {"models_deleted": bool(models), "data_deleted": True}
        log.info("purged", assets=sorted(assets))
        return {"assets": sorted(assets), "deleted": deleted}

    async def startup(self, bus: Bus) -> None:
        """Once per connection: let retained states arrive, then re-announce the registry."""
        await asyncio.sleep(1.0)
        versions = await self.announce_all(bus)
        if versions:
            log.info("registry_announced", versions=versions)
