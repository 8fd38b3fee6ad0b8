"""Pure health-assessment logic: health score, risk, degradation, maintenance window, ISO 20816-3
zones, insights and alarms. No I/O; all time is data time (seconds) passed in."""

from shared.health.alarms import (
    ACTION_CODES,
    MAINTENANCE_ACTIONS,
    Alarm,
    AlarmBook,
    AlarmEvent,
    AlarmTransitionError,
    Persistence,
)
from shared.health.assessor import Assessment, AssessorParams, HealthAssessor, ModelScore
from shared.health.degradation import (
    DegradationParams,
    DegradationState,
    DegradationTracker,
    maintenance_window_days,
)
from shared.health.insights import Insight, MachineInfo, ModelStatus, bearing_orders, build_insights
from shared.health.iso20816 import ZoneResult, iso_zone, iso_zone_index, zone_limits
from shared.health.scoring import grade, health_from_scores, iso_health_cap, ratio_to_health, risk_level

__all__ = [
    "ACTION_CODES",
    "MAINTENANCE_ACTIONS",
    "Alarm",
    "AlarmBook",
    "AlarmEvent",
    "AlarmTransitionError",
    "Assessment",
    "AssessorParams",
    "DegradationParams",
    "DegradationState",
    "DegradationTracker",
    "HealthAssessor",
    "Insight",
    "MachineInfo",
    "ModelScore",
    "ModelStatus",
    "Persistence",
    "ZoneResult",
    "bearing_orders",
    "build_insights",
    "grade",
    "health_from_scores",
    "iso_health_cap",
    "iso_zone",
    "iso_zone_index",
    "maintenance_window_days",
    "ratio_to_health",
    "risk_level",
    "zone_limits",
]
