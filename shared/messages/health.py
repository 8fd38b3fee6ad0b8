"""Health, alarms and operator logs (health stage and gateway)."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field, StringConstraints

from shared.messages.base import AssetId, Count, Message, Timestamp

RiskLevel = Literal["LOW", "MODERATE", "HIGH", "CRITICAL"]
ZoneBasisKind = Literal["iso20816-3", "custom", "information"]
AlarmState = Literal["ACTIVE", "ACKNOWLEDGED", "RESOLVED"]
#: What happened to an alarm in one :class:`AlarmEvent` (``shelved``/``unshelved``: an operator took it
#: off the operator's attention for a while, or it came back; its state does not change).
AlarmTransitionKind = Literal["opened", "escalated", "acknowledged", "resolved", "shelved", "unshelved"]
ActionCode = Literal[
    "bearing_replaced",
    "realigned",
    "lubricated",
    "balanced",
    "tightened",
    "electrical_repair",
    "false_alarm",
    "other",
]
#: Operator action codes when resolving an alarm (one list: the Literal above).
ACTION_CODES: tuple[str, ...] = get_args(ActionCode)
LogEventType = Literal[
    "preventive_lubrication",
    "preventive_inspection",
    "preventive_cleaning",
    "corrective_bearing_replacement",
    "corrective_alignment",
    "corrective_balancing",
    "corrective_electrical",
    "observation",
    "other",
]
LOG_EVENT_TYPES: tuple[str, ...] = get_args(LogEventType)


class InsightItem(Message):
    text: str
    severity: Literal["info", "warning", "critical"]
    signal: str
    value: float | None = None


RulStatusKind = Literal["estimate", "no_degradation_trend", "not_calibrated", "sensor_fault"]
#: Names of the trend indicators a :class:`HealthUpdate` may carry (``indicators``), with their units:
#: ``rms_log`` [Np] the mean over axes of ln(RMS_axis / its calibrated RMS); ``hf_energy_log`` [Np]
#: (reserved: the health service does not compute it yet, its calibration has no band energies);
#: ``kurtosis_z`` [robust σ]; ``cusum`` [Np·s] the early-warning CUSUM statistic of ``rms_log`` and
#: ``cusum_h`` [Np·s] the decision level it is compared with (the trend alarm opens when cusum > cusum_h).
INDICATOR_NAMES: tuple[str, ...] = ("rms_log", "hf_energy_log", "kurtosis_z", "cusum", "cusum_h")
#: An indicator's name: stored as the field ``ind_<name>`` of a health record.
IndicatorName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


class RulItem(Message):
    """Remaining useful life from a fitted degradation path (:mod:`shared.health.rul`), or why there is
    none. Times in seconds of data time; indicator values in the indicator's unit (neper for rms_log)."""

    status: RulStatusKind
    #: Always set: for an estimate one sentence of what it rests on; otherwise why there is none.
    reason: str = Field(max_length=1000)
    #: The indicator the estimate rests on and its unit (Np: ln(RMS / calibrated RMS)).
    indicator: str = Field(default="rms_log", max_length=64)
    indicator_unit: str = Field(default="Np", max_length=16)
    #: The indicator's current value and its failure threshold (indicator unit).
    level: float | None = None
    threshold: float | None = None
    #: Where the threshold comes from, e.g. "median end-of-life level of 6 FEMTO/PRONOSTIA ... bearings".
    threshold_basis: str | None = Field(default=None, max_length=500)
    #: Remaining life (s of data time): median and the 80 % interval's ends (status ``estimate``).
    median_s: float | None = Field(default=None, ge=0)
    low_s: float | None = Field(default=None, ge=0)
    high_s: float | None = Field(default=None, ge=0)
    #: Probability the interval covers (0.8 for an estimate).
    interval: float | None = Field(default=None, gt=0, lt=1)
    #: Path model (``log_linear`` | ``exp_offset`` | ``pooled``: both averaged), span fitted (s), points.
    model: str | None = Field(default=None, max_length=32)
    window_s: float | None = Field(default=None, gt=0)
    n_points: Count | None = None
    #: Data time of the estimate.
    as_of: Timestamp | None = None


class MachineRoleItem(Message):
    """The asset's change among the sensors of its machine (asset config ``machine``,
    :mod:`shared.health.machine`): ``alone``, ``leading`` (it changed first; ``followers`` carry it) or
    ``transmitted`` from ``source`` (which changed ``lag_s`` seconds earlier and more: no second fault
    alarm opens here); ``reason`` says so with the numbers."""

    machine: AssetId
    role: Literal["alone", "leading", "transmitted"]
    reason: str = Field(default="", max_length=1000)
    source: AssetId | None = None
    lag_s: float | None = None
    followers: list[AssetId] = Field(default_factory=list, max_length=256)


class HealthUpdate(Message):
    """Retained on ``health/<asset>``: the latest fused assessment (times are data times)."""

    asset_id: AssetId
    ts: Timestamp
    health_score: float = Field(ge=0, le=100)
    risk_level: RiskLevel
    grade: Literal["A", "B", "C", "D", "F"]
    degradation_index: float = Field(ge=0, le=1)
    #: Days until maintenance is due: the conservative (lower) end of the RUL's 80 % interval when
    #: ``rul.status == "estimate"``; None otherwise, and ``maintenance_reason`` says why (e.g. "no
    #: degradation trend: ..."). Old messages always carried a number (a per-risk-level rule).
    maintenance_window_days: float | None = Field(default=None, ge=0)
    maintenance_reason: str = ""
    iso_zone: Literal["A", "B", "C", "D"] | None = None
    velocity_rms_mm_s: float | None = None
    #: What ``iso_zone`` is judged against: ``iso20816-3`` (applicability confirmed in the asset's
    #: config), ``custom`` (the config's own limits) — both may alarm — or ``information`` (not
    #: confirmed: shown only, never an alarm nor a health penalty). None when there is no zone.
    zone_basis: ZoneBasisKind | None = None
    #: The basis for people, e.g. "ISO 20816-3 group 2, rigid", "custom limits 1/2/3 mm/s",
    #: "information only: ISO applicability not confirmed (ISO 20816-3 group 2, rigid limits)".
    zone_basis_text: str | None = None
    insights: list[InsightItem] = Field(default_factory=list)
    model_ratios: dict[str, float] = Field(default_factory=dict)
    active_alarms: Count = 0
    #: Set while the asset's sensor reports a fault (``sensor/<asset>``): the reason. The machine's
    #: health, risk and degradation are then held at their last value before the fault.
    sensor_fault: str | None = None
    #: Remaining useful life, or why there is none (None in messages older than prognostics).
    rul: RulItem | None = None
    #: Trend indicators of the latest window by name (see :data:`INDICATOR_NAMES`); absent = unknown.
    indicators: dict[IndicatorName, float] = Field(default_factory=dict, max_length=16)
    #: The change's role among its machine's sensors; None when the asset is not grouped into a machine.
    machine: MachineRoleItem | None = None


SensorFindingKind = Literal[
    "flatline", "clipping", "rate_mismatch", "length_change", "stuck", "dropout", "jump"
]


class SensorFindingItem(Message):
    """One sensor fault (:mod:`shared.health.sensor`): what, on which signal, since when (data time),
    why, and the numbers it rests on."""

    kind: SensorFindingKind
    #: An axis (x, y, z), a reading signal (voltage_v, ...), ``reading`` or ``window``.
    signal: str = Field(max_length=64)
    since: Timestamp
    reason: str = Field(max_length=1000)
    values: dict[str, float] = Field(default_factory=dict)


class SensorStatus(Message):
    """Retained on ``sensor/<asset>`` (features → health): whether the asset's measurement is plausible.
    Published when it changes; ``since``: data time the current status began (a fault: its earliest
    finding); ``ts``: data time of the update that changed it."""

    asset_id: AssetId
    status: Literal["ok", "fault"]
    ts: Timestamp
    since: Timestamp
    findings: list[SensorFindingItem] = Field(default_factory=list, max_length=64)


class AlarmEvent(Message):
    """One alarm transition, published on ``alarms/<asset>`` and stored."""

    alarm_id: str
    asset_id: AssetId
    state: AlarmState
    previous: AlarmState | None = None
    source: str
    severity: Literal["WARNING", "CRITICAL"]
    reason: str
    opened_at: Timestamp
    ts: Timestamp
    who: str | None = None
    note: str | None = None
    action_code: ActionCode | None = None
    auto_cleared: bool = False
    #: The transition this event records (None: stored before the field existed; then ``state`` and
    #: ``previous`` tell it).
    transition: AlarmTransitionKind | None = None
    #: Shelving (ISA-18.2): set on every event of an alarm while it is shelved: the data time at which
    #: it returns by itself, who shelved it and why. None: not shelved.
    shelved_until: Timestamp | None = None
    shelved_by: str | None = Field(default=None, max_length=200)
    shelve_reason: str | None = Field(default=None, max_length=2000)
    #: Largest magnitude of the condition while open (the source's unit, e.g. the anomaly ratio).
    peak: float | None = Field(default=None, ge=0)
    #: Alarms of this source opened one after another within the chatter window before this one.
    reopens: int = Field(default=0, ge=0)


class OperatorLog(Message):
    """A maintenance/operator log entry, published on ``logs/<asset>`` and stored."""

    log_id: str
    asset_id: AssetId
    event_type: LogEventType
    severity: Literal["info", "low", "medium", "high", "critical"] = "info"
    description: str = Field(default="", max_length=4000)
    ts: Timestamp
    author: str | None = Field(default=None, max_length=100)
