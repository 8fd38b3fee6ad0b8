"""The health stage's view of each asset's sensor status (``sensor/<a>``, retained, from the features
service): while it reports a fault, the machine's health is held at its last value before the fault
began, marked ``sensor_fault`` with the reason (and no maintenance window: RUL status ``sensor_fault``),
instead of being moved by the faulty data; the sensor alarm (source ``sensor``, WARNING) opens at once,
and machine alarms opened since the fault began are withdrawn (resolved as ``false_alarm`` by
``system``). Once the status is ``ok`` again the windows update the health as before and the sensor
alarm clears after the usual clear windows.

The held value is the last health published at a data time before the fault's ``since`` (its first
faulty reading or window: a stuck stream is recognised only after 30 identical readings, whose health
must not count either); the recent health updates are kept for that, in memory (after a restart the last
saved health stands in).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.health.alarms import SYSTEM, AlarmTransition
from shared.health.assessor import SOURCE_SENSOR, HealthAssessor
from shared.messages import HealthUpdate, SensorStatus

#: Recent health updates kept per asset (at most one per data second: several minutes).
RECENT_HEALTH = 600
#: Finding reasons joined into the health's ``sensor_fault`` and the alarm's reason.
REASONS = 2


def fault_reason(status: SensorStatus) -> str:
    """The status's first finding reasons, joined (``Sensor fault`` when it has none)."""
    return "; ".join(f.reason for f in status.findings[:REASONS]) or "Sensor fault"


def sensor_alarm_events(a: HealthAssessor, ts: float, status: SensorStatus | None) -> list[AlarmTransition]:
    """The sensor alarm's observation at data time ``ts``: on during a fault; off (counting towards
    its clearing) while the alarm is open and the status is ``ok``; nothing otherwise."""
    if status is None or status.status != "fault":
        return a.observe_sensor(ts, False) if a.sensor_alarm_open() else []
    events = a.observe_sensor(ts, True, fault_reason(status))
    if any(e.kind == "opened" for e in events):
        events += withdrawn_machine_alarms(a, status)
    return events


def withdrawn_machine_alarms(a: HealthAssessor, status: SensorStatus) -> list[AlarmTransition]:
    """Resolve (as ``false_alarm``, by ``system``) the asset's machine alarms opened since the sensor
    fault began: they rest on the faulty data (a stuck stream is recognised only after 30 readings)."""
    since = status.since.timestamp()
    note = f"withdrawn: opened during a sensor fault ({fault_reason(status)})"[:2000]
    return [
        a.resolve(alarm.alarm_id, SYSTEM, note, "false_alarm")
        for alarm in a.alarms.open_alarms(a.asset_id)
        if alarm.source != SOURCE_SENSOR and alarm.opened_at >= since
    ]


@dataclass
class SensorHold:
    """Per asset: the latest sensor status and the recent published health (module doc)."""

    status: dict[str, SensorStatus] = field(default_factory=dict)
    recent: dict[str, deque[dict[str, Any]]] = field(default_factory=dict)

    def fault(self, asset: str) -> SensorStatus | None:
        """The asset's sensor status when it is a fault, else None."""
        s = self.status.get(asset)
        return s if s is not None and s.status == "fault" else None

    def remember(self, asset: str, blob: dict[str, Any]) -> None:
        """A health just published (JSON form)."""
        self.recent.setdefault(asset, deque(maxlen=RECENT_HEALTH)).append(blob)

    def held(
        self, asset: str, ts: float, status: SensorStatus, open_alarms: int, last: dict[str, Any] | None
    ) -> HealthUpdate | None:
        """The health to publish at data time ``ts`` during a fault: the last one published before the
        fault's ``since`` (else ``last``, the last saved), re-stamped; None when there is none."""
        since = status.since.timestamp()
        before = [b for b in self.recent.get(asset, ()) if _ts(b) < since]
        blob = before[-1] if before else last
        if blob is None:
            return None
        held = {**blob, "ts": datetime.fromtimestamp(ts, UTC).isoformat(), "active_alarms": open_alarms}
        return HealthUpdate.model_validate({**held, **no_prognosis(fault_reason(status))})

    def forget(self, asset: str) -> None:
        self.status.pop(asset, None)
        self.recent.pop(asset, None)


def no_prognosis(reason: str) -> dict[str, Any]:
    """The fields of a held health that say why there is no maintenance window during a sensor fault:
    the faulty windows are kept out of the indicators (the RUL is not updated), so no window is shown."""
    why = f"no estimate while the sensor reports a fault ({reason})"[:1000]
    return {
        "sensor_fault": reason,
        "maintenance_window_days": None,
        "maintenance_reason": f"sensor fault: {why}",
        "rul": {"status": "sensor_fault", "reason": why},
        "indicators": {},
    }


def _ts(blob: dict[str, Any]) -> float:
    return datetime.fromisoformat(blob["ts"]).timestamp()
