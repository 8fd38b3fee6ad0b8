"""Pure health-assessment logic (no I/O; all time is data time in seconds, passed in).

* evidence and smoothing: :mod:`.evidence` (tracks, staleness), :mod:`.persistence` (k-of-n);
* alarm policy: :mod:`.policy` (what is alarm-worthy, severity, health), :mod:`.alarms` (the alarm
  state machine);
* degradation and maintenance window: :mod:`.degradation`; prognostics (indicators, CUSUM early warning,
  remaining useful life per asset): :mod:`.prognostics` over :mod:`.indicators`, :mod:`.warning`,
  :mod:`.rul`;
* presentation: :mod:`.insights`;
* scales: :mod:`.scoring` (health, risk, grade), :mod:`.iso20816` (vibration zones);
* :mod:`.assessor` composes them per asset; :mod:`.params` holds the tuning.
* :mod:`.join` joins the reading, feature vectors and scores of one window (same event id) per asset
  and releases whole windows in data-time order (the health stage's input).
"""

from shared.health.alarms import (
    MAINTENANCE_ACTIONS,
    Alarm,
    AlarmBook,
    AlarmConflict,
    AlarmNotFound,
    AlarmTransition,
    AlarmTransitionError,
)
from shared.health.assessor import Assessment, HealthAssessor
from shared.health.degradation import (
    DegradationParams,
    DegradationState,
    DegradationTracker,
    maintenance_window,
)
from shared.health.evidence import ModelScore
from shared.health.insights import Insight, MachineInfo, ModelStatus, bearing_orders, build_insights
from shared.health.iso20816 import ZoneResult, iso_zone, iso_zone_index, zone_limits
from shared.health.params import AssessorParams
from shared.health.persistence import Persistence
from shared.health.prognostics import PrognosticsParams, PrognosticsTracker
from shared.health.scoring import grade, health_from_scores, iso_health_cap, ratio_to_health, risk_level

__all__ = [
    "MAINTENANCE_ACTIONS",
    "Alarm",
    "AlarmBook",
    "AlarmConflict",
    "AlarmNotFound",
    "AlarmTransition",
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
    "PrognosticsParams",
    "PrognosticsTracker",
    "ZoneResult",
    "bearing_orders",
    "build_insights",
    "grade",
    "health_from_scores",
    "iso_health_cap",
    "iso_zone",
    "iso_zone_index",
    "maintenance_window",
    "ratio_to_health",
    "risk_level",
    "zone_limits",
]
