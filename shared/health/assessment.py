"""The result of one health assessment (:class:`Assessment`, made by
:class:`shared.health.assessor.HealthAssessor`, which re-exports it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from shared.health.alarms import Alarm, AlarmTransition
from shared.health.insights import Insight
from shared.health.iso20816 import ZoneResult
from shared.health.machine import Attribution
from shared.health.prognostics import RulView


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
    alarm_events: list[AlarmTransition]
    open_alarms: list[Alarm]
    models: dict[str, dict[str, Any]]
    #: Remaining useful life or why there is none.
    rul: RulView | None = None
    #: Trend indicators of the latest vibration window (rms_log, kurtosis_z [Np, σ], cusum [Np·s]).
    indicators: dict[str, float] = field(default_factory=dict)
    #: The change's role among the sensors of its machine (config ``machine``; None: not grouped).
    machine_role: Attribution | None = None
    #: The asset's operating state at ``ts`` (:mod:`shared.health.operating_state`; None: unknown, assessed
    #: as running). While ``stopped`` or ``starting`` nothing is assessed (:meth:`HealthAssessor.update`).
    operating_state: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        d["iso"] = None if self.iso is None else self.iso.to_dict()
        d["insights"] = [i.to_dict() for i in self.insights]
        d["alarm_events"] = [e.to_dict() for e in self.alarm_events]
        d["open_alarms"] = [a.to_dict() for a in self.open_alarms]
        d["rul"] = None if self.rul is None else asdict(self.rul)
        d["machine_role"] = None if self.machine_role is None else asdict(self.machine_role)
        return d
