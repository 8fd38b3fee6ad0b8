"""The calibration use case: collect → select → validate → train → save → announce.

One :class:`CalibrationRequest` for one asset. The asset is CALIBRATING (retained ``state/<a>``, with
progress text and a typed :class:`~shared.messages.CalibrationProgress`: phase, step, percent, start time)
while it runs. Once the data is collected and enough to train on, a request with ``reply_accepted`` gets
an ``accepted`` reply (``data_points_collected``); too little data is the only reply (failed,
``insufficient_data``). On success the new registry version is announced (every model, retained)
and the asset becomes CALIBRATED; on failure the previous models stay active, the state returns to what
it was with the reason, and the reply names an :data:`~shared.messages.ErrorCode`:
``insufficient_data`` (too little data in the look-back window), ``validation_failed`` (contaminated or
degenerate data, or an exported model that fails its checks) or ``internal`` (a bug or an unavailable
store; see the logs).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import structlog

from shared.bus import Bus
from shared.features.frames import RULE_TEXT, feature_axes, minimum_text
from shared.learning import registry
from shared.learning.baseline import envelope_baseline
from shared.learning.calibration import (
    CalibrationConfig,
    CalibrationError,
    InsufficientData,
    calibrate,
)
from shared.learning.fault_signature import FaultSignatureFound, fault_signature
from shared.learning.screening import ContaminatedData
from shared.learning.signing import ModelSigner
from shared.messages import (
    AssetState,
    CalibrationPhase,
    CalibrationProgress,
    CalibrationReply,
    CalibrationRequest,
    ErrorCode,
    ts_ns,
    utcnow,
)
from shared.store import Store

from .configs import load_config
from .data import Collected, collect, frame_datasets, screen_collected, wait_for_store
from .interchange import training_config
from .lifecycle import AssetStates, announcements

log = structlog.get_logger()

#: Readings / vibration windows a calibration must *collect* (counted before screening: the rows the
#: screening excludes, at most 5 %, never make a calibration insufficient).
MIN_READINGS = 100
MIN_WINDOWS = 300
#: The batch forest needs this many *non-overlapping* windows' worth of readings: sliding windows
#: overlap, so 1,500 readings with BATCH_WINDOW=100 hold only 15 independent windows, far too few to
#: learn 16 features from (measured: 15% of fresh healthy windows flagged).
MIN_INDEPENDENT_BATCH_WINDOWS = 30
#: Legacy vectors start after a 30-reading warm-up and batch vectors after a full 100-reading window,
#: so 100 readings yield fewer rows; the models still need this many rows to train on.
MIN_FEATURE_ROWS = 50
#: Seconds of data the legacy model's rolling voltage mean spans (1 h).
LEGACY_MEAN_SPAN_S = 3600.0


def default_config() -> CalibrationConfig:
    """Batch vectors overlap by all but one reading (and the legacy ones share a 1 h mean), so their
    in-sample scores are optimistic; the forests' thresholds come from the newest 30% held out."""
    return CalibrationConfig(holdout={"legacy": 0.3, "batch": 0.3})


class NotEnoughData(CalibrationError):
    """No dataset in the look-back window has enough rows to train on."""

    def __init__(self, c: Collected) -> None:
        super().__init__(insufficient_message(c))


def insufficient_message(c: Collected) -> str:
    """What was found and what is needed; for vibration, in seconds of signal at the asset's rate and
    window length (:func:`shared.features.frames.minimum_text`) when a window was found."""
    vibration = f"{c.windows} vibration windows (need {MIN_WINDOWS})"
    if c.window_layout is not None:
        vibration = f"vibration data ({minimum_text(MIN_WINDOWS, *c.window_layout, c.windows)})"
    text = (
        f"Insufficient data for calibration: found {c.readings} readings (need {MIN_READINGS}) and "
        f"{vibration} in the last {c.lookback_minutes:g} minutes of data for asset {c.asset_id}"
    )
    excluded = [e.message() for e in c.operating if e.excluded]
    if excluded:  # too little running data: say what was left out and why
        text += f" while it was running ({'; '.join(excluded)})"
    if c.store_wait is not None and c.store_wait.behind:
        text += f"; {c.store_wait.lag_text(c.asset_id)}"
    return text


def validate_data(
    c: Collected,
    datasets: dict[str, Any],
    config: CalibrationConfig,
    batch_window: int = 100,
    *,
    accept_fault_signature: bool = False,
) -> list[str]:
    """Screen the calibration data before training (:func:`.data.screen_collected`): reject it when more
    than ``max_outlier_fraction`` lies beyond the robust 3σ rule (previous models stay active), else
    exclude the flagged rows; then judge the vibration windows for a bearing-fault signature
    (:func:`shared.learning.fault_signature.fault_signature`, on the whole-window rows: its limits were
    measured on windows, not frames) and refuse data that shows one unless ``accept_fault_signature``.
    Returns the notes for the reply (exclusions, an accepted signature)."""
    notes = []
    for res in screen_collected(
        c, datasets, sigma=config.sigma, max_fraction=config.max_outlier_fraction, batch_window=batch_window
    ):
        if not res.ok:
            raise ContaminatedData(res)
        if res.n_flagged:
            notes.append(res.message())
    if "autoencoder" in datasets:
        X, names = datasets["autoencoder"]
        sig = fault_signature(X, names, extras=c.vibration_extras or None, accept=accept_fault_signature)
        c.fault_signature = sig
        if not sig.ok:
            raise FaultSignatureFound(sig)
        if sig.accepted_on_request:
            notes.append(sig.message())
    return notes


def frame_info(c: Collected, names: list[str]) -> dict[str, Any]:
    """The manifest's ``frames`` block of an autoencoder: the rows it was trained on (frames of
    ``frame_samples`` samples, ``frames_per_window`` per window, or whole windows: 1), the windows'
    length and rate, the axes, and the rule (:mod:`shared.features.frames`)."""
    fs_hz, n = c.window_layout or (None, None)
    samples, per_window = (c.frames.samples, c.frames.per_window) if c.frames is not None else (n, 1)
    return {
        "frame_samples": samples,
        "frames_per_window": per_window,
        "window_samples": n,
        "fs_hz": fs_hz,
        "axes": feature_axes(names),
        "rule": RULE_TEXT,
    }


def _forest_note(c: Collected, kind: str, batch_window: int) -> str | None:
    """Why a forest dataset is skipped (``None``: it is used)."""
    n = c.counts.get(kind, 0)
    if n < MIN_FEATURE_ROWS:
        return f"{kind} model skipped: {n} feature vectors (need {MIN_FEATURE_ROWS})"
    independent = c.readings // batch_window
    if kind == "batch" and independent < MIN_INDEPENDENT_BATCH_WINDOWS:
        return (
            f"batch model skipped: {c.readings} readings hold {independent} "
            f"non-overlapping windows of {batch_window} (need {MIN_INDEPENDENT_BATCH_WINDOWS}); "
            "calibrate on a longer look-back or set a shorter BATCH_WINDOW"
        )
    return None


def select_datasets(c: Collected, batch_window: int = 100) -> tuple[dict[str, Any], list[str]]:
    """Datasets with enough rows to train on, and notes about the ones skipped."""
    chosen: dict[str, Any] = {}
    notes: list[str] = []
    if c.readings >= MIN_READINGS:
        for kind in ("legacy", "batch"):
            note = _forest_note(c, kind, batch_window)
            if note:
                notes.append(note)
            else:
                chosen[kind] = c.datasets[kind]
    if "legacy" in chosen and c.reading_span_s < LEGACY_MEAN_SPAN_S:
        notes.append(
            f"legacy model: the data spans {c.reading_span_s / 60:.0f} min, less than the 1 h of the "
            "rolling voltage mean, which is still settling; calibrate on 60+ minutes to avoid drift warnings"
        )
    if c.autoencoder_rows >= MIN_WINDOWS:
        chosen["autoencoder"] = c.datasets["autoencoder"]
    return chosen, notes


def train_config(config: CalibrationConfig, autoencoder: Any = None) -> CalibrationConfig:
    """The configuration ``calibrate`` trains with, after :func:`validate_data` screened the data (its own
    validation off). The minimums (``MIN_READINGS``, ``MIN_WINDOWS``) apply to the data *collected*,
    checked by :func:`select_datasets` before screening: excluding up to 5 % flagged rows must not turn a
    sufficient calibration into "insufficient" (300 windows with 14 excluded are trained on the 286
    left), so only ``MIN_FEATURE_ROWS`` is required here. ``autoencoder``: the request's / asset's
    training parameters (``None``: the configuration's)."""
    ae = config.autoencoder if autoencoder is None else autoencoder
    floor = MIN_FEATURE_ROWS
    return replace(config, validate=False, min_readings=floor, min_windows=floor, autoencoder=ae)


def failure(exc: BaseException) -> tuple[ErrorCode, str]:
    """The reply code and operator message for an exception that ended a calibration."""
    if isinstance(exc, InsufficientData | NotEnoughData):
        return "insufficient_data", str(exc)
    if isinstance(exc, CalibrationError):
        return "validation_failed", str(exc)
    if isinstance(exc, ValueError):
        return "internal", str(exc)
    return "internal", f"internal error: {type(exc).__name__}: {exc}"


@dataclass
class Calibration:
    """What a calibration works with: the store, the registry (and the key its announcements are signed
    with), the settings and the asset states."""

    model_dir: Path
    signer: ModelSigner
    states: AssetStates = field(default_factory=AssetStates)
    config: CalibrationConfig = field(default_factory=default_config)
    batch_window: int = 100
    #: Set by the service's state port when it opens the store (or given directly in tests).
    store: Store | None = None
    #: ``CALIBRATION_STORE_WAIT_S`` / ``CALIBRATION_STORE_QUIET_S`` (:func:`.data.wait_for_store`).
    store_wait_s: float = 30.0
    store_quiet_s: float = 2.0
    #: Where the asset configurations live (their ``operating`` block sets which data is "running").
    config_dir: Path | None = None

    def opened_store(self) -> Store:
        if self.store is None:
            raise RuntimeError("the calibrator's store is not open")
        return self.store


#: The phases of a running calibration, in order (``completed`` / ``failed`` end it).
PHASES: tuple[CalibrationPhase, ...] = ("waiting", "collecting", "validating", "training", "saving")


@dataclass
class _Run:
    """One running calibration: publishes its state changes (with its progress) and its replies."""

    cal: Calibration
    bus: Bus
    req: CalibrationRequest
    previous: AssetState
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.get_running_loop)
    t0: float = field(default_factory=time.perf_counter)
    started_at: datetime = field(default_factory=utcnow)
    phase: CalibrationPhase = "waiting"
    #: Readings + vibration windows collected (0 until then).
    points: int = 0

    def progress_of(self, phase: CalibrationPhase) -> CalibrationProgress:
        """Where the calibration stands: ``phase``'s step; ``failed`` keeps the step it failed in."""
        steps = len(PHASES)
        step = steps if phase == "completed" else PHASES.index(self.phase if phase == "failed" else phase) + 1
        done = phase in ("completed", "failed")
        return CalibrationProgress(
            phase=phase,
            step=step,
            steps=steps,
            percent=100.0 if phase == "completed" else round(100 * (step - 1) / steps, 1),
            started_at=self.started_at,
            data_points_collected=self.points,
            finished_at=utcnow() if done else None,
        )

    async def state(
        self,
        state: AssetState,
        reason: str,
        models: dict[str, str] | None = None,
        phase: CalibrationPhase | None = None,
    ) -> None:
        progress = self.progress_of(phase or self.phase)
        p = self.cal.states.change(self.req.asset_id, state, reason, models, calibration=progress)
        await self.bus.publish(p.topic, p.payload, retain=p.retain)

    async def step(self, phase: CalibrationPhase, text: str) -> None:
        """Enter ``phase``: CALIBRATING with ``text``."""
        self.phase = phase
        log.info("calibration_progress", asset_id=self.req.asset_id, phase=phase, step=text)
        await self.state("CALIBRATING", text)

    def progress(self, text: str) -> None:
        """Called from the training thread: publish CALIBRATING with ``text`` on the event loop."""
        log.info("calibration_progress", asset_id=self.req.asset_id, phase=self.phase, step=text)
        asyncio.run_coroutine_threadsafe(self.state("CALIBRATING", text), self.loop)

    async def reply(
        self, status: Literal["accepted", "completed", "failed"], message: str, **fields: Any
    ) -> None:
        r = CalibrationReply(
            correlation_id=self.req.correlation_id,
            asset_id=self.req.asset_id,
            status=status,
            data_points_collected=self.points,
            message=message,
            **fields,
        )
        await self.bus.publish(self.req.reply_to, r)

    async def fail(self, exc: BaseException) -> None:
        code, message = failure(exc)
        if code == "internal" and not isinstance(exc, ValueError):
            log.error("calibration_crashed", asset_id=self.req.asset_id, exc_info=exc)
        log.warning("calibration_failed", asset_id=self.req.asset_id, code=code, reason=message)
        await self.state(self.previous, message, phase="failed")
        await self.reply("failed", message, code=code)


async def _train_save_announce(
    run: _Run, c: Collected, datasets: dict[str, Any], notes: list[str]
) -> tuple[str, dict[str, str]]:
    """Validate, train, save a registry version and announce it; the completion text and the map model
    kind → version."""
    cal, bus, asset = run.cal, run.bus, run.req.asset_id
    await run.step("validating", f"Collected {run.points} data points; validating the baseline")
    accept = run.req.accept_fault_signature
    checked = await asyncio.to_thread(
        validate_data, c, datasets, cal.config, cal.batch_window, accept_fault_signature=accept
    )
    notes = [*(e.message() for e in c.operating if e.excluded), *checked, *notes]
    frame_datasets(c, datasets)  # the autoencoder trains on the frame rows the screening kept
    await run.step("training", "Validated baseline; training...")
    cfg = train_config(cal.config, training_config(run.req.training, cal.config.autoencoder))
    result = await asyncio.to_thread(calibrate, datasets, cfg, run.progress)
    if "autoencoder" in result.models:
        result.models["autoencoder"][1]["frames"] = frame_info(c, datasets["autoencoder"][1])
    await run.step("saving", f"Saving and announcing the {', '.join(sorted(result.models))} models")
    screening = [r.to_dict() for r in c.screenings]
    baseline_info = {**result.baseline_info, "signal_baseline": c.signal_baseline, "screening": screening}
    baseline_info["operating"] = [e.to_dict() for e in c.operating]  # stopped/starting data left out
    if c.fault_signature is not None:
        baseline_info["fault_signature"] = c.fault_signature.to_dict()
    envelope = envelope_baseline(c.vibration_extras)
    if envelope:  # the healthy envelope level the health stage judges bearing-defect peaks against
        baseline_info["envelope_baseline"] = envelope
    stats = {**result.training_stats, "timings_s": result.timings, "data_points": result.data_points}
    version = await asyncio.to_thread(
        registry.save_version, cal.model_dir, asset, result.models, baseline_info, stats
    )
    pubs, models = await announcements(cal.model_dir, asset, version, signer=cal.signer)
    for p in pubs:
        await bus.publish(p.topic, p.payload, retain=p.retain)
    text = f"Calibrated from {run.points} data points in {time.perf_counter() - run.t0:.1f} s"
    return "; ".join([text, *notes]), models


async def _collect(run: _Run) -> Collected:
    """Wait until the store holds the data up to the requested end (bounded), then collect it."""
    cal, req = run.cal, run.req
    end = req.end or utcnow()
    await run.step("waiting", f"Waiting for the store to hold the data up to {end.isoformat()}")
    store, end_ns = cal.opened_store(), ts_ns(end)
    waited = await wait_for_store(
        store, req.asset_id, end_ns, wait_s=cal.store_wait_s, quiet_s=cal.store_quiet_s
    )
    log.info(
        "calibration_store_wait",
        asset_id=req.asset_id,
        seconds=round(waited.waited_s, 3),
        behind=waited.behind,
        lag=waited.lag_text(req.asset_id) if waited.behind else None,
    )
    await run.step("collecting", f"Collecting the last {req.lookback_minutes:g} minutes of data")
    cfg = await asyncio.to_thread(load_config, cal.config_dir, req.asset_id) if cal.config_dir else None
    operating = cfg.operating if cfg is not None else None
    c = await asyncio.to_thread(collect, store, req.asset_id, req.lookback_minutes, end_ns, operating)
    c.store_wait = waited
    return c


async def run_calibration(cal: Calibration, bus: Bus, req: CalibrationRequest) -> None:
    """Calibrate ``req.asset_id`` and publish its states, announcements and the replies (``accepted``
    first when asked, once the data is collected and enough); whatever ends the calibration early (too
    little or bad data, a bug, the store) becomes a failed reply with its code."""
    run = _Run(cal, bus, req, cal.states.get(req.asset_id))
    try:
        c = await _collect(run)
        run.points = c.readings + c.windows
        log.info("calibration_collected", asset_id=req.asset_id, readings=c.readings, windows=c.windows)
        datasets, notes = select_datasets(c, cal.batch_window)
        if not datasets:
            raise NotEnoughData(c)
        if req.reply_accepted:
            await run.reply("accepted", "Baseline calibration in progress")
        text, models = await _train_save_announce(run, c, datasets, notes)
    except Exception as exc:  # a calibration bug must not take the service down
        await run.fail(exc)
        return
    await run.state("CALIBRATED", text, models, phase="completed")
    elapsed = round(time.perf_counter() - run.t0, 3)
    log.info("calibration_done", asset_id=req.asset_id, version=next(iter(models.values())), seconds=elapsed)
    await run.reply("completed", text, models=models)
