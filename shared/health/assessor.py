"""Per-asset health assessment: scores + features in, full assessment out (pure, data time only).

:class:`HealthAssessor` keeps, for one asset, everything needed between updates and returns an
:class:`Assessment` on every :meth:`HealthAssessor.update`. It composes the pure parts:

1. **Evidence** (:mod:`shared.health.evidence`): inputs checked whole, then smoothed per model, the
   signals track and the ISO velocity (EWMA, 30 s); stale tracks (900 s) no longer count.
2. **Alarm policy** (:mod:`shared.health.policy`): persistent models, health (``health_from_scores``,
   risk, grade), the degradation excess, and the two alarm conditions (``anomaly``: observed on every
   update that moves a model or the signals track; ``iso20816``: on every update with a new velocity RMS,
   never active when the zone basis is information only, :func:`~shared.health.iso20816.basis_of`).
3. **Degradation** (:class:`~shared.health.degradation.DegradationTracker`) with ``persistent = any
   persistent model or ISO``; **prognostics** (``PrognosticsTracker``, calibrated from the baseline's
   ``{axis}_rms``) on every vibration window: trend indicators, the ``trend`` alarm (CUSUM of rms_log) and
   the RUL, whence the **maintenance window** (:func:`~shared.health.degradation.maintenance_window`).
4. **Presentation** (:func:`~shared.health.insights.build_insights`) of the fresh features (all kinds
   merged by name) vs the baseline, the models (latest ratio, persistent flag; not the signals track,
   whose evidence is in the per-signal insights), the ISO zone (only when its basis may alarm: an
   information-only zone is in ``iso`` but makes no insight) and bearing info. The anomaly alarm's
   reason is the top two insight texts.
5. **Alarms** (:class:`~shared.health.alarms.AlarmBook`): the conditions become transitions.
6. **Sensor alarm** (source :data:`SOURCE_SENSOR`, :meth:`HealthAssessor.observe_sensor`): open while
   the asset's sensor reports a fault (:mod:`shared.health.sensor`); the caller then holds the health
   instead of updating it, so a stuck or clipped sensor never reads as a machine fault.
7. **Shelving** (:mod:`shared.health.shelving`): each update or sensor observation at ``ts`` first returns
   every shelved open alarm of the asset whose shelf ran out (``unshelved`` by ``system``), stopped or not.

Resolving an alarm with a maintenance action (or :meth:`HealthAssessor.record_maintenance`)
resets the degradation index and the prognostics and clears every persistence buffer, so a fault that
survives the repair has to persist again (k windows; the CUSUM from 0) and then opens a new alarm.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from shared.health.alarms import MAINTENANCE_ACTIONS, Alarm, AlarmBook, AlarmNotFound, AlarmTransition
from shared.health.assessment import Assessment
from shared.health.baselines import Baseline, check_baseline
from shared.health.degradation import NO_WINDOW, DegradationTracker, maintenance_window
from shared.health.evidence import SIGNAL_TRACK, Evidence, EvidenceState, ModelScore, Snapshot, finite_ts
from shared.health.insights import Insight, MachineInfo, ModelStatus, build_insights
from shared.health.iso20816 import ZoneBasis, basis_of
from shared.health.machine import MACHINE_FAULT_SOURCES, Attribution, Change, change_level, hold_transmitted
from shared.health.params import AssessorParams
from shared.health.policy import (
    SOURCE_MODELS,
    SOURCE_TREND,
    Condition,
    anomaly_condition,
    degradation_excess,
    health_of,
    iso_condition,
    iso_on,
    one_alarm_per_fault,
    persistent_models,
    trend_condition,
)
from shared.health.prognostics import PrognosticsTracker, PrognosticsView, RulView, calibration_from_baseline
from shared.health.scoring import grade, ratio_to_health, risk_level
from shared.health.shelving import MAX_SHELVE_S, returns_due, shelf_limit, shelve, unshelve
from shared.messages import ACTION_CODES, AssetConfig, Score
from shared.messages.operating import OPERATING_CODE_FEATURE, code_state
from shared.topics import valid_asset_id

__all__ = ["SOURCE_TREND", "Assessment", "AssessorParams", "HealthAssessor", "ModelScore", "check_baseline"]

#: Version of :meth:`HealthAssessor.to_dict`'s layout (2: with prognostics; 1 still loads without).
STATE_VERSION = 2
NO_HEALTH = "health unknown: no model scores and no vibration velocity yet"
#: Operating states in which nothing is assessed (:mod:`shared.health.operating_state`).
NOT_RUNNING = ("stopped", "starting")
#: Alarm source of the sensor's own faults (stuck, clipped, dropped out, ...): not the machine's.
SOURCE_SENSOR = "sensor"


class HealthAssessor:
    """Health assessment of one asset over successive score/feature updates (see module doc)."""

    def __init__(
        self,
        asset_id: str,
        config: AssetConfig | None = None,
        baseline: Baseline | None = None,
        params: AssessorParams | None = None,
        id_factory: Callable[[], str] | None = None,
    ) -> None:
        if not isinstance(asset_id, str) or not valid_asset_id(asset_id):
            raise ValueError(f"invalid asset id {asset_id!r}")
        self.asset_id = asset_id
        #: The params given; :attr:`params` are these with the config's ``alarms`` block applied.
        self.base_params = params or AssessorParams()
        self.params = self.base_params
        self.machine = MachineInfo()
        #: Limits the velocity zone is judged against; default: information only (group 2 rigid).
        self.zone_basis: ZoneBasis = basis_of(None)
        self.max_shelve_s = MAX_SHELVE_S  # the longest shelf: the config's alarms.max_shelve_s
        self._alarms = AlarmBook(id_factory=id_factory, **self.params.alarm_lifecycle())
        self.set_config(config)
        self.baseline: dict[str, dict[str, float]] | None = check_baseline(baseline)
        self._evidence = EvidenceState()
        self._degradation = DegradationTracker(self.params.degradation)
        self._prognostics = PrognosticsTracker(self.params.prognostics)
        self._prognostics.calibrate(calibration_from_baseline(self.baseline))

    # -- configuration -------------------------------------------------------------------------
    def set_config(self, config: AssetConfig | None) -> None:
        """Apply an asset configuration (speed, bearing, ``iso`` zone basis, ``alarms`` lifecycle)."""
        if config is None:
            return
        if not isinstance(config, AssetConfig):
            raise ValueError(f"config must be an AssetConfig, got {type(config).__name__}")
        if config.asset_id != self.asset_id:
            raise ValueError(f"config is for asset {config.asset_id!r}, not {self.asset_id!r}")
        basis = basis_of(config.iso)  # validates
        alarms, shelf = shelf_limit(config.alarms)  # max_shelve_s is not an AssessorParams setting
        params = self.base_params.with_alarm_settings(alarms)  # validates
        self.machine = MachineInfo.from_config(config)
        self.zone_basis, self.params, self.max_shelve_s = basis, params, shelf
        self._alarms.configure(**params.alarm_lifecycle())  # from the next update on

    def set_baseline(self, baseline: Baseline | None) -> None:
        """Baseline statistics per feature name: ``{"mean", "std", "min"?, "max"?, "median"?, ...}`` (None:
        none); its ``{axis}_rms`` level calibrates the prognostics (a new level restarts them)."""
        self.baseline = check_baseline(baseline)
        self._prognostics.calibrate(calibration_from_baseline(self.baseline))

    # -- updates ---------------------------------------------------------------------------------
    def update(
        self,
        ts: float,
        scores: Iterable[ModelScore | Score] = (),
        features: Mapping[str, float] | None = None,
        follows: Attribution | None = None,
        operating: str | None = None,
    ) -> Assessment:
        """Ingest the scores and/or feature values observed at data time ``ts`` (s) and return the
        assessment. All inputs are validated before any state changes (ValueError). ``follows``: the
        change's role in its machine (:mod:`shared.health.machine`); a ``transmitted`` change opens no
        machine-fault alarm and says so first among the insights. ``operating``: the asset's operating
        state (the vectors' ``operating_state``, or its code in ``features``; None: assessed as running)."""
        if features is not None and OPERATING_CODE_FEATURE in features:  # the health join carries it
            operating = operating or code_state(features[OPERATING_CODE_FEATURE])
            features = {k: v for k, v in features.items() if k != OPERATING_CODE_FEATURE}
        ev = self._evidence.collect(ts, scores, features, self.baseline, self.params)
        back = returns_due(self._alarms.open_alarms(self.asset_id), ev.ts)  # every shelf that ran out
        if operating in NOT_RUNNING:
            return self._not_running(ev.ts, operating, back)
        self._evidence.apply(ev, self.params, self.zone_basis)
        snap = self._evidence.snapshot(self.params, self.zone_basis)
        persistent = persistent_models(snap.models, self.params)
        health = health_of(snap, persistent)
        condition_on = bool(persistent) or iso_on(snap)
        self._degradation.update(ev.ts, health, condition_on, degradation_excess(snap, persistent))
        prog = self._prognostics.update(ev.ts, features)  # None: no vibration window in this update
        insights = self._insights(snap)
        if follows is not None and follows.role == "transmitted":
            insights = [Insight(follows.reason, "WARNING", "machine", follows.lag_s or 0.0, 1e9), *insights]
        opened = {a.source for a in self._alarms.open_alarms(self.asset_id)}
        conditions = self._conditions(ev, snap, persistent, insights, prog, opened)
        conditions = hold_transmitted(one_alarm_per_fault(conditions, opened), opened, follows)
        transitions = back + [t for c in conditions for t in self._observe(ev.ts, c)]
        result = self._assessment(ev.ts, health, snap, insights, transitions)
        result.machine_role, result.operating_state = follows, operating
        return result

    def _not_running(self, ts: float, operating: str, back: list[AlarmTransition]) -> Assessment:
        """A stopped or starting asset is not assessed: its scores and features leave the evidence,
        degradation and prognostics as they were, no alarm condition is observed (a stop opens no alarm and
        clears none; only shelves run out: ``back``), no ISO zone, the health unknown, saying why."""
        snap = self._evidence.snapshot(self.params, self.zone_basis)
        result = self._assessment(ts, None, snap, [], back)
        result.iso, result.operating_state = None, operating
        result.maintenance_explanation = f"{operating}: no anomaly assessment"
        return result

    def change(self) -> Change | None:
        """The asset's open machine-fault change (its earliest open anomaly, trend or ISO alarm) with
        its size now (:func:`~shared.health.machine.change_level`); None when none is open."""
        opened = [
            a.opened_at for a in self._alarms.open_alarms(self.asset_id) if a.source in MACHINE_FAULT_SOURCES
        ]
        level = self.change_level() if opened else None
        return None if level is None else Change(self.asset_id, min(opened), *level)

    def change_level(self) -> tuple[float, str] | None:
        """The size of the asset's change now, times its own normal, and its basis."""
        view = self._prognostics.last_view
        ratios = {m: t.smoothed for m, t in self._evidence.models.items()}
        return change_level({} if view is None else view.indicators, ratios)

    def _insights(self, snap: Snapshot) -> list[Insight]:
        statuses = [
            ModelStatus(model=m, ratio=t.last, is_anomaly=t.persistence.on, severity=t.severity)
            for m, t in sorted(snap.models.items())
            if m != SIGNAL_TRACK  # its evidence is already in the per-signal insights
        ]
        p = self.params
        return build_insights(
            snap.features,
            self.baseline,
            statuses,
            snap.iso if snap.iso is not None and snap.iso.alarming else None,  # information: no insight
            self.machine,
            p.max_insights,
            z_min=p.z_min,
            envelope_snr_min=p.envelope_snr_min,
            envelope_counts=snap.envelope,  # bearing-defect evidence per window (k of n)
        )

    def _conditions(
        self,
        ev: Evidence,
        snap: Snapshot,
        persistent: list[str],
        insights: list[Insight],
        prog: PrognosticsView | None,
        opened: set[str],
    ) -> list[Condition]:
        """The alarm conditions observed (:mod:`shared.health.policy`); ``opened``: open alarms' sources."""
        out: list[Condition] = []
        if ev.scored:
            holding = self._holding(snap) if SOURCE_MODELS in opened else []
            out.append(anomaly_condition(snap.models, persistent or holding, insights))
        velocity = self._evidence.velocity
        if ev.velocity is not None and velocity is not None:
            out.append(iso_condition(velocity, snap.iso, iso_on(snap), self.zone_basis))
        if prog is not None:
            out.append(trend_condition(prog))
        return out

    def _holding(self, snap: Snapshot) -> list[str]:
        """Hysteresis of the open anomaly alarm (called only then): models whose smoothed ratio is still at
        or above ``alarm_clear_ratio`` (0.9, below the 1.0 it opened at) keep it on. Without a deadband an
        alarm auto-cleared on 10 unflagged windows with the smoothed ratio still at 1.07 and opened again
        on the next 3 flags (tests/test_e2e_health.py: a second alarm 20 s after the first cleared)."""
        level = self.params.alarm_clear_ratio
        return sorted(m for m, t in snap.models.items() if t.smoothed >= level)

    def _observe(self, ts: float, c: Condition) -> list[AlarmTransition]:
        a, book = self.asset_id, self._alarms
        return book.observe(a, c.source, ts, c.active, c.severity, c.reason, c.models, c.magnitude)

    def _assessment(
        self,
        ts: float,
        health: float | None,
        snap: Snapshot,
        insights: list[Insight],
        transitions: list[AlarmTransition],
    ) -> Assessment:
        di, trend = self._degradation.di, self._degradation.trend_per_day
        view = self._prognostics.last_view  # None: no vibration window yet (e.g. a readings-only asset)
        rul = RulView("no_degradation_trend", NO_WINDOW) if view is None else view.rul
        window, explanation = maintenance_window(rul) if health is not None else (None, NO_HEALTH)
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
            iso=snap.iso,
            insights=insights,
            alarm_events=transitions,
            open_alarms=self._alarms.open_alarms(self.asset_id),
            models=self._models_view(snap),
            rul=rul,
            indicators={} if view is None else dict(view.indicators),
        )

    def _models_view(self, snap: Snapshot) -> dict[str, dict[str, Any]]:
        """Every model track (fresh or not): smoothed and latest ratio, its health, flags."""
        return {
            m: {
                "ratio": t.smoothed,
                "last_ratio": t.last,
                "health": float(ratio_to_health(t.smoothed)),
                "persistent": t.persistence.on,
                "severity": t.severity,
                "last_ts": t.last_ts,
                "fresh": m in snap.models,
            }
            for m, t in sorted(self._evidence.models.items())
        }

    def observe_sensor(self, ts: float, fault: bool, reason: str = "") -> list[AlarmTransition]:
        """The sensor alarm's condition at data time ``ts`` (WARNING; opened on the first fault,
        cleared after ``clear_windows`` observations without one), after the shelves that ran out."""
        back = returns_due(self._alarms.open_alarms(self.asset_id), ts)
        return back + self._alarms.observe(self.asset_id, SOURCE_SENSOR, ts, fault, "WARNING", reason)

    def sensor_alarm_open(self) -> bool:
        return any(a.source == SOURCE_SENSOR for a in self._alarms.open_alarms(self.asset_id))

    # -- operator actions ----------------------------------------------------------------------------
    @property
    def alarms(self) -> AlarmBook:
        return self._alarms

    @property
    def degradation_index(self) -> float:
        return self._degradation.di

    def acknowledge(
        self, alarm_id: str, who: str, note: str = "", ts: float | None = None
    ) -> AlarmTransition:
        """Acknowledge an open alarm of this asset (AlarmTransitionError when not allowed)."""
        self._own(alarm_id)
        return self._alarms.acknowledge(alarm_id, who, note, ts)

    def shelve(
        self,
        alarm_id: str,
        who: str,
        reason: str,
        duration_s: float,
        ts: float | None = None,
        max_shelve_s: float | None = None,
    ) -> AlarmTransition:
        """Shelve an alarm of this asset (``ts`` default: latest observed; ``max_shelve_s``: the config's)."""
        limit = self.max_shelve_s if max_shelve_s is None else max_shelve_s
        return shelve(self._own(alarm_id), who, reason, duration_s, self._alarms._op_ts(ts), limit)

    def unshelve(self, alarm_id: str, who: str, note: str = "", ts: float | None = None) -> AlarmTransition:
        """Return a shelved alarm of this asset early (data time ``ts``, default: the latest observed)."""
        return unshelve(self._own(alarm_id), who, note, self._alarms._op_ts(ts))

    def resolve(
        self,
        alarm_id: str,
        who: str,
        note: str = "",
        action_code: str = "other",
        ts: float | None = None,
    ) -> AlarmTransition:
        """Resolve an alarm of this asset; a maintenance action code also resets degradation."""
        self._own(alarm_id)
        done = self._alarms.resolve(alarm_id, who, note, action_code, ts)
        if done.maintenance:
            self._maintenance(done.ts, action_code)
        return done

    def record_maintenance(self, action_code: str, ts: float) -> None:
        """Maintenance done without an alarm: reset degradation and persistence at data time ts."""
        if action_code not in MAINTENANCE_ACTIONS:
            raise ValueError(
                f"{action_code!r} is not a maintenance action; expected one of "
                f"{', '.join(a for a in ACTION_CODES if a in MAINTENANCE_ACTIONS)}"
            )
        self._maintenance(finite_ts(ts), action_code)

    def _own(self, alarm_id: str) -> Alarm:
        alarm = self._alarms.get(alarm_id)
        if alarm.asset_id != self.asset_id:
            raise AlarmNotFound(f"alarm {alarm_id} belongs to asset {alarm.asset_id}")
        return alarm

    def _maintenance(self, ts: float, action_code: str) -> None:
        self._degradation.reset(ts, action_code)
        self._prognostics.reset()
        self._evidence.clear_persistence()

    # -- state ---------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state (not params, config or baseline: pass those to from_dict)."""
        return {
            "version": STATE_VERSION,
            "asset_id": self.asset_id,
            **self._evidence.to_dict(),
            "degradation": self._degradation.to_dict(),
            "prognostics": self._prognostics.to_dict(),
            "alarms": self._alarms.to_dict(),
        }

    @classmethod
    def from_dict(
        cls,
        d: Mapping[str, Any],
        config: AssetConfig | None = None,
        baseline: Baseline | None = None,
        params: AssessorParams | None = None,
        id_factory: Callable[[], str] | None = None,
    ) -> HealthAssessor:
        if d.get("version") not in (1, STATE_VERSION):  # 1: saved before prognostics (a fresh tracker)
            raise ValueError(f"unsupported assessor state version {d.get('version')!r}")
        a = cls(d["asset_id"], config=config, baseline=baseline, params=params, id_factory=id_factory)
        a._evidence = EvidenceState.from_dict(d)
        a._degradation = DegradationTracker.from_dict(d["degradation"], a.params.degradation)
        a._alarms = AlarmBook.from_dict(d["alarms"], id_factory=id_factory)
        a._alarms.configure(**a.params.alarm_lifecycle())  # the params given now rule, not the saved ones
        if "prognostics" in d:
            a._prognostics = PrognosticsTracker.from_dict(d["prognostics"], a.params.prognostics)
            # a new level restarts it; no baseline yet (restored before the announcements) pauses it
            a._prognostics.calibrate(calibration_from_baseline(a.baseline))
        return a
