"""Evidence and smoothing: what one asset's scores, readings and features say between updates (pure).

An update's inputs are first checked whole (:meth:`EvidenceState.collect`, nothing changes on a
ValueError), then applied (:meth:`EvidenceState.apply`):

1. **Smoothing** (per model, the signals track and the ISO velocity): exponentially weighted mean
   over data time, ``x_s <- x_s + (1 - exp(-dt / TAU)) * (x - x_s)`` with ``TAU = smoothing_tau_s``
   (30 s); the first value, or the first after a stale gap, starts it (model ratios from a prior of
   0, "as calibrated"). Values are capped first (:data:`SMOOTH_RATIO_CAP`, :data:`VELOCITY_CAP_FACTOR`
   of an alarming zone basis; an information-only velocity is shown as measured) so one huge
   excursion cannot hold the smoothed value up after the machine is back to normal.
2. **Pointwise flags** into each track's k-of-n :class:`~shared.health.persistence.Persistence`: a
   model's own ``is_anomaly``; the signals track's ratio above :data:`shared.messages.WARNING_RATIO`;
   the raw velocity in zone C or D of an alarming :class:`~shared.health.iso20816.ZoneBasis`
   (confirmed ISO 20816-3 or custom limits; never for an information-only basis).
3. **Envelope evidence** per bearing defect: each new vibration window's flag "the evidence rose"
   (:func:`shared.health.insights.envelope.window_flag`, against the calibrated envelope level) is
   kept for the last ``ENVELOPE_N`` windows; the snapshot gives (windows flagged, windows counted) to
   the insights, which name a component only from ``ENVELOPE_K`` of them.
4. **Staleness**: a track or feature not updated for ``stale_after_s`` (900 s) of data time no longer
   counts (:meth:`EvidenceState.snapshot`): a stopped scorer must not freeze the health.

The **signals track** (pseudo-model :data:`SIGNAL_TRACK`) is the raw readings' largest deviation
from their calibrated baseline, ``ratio = max_j |x_j - mean_j| / max(std_j, 1e-3 |mean_j|) / Z_T``
over :data:`shared.messages.SIGNALS` (``Z_T = signal_z_threshold`` = 4σ → ratio 1).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, get_args

from shared.health.insights.base import DEFECTS
from shared.health.insights.envelope import ENVELOPE_N, window_flag
from shared.health.iso20816 import (
    UNSATISFACTORY_ZONES,
    VELOCITY_FEATURE,
    ZoneBasis,
    ZoneResult,
    classify,
)
from shared.health.params import AssessorParams
from shared.health.persistence import Persistence
from shared.messages import SIGNALS, Score, Severity, severity_of
from shared.topics import MODEL_KINDS

#: Ratio 5 already means health 0: larger ratios are capped before smoothing.
SMOOTH_RATIO_CAP = 5.0
#: Velocities are capped at this × the C/D boundary (deep in zone D) before smoothing.
VELOCITY_CAP_FACTOR = 1.5
#: Pseudo-model: the raw readings' largest deviation from their calibrated baseline.
SIGNAL_TRACK = "signals"
#: Floors of the signals track's scale: max(std, 1e-3 |mean|, 1e-9) (signal units).
SIGNAL_SCALE_REL_FLOOR = 1e-3
SIGNAL_SCALE_ABS_FLOOR = 1e-9
SEVERITIES: tuple[str, ...] = get_args(Severity)


def finite_ts(ts: Any) -> float:
    """``ts`` as float seconds of data time (ValueError unless a finite number)."""
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(float(ts)):
        raise ValueError(f"ts must be a finite number of seconds (data time), got {ts!r}")
    return float(ts)


def _finite(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(float(v))


@dataclass(frozen=True)
class ModelScore:
    """One model's score as the assessor needs it (see :class:`shared.messages.Score`)."""

    model: str
    anomaly_score: float
    threshold: float
    is_anomaly: bool
    severity: str = "NORMAL"

    def __post_init__(self) -> None:
        if self.model not in MODEL_KINDS:
            raise ValueError(f"unknown model {self.model!r}: expected one of {MODEL_KINDS}")
        for name in ("anomaly_score", "threshold"):
            v = getattr(self, name)
            if not _finite(v):
                raise ValueError(f"{name} of model {self.model} must be a finite number, got {v!r}")
        if self.threshold <= 0:
            raise ValueError(f"threshold of model {self.model} must be > 0, got {self.threshold}")
        if not isinstance(self.is_anomaly, bool):
            raise ValueError(f"is_anomaly of model {self.model} must be a bool, got {self.is_anomaly!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be NORMAL, WARNING or CRITICAL, got {self.severity!r}")

    @property
    def ratio(self) -> float:
        """``anomaly_score / threshold`` (dimensionless)."""
        return float(self.anomaly_score) / float(self.threshold)

    @classmethod
    def from_message(cls, score: Score) -> ModelScore:
        return cls(
            model=score.model,
            anomaly_score=score.anomaly_score,
            threshold=score.threshold,
            is_anomaly=score.is_anomaly,
            severity=score.severity,
        )


@dataclass
class Track:
    """EWMA-smoothed value with its last raw value, data time and persistence buffer."""

    smoothed: float
    last: float
    last_ts: float
    persistence: Persistence
    severity: str = "NORMAL"

    def to_dict(self) -> dict[str, Any]:
        return {
            "smoothed": self.smoothed,
            "last": self.last,
            "last_ts": self.last_ts,
            "severity": self.severity,
            "persistence": self.persistence.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Track:
        return cls(
            smoothed=float(d["smoothed"]),
            last=float(d["last"]),
            last_ts=float(d["last_ts"]),
            severity=str(d.get("severity", "NORMAL")),
            persistence=Persistence.from_dict(d["persistence"]),
        )


def smooth(
    track: Track | None,
    value: float,
    ts: float,
    flag: bool,
    params: AssessorParams,
    prior: float | None = None,
) -> Track:
    """EWMA over data time: ``x_s <- x_s + (1 - exp(-(ts - last_ts) / tau)) * (value - x_s)``; returns
    the (possibly new) track with ``flag`` pushed into its persistence.

    A new track (none yet, or the last value older than ``stale_after_s``) starts at ``value``, or,
    with a ``prior``, at the prior moved one second's worth towards ``value`` (model ratios start
    from 0, "as calibrated": a single high first score of a freshly calibrated model must not dent
    the health)."""
    if track is None or ts - track.last_ts > params.stale_after_s:
        start = value
        if prior is not None:
            start = prior + (1.0 - math.exp(-1.0 / params.smoothing_tau_s)) * (value - prior)
        track = Track(start, value, ts, params.new_persistence())
    else:
        alpha = 1.0 - math.exp(-(ts - track.last_ts) / params.smoothing_tau_s)
        track.smoothed += alpha * (value - track.smoothed)
        track.last, track.last_ts = value, ts
    track.persistence.push(flag)
    return track


def signal_ratio(
    features: Mapping[str, float], baseline: Mapping[str, Mapping[str, float]] | None, z_threshold: float
) -> float | None:
    """Largest |z| of the raw reading signals against the baseline, over ``z_threshold``; None when
    no signal with a baseline is among ``features``."""
    if not baseline:
        return None
    zs = []
    for name in SIGNALS:
        b = baseline.get(name)
        if name in features and b is not None:
            scale = max(b["std"], SIGNAL_SCALE_REL_FLOOR * abs(b["mean"]), SIGNAL_SCALE_ABS_FLOOR)
            zs.append(abs(features[name] - b["mean"]) / scale)
    return max(zs) / z_threshold if zs else None


def check_features(features: Mapping[str, float] | None) -> dict[str, float]:
    """Feature values by name, as floats (ValueError on a bad name or a non-finite value)."""
    if features is None:
        return {}
    if not isinstance(features, Mapping):
        raise ValueError(f"features must be a mapping name -> value, got {type(features).__name__}")
    out: dict[str, float] = {}
    for k, v in features.items():
        if not isinstance(k, str) or not k:
            raise ValueError(f"feature names must be non-empty strings, got {k!r}")
        if not _finite(v):
            raise ValueError(f"feature {k!r} must be a finite number, got {v!r}")
        out[k] = float(v)
    return out


@dataclass(frozen=True)
class Evidence:
    """One update's checked inputs: new scores, feature values, and what is new for the velocity and
    signals tracks (None: absent, or already counted at this data time)."""

    ts: float
    scores: tuple[ModelScore, ...]
    features: dict[str, float]
    velocity: float | None
    signal_ratio: float | None
    #: Per bearing defect: did this window's envelope evidence rise (:func:`window_flag`); only for a
    #: new vibration window (not a duplicate).
    envelope: dict[str, bool] = field(default_factory=dict)

    @property
    def scored(self) -> bool:
        """A model or the signals track moved: the anomaly alarm is observed on this update."""
        return bool(self.scores) or self.signal_ratio is not None


@dataclass(frozen=True)
class Snapshot:
    """The fresh evidence at one data time: tracks and features within ``stale_after_s``, and the
    zone of the smoothed velocity against the asset's basis (``iso.alarming``: it may alarm)."""

    models: dict[str, Track]
    velocity: Track | None
    iso: ZoneResult | None
    features: dict[str, float]
    #: Per bearing defect: (windows whose envelope evidence rose, windows counted), last ENVELOPE_N.
    envelope: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass
class EvidenceState:
    """Everything kept between updates: model tracks (plus the signals track), the velocity track
    and the latest value of every feature with its data time."""

    models: dict[str, Track] = field(default_factory=dict)
    velocity: Track | None = None
    features: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (value, ts)
    now: float | None = None
    #: Envelope evidence per bearing defect: the last ENVELOPE_N window flags, and their newest ts.
    envelope: dict[str, list[bool]] = field(default_factory=dict)
    envelope_ts: float | None = None

    # -- checking (no state change) ----------------------------------------------------------------
    def collect(
        self,
        ts: float,
        scores: Iterable[ModelScore | Score],
        features: Mapping[str, float] | None,
        baseline: Mapping[str, Mapping[str, float]] | None,
        params: AssessorParams,
    ) -> Evidence:
        """Check an update's inputs whole; duplicates (same data time as the last) are dropped and an
        input older than its track's last one is refused (ValueError)."""
        ts = finite_ts(ts)
        new_scores = self._new_scores(ts, scores)
        feats = check_features(features)
        ratio = signal_ratio(feats, baseline, params.signal_z_threshold)
        st = self.models.get(SIGNAL_TRACK)
        if ratio is not None and st is not None and ts <= st.last_ts:
            ratio = None  # duplicate or late reading: already counted
        envelope = {}
        if self.envelope_ts is None or ts > self.envelope_ts:  # equal or older: counted already
            p = params
            flags = {d: window_flag(feats, baseline, d, p.envelope_snr_min, p.z_min) for d in DEFECTS}
            envelope = {d: f for d, f in flags.items() if f is not None}
        return Evidence(ts, tuple(new_scores), feats, self._new_velocity(ts, feats), ratio, envelope)

    def _new_scores(self, ts: float, scores: Iterable[ModelScore | Score]) -> list[ModelScore]:
        out: list[ModelScore] = []
        seen: set[str] = set()
        for s in scores:
            ms = ModelScore.from_message(s) if isinstance(s, Score) else s
            if not isinstance(ms, ModelScore):
                raise ValueError(f"scores must be ModelScore or Score, got {type(s).__name__}")
            if ms.model in seen:
                raise ValueError(f"two scores for model {ms.model} in one update")
            seen.add(ms.model)
            track = self.models.get(ms.model)
            if track is not None and ts < track.last_ts:
                raise ValueError(
                    f"score of model {ms.model} at ts {ts} is older than the last one ({track.last_ts})"
                )
            if track is None or ts > track.last_ts:  # equal ts: duplicate delivery, ignored
                out.append(ms)
        return out

    def _new_velocity(self, ts: float, feats: Mapping[str, float]) -> float | None:
        velocity = feats.get(VELOCITY_FEATURE)
        if velocity is None:
            return None
        if velocity < 0:
            raise ValueError(f"{VELOCITY_FEATURE} cannot be negative, got {velocity}")
        last = None if self.velocity is None else self.velocity.last_ts
        if last is not None and ts < last:
            raise ValueError(f"{VELOCITY_FEATURE} at ts {ts} is older than the last one ({last})")
        return None if ts == last else velocity  # equal ts: duplicate delivery

    # -- applying ----------------------------------------------------------------------------------
    def apply(self, ev: Evidence, params: AssessorParams, basis: ZoneBasis) -> None:
        """Advance the clock, store the feature values and smooth every new value into its track (the
        velocity is flagged in zone C/D only when ``basis`` may alarm)."""
        ts = ev.ts
        self.now = ts if self.now is None else max(self.now, ts)
        for k, v in ev.features.items():
            old = self.features.get(k)
            if old is None or ts >= old[1]:
                self.features[k] = (v, ts)
        for ms in ev.scores:
            track = smooth(
                self.models.get(ms.model), min(ms.ratio, SMOOTH_RATIO_CAP), ts, ms.is_anomaly, params, 0.0
            )
            track.severity = ms.severity
            self.models[ms.model] = track
        if ev.signal_ratio is not None:
            sev = severity_of(ev.signal_ratio, 1.0)  # the ratio is already over its threshold
            capped = min(ev.signal_ratio, SMOOTH_RATIO_CAP)
            track = smooth(self.models.get(SIGNAL_TRACK), capped, ts, sev != "NORMAL", params, 0.0)
            track.severity = sev
            self.models[SIGNAL_TRACK] = track
        if ev.envelope:
            self.envelope_ts = ts
            for d, flag in ev.envelope.items():
                self.envelope[d] = [*self.envelope.get(d, []), flag][-ENVELOPE_N:]
        if ev.velocity is not None:
            flag = basis.alarming and classify(ev.velocity, basis).zone in UNSATISFACTORY_ZONES
            cap = VELOCITY_CAP_FACTOR * basis.limits[2] if basis.alarming else math.inf
            capped = min(ev.velocity, cap)
            self.velocity = smooth(self.velocity, capped, ts, flag, params)
            self.velocity.last = ev.velocity  # the reading itself (alarm reason), not the capped value

    def clear_persistence(self) -> None:
        """Maintenance: every condition has to persist again (k windows) before it counts."""
        for t in self.models.values():
            t.persistence.clear()
        if self.velocity is not None:
            self.velocity.persistence.clear()
        self.envelope.clear()

    # -- reading -------------------------------------------------------------------------------------
    def fresh(self, last_ts: float, params: AssessorParams) -> bool:
        return self.now is not None and self.now - last_ts <= params.stale_after_s

    def snapshot(self, params: AssessorParams, basis: ZoneBasis) -> Snapshot:
        models = {m: t for m, t in self.models.items() if self.fresh(t.last_ts, params)}
        vel = (
            self.velocity if self.velocity is not None and self.fresh(self.velocity.last_ts, params) else None
        )
        iso = None if vel is None else classify(vel.smoothed, basis)
        current = {k: v for k, (v, t) in self.features.items() if self.fresh(t, params)}
        envelope = {}
        if self.envelope_ts is not None and self.fresh(self.envelope_ts, params):
            envelope = {d: (sum(f), len(f)) for d, f in self.envelope.items()}
        return Snapshot(models, vel, iso, current, envelope)

    # -- state ---------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "now": self.now,
            "models": {m: t.to_dict() for m, t in self.models.items()},
            "velocity": None if self.velocity is None else self.velocity.to_dict(),
            "features": {k: [v, t] for k, (v, t) in self.features.items()},
            "envelope": {"ts": self.envelope_ts, "flags": {d: list(f) for d, f in self.envelope.items()}},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EvidenceState:
        models = {m: Track.from_dict(t) for m, t in d.get("models", {}).items()}
        env = d.get("envelope") or {}  # absent in states saved before issue 15
        for m in models:
            if m not in MODEL_KINDS and m != SIGNAL_TRACK:
                raise ValueError(f"unknown model {m!r} in assessor state")
        return cls(
            models=models,
            velocity=None if d.get("velocity") is None else Track.from_dict(d["velocity"]),
            features={k: (float(v[0]), float(v[1])) for k, v in d.get("features", {}).items()},
            now=d.get("now"),
            envelope={k: [bool(f) for f in v][-ENVELOPE_N:] for k, v in env.get("flags", {}).items()},
            envelope_ts=env.get("ts"),
        )
