"""Per-asset health assessment: scores + features in, full assessment out (pure, data time only).

:class:`HealthAssessor` keeps, for one asset, everything needed between updates and returns an
:class:`Assessment` on every :meth:`HealthAssessor.update`:

1. **Smoothing** (per model, and the ISO velocity): exponentially weighted mean over data time,
   ``x_s <- x_s + (1 - exp(-dt / TAU)) * (x - x_s)`` with ``TAU = smoothing_tau_s`` (30 s); the
   first value, or the first after a stale gap, starts it. This keeps single noisy windows from
   moving the health score (the scorers' own rolling mean is short).
2. **Staleness**: a model / feature / velocity not updated for ``stale_after_s`` (900 s) of data
   time no longer counts (a stopped scorer must not freeze the health or keep an alarm open).
3. **Health** = :func:`shared.health.scoring.health_from_scores` of the smoothed ratios (a model in
   an alarm-worthy condition, step 4/6, counts with its latest ratio when that is higher)
   (``anomaly_score / threshold``) and the ISO 20816-3 zone of the smoothed velocity RMS
   (``velocity_rms_mm_s``); None while neither is known. Risk and grade from health.
4. **Persistence**: per model, the scorer's pointwise ``is_anomaly`` through k-of-n
   (:class:`~shared.health.alarms.Persistence`, 3 of 5) *and* either a smoothed ratio of at least
   ``alarm_min_smoothed_ratio`` (1.0: the model's EWMA score is at its threshold) or a latest
   ratio of at least ``alarm_fast_ratio`` (1.5). A brief marginal excursion of the scorers' 10-window mean on
   healthy data therefore does not alarm, while a gross fault alarms after k windows; for ISO,
   "raw velocity in zone C or D".
5. **Degradation**: :class:`~shared.health.degradation.DegradationTracker` with
   ``persistent = any persistent model or ISO``, ``excess = max(smoothed ratio - 1 over persistent
   models, v_smoothed / (B/C boundary) - 1 if ISO persistent)``.
6. **Alarms** (one :class:`~shared.health.alarms.AlarmBook`): source ``"anomaly"`` = any fresh
   model persistent (one alarm per asset however many models agree; the models are listed on it),
   observed on every update that carries scores; source ``"iso20816"`` = ISO persistence, observed
   on every update that carries ``velocity_rms_mm_s``. Severity CRITICAL when a persistent model's
   smoothed ratio is >= 2 (the scorers' CRITICAL level) or its latest score says CRITICAL / when
   the smoothed zone is D; else WARNING.
7. **Insights**: :func:`~shared.health.insights.build_insights` of the fresh features (all kinds
   merged by name) vs the baseline, models (latest reported ratio, persistent flag), ISO, bearing
   info. The alarm reason is the top two insight texts.
8. **Maintenance window**: :func:`~shared.health.degradation.maintenance_window_days`.

Resolving an alarm with a maintenance action (or :meth:`HealthAssessor.record_maintenance`)
resets the degradation index and clears every persistence buffer, so a fault that survives the
repair has to persist again (k windows) and then opens a new alarm.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from shared.health.alarms import (
    ACTION_CODES,
    MAINTENANCE_ACTIONS,
    Alarm,
    AlarmBook,
    AlarmEvent,
    AlarmTransitionError,
    Persistence,
)
from shared.health.degradation import DegradationParams, DegradationTracker, maintenance_window_days
from shared.health.insights import Insight, MachineInfo, ModelStatus, build_insights
from shared.health.iso20816 import ZoneResult, iso_zone, zone_limits
from shared.health.scoring import grade, health_from_scores, ratio_to_health, risk_level
from shared.messages import AssetConfig, Score
from shared.topics import MODEL_KINDS, valid_asset_id

SOURCE_MODELS = "anomaly"
#: Values are capped before smoothing so one huge excursion cannot hold the smoothed value up long
#: after the machine is back to normal: ratio 5 already means health 0, and 1.5 × the C/D velocity
#: boundary is deep in zone D.
SMOOTH_RATIO_CAP = 5.0
VELOCITY_CAP_FACTOR = 1.5
#: Pseudo-model: the raw readings' largest deviation from their calibrated baseline.
SIGNAL_TRACK = "signals"
READING_SIGNALS = ("voltage_v", "current_a", "power_factor", "vibration_g")
SOURCE_ISO = "iso20816"
VELOCITY_FEATURE = "velocity_rms_mm_s"
STATE_VERSION = 1


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
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(float(v)):
                raise ValueError(f"{name} of model {self.model} must be a finite number, got {v!r}")
        if self.threshold <= 0:
            raise ValueError(f"threshold of model {self.model} must be > 0, got {self.threshold}")
        if not isinstance(self.is_anomaly, bool):
            raise ValueError(f"is_anomaly of model {self.model} must be a bool, got {self.is_anomaly!r}")
        if self.severity not in ("NORMAL", "WARNING", "CRITICAL"):
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


@dataclass(frozen=True)
class AssessorParams:
    smoothing_tau_s: float = 30.0
    stale_after_s: float = 900.0
    persistence_k: int = 3
    persistence_n: int = 5
    clear_windows: int = 10
    z_min: float = 3.0
    envelope_snr_min: float = 3.0
    max_insights: int = 4
    # A model counts as persistently anomalous only while its smoothed ratio is also at least this
    # (a lone excursion of the scorer's short rolling mean must not raise an alarm on healthy data).
    alarm_min_smoothed_ratio: float = 1.0
    # ... or while its latest (10-window mean) ratio is at least this: a clear fault alarms after k
    # windows without waiting for the 30 s smoothing. Healthy data measured here peaks near 1.3.
    alarm_fast_ratio: float = 1.5
    # The "signals" track: ratio = max_j |x_j − mean_j| / std_j / signal_z_threshold over the raw
    # readings (voltage, current, power factor, vibration) against their calibrated baseline. Forest
    # scores saturate near twice their threshold however extreme a reading is; this keeps health
    # proportional to how far the machine is from normal (4σ → ratio 1, 8σ → ratio 2).
    signal_z_threshold: float = 4.0
    degradation: DegradationParams = field(default_factory=DegradationParams)

    def __post_init__(self) -> None:
        for name in ("smoothing_tau_s", "stale_after_s", "z_min", "envelope_snr_min"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValueError(f"AssessorParams.{name} must be a positive number, got {v!r}")
        Persistence(self.persistence_k, self.persistence_n)  # validates k, n
        for name in ("clear_windows", "max_insights"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (1 if name == "clear_windows" else 0):
                raise ValueError(f"AssessorParams.{name} must be a non-negative integer, got {v!r}")


@dataclass
class _Track:
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
    def from_dict(cls, d: dict[str, Any]) -> _Track:
        return cls(
            smoothed=float(d["smoothed"]),
            last=float(d["last"]),
            last_ts=float(d["last_ts"]),
            severity=str(d.get("severity", "NORMAL")),
            persistence=Persistence.from_dict(d["persistence"]),
        )


@dataclass
class Assessment:
    """The full health assessment of one asset at data time ``ts`` (seconds)."""

    asset_id: str
    ts: float
    health_score: float | None
    risk_level: str | None
    grade: str | None
    degradation_index: float
    health_trend_per_day: float | None
    maintenance_window_days: float | None
    maintenance_explanation: str
    iso: ZoneResult | None
    insights: list[Insight]
    alarm_events: list[AlarmEvent]
    open_alarms: list[Alarm]
    models: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        d["iso"] = None if self.iso is None else self.iso.to_dict()
        d["insights"] = [i.to_dict() for i in self.insights]
        d["alarm_events"] = [e.to_dict() for e in self.alarm_events]
        d["open_alarms"] = [a.to_dict() for a in self.open_alarms]
        return d


def _finite_ts(ts: Any) -> float:
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(float(ts)):
        raise ValueError(f"ts must be a finite number of seconds (data time), got {ts!r}")
    return float(ts)


class HealthAssessor:
    """Health assessment of one asset over successive score/feature updates (see module doc)."""

    def __init__(
        self,
        asset_id: str,
        config: AssetConfig | None = None,
        baseline: Mapping[str, Mapping[str, float]] | None = None,
        params: AssessorParams | None = None,
        id_factory: Callable[[], str] | None = None,
    ) -> None:
        if not isinstance(asset_id, str) or not valid_asset_id(asset_id):
            raise ValueError(f"invalid asset id {asset_id!r}")
        self.asset_id = asset_id
        self.params = params or AssessorParams()
        self.machine = MachineInfo()
        self.iso_group = 2
        self.foundation = "rigid"
        self.set_config(config)
        self.baseline: dict[str, dict[str, float]] | None = None
        self.set_baseline(baseline)
        self._models: dict[str, _Track] = {}
        self._velocity: _Track | None = None
        self._features: dict[str, tuple[float, float]] = {}  # name -> (value, data ts)
        self._degradation = DegradationTracker(self.params.degradation)
        self._alarms = AlarmBook(clear_windows=self.params.clear_windows, id_factory=id_factory)
        self._now: float | None = None

    # -- configuration -------------------------------------------------------------------------
    def set_config(self, config: AssetConfig | None) -> None:
        """Apply an asset configuration (speed, bearing, ISO group and foundation)."""
        if config is None:
            return
        if not isinstance(config, AssetConfig):
            raise ValueError(f"config must be an AssetConfig, got {type(config).__name__}")
        if config.asset_id != self.asset_id:
            raise ValueError(f"config is for asset {config.asset_id!r}, not {self.asset_id!r}")
        zone_limits(config.iso_group, config.foundation)  # validates
        self.machine = MachineInfo.from_config(config)
        self.iso_group = config.iso_group
        self.foundation = config.foundation

    def set_baseline(self, baseline: Mapping[str, Mapping[str, float]] | None) -> None:
        """Baseline statistics per feature name: ``{"mean", "std", "min"?, "max"?}``."""
        if baseline is None:
            self.baseline = None
            return
        if not isinstance(baseline, Mapping):
            raise ValueError(f"baseline must be a mapping name -> stats, got {type(baseline).__name__}")
        out: dict[str, dict[str, float]] = {}
        for name, stats in baseline.items():
            if not isinstance(stats, Mapping) or "mean" not in stats or "std" not in stats:
                raise ValueError(f"baseline of {name!r} must have 'mean' and 'std'")
            entry: dict[str, float] = {}
            for k, v in stats.items():
                if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(float(v)):
                    raise ValueError(f"baseline {k} of {name!r} must be a finite number, got {v!r}")
                entry[str(k)] = float(v)
            if entry["std"] < 0:
                raise ValueError(f"baseline std of {name!r} must be >= 0, got {entry['std']}")
            out[str(name)] = entry
        self.baseline = out

    # -- helpers ---------------------------------------------------------------------------------
    def _smooth(
        self, track: _Track | None, value: float, ts: float, flag: bool, prior: float | None = None
    ) -> _Track:
        """EWMA over data time (module doc, step 1); returns the (possibly new) track.

        A new track starts at its first value, or, with a ``prior``, at the prior moved one
        second's worth towards the first value (model ratios start from 0, "as calibrated": a
        single high first score of a freshly calibrated model must not dent the health)."""
        p = self.params
        if track is None or ts - track.last_ts > p.stale_after_s:
            start = value
            if prior is not None:
                start = prior + (1.0 - math.exp(-1.0 / p.smoothing_tau_s)) * (value - prior)
            track = _Track(start, value, ts, Persistence(p.persistence_k, p.persistence_n))
        else:
            alpha = 1.0 - math.exp(-(ts - track.last_ts) / p.smoothing_tau_s)
            track.smoothed += alpha * (value - track.smoothed)
            track.last, track.last_ts = value, ts
        track.persistence.push(flag)
        return track

    def _fresh(self, last_ts: float) -> bool:
        return self._now is not None and self._now - last_ts <= self.params.stale_after_s

    # -- updates ---------------------------------------------------------------------------------
    def update(
        self,
        ts: float,
        scores: Iterable[ModelScore | Score] = (),
        features: Mapping[str, float] | None = None,
    ) -> Assessment:
        """Ingest the scores and/or feature values observed at data time ``ts`` (s) and return
        the assessment. All inputs are validated before any state changes (ValueError)."""
        ts = _finite_ts(ts)
        new_scores: list[ModelScore] = []
        seen: set[str] = set()
        for s in scores:
            ms = ModelScore.from_message(s) if isinstance(s, Score) else s
            if not isinstance(ms, ModelScore):
                raise ValueError(f"scores must be ModelScore or Score, got {type(s).__name__}")
            if ms.model in seen:
                raise ValueError(f"two scores for model {ms.model} in one update")
            seen.add(ms.model)
            track = self._models.get(ms.model)
            if track is not None and ts < track.last_ts:
                raise ValueError(
                    f"score of model {ms.model} at ts {ts} is older than the last one ({track.last_ts})"
                )
            if track is None or ts > track.last_ts:  # equal ts: duplicate delivery, ignored
                new_scores.append(ms)
        feats: dict[str, float] = {}
        if features is not None:
            if not isinstance(features, Mapping):
                raise ValueError(f"features must be a mapping name -> value, got {type(features).__name__}")
            for k, v in features.items():
                if not isinstance(k, str) or not k:
                    raise ValueError(f"feature names must be non-empty strings, got {k!r}")
                if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(float(v)):
                    raise ValueError(f"feature {k!r} must be a finite number, got {v!r}")
                feats[k] = float(v)
        velocity = feats.get(VELOCITY_FEATURE)
        if velocity is not None:
            if velocity < 0:
                raise ValueError(f"{VELOCITY_FEATURE} cannot be negative, got {velocity}")
            if self._velocity is not None and ts < self._velocity.last_ts:
                raise ValueError(
                    f"{VELOCITY_FEATURE} at ts {ts} is older than the last one ({self._velocity.last_ts})"
                )
            if self._velocity is not None and ts == self._velocity.last_ts:
                velocity = None  # duplicate delivery

        signal_ratio = self._signal_ratio(feats)
        if signal_ratio is not None:
            st = self._models.get(SIGNAL_TRACK)
            if st is not None and ts <= st.last_ts:
                signal_ratio = None  # duplicate or late reading: already counted

        # --- apply ---------------------------------------------------------------------------
        self._now = ts if self._now is None else max(self._now, ts)
        for k, v in feats.items():
            old = self._features.get(k)
            if old is None or ts >= old[1]:
                self._features[k] = (v, ts)
        for ms in new_scores:
            ratio = min(ms.ratio, SMOOTH_RATIO_CAP)
            track = self._smooth(self._models.get(ms.model), ratio, ts, ms.is_anomaly, prior=0.0)
            track.severity = ms.severity
            self._models[ms.model] = track
        if signal_ratio is not None:
            track = self._smooth(
                self._models.get(SIGNAL_TRACK),
                min(signal_ratio, SMOOTH_RATIO_CAP),
                ts,
                signal_ratio >= 1.0,
                prior=0.0,
            )
            track.severity = "CRITICAL" if signal_ratio >= 2 else "WARNING" if signal_ratio >= 1 else "NORMAL"
            self._models[SIGNAL_TRACK] = track
        if velocity is not None:
            raw_zone = iso_zone(velocity, self.iso_group, self.foundation).zone
            capped = min(velocity, VELOCITY_CAP_FACTOR * zone_limits(self.iso_group, self.foundation)[2])
            self._velocity = self._smooth(self._velocity, capped, ts, raw_zone in ("C", "D"))
        scored = bool(new_scores) or signal_ratio is not None
        return self._assess(ts, scored=scored, velocity_seen=velocity is not None)

    def _signal_ratio(self, feats: Mapping[str, float]) -> float | None:
        """Largest |z| of the raw reading signals against the baseline, over ``signal_z_threshold``."""
        if not self.baseline:
            return None
        zs = []
        for name in READING_SIGNALS:
            b = self.baseline.get(name)
            if name in feats and b is not None:
                scale = max(b["std"], 1e-3 * abs(b["mean"]), 1e-9)
                zs.append(abs(feats[name] - b["mean"]) / scale)
        return max(zs) / self.params.signal_z_threshold if zs else None

    def _assess(self, ts: float, scored: bool, velocity_seen: bool) -> Assessment:
        fresh_models = {m: t for m, t in self._models.items() if self._fresh(t.last_ts)}
        vel = self._velocity if self._velocity is not None and self._fresh(self._velocity.last_ts) else None
        iso = None if vel is None else iso_zone(vel.smoothed, self.iso_group, self.foundation)

        persistent_models = sorted(
            m
            for m, t in fresh_models.items()
            if t.persistence.on
            and (t.smoothed >= self.params.alarm_min_smoothed_ratio or t.last >= self.params.alarm_fast_ratio)
        )
        # Health follows the smoothed ratios, except that a model in an alarm-worthy condition counts
        # with its latest ratio when that is higher: the health and the alarm never disagree.
        ratios = {m: t.smoothed for m, t in fresh_models.items()}
        for m in persistent_models:
            ratios[m] = max(ratios[m], min(fresh_models[m].last, SMOOTH_RATIO_CAP))
        health = health_from_scores(ratios, iso.zone if iso else None) if (ratios or iso) else None
        anomaly_on = bool(persistent_models)
        iso_on = vel is not None and vel.persistence.on
        excess = 0.0
        if anomaly_on:
            excess = max(fresh_models[m].smoothed - 1.0 for m in persistent_models)
        if iso_on and iso is not None:
            excess = max(excess, iso.velocity_mm_s / iso.limits[1] - 1.0)
        self._degradation.update(ts, health, anomaly_on or iso_on, excess)
        di = self._degradation.di
        trend = self._degradation.trend_per_day

        current = {k: v for k, (v, t) in self._features.items() if self._fresh(t)}
        statuses = [
            ModelStatus(model=m, ratio=t.last, is_anomaly=t.persistence.on, severity=t.severity)
            for m, t in sorted(fresh_models.items())
            if m != SIGNAL_TRACK  # its evidence is already in the per-signal insights
        ]
        insights = build_insights(
            current,
            self.baseline,
            statuses,
            iso,
            self.machine,
            self.params.max_insights,
            z_min=self.params.z_min,
            envelope_snr_min=self.params.envelope_snr_min,
        )

        events: list[AlarmEvent] = []
        if scored:
            critical = any(
                fresh_models[m].smoothed >= 2.0 or fresh_models[m].severity == "CRITICAL"
                for m in persistent_models
            )
            if insights:
                reason = "; ".join(i.text for i in insights[:2])
            else:
                reason = "Persistent anomaly on " + ", ".join(persistent_models)
            events += self._alarms.observe(
                self.asset_id,
                SOURCE_MODELS,
                ts,
                anomaly_on,
                "CRITICAL" if critical else "WARNING",
                reason if anomaly_on else "",
                persistent_models,
            )
        if velocity_seen and self._velocity is not None:
            v = self._velocity
            raw = iso_zone(v.last, self.iso_group, self.foundation)
            reason = (
                f"Vibration velocity {v.last:.1f} mm/s (ISO 20816 zone {raw.zone}); zone C or D in "
                f"{v.persistence.count} of the last {v.persistence.n} windows"
            )
            sev = "CRITICAL" if iso is not None and iso.zone == "D" else "WARNING"
            events += self._alarms.observe(self.asset_id, SOURCE_ISO, ts, iso_on, sev, reason)

        window: float | None = None
        explanation = "health unknown: no model scores and no vibration velocity yet"
        if health is not None:
            window, explanation = maintenance_window_days(health, None, di, trend)

        models_view = {
            m: {
                "ratio": t.smoothed,
                "last_ratio": t.last,
                "health": float(ratio_to_health(t.smoothed)),
                "persistent": t.persistence.on,
                "severity": t.severity,
                "last_ts": t.last_ts,
                "fresh": m in fresh_models,
            }
            for m, t in sorted(self._models.items())
        }
        return Assessment(
            asset_id=self.asset_id,
            ts=ts,
            health_score=health,
            risk_level=None if health is None else risk_level(health),
            grade=None if health is None else grade(health),
            degradation_index=di,
            health_trend_per_day=trend,
            maintenance_window_days=window,
            maintenance_explanation=explanation,
            iso=iso,
            insights=insights,
            alarm_events=events,
            open_alarms=self._alarms.open_alarms(self.asset_id),
            models=models_view,
        )

    # -- operator actions ----------------------------------------------------------------------------
    @property
    def alarms(self) -> AlarmBook:
        return self._alarms

    @property
    def degradation_index(self) -> float:
        return self._degradation.di

    def acknowledge(self, alarm_id: str, who: str, note: str = "", ts: float | None = None) -> AlarmEvent:
        """Acknowledge an open alarm of this asset (AlarmTransitionError when not allowed)."""
        self._own(alarm_id)
        return self._alarms.acknowledge(alarm_id, who, note, ts)

    def resolve(
        self,
        alarm_id: str,
        who: str,
        note: str = "",
        action_code: str = "other",
        ts: float | None = None,
    ) -> AlarmEvent:
        """Resolve an alarm of this asset; a maintenance action code also resets degradation."""
        self._own(alarm_id)
        event = self._alarms.resolve(alarm_id, who, note, action_code, ts)
        if event.maintenance:
            self._maintenance(event.ts, action_code)
        return event

    def record_maintenance(self, action_code: str, ts: float) -> None:
        """Maintenance done without an alarm: reset degradation and persistence at data time ts."""
        if action_code not in MAINTENANCE_ACTIONS:
            raise ValueError(
                f"{action_code!r} is not a maintenance action; expected one of "
                f"{', '.join(a for a in ACTION_CODES if a in MAINTENANCE_ACTIONS)}"
            )
        self._maintenance(_finite_ts(ts), action_code)

    def _own(self, alarm_id: str) -> None:
        alarm = self._alarms.get(alarm_id)
        if alarm.asset_id != self.asset_id:
            raise AlarmTransitionError(f"alarm {alarm_id} belongs to asset {alarm.asset_id}")

    def _maintenance(self, ts: float, action_code: str) -> None:
        self._degradation.reset(ts, action_code)
        for t in self._models.values():
            t.persistence.clear()
        if self._velocity is not None:
            self._velocity.persistence.clear()

    # -- state ---------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state (not params, config or baseline: pass those to from_dict)."""
        return {
            "version": STATE_VERSION,
            "asset_id": self.asset_id,
            "now": self._now,
            "models": {m: t.to_dict() for m, t in self._models.items()},
            "velocity": None if self._velocity is None else self._velocity.to_dict(),
            "features": {k: [v, t] for k, (v, t) in self._features.items()},
            "degradation": self._degradation.to_dict(),
            "alarms": self._alarms.to_dict(),
        }

    @classmethod
    def from_dict(
        cls,
        d: Mapping[str, Any],
        config: AssetConfig | None = None,
        baseline: Mapping[str, Mapping[str, float]] | None = None,
        params: AssessorParams | None = None,
        id_factory: Callable[[], str] | None = None,
    ) -> HealthAssessor:
        if d.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported assessor state version {d.get('version')!r}")
        a = cls(d["asset_id"], config=config, baseline=baseline, params=params, id_factory=id_factory)
        a._now = d.get("now")
        a._models = {m: _Track.from_dict(t) for m, t in d.get("models", {}).items()}
        for m in a._models:
            if m not in MODEL_KINDS and m != SIGNAL_TRACK:
                raise ValueError(f"unknown model {m!r} in assessor state")
        a._velocity = None if d.get("velocity") is None else _Track.from_dict(d["velocity"])
        a._features = {k: (float(v[0]), float(v[1])) for k, v in d.get("features", {}).items()}
        a._degradation = DegradationTracker.from_dict(d["degradation"], a.params.degradation)
        a._alarms = AlarmBook.from_dict(d["alarms"], id_factory=id_factory)
        return a
