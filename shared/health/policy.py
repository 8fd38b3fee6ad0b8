"""Alarm policy: which evidence is alarm-worthy, how bad it is, and what health it implies (pure).

Ratios are ``anomaly_score / threshold`` (dimensionless); velocities are mm/s.

* **Persistent model** (:func:`persistent_models`): its k-of-n persistence is on *and* either its
  smoothed ratio is at least ``alarm_min_smoothed_ratio`` (1.0: the EWMA is at its threshold) or
  its latest ratio at least ``alarm_fast_ratio`` (2.0). A brief marginal excursion of the scorers'
  10-window mean on healthy data therefore does not alarm, while a gross fault alarms after k
  windows.
* **Health** (:func:`health_of`): :func:`~shared.health.scoring.health_from_scores` of the fresh
  smoothed ratios, except that a persistent model counts with its latest ratio (capped at
  :data:`~shared.health.evidence.SMOOTH_RATIO_CAP`) when that is higher, so health and alarm never
  disagree; with the zone of the smoothed velocity when its basis may alarm (confirmed ISO 20816-3
  or custom limits; an information-only zone never lowers the health). None while neither is known.
* **Degradation excess** (:func:`degradation_excess`): ``max(smoothed ratio - 1 over persistent
  models, v_smoothed / (B/C boundary) - 1 when the ISO condition is on)``.
* **Anomaly alarm** (:func:`anomaly_condition`, source :data:`SOURCE_MODELS`): on while any fresh
  model is persistent (once open, also while a model's smoothed ratio is at least
  ``alarm_clear_ratio``, 0.9: hysteresis, see ``HealthAssessor._holding``; one alarm per asset
  however many models agree; the models are listed).
  CRITICAL when a persistent model's smoothed ratio is at least
  :data:`shared.messages.CRITICAL_RATIO` or its latest score says CRITICAL; else WARNING. The
  reason is the top :data:`REASON_INSIGHTS` insight texts.
* **ISO alarm** (:func:`iso_condition`, source :data:`SOURCE_ISO`): on while the raw velocity was in
  zone C or D in k of the last n windows; CRITICAL when the smoothed velocity is in zone D. Only
  with an alarming basis (:class:`~shared.health.iso20816.ZoneBasis`): never on for a machine whose
  ISO applicability was not confirmed and that has no custom limits.
* **Trend alarm** (:func:`trend_condition`, source :data:`SOURCE_TREND`, WARNING): the early warning of
  :class:`~shared.health.prognostics.PrognosticsTracker`, on from a CUSUM alarm of ``rms_log`` until
  the CUSUM is back at 0; observed on every update that carries a vibration window. It does not open
  while an anomaly or ISO alarm is open (:func:`one_alarm_per_fault`): one fault, one alarm.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace

from shared.health.evidence import SMOOTH_RATIO_CAP, Snapshot, Track
from shared.health.insights import Insight
from shared.health.iso20816 import DAMAGE_ZONE, ZoneBasis, ZoneResult, classify
from shared.health.params import AssessorParams
from shared.health.prognostics import PrognosticsView
from shared.health.scoring import health_from_scores
from shared.messages import CRITICAL_RATIO, WARNING_RATIO

#: Alarm source of the models (and the signals track).
SOURCE_MODELS = "anomaly"
#: Alarm source of the ISO 20816-3 velocity zone.
SOURCE_ISO = "iso20816"
#: Alarm source of the early warning on the trend indicator (CUSUM of rms_log).
SOURCE_TREND = "trend"
#: Insight texts that make an alarm's reason.
REASON_INSIGHTS = 2


@dataclass(frozen=True)
class Condition:
    """One alarm source's persistent condition at this update (see :meth:`AlarmBook.observe`)."""

    source: str
    active: bool
    severity: str
    reason: str
    models: tuple[str, ...] = ()
    #: How bad (>= 0, the source's unit; :meth:`AlarmBook.observe`): the anomaly alarm's largest smoothed
    #: ratio, the ISO alarm's smoothed velocity (mm/s); None: the source has none.
    magnitude: float | None = None


def persistent_models(models: Mapping[str, Track], params: AssessorParams) -> list[str]:
    """The fresh models in an alarm-worthy condition (sorted by name)."""
    return sorted(
        m
        for m, t in models.items()
        if t.persistence.on
        and (t.smoothed >= params.alarm_min_smoothed_ratio or t.last >= params.alarm_fast_ratio)
    )


def health_of(snap: Snapshot, persistent: Sequence[str]) -> float | None:
    """Health 0..100 of the fresh evidence (module doc), None while nothing is known."""
    ratios = {m: t.smoothed for m, t in snap.models.items()}
    for m in persistent:
        ratios[m] = max(ratios[m], min(snap.models[m].last, SMOOTH_RATIO_CAP))
    zone = snap.iso.zone if snap.iso is not None and snap.iso.alarming else None
    if not ratios and zone is None:
        return None
    return health_from_scores(ratios, zone)


def iso_on(snap: Snapshot) -> bool:
    """The ISO condition: the fresh velocity track's persistence (zone C/D in k of n windows), with a
    basis that may alarm."""
    return (
        snap.velocity is not None
        and snap.velocity.persistence.on
        and snap.iso is not None
        and snap.iso.alarming
    )


def degradation_excess(snap: Snapshot, persistent: Sequence[str]) -> float:
    """Severity excess for :class:`~shared.health.degradation.DegradationTracker` (module doc); 0
    when nothing is persistent."""
    excess = max((snap.models[m].smoothed - WARNING_RATIO for m in persistent), default=0.0)
    if iso_on(snap) and snap.iso is not None:
        excess = max(excess, snap.iso.velocity_mm_s / snap.iso.limits[1] - 1.0)
    return excess


def one_alarm_per_fault(conditions: Sequence[Condition], open_sources: Collection[str]) -> list[Condition]:
    """One fault, one alarm: while an anomaly or ISO alarm is open the trend condition does not open a
    second alarm for the same machine (its evidence is in the RUL); an open trend alarm runs its course."""
    if SOURCE_TREND in open_sources or not {SOURCE_MODELS, SOURCE_ISO} & set(open_sources):
        return list(conditions)
    return [replace(c, active=False) if c.source == SOURCE_TREND else c for c in conditions]


def anomaly_condition(
    models: Mapping[str, Track], persistent: Sequence[str], insights: Sequence[Insight]
) -> Condition:
    """The anomaly alarm's condition (module doc)."""
    if not persistent:
        return Condition(SOURCE_MODELS, False, "WARNING", "", ())
    critical = any(
        models[m].smoothed >= CRITICAL_RATIO or models[m].severity == "CRITICAL" for m in persistent
    )
    if insights:
        reason = "; ".join(i.text for i in insights[:REASON_INSIGHTS])
    else:
        reason = "Persistent anomaly on " + ", ".join(persistent)
    severity = "CRITICAL" if critical else "WARNING"
    magnitude = max(models[m].smoothed for m in persistent)
    return Condition(SOURCE_MODELS, True, severity, reason, tuple(persistent), max(0.0, magnitude))


def iso_condition(velocity: Track, smoothed: ZoneResult | None, active: bool, basis: ZoneBasis) -> Condition:
    """The ISO alarm's condition from the velocity track just updated (its latest raw value names the
    zone and its basis in the reason) and the zone of the smoothed fresh velocity (severity); never
    active on a basis that may not alarm."""
    raw = classify(velocity.last, basis)
    reason = (
        f"Vibration velocity {velocity.last:.1f} mm/s (zone {raw.zone}, {basis.text}); zone C or D in "
        f"{velocity.persistence.count} of the last {velocity.persistence.n} windows"
    )
    active = active and basis.alarming
    severity = "CRITICAL" if smoothed is not None and smoothed.zone == DAMAGE_ZONE else "WARNING"
    magnitude = None if smoothed is None else max(0.0, smoothed.velocity_mm_s)
    return Condition(SOURCE_ISO, active, severity, reason, (), magnitude)


def trend_condition(view: PrognosticsView) -> Condition:
    """The trend alarm's condition (module doc); its reason states the CUSUM alarm's numbers."""
    return Condition(SOURCE_TREND, view.trend_on, "WARNING", view.trend_reason)
