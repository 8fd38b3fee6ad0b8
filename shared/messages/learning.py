"""Features, scores, models and per-asset state (the learning core's contract).

Severity is defined here once: a score's ``anomaly_score / threshold`` ratio above
:data:`WARNING_RATIO` is WARNING, above :data:`CRITICAL_RATIO` CRITICAL (see :func:`severity_of`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue, model_validator

from shared.messages.base import AssetId, EventId, Message, Timestamp, utcnow
from shared.messages.operating import OperatingState

FeatureKind = Literal["legacy", "batch", "vibration"]
ModelKind = Literal["legacy", "batch", "autoencoder"]
Severity = Literal["NORMAL", "WARNING", "CRITICAL"]
AssetState = Literal["IDLE", "CALIBRATING", "CALIBRATED", "MONITORING"]

#: Ratio ``anomaly_score / threshold`` above which a score is WARNING (and ``is_anomaly``).
WARNING_RATIO = 1.0
#: Ratio ``anomaly_score / threshold`` above which a score is CRITICAL.
CRITICAL_RATIO = 2.0


def severity_of(anomaly_score: float, threshold: float) -> Severity:
    """NORMAL ≤ 1× threshold < WARNING ≤ 2× threshold < CRITICAL (threshold > 0, same units)."""
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    ratio = anomaly_score / threshold
    if ratio > CRITICAL_RATIO:
        return "CRITICAL"
    if ratio > WARNING_RATIO:
        return "WARNING"
    return "NORMAL"


#: Most numbers a vector's frames may hold: 32 frames × 33 features (3 axes), ~20 KB as JSON, well
#: inside the 64 KB an InfluxDB 1.x string field holds (the historian stores them as one string).
MAX_FRAME_VALUES = 32 * 33


class FeatureVector(Message):
    """Named features computed from one reading (legacy), a reading window (batch) or a vibration window."""

    event_id: EventId
    asset_id: AssetId
    ts: Timestamp
    kind: FeatureKind
    names: list[str]
    values: list[float]
    # Extra (non-model) indicators, e.g. spectral/envelope values; may be empty.
    extras: dict[str, float] = Field(default_factory=dict)
    #: Vibration windows split into frames (:mod:`shared.features.frames`, only when a window has more
    #: than one): the same features of each frame, one row per frame in ``names`` order.
    frames: list[list[float]] | None = Field(default=None, min_length=2, max_length=32)
    #: Samples per frame (set with ``frames``).
    frame_samples: int | None = Field(default=None, ge=2)
    #: The asset's operating state at ``ts`` (:mod:`shared.health.operating_state`); ``None``: unknown
    #: (vectors from before it existed, or a relative level not learned yet), treated as running.
    operating_state: OperatingState | None = None

    @model_validator(mode="after")
    def _same_length(self) -> FeatureVector:
        if len(self.names) != len(self.values):
            raise ValueError(f"{len(self.names)} names but {len(self.values)} values")
        if (self.frames is None) != (self.frame_samples is None):
            raise ValueError("frames and frame_samples go together")
        if self.frames is not None and len(self.frames) * len(self.names) > MAX_FRAME_VALUES:
            raise ValueError(f"frames hold more than {MAX_FRAME_VALUES} values (32 frames x 33 features)")
        for i, row in enumerate(self.frames or ()):
            if len(row) != len(self.names):
                raise ValueError(f"frame {i} holds {len(row)} values for {len(self.names)} names")
        return self


class Score(Message):
    event_id: EventId
    asset_id: AssetId
    ts: Timestamp
    model: ModelKind
    model_version: str
    anomaly_score: float
    raw_score: float
    threshold: float
    is_anomaly: bool
    severity: Severity


# ---------------------------------------------------------------------------------------------
# Model manifests (the registry's manifest.json entries, carried in announcements)
# ---------------------------------------------------------------------------------------------
class FeatureStat(Message):
    """Baseline statistics of one feature over the calibration data (feature units)."""

    name: str
    mean: float
    std: float
    min: float
    max: float
    median: float
    mad: float


class FeatureBaseline(Message):
    n: int = Field(ge=0, description="calibration samples the statistics rest on")
    features: list[FeatureStat]


class SignalStat(Message):
    """Baseline statistics of one raw signal (V, A, dimensionless power factor, g)."""

    mean: float
    std: float
    min: float | None = None
    max: float | None = None
    n: int | None = None


class EnvelopeStat(Message):
    """Healthy distribution of one envelope indicator over the calibration windows (``env_{d}_amp`` in
    g, ``env_{d}_snr`` dimensionless; :func:`shared.learning.baseline.envelope_baseline`)."""

    n: float = Field(ge=1, description="calibration windows the statistics rest on")
    mean: float
    std: float = Field(ge=0)
    median: float
    mad: float = Field(ge=0)
    p95: float
    max: float


class RawScore(Message):
    """How the ONNX output becomes the raw score (higher = more anomalous)."""

    transform: Literal["identity", "median_minus_score"]
    formula: str = ""
    score_median: float | None = None
    offset: float | None = None

    @model_validator(mode="after")
    def _median_needed(self) -> RawScore:
        if self.transform == "median_minus_score" and self.score_median is None:
            raise ValueError("raw_score.score_median is required for median_minus_score")
        return self


class ScalerInfo(Message):
    """Standardisation inside the autoencoder graph: z = clip((x - mean) / std, -clip, clip), ``std`` the
    floored divisor (:mod:`shared.learning.scaler`). ``floor``: ``relative`` (max(raw_std, rel_floor *
    scale, abs_eps)) or ``absolute`` (max(raw_std, min_std)); unset in entries written before it existed,
    which were trained with the absolute floor (read them with :func:`shared.learning.scaler.floor_of`).
    ``raw_std`` (the std before the floor) and ``scale`` (median |x|) are per feature, feature units."""

    mean: list[float]
    std: list[float]
    min_std: float
    clip: float
    formula: str = ""
    floor: Literal["relative", "absolute"] | None = None
    rel_floor: float | None = Field(default=None, gt=0)
    abs_eps: float | None = Field(default=None, gt=0)
    raw_std: list[float] | None = None
    scale: list[float] | None = None


#: Free-form, JSON-only documentation blocks (threshold rule, validation verdict, training stats).
Info = dict[str, JsonValue]


class ModelManifest(Message):
    """One model's manifest entry: what a scorer needs (features, tensors, raw-score rule, threshold)
    and what the calibration rested on (baselines, validation, training statistics)."""

    kind: Literal["legacy", "batch", "autoencoder"]
    algorithm: Literal["isolation_forest", "autoencoder"]
    features: list[str] = Field(min_length=1)
    n_features: int = Field(ge=1)
    input: str
    output: str
    scaler: ScalerInfo | None = None
    raw_score: RawScore
    threshold: float = Field(gt=0)
    threshold_rule: Info = Field(default_factory=dict)
    #: Training hyper-parameters (trees, contamination, layer sizes, epochs, ...).
    params: Info = Field(default_factory=dict)
    baseline: FeatureBaseline | None = None
    validation: Info = Field(default_factory=dict)
    training: Info = Field(default_factory=dict)
    file: str | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    bytes: int | None = Field(default=None, ge=1)
    #: Raw-signal baseline of the calibration data (voltage_v, current_a, power_factor, vibration_g).
    signal_baseline: dict[str, SignalStat] = Field(default_factory=dict)
    #: Envelope indicators at the bearing defect frequencies over the calibration windows (the registry's
    #: ``baseline.envelope_baseline``); unset: calibrated before it was stored, or no rpm/bearing config.
    envelope_baseline: dict[str, EnvelopeStat] | None = None
    #: Where the model came from: ``trained`` by a calibration or ``imported`` (three-file form).
    #: The fields below are left out of :meth:`entry` when unset, so entries written before they
    #: existed keep their signatures.
    source: Literal["trained", "imported"] | None = None
    #: Rolling window of the scorer for this model (windows); unset: the scorer's ``--window``.
    rolling_window: int | None = Field(default=None, ge=1, le=10_000)
    #: How the graph wraps a reconstruction graph (autoencoder; :mod:`shared.learning.interchange`).
    interchange: Info | None = None
    #: The rows an autoencoder was trained on (:mod:`shared.features.frames`): ``frame_samples``,
    #: ``frames_per_window`` (1: whole windows), ``window_samples``, ``fs_hz``, ``axes``, ``rule``. A
    #: scorer scores a window's frames when ``frames_per_window`` > 1; unset (older or imported models):
    #: whole windows.
    frames: Info | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ModelManifest:
        if len(set(self.features)) != len(self.features):
            raise ValueError("features: names must be distinct")
        if self.n_features != len(self.features):
            raise ValueError(f"n_features is {self.n_features} but {len(self.features)} features are named")
        return self

    def entry(self) -> dict[str, object]:
        """The manifest entry as plain JSON data (what :mod:`shared.learning.scoring` reads); the
        optional ``source``/``rolling_window``/``interchange``/``frames`` only when set."""
        out = self.model_dump(mode="json", exclude_none=False)
        for key in _OPTIONAL_ENTRY_KEYS:
            if out.get(key) is None:
                out.pop(key, None)
        scaler = out.get("scaler")
        if isinstance(scaler, dict):  # the floor's fields only when set (older entries keep signatures)
            for key in _OPTIONAL_SCALER_KEYS:
                if scaler.get(key) is None:
                    scaler.pop(key, None)
        return out


_OPTIONAL_SCALER_KEYS = ("floor", "rel_floor", "abs_eps", "raw_std", "scale")
_OPTIONAL_ENTRY_KEYS = ("source", "rolling_window", "interchange", "frames", "envelope_baseline")


class ModelAnnouncement(Message):
    """Retained on ``models/<asset>/<model>``: the current version of a model, carried whole (ONNX bytes,
    base64, plus its manifest entry), so a worker that starts later or on another machine gets it.

    ``signature``: Ed25519 by the calibrator's key over the ONNX bytes' SHA-256, the canonical manifest,
    asset, kind, version and creation time (:mod:`shared.learning.signing`); consumers load only
    announcements whose signature verifies. ``key_id`` names the signing key (diagnostics only)."""

    asset_id: AssetId
    model: ModelKind
    version: str = Field(min_length=1, max_length=64)
    path: str
    created_at: Timestamp
    manifest: ModelManifest
    onnx_b64: str
    signature: str = Field(default="", max_length=128)
    key_id: str = Field(default="", max_length=64)


class ModelRejected(Message):
    """Published on ``rejections/<asset>/<model>`` when a consumer refuses a model announcement (bad or
    missing signature, a graph that does not fit the manifest, a failing probe): it keeps scoring with
    its previous model, if any (``kept_version``)."""

    asset_id: AssetId
    model: ModelKind
    version: str = Field(max_length=64)
    service: str
    reason: str
    kept_version: str | None = None
    ts: Timestamp = Field(default_factory=utcnow)


CalibrationPhase = Literal["waiting", "collecting", "validating", "training", "saving", "completed", "failed"]


class CalibrationProgress(Message):
    """Where a calibration stands; carried by every state change the calibrator makes for it.

    Phases in order: ``waiting`` (for the store to hold the data), ``collecting``, ``validating``,
    ``training``, ``saving`` (registry + announcements), then ``completed`` or ``failed``. ``percent`` is
    step-based: ``100 * (step - 1) / steps`` while running, 100 once completed."""

    phase: CalibrationPhase
    step: int = Field(ge=1)
    steps: int = Field(ge=1)
    percent: float = Field(ge=0, le=100)
    started_at: Timestamp
    #: Readings + vibration windows the calibration uses (0 until collected).
    data_points_collected: int = Field(default=0, ge=0)
    #: Set on ``completed`` / ``failed``.
    finished_at: Timestamp | None = None


class StateChange(Message):
    """Retained on ``state/<asset>``."""

    asset_id: AssetId
    state: AssetState
    previous: AssetState | None = None
    reason: str = ""
    models: dict[str, str] = Field(default_factory=dict)  # model kind -> version
    ts: Timestamp = Field(default_factory=utcnow)
    #: True on the IDLE state a purge leaves: the asset's data, models and baselines are gone, and
    #: subscribers drop what they keep for it (the health stage: its assessor and saved state).
    purged: bool = False
    #: The calibration this change belongs to (the calibrator's states while one runs and the one that
    #: ends it); None on other changes (e.g. a scorer's MONITORING).
    calibration: CalibrationProgress | None = None
