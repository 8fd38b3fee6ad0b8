"""Pure translations between the contract (:mod:`shared.messages`) and the health core (:mod:`shared.health`):
model announcements → baselines, assessments → :class:`HealthUpdate`, alarm transitions → :class:`AlarmEvent`,
alarm actions and their refusals' error codes, the publish throttle and the service's own :class:`Tick`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from shared import topics
from shared.health.alarms import AlarmConflict, AlarmNotFound, AlarmTransition, AlarmTransitionError
from shared.health.assessor import Assessment, HealthAssessor
from shared.health.machine import Attribution
from shared.health.prognostics import RulView
from shared.learning.signing import ModelVerifier, UntrustedModel
from shared.messages import (
    SIGNALS,
    AlarmActionReply,
    AlarmActionRequest,
    AlarmEvent,
    AlarmState,
    ErrorCode,
    FeatureVector,
    HealthUpdate,
    InsightItem,
    MachineRoleItem,
    ModelAnnouncement,
    ModelManifest,
    Reading,
    RulItem,
)
from shared.messages.operating import state_feature
from shared.service import Publish

Baseline = dict[str, dict[str, float]]

#: Alarm state after each kind of transition (shelved, unshelved: unchanged, the alarm's own).
STATE_AFTER: dict[str, AlarmState] = {
    "opened": "ACTIVE",
    "escalated": "ACTIVE",
    "acknowledged": "ACKNOWLEDGED",
    "resolved": "RESOLVED",
}
#: Baseline statistics the assessor reads; features also give median and MAD (the prognostics' level).
BASELINE_STATS = ("mean", "std", "min", "max")
FEATURE_STATS = (*BASELINE_STATS, "median", "mad")
ALARM_SEVERITIES = ("WARNING", "CRITICAL")
#: At most one health update per asset per this many seconds of data time (unless the risk level
#: changes or an alarm transition happens): scores of every model arrive for each reading.
MIN_PUBLISH_INTERVAL_S = 1.0
#: Slack on the interval (s): data times of consecutive readings are not exactly 1 s apart.
PUBLISH_SLACK_S = 1e-3


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def baseline_from_manifest(manifest: ModelManifest) -> Baseline:
    """Per-feature ``{mean, std, min, max}`` of a model's calibration, plus the raw-signal baseline
    (``voltage_v``, ``current_a``, ``power_factor``, ``vibration_g``; absent statistics left out) and
    the envelope baseline (``env_{d}_amp``/``env_{d}_snr``: ``{n, mean, std, median, mad, p95, max}``)."""
    out: Baseline = {}
    if manifest.baseline is not None:
        for f in manifest.baseline.features:
            out[f.name] = {k: float(getattr(f, k)) for k in FEATURE_STATS}
    for name, stat in manifest.signal_baseline.items():
        values = {k: getattr(stat, k) for k in BASELINE_STATS}
        out[name] = {k: float(v) for k, v in values.items() if v is not None}
    for name, env in (manifest.envelope_baseline or {}).items():  # n, mean, std, median, mad, p95, max
        out[name] = {k: float(v) for k, v in env.model_dump().items()}
    return out


def trusted_baseline(
    ann: ModelAnnouncement, verifier: ModelVerifier | None, asset: str, kind: str
) -> Baseline:
    """The baseline of an announcement whose signature verifies for ``asset``/``kind`` (the topic's);
    ``ValueError`` with the reason otherwise (the caller keeps the baseline it had)."""
    if verifier is None:
        raise ValueError("model announcement ignored: no trusted model key (MODEL_VERIFY_KEY) configured")
    try:
        verifier.verify(ann, topic_asset=asset, topic_kind=kind)
    except UntrustedModel as exc:
        raise ValueError(f"model announcement ignored: {exc}") from None
    return baseline_from_manifest(ann.manifest)


def merged_baseline(parts: dict[str, Baseline] | None) -> Baseline | None:
    """One baseline from every model's (later models win on a shared name); None when none."""
    if not parts:
        return None
    merged: Baseline = {}
    for b in parts.values():
        merged.update(b)
    return merged


def feature_values(fv: FeatureVector) -> dict[str, float]:
    """A feature vector's model features and extras by name, and its operating state's code."""
    return dict(zip(fv.names, fv.values, strict=True)) | fv.extras | state_feature(fv.operating_state)


def reading_signals(r: Reading) -> dict[str, float]:
    """The four raw signals of a reading by name (:data:`shared.messages.SIGNALS`)."""
    return {k: float(getattr(r, k)) for k in SIGNALS}


def previous_state(t: AlarmTransition) -> AlarmState | None:
    """The alarm's state before an acknowledge (ACTIVE) or a resolve (ACKNOWLEDGED when it had been
    acknowledged, else ACTIVE); its state for (un)shelved (unchanged); None for opened and escalated."""
    if t.kind == "acknowledged":
        return "ACTIVE"
    if t.kind == "resolved":
        return "ACKNOWLEDGED" if t.alarm.get("acknowledged_at") is not None else "ACTIVE"
    return t.alarm["state"] if t.kind in ("shelved", "unshelved") else None


def to_alarm_message(asset_id: str, t: AlarmTransition) -> AlarmEvent:
    """The event of a transition: its kind, and the alarm's shelf (while shelved) and chatter fields."""
    a = t.alarm
    severity = a.get("severity", "WARNING")
    until = a.get("shelved_until")  # None: not shelved (then no shelf field is set)
    shelf = {k: a.get(k) for k in ("shelved_by", "shelve_reason")} if until is not None else {}
    return AlarmEvent(
        alarm_id=a["alarm_id"],
        asset_id=asset_id,
        state=STATE_AFTER.get(t.kind, a["state"]),
        previous=previous_state(t),
        source=a.get("source", ""),
        severity=severity if severity in ALARM_SEVERITIES else "WARNING",
        reason=a.get("reason", ""),
        opened_at=_utc(a["opened_at"]),
        ts=_utc(t.ts),
        who=t.who,
        note=t.note or None,
        action_code=t.action_code,  # type: ignore[arg-type]  # checked against ACTION_CODES
        auto_cleared=t.auto_cleared,
        transition=t.kind,
        shelved_until=None if until is None else _utc(until),
        **shelf,
        peak=a.get("peak"),
        reopens=a.get("reopens", 0),
    )


def to_health_message(asset_id: str, a: Assessment) -> HealthUpdate | None:
    """The retained health of an assessment; None while the health is unknown."""
    if a.health_score is None or a.risk_level is None or a.grade is None:
        return None
    return HealthUpdate(
        asset_id=asset_id,
        ts=_utc(a.ts),
        health_score=round(float(a.health_score), 2),
        risk_level=a.risk_level,  # type: ignore[arg-type]
        grade=a.grade,  # type: ignore[arg-type]
        degradation_index=float(a.degradation_index),
        maintenance_window_days=a.maintenance_window_days,
        maintenance_reason=a.maintenance_explanation,
        iso_zone=a.iso.zone if a.iso else None,
        velocity_rms_mm_s=a.iso.velocity_mm_s if a.iso else None,
        zone_basis=a.iso.basis if a.iso else None,
        zone_basis_text=a.iso.basis_text if a.iso else None,
        insights=[
            InsightItem(text=i.text, severity=i.severity.lower(), signal=i.signal, value=i.value)  # type: ignore[arg-type]
            for i in a.insights
        ],
        model_ratios={m: float(v["ratio"]) for m, v in a.models.items() if "ratio" in v},
        active_alarms=len(a.open_alarms),
        rul=to_rul_item(a.rul),
        indicators={k: float(v) for k, v in a.indicators.items()},
        machine=to_machine_item(a.machine_role),
    )


def to_machine_item(role: Attribution | None) -> MachineRoleItem | None:
    """The message form of the assessment's machine role (None: not grouped)."""
    if role is None or role.machine is None:
        return None
    return MachineRoleItem(
        machine=role.machine,
        role=role.role,
        reason=role.reason[:1000],
        source=role.source,
        lag_s=role.lag_s,
        followers=list(role.followers),
    )


def to_rul_item(rul: RulView | None) -> RulItem | None:
    """The message form of the assessment's RUL (data times as UTC datetimes)."""
    if rul is None:
        return None
    fields = {k: v for k, v in asdict(rul).items() if v is not None and k != "as_of"}
    fields["reason"] = rul.reason[:1000]  # the contract's bounds (a configured basis may be long)
    if rul.threshold_basis is not None:
        fields["threshold_basis"] = rul.threshold_basis[:500]
    return RulItem(**fields, as_of=None if rul.as_of is None else _utc(rul.as_of))


def alarm_publishes(asset_id: str, events: Sequence[AlarmTransition]) -> list[Publish]:
    """The alarm transitions, each on ``alarms/<asset>``."""
    return [Publish(topics.alarm(asset_id), to_alarm_message(asset_id, t)) for t in events]


def alarm_action(a: HealthAssessor, req: AlarmActionRequest) -> AlarmTransition:
    """Acknowledge, resolve (action code ``other`` when none is given), shelve (``duration_s`` required;
    the note is the reason; at most the asset config's ``alarms.max_shelve_s``) or unshelve an alarm."""
    if req.action == "ack":
        return a.acknowledge(req.alarm_id, req.who, req.note)
    if req.action == "shelve":
        if req.duration_s is None:
            raise AlarmTransitionError("shelve needs duration_s: how many seconds of data time to shelve for")
        return a.shelve(req.alarm_id, req.who, req.note, req.duration_s)
    if req.action == "unshelve":
        return a.unshelve(req.alarm_id, req.who, req.note)
    return a.resolve(req.alarm_id, req.who, req.note, req.action_code or "other")


def alarm_reply(req: AlarmActionRequest, **fields: object) -> Publish:
    """The reply to an alarm action request (``fields``: :class:`AlarmActionReply`'s)."""
    return Publish(req.reply_to, AlarmActionReply(correlation_id=req.correlation_id, **fields))  # type: ignore[arg-type]


def error_code(exc: Exception) -> ErrorCode:
    """``not_found`` (no such alarm), ``conflict`` (the alarm's state forbids it), else ``invalid``."""
    if isinstance(exc, AlarmNotFound):
        return "not_found"
    if isinstance(exc, AlarmConflict):
        return "conflict"
    return "invalid"


@dataclass
class PublishThrottle:
    """Whether an assessment's health is due for publishing (data time, per asset)."""

    min_interval_s: float = MIN_PUBLISH_INTERVAL_S
    _last: dict[str, tuple[float, str | None]] = field(default_factory=dict)

    def due(self, asset: str, ts: float, risk: str | None) -> bool:
        """``min_interval_s`` of data time since the last publish, or a different risk level."""
        last_ts, last_risk = self._last.get(asset, (float("-inf"), None))
        return ts - last_ts >= self.min_interval_s - PUBLISH_SLACK_S or risk != last_risk

    def published(self, asset: str, ts: float, risk: str | None) -> None:
        self._last[asset] = (ts, risk)

    def restore(self, asset: str, last: dict[str, Any] | None) -> None:
        """After a restart: as if never stopped (``last``: the last saved health, JSON form)."""
        if last is not None and asset not in self._last:
            self.published(asset, datetime.fromisoformat(last["ts"]).timestamp(), last["risk_level"])

    def knows(self, asset: str) -> bool:
        return asset in self._last

    def forget(self, asset: str) -> None:
        self._last.pop(asset, None)


class Tick(BaseModel):
    """The health stage's self-addressed tick (``sync/health/tick``): releases the windows whose wait is
    over inside the message pipeline; the first of each connection also republishes the last health of
    every asset (a restarted broker forgot the retained ones). ``process`` + ``n`` make every payload
    unique (the runner skips a repeated topic + payload); a tick of another process is ignored."""

    process: str
    n: int
    #: When it was published (the process's monotonic clock, s): a window whose wait was over by then
    #: is released; every part that reached the service before the tick has been handled by then.
    at: float
    republish: bool = False


# -- maintenance log entries -----------------------------------------------------------------------
#: What an operator log entry (``logs/<asset>``) does to the asset's degradation index and prognostics
#: (CUSUM, fitted path, RUL): the maintenance action it resets with (None: trend kept), and why.
LOG_RESETS: dict[str, tuple[str | None, str]] = {
    "corrective_bearing_replacement": ("bearing_replaced", "a new bearing: the old one's trend ended"),
    "corrective_alignment": ("realigned", "realignment changes the vibration level the trend rose from"),
    "corrective_balancing": ("balanced", "balancing changes the vibration level the trend rose from"),
    "corrective_electrical": ("electrical_repair", "an electrical repair removes an electrical fault"),
    "preventive_lubrication": (
        None,
        "relubrication may lower the vibration for a while but repairs no damage: the trend is kept",
    ),
    "preventive_inspection": (None, "an inspection changes nothing on the machine"),
    "preventive_cleaning": (None, "cleaning repairs no damage"),
    "observation": (None, "an observation changes nothing on the machine"),
    "other": (None, "what was done is not known: log its corrective type or resolve the alarm with it"),
}
#: Log ids remembered per asset (duplicates from QoS 1 redelivery arrive within a few messages).
SEEN_LOGS = 256


def log_reset(event_type: str) -> tuple[str | None, str]:
    """The maintenance action a log entry's ``event_type`` resets with (None: none) and why
    (:data:`LOG_RESETS`; an unknown type resets nothing)."""
    return LOG_RESETS.get(event_type, (None, f"unknown event type {event_type!r}"))


@dataclass(frozen=True)
class MaintenanceReset:
    """A reset from a log entry: its id, ``event_type`` and action, the data time it names (``logged``)
    and the data time it took effect (``applied``; None while pending), s since the epoch."""

    log_id: str
    event_type: str
    action: str
    logged: float
    applied: float | None = None

    def note(self) -> str:
        """One sentence for the health update: when the tracking restarted, why, and if late."""
        at = self.logged if self.applied is None else self.applied
        text = f"tracking restarted {_utc(at).isoformat()}: reset by {self.event_type} logged at "
        text += _utc(self.logged).isoformat()
        if self.applied is not None and self.applied > self.logged:
            text += " (entered after the data up to the restart had been assessed with the old trend)"
        return text


@dataclass
class MaintenanceLedger:
    """One asset's maintenance log entries (pure; data time). :meth:`take` decides per entry;
    entries naming a data time not yet assessed wait in ``pending`` until :meth:`due`; ``last`` is the
    reset applied last. Idempotent: a log id seen before (QoS 1 duplicate, redelivery after a restart)
    and an entry not newer than the last reset (e.g. the same replacement logged twice, or already
    reset by resolving its alarm with a maintenance code) change nothing."""

    seen: list[str] = field(default_factory=list)
    pending: list[MaintenanceReset] = field(default_factory=list)
    last: MaintenanceReset | None = None

    def take(
        self, log_id: str, event_type: str, ts: float, assessed: float | None, reset_at: float | None = None
    ) -> tuple[str, MaintenanceReset | None]:
        """``(what, reset)`` for an entry at data time ``ts``; ``assessed``: data time of the newest window
        assessed, ``reset_at``: of the assessor's last reset. ``what``: ``duplicate``, ``no_reset`` (the
        type resets nothing), ``superseded``, ``pending`` (``ts`` is after ``assessed``: applied by
        :meth:`due` before the first window at or after ``ts``) or ``apply`` (``reset.applied``: at
        ``ts`` is already assessed, so at ``assessed``: the windows since stay in the old trend; none
        is lost from the store)."""
        if log_id in self.seen:
            return "duplicate", None
        self.seen = [*self.seen, log_id][-SEEN_LOGS:]
        action, _ = log_reset(event_type)
        if action is None:
            return "no_reset", None
        floors = [f for f in (reset_at, self.last.logged if self.last else None) if f is not None]
        if floors and ts <= max(floors):
            return "superseded", None
        reset = MaintenanceReset(log_id, event_type, action, ts)
        if assessed is None or ts > assessed:
            self.pending = sorted([*self.pending, reset], key=lambda r: r.logged)
            return "pending", reset
        self.last = replace(reset, applied=assessed)
        self.pending = [r for r in self.pending if r.logged > ts]
        return "apply", self.last

    def due(self, ts: float) -> MaintenanceReset | None:
        """The reset to apply before the window at data time ``ts``: the latest pending entry at or before
        ``ts`` (earlier ones are superseded by it), applied at its own data time; None: none."""
        now = [r for r in self.pending if r.logged <= ts]
        if not now:
            return None
        self.pending = [r for r in self.pending if r.logged > ts]
        self.last = replace(now[-1], applied=now[-1].logged)
        return self.last

    def to_dict(self) -> dict[str, Any]:
        return {
            "seen": list(self.seen),
            "pending": [asdict(r) for r in self.pending],
            "last": None if self.last is None else asdict(self.last),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MaintenanceLedger:
        last = d.get("last")
        return cls(
            seen=[str(i) for i in d.get("seen", [])][-SEEN_LOGS:],
            pending=[MaintenanceReset(**r) for r in d.get("pending", [])],
            last=None if last is None else MaintenanceReset(**last),
        )


def with_reset_note(hu: HealthUpdate, reset: MaintenanceReset | None) -> HealthUpdate:
    """``hu`` whose maintenance reason and RUL reason also say since when the trend is tracked and why."""
    if reset is None:
        return hu
    note = reset.note()
    hu.maintenance_reason = f"{hu.maintenance_reason}; {note}" if hu.maintenance_reason else note
    if hu.rul is not None:
        hu.rul.reason = f"{hu.rul.reason}; {note}"[:1000]
    return hu
