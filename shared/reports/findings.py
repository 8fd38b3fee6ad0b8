"""Recommended actions derived from the period's findings (pure).

A recommendation exists only because of a finding in the data, and carries it (``because``):

* each insight of the newest health update, by its signal: envelope peak at BPFO/BPFI/BSF/FTF →
  inspect the bearing's outer race / inner race / rolling elements / cage; 1×/2×/3× running-speed
  amplitude → balance / alignment / looseness; ISO velocity in zone C → plan remedial action, zone D
  → reduce load or stop; impulsive vibration (kurtosis, crest factor) → inspect bearings; voltage,
  current, power factor → their electrical checks; vibration level → mechanical inspection; a model
  flag without a named signal → review the flagged period;
* every alarm still open at the period's end (not acknowledged: acknowledge and investigate);
* a remaining-life estimate (:mod:`shared.reports.prognosis`) → plan the maintenance within the
  conservative (low) end of its 80 % interval, because of the estimate and the indicator it rests on;
  a MODERATE, HIGH or CRITICAL risk without an estimate → investigate the risk, saying why there is
  no remaining-life estimate (never a number of days that no fitted estimate gives).

No finding, no recommendation: the report then says nothing in the period calls for action.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.messages import AlarmEvent, HealthUpdate, InsightItem
from shared.reports.prognosis import prognosis

#: Insight signal prefix/suffix → action (first match wins; see module doc).
BEARING_ACTIONS: dict[str, str] = {
    "env_bpfo": "Inspect the bearing outer race; replace the bearing if confirmed",
    "env_bpfi": "Inspect the bearing inner race; replace the bearing if confirmed",
    "env_bsf": "Inspect the bearing rolling elements; replace the bearing if confirmed",
    "env_ftf": "Inspect the rolling elements and the cage (impacts recur at cage speed) and the lubrication",
}
ORDER_ACTIONS: dict[str, str] = {
    "order1_amp_g": "Check rotor balance; balance the rotor if confirmed",
    "order2_amp_g": "Check shaft alignment; realign if confirmed",
    "order3_amp_g": "Check mounting bolts, feet and fits for looseness; tighten",
}
SIGNAL_ACTIONS: tuple[tuple[str, str], ...] = (
    ("kurtosis", "Inspect the bearings: impulsive vibration can indicate bearing damage"),
    ("crest_factor", "Inspect the bearings: impulsive vibration can indicate bearing damage"),
    ("voltage", "Check the supply voltage and its connections"),
    ("current", "Check the driven load and the motor's electrical condition"),
    ("power_factor", "Check the motor's electrical condition and power-factor correction"),
    ("vibration", "Inspect the machine's mechanical condition (vibration above its baseline)"),
    ("_rms", "Inspect the machine's mechanical condition (vibration above its baseline)"),
    ("_peak", "Inspect the machine's mechanical condition (vibration above its baseline)"),
)
ISO_ACTIONS: dict[str, str] = {
    "C": "Plan remedial action: zone C is unsatisfactory for long-term continuous operation",
    "D": "Reduce load or stop and correct the cause: zone D vibration can damage the machine",
}
MODEL_ACTION = "Review the flagged period in the trends: the models flag it without naming one signal"
RISK_WITH_ACTION = ("MODERATE", "HIGH", "CRITICAL")


@dataclass
class Recommendation:
    action: str
    because: str
    severity: str  # "critical" | "warning" | "info"


def insight_action(item: InsightItem, zone: str | None) -> str | None:
    """The action an insight calls for (module doc), or None."""
    s = item.signal
    for prefix, action in BEARING_ACTIONS.items():
        if s.startswith(prefix):
            return action
    if s in ORDER_ACTIONS:
        return ORDER_ACTIONS[s]
    if s == "velocity_rms_mm_s":
        return ISO_ACTIONS.get(zone or "", ISO_ACTIONS["C"])
    if s.startswith("model:"):
        return MODEL_ACTION
    for key, action in SIGNAL_ACTIONS:
        if key in s:
            return action
    return None


def recommendations(latest: HealthUpdate | None, alarms: list[AlarmEvent]) -> list[Recommendation]:
    """Recommended actions, most severe first, one per distinct action (module doc)."""
    out: list[Recommendation] = []
    if latest is not None:
        for item in latest.insights:
            action = insight_action(item, latest.iso_zone)
            if action:
                out.append(Recommendation(action, item.text, item.severity))
    out += _alarm_actions(alarms)
    if latest is not None:
        out += _maintenance(latest)
    seen: set[str] = set()
    unique = []
    for r in sorted(out, key=lambda r: {"critical": 0, "warning": 1}.get(r.severity, 2)):
        if r.action not in seen:
            seen.add(r.action)
            unique.append(r)
    return unique


def _maintenance(latest: HealthUpdate) -> list[Recommendation]:
    """Plan the maintenance within an estimate's window, or investigate a raised risk without one."""
    p = prognosis(latest)
    sev = "critical" if latest.risk_level in ("HIGH", "CRITICAL") else "warning"
    if p is not None and p.is_estimate:
        because = f"{p.headline}, on {p.indicator}: {p.reason}"
        return [Recommendation(f"Plan the maintenance {p.window}", because, sev)]
    if latest.risk_level not in RISK_WITH_ACTION or p is None:
        return []
    action = f"Investigate the {latest.risk_level} risk (no maintenance window: no remaining-life estimate)"
    return [Recommendation(action, f"{p.headline}: {p.reason}", sev)]


def _alarm_actions(alarms: list[AlarmEvent]) -> list[Recommendation]:
    last: dict[str, AlarmEvent] = {}
    for a in alarms:
        last[a.alarm_id] = a
    out = []
    for a in last.values():
        if a.state == "RESOLVED":
            continue
        verb = "Investigate and resolve" if a.state == "ACKNOWLEDGED" else "Acknowledge and investigate"
        sev = "critical" if a.severity == "CRITICAL" else "warning"
        out.append(Recommendation(f"{verb} the open {a.source} alarm {a.alarm_id[:8]}", a.reason, sev))
    return out
