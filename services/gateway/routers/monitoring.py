"""``/monitoring``: overall and per-asset monitoring state from the retained bus view, and the learned
baselines of an asset's current models.

The calibration guide's top-level fields (``system_state``, ``calibration_active``,
``baseline_established``, ``models_loaded``, ``baseline_summary``, in that order) come first; the
per-asset detail follows. ``baseline_established``, ``models_loaded`` and ``baseline_summary`` describe
the *subject* asset (named in ``asset_id``): the one calibrated (or being calibrated) most recently, see
:func:`subject_asset`."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Literal

import structlog
from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from services.gateway.auth.guard import Viewer
from services.gateway.deps import ContextDep
from services.gateway.view import BusView, ModelInfo, system_state
from shared.messages import (
    SIGNALS,
    AssetState,
    CalibrationProgress,
    HealthUpdate,
    InsightItem,
    ModelManifest,
    RiskLevel,
    SignalStat,
)
from shared.messages.health import RulItem, ZoneBasisKind
from shared.store import StoreError
from shared.topics import ASSET_ID_PATTERN, MODEL_KINDS

router = APIRouter(prefix="/monitoring", tags=["monitoring"])
log = structlog.get_logger()

#: ``baseline_summary`` name -> raw signal name in a manifest's ``signal_baseline``.
SUMMARY_SIGNALS = dict(zip(("voltage", "current", "power_factor", "vibration"), SIGNALS, strict=True))


class MeanStd(BaseModel):
    """Healthy-baseline mean and population standard deviation of one raw signal, in its unit."""

    mean: float
    std: float


class BaselineSummary(BaseModel):
    """Per signal (V, A, dimensionless, g); null when no model's manifest carries it."""

    voltage: MeanStd | None = None
    current: MeanStd | None = None
    power_factor: MeanStd | None = None
    vibration: MeanStd | None = None


class ModelsLoaded(BaseModel):
    """Which models are announced (retained) for the asset."""

    legacy_model: bool = False
    batch_model: bool = False
    autoencoder: bool = False


class FlatBaselineSummary(BaseModel):
    """The guide's flat summary: healthy-baseline mean (and population std) of each raw signal, in V, A,
    dimensionless and g, from the calibration readings (null when the models carry no such signal)."""

    voltage_mean: float | None = None
    current_mean: float | None = None
    power_factor_mean: float | None = None
    vibration_mean: float | None = None
    voltage_std: float | None = None
    current_std: float | None = None
    power_factor_std: float | None = None
    vibration_std: float | None = None


class AssetStatus(BaseModel):
    state: AssetState = "IDLE"
    previous: AssetState | None = None
    #: State-change reason; while CALIBRATING, the calibrator's current step.
    reason: str = ""
    #: Time of the last state change (None: never changed, i.e. IDLE by default).
    since: datetime | None = None
    #: Model kind -> version currently announced for this asset.
    models: dict[str, str] = Field(default_factory=dict)
    calibration_active: bool = False
    #: The calibration the asset's current state belongs to: progress while CALIBRATING, then how the
    #: last one ended (``completed`` / ``failed``); None once another service changed the state.
    calibration: CalibrationProgress | None = None
    baseline_established: bool = False
    models_loaded: ModelsLoaded = Field(default_factory=ModelsLoaded)
    baseline_summary: BaselineSummary = Field(default_factory=BaselineSummary)
    # From the latest retained health update (all None until one arrives).
    health_score: float | None = None
    risk_level: RiskLevel | None = None
    grade: Literal["A", "B", "C", "D", "F"] | None = None
    #: Days until maintenance: the low end of ``rul``'s 80 % interval when it is an estimate, else None
    #: (``maintenance_reason`` says why).
    maintenance_window_days: float | None = None
    maintenance_reason: str | None = None
    #: Remaining useful life with its interval and the indicator it rests on, or why there is none.
    rul: RulItem | None = None
    #: Trend indicators of the latest window (rms_log [Np], kurtosis_z [σ], cusum and cusum_h [Np·s]).
    indicators: dict[str, float] = Field(default_factory=dict)
    degradation_index: float | None = None
    iso_zone: Literal["A", "B", "C", "D"] | None = None
    velocity_rms_mm_s: float | None = None
    #: What iso_zone is judged against (HealthUpdate.zone_basis): iso20816-3, custom or information.
    zone_basis: ZoneBasisKind | None = None
    zone_basis_text: str | None = None
    insights: list[InsightItem] = Field(default_factory=list)
    active_alarms: int | None = None
    #: Time (data time) of that health update.
    health_ts: datetime | None = None
    #: The latest retained health document, as published (None until one arrives).
    health: HealthUpdate | None = None


class MonitoringStatus(BaseModel):
    #: Fleet rule (:func:`~services.gateway.view.system_state`): CALIBRATING while any asset calibrates,
    #: else MONITORING if any monitors, else CALIBRATED if any is calibrated, else IDLE.
    system_state: AssetState
    #: True while any asset calibrates.
    calibration_active: bool = False
    #: The subject asset has models (and so a baseline).
    baseline_established: bool = False
    #: The subject asset's announced models.
    models_loaded: ModelsLoaded = Field(default_factory=ModelsLoaded)
    #: The subject asset's raw-signal baseline (null before any calibration).
    baseline_summary: FlatBaselineSummary | None = None
    #: The subject asset: calibrated (or being calibrated) most recently; null when there is none.
    asset_id: str | None = None
    #: Its calibration's progress (running) or outcome (the last one), as in ``assets``.
    calibration: CalibrationProgress | None = None
    #: Running calibrations: asset → progress.
    calibrations: dict[str, CalibrationProgress] = Field(default_factory=dict)
    #: Number of assets per state.
    state_counts: dict[str, int] = Field(default_factory=dict)
    assets: dict[str, AssetStatus]
    #: Service name -> ``online``/``offline`` from the retained status topics.
    services: dict[str, str] = Field(default_factory=dict)


def signal_baseline(models: dict[str, ModelInfo]) -> dict[str, SignalStat]:
    """The ``signal_baseline`` of the first announced model (legacy, batch, autoencoder) that has one."""
    for kind in MODEL_KINDS:
        info = models.get(kind)
        if info is not None and info.manifest.signal_baseline:
            return info.manifest.signal_baseline
    return {}


def baseline_summary(models: dict[str, ModelInfo]) -> BaselineSummary:
    """Mean/std per raw signal from the models' ``signal_baseline`` (null when unknown)."""
    sb = signal_baseline(models)
    return BaselineSummary(
        **{
            name: MeanStd(mean=sb[sig].mean, std=sb[sig].std) if sig in sb else None
            for name, sig in SUMMARY_SIGNALS.items()
        }
    )


def flat_summary(models: dict[str, ModelInfo]) -> FlatBaselineSummary | None:
    """The guide's flat ``baseline_summary`` from the models' ``signal_baseline`` (None when none)."""
    sb = signal_baseline(models)
    if not sb:
        return None
    values: dict[str, float] = {}
    for name, sig in SUMMARY_SIGNALS.items():
        if sig in sb:
            values[f"{name}_mean"], values[f"{name}_std"] = sb[sig].mean, sb[sig].std
    return FlatBaselineSummary(**values)


_VERSION_TIME = re.compile(r"^v(\d{8}T\d{6}Z)")


def version_time(version: str) -> datetime | None:
    """Creation time of a registry version id (``vYYYYMMDDTHHMMSSZ-<hex>``, UTC); None for another form."""
    m = _VERSION_TIME.match(version)
    return datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) if m else None


def calibrated_at(status: AssetStatus) -> datetime | None:
    """When the asset was last calibrated or asked to be: its calibration's start, else the creation
    time of its newest model version."""
    times = [t for t in map(version_time, status.models.values()) if t is not None]
    if status.calibration is not None:
        times.append(status.calibration.started_at)
    return max(times, default=None)


def subject_asset(assets: Mapping[str, AssetStatus]) -> str | None:
    """The asset the guide's single-asset fields describe: the one calibrated (or being calibrated) most
    recently; with no calibration known, the only asset (None for none or several)."""
    timed = [(t, a) for a, st in assets.items() if (t := calibrated_at(st)) is not None]
    if timed:
        return max(timed)[1]
    return next(iter(assets)) if len(assets) == 1 else None


def asset_status(view: BusView, asset_id: str) -> AssetStatus:
    """Everything the view knows about one asset (IDLE defaults for an asset it has never heard of)."""
    sc = view.states.get(asset_id)
    models = view.models.get(asset_id, {})
    versions = {k: info.version for k, info in models.items()}
    out = AssetStatus(
        models=versions,
        baseline_established=bool(models),
        models_loaded=ModelsLoaded(
            legacy_model="legacy" in models,
            batch_model="batch" in models,
            autoencoder="autoencoder" in models,
        ),
        baseline_summary=baseline_summary(models),
    )
    if sc is not None:
        out.state, out.previous, out.reason, out.since = sc.state, sc.previous, sc.reason, sc.ts
        out.models = {**sc.models, **versions}
        out.calibration = sc.calibration
    out.calibration_active = out.state == "CALIBRATING"
    hu = view.health.get(asset_id)
    if hu is not None:
        out.health_score = hu.health_score
        out.risk_level = hu.risk_level
        out.grade = hu.grade
        out.maintenance_window_days = hu.maintenance_window_days
        out.maintenance_reason = hu.maintenance_reason
        out.rul, out.indicators = hu.rul, dict(hu.indicators)
        out.degradation_index = hu.degradation_index
        out.iso_zone = hu.iso_zone
        out.velocity_rms_mm_s = hu.velocity_rms_mm_s
        out.zone_basis, out.zone_basis_text = hu.zone_basis, hu.zone_basis_text
        out.insights = list(hu.insights)
        out.active_alarms = hu.active_alarms
        out.health_ts = hu.ts
        out.health = hu
    return out


@router.get("/status", response_model=MonitoringStatus)
async def monitoring_status(ctx: ContextDep, who: Viewer) -> MonitoringStatus:
    """The guide's fields first: ``system_state`` (CALIBRATING while any asset calibrates, else MONITORING
    if any monitors, else CALIBRATED if any is calibrated, else IDLE: with one asset, its state),
    ``calibration_active`` (any asset calibrating), then ``baseline_established``, ``models_loaded`` and
    the flat ``baseline_summary`` of the asset calibrated most recently (``asset_id``) with its
    ``calibration`` progress. Assets: every known asset (IDLE when no state yet)."""
    view = ctx.view
    try:
        stored = set(await asyncio.to_thread(ctx.store.assets))
    except StoreError as exc:  # a status page must still answer while the store is down
        log.warning("store_unavailable", error=str(exc))
        stored = set()
    assets = {a: asset_status(view, a) for a in sorted(stored | view.known_assets())}
    subject = subject_asset(assets)
    out = MonitoringStatus(
        system_state=system_state(s.state for s in assets.values()),
        calibration_active=any(s.calibration_active for s in assets.values()),
        asset_id=subject,
        calibrations={a: s.calibration for a, s in assets.items() if s.calibration_active and s.calibration},
        state_counts=dict(sorted(Counter(s.state for s in assets.values()).items())),
        assets=assets,
        services={name: st.state for name, st in sorted(view.services.items())},
    )
    if subject is not None:
        st = assets[subject]
        out.baseline_established, out.models_loaded = st.baseline_established, st.models_loaded
        out.baseline_summary = flat_summary(view.models.get(subject, {}))
        out.calibration = st.calibration
    return out


# ---------------------------------------------------------------------------------------------
# Baselines
# ---------------------------------------------------------------------------------------------
FeatureStats = dict[str, dict[str, float]]


class BaselineInfo(BaseModel):
    """The guide's ``baseline`` and ``batch_baseline`` first, then ours."""

    #: Legacy model's feature baseline: feature -> {mean, std, min, max, median, mad} (feature units).
    baseline: FeatureStats | None = None
    #: Batch model's feature baseline (same form), under the guide's names (``voltage_peak_to_peak``).
    batch_baseline: FeatureStats | None = None
    asset_id: str
    #: The guide's batch feature name → the name in the batch model's manifest (``voltage_v_ptp``).
    batch_feature_names: dict[str, str] = Field(default_factory=dict)
    #: Version of the legacy model (else of the first model announced); every kind's in ``versions``.
    version: str
    versions: dict[str, str]
    #: Autoencoder's (vibration) feature baseline, when that model exists.
    vibration_baseline: FeatureStats | None = None
    #: Raw signal -> {mean, std, min, max} of the calibration readings (None for vibration-only assets).
    signal_baseline: dict[str, dict[str, float]] | None = None
    #: Model kind -> number of calibration samples its baseline was computed from.
    samples: dict[str, int] = Field(default_factory=dict)


#: Batch feature ``{signal}_{stat}`` → the guide's name: signal without its unit, ``ptp`` spelt out.
_GUIDE_SIGNAL = dict(zip(SIGNALS, SUMMARY_SIGNALS, strict=True))
_GUIDE_STAT = {"mean": "mean", "std": "std", "ptp": "peak_to_peak", "rms": "rms"}


def guide_batch_name(name: str) -> str:
    """``voltage_v_ptp`` → ``voltage_peak_to_peak`` (the guide's batch names); other names unchanged."""
    signal, _, stat = name.rpartition("_")
    if signal in _GUIDE_SIGNAL and stat in _GUIDE_STAT:
        return f"{_GUIDE_SIGNAL[signal]}_{_GUIDE_STAT[stat]}"
    return name


def feature_stats(manifest: ModelManifest) -> FeatureStats | None:
    """The manifest's feature baseline as ``{feature: {mean, std, min, max, median, mad}}``."""
    if manifest.baseline is None or not manifest.baseline.features:
        return None
    return {f.name: f.model_dump(exclude={"name"}) for f in manifest.baseline.features}


def signal_stats(models: dict[str, ModelInfo]) -> dict[str, dict[str, float]] | None:
    """Raw signal -> its baseline statistics (those the manifest gives), None when no model has one."""
    sb = signal_baseline(models)
    return {sig: stat.model_dump(exclude_none=True) for sig, stat in sb.items()} or None


def last_calibrated(models: Mapping[str, dict[str, ModelInfo]]) -> str | None:
    """The asset whose newest announced model version is the newest (None when no asset has models)."""
    newest = [
        (t, a)
        for a, kinds in models.items()
        if (t := max(filter(None, (version_time(i.version) for i in kinds.values())), default=None))
    ]
    if newest:
        return max(newest)[1]
    with_models = sorted(a for a, kinds in models.items() if kinds)
    return with_models[-1] if with_models else None


@router.get(
    "/baseline",
    response_model=BaselineInfo,
    responses={
        404: {"description": "No models for this asset (or, without asset_id, for any asset)"},
        422: {"description": "Invalid asset id"},
    },
)
async def get_baseline(
    ctx: ContextDep,
    who: Viewer,
    asset_id: Annotated[
        str | None,
        Query(
            pattern=ASSET_ID_PATTERN,
            description="Asset id; default: the asset calibrated most recently (named in the answer)",
        ),
    ] = None,
) -> BaselineInfo:
    """Feature and signal baselines stored in the manifests of the asset's announced models. Without
    ``asset_id``: those of the asset calibrated most recently (the newest model version); 404 with the
    reason when no asset has models."""
    if asset_id is None:
        asset_id = last_calibrated(ctx.view.models)
        if asset_id is None:
            raise HTTPException(404, "no baseline: no asset is calibrated yet (calibrate one first)")
    models = ctx.view.models.get(asset_id, {})
    if not models:
        reason = f"no baseline for asset {asset_id!r}: no model announced (calibrate it first)"
        raise HTTPException(404, reason)
    first = next(k for k in (*MODEL_KINDS, *sorted(models)) if k in models)
    stats = {kind: feature_stats(info.manifest) for kind, info in models.items()}
    batch = stats.get("batch") or {}
    names = {guide_batch_name(f): f for f in batch}
    samples = {k: info.manifest.baseline.n for k, info in models.items() if info.manifest.baseline}
    return BaselineInfo(
        asset_id=asset_id,
        version=models[first].version,
        versions={k: info.version for k, info in sorted(models.items())},
        baseline=stats.get("legacy"),
        batch_baseline={g: batch[f] for g, f in names.items()} or None,
        batch_feature_names=names,
        vibration_baseline=stats.get("autoencoder"),
        signal_baseline=signal_stats(models),
        samples=samples,
    )
