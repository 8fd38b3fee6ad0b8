"""One notification per alarm transition: what kind of transition an :class:`AlarmEvent` is, its
transition id (the dedupe key), and the message people get (subject, text, JSON body).

Kinds: the event's ``transition`` when it carries one (``opened``, ``escalated``, ``acknowledged``,
``resolved``, ``shelved``, ``unshelved``); for an event stored before that field existed, inferred:
``opened`` (state ACTIVE, no previous state, ``ts == opened_at``), ``escalated`` (ACTIVE, no previous
state, later than ``opened_at``: WARNING → CRITICAL), ``acknowledged``, ``resolved``.
The transition id is ``<alarm_id>:<kind>:<ts in ms since the epoch>``: the health stage publishes a
transition once, but a redelivered or replayed one has the same id and is not sent again.

Shelving (ISA-18.2: a shelved alarm is not annunciated): :func:`suppressed` events are sent to nobody:
every event of an alarm shelved at that time (``shelved_until`` after the event's ``ts``) except its
``shelved`` (the shelving itself: sent to channels that list ``shelved``), ``unshelved`` (the alarm
returns) and ``escalated`` (a worse condition ends the shelf).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.messages import AlarmEvent, to_utc
from shared.notify.config import TransitionKind

_VERB: dict[TransitionKind, str] = {
    "opened": "opened",
    "escalated": "escalated to CRITICAL",
    "acknowledged": "acknowledged",
    "resolved": "cleared",
    "shelved": "shelved by {shelved_by} until {shelved_until}",
    "unshelved": "returned from shelf",
}
#: Kinds sent even while the event says the alarm is shelved (see :func:`suppressed`).
_THROUGH_SHELF: frozenset[TransitionKind] = frozenset({"shelved", "unshelved", "escalated"})
#: JSON body schema version of the webhook payload.
PAYLOAD_VERSION = 1


def transition_kind(ev: AlarmEvent) -> TransitionKind:
    """The event's ``transition``; for an event without one, inferred from its states (module doc)."""
    if ev.transition is not None:
        return ev.transition
    if ev.state == "ACKNOWLEDGED":
        return "acknowledged"
    if ev.state == "RESOLVED":
        return "resolved"
    return "opened" if ev.previous is None and ev.ts == ev.opened_at else "escalated"


def suppressed(ev: AlarmEvent) -> bool:
    """Whether nobody is told of ``ev``: its alarm is shelved at ``ev.ts`` (``shelved_until`` later) and
    it is not the shelving, the return or an escalation (module doc)."""
    until = ev.shelved_until
    return until is not None and until > ev.ts and transition_kind(ev) not in _THROUGH_SHELF


def transition_id(ev: AlarmEvent) -> str:
    """``<alarm_id>:<kind>:<ms>``: the same transition always has the same id."""
    ms = round(ev.ts.timestamp() * 1000)
    return f"{ev.alarm_id}:{transition_kind(ev)}:{ms}"


def asset_link(base_url: str, asset_id: str) -> str:
    """The dashboard's asset view: ``<base_url>/#/asset/<asset_id>``."""
    return f"{base_url.rstrip('/')}/#/asset/{asset_id}"


def payload(ev: AlarmEvent, base_url: str) -> dict[str, Any]:
    """The webhook JSON body (also what the e-mail text is made of)."""
    kind = transition_kind(ev)
    return {
        "version": PAYLOAD_VERSION,
        "type": "alarm." + kind,
        "transition_id": transition_id(ev),
        "alarm_id": ev.alarm_id,
        "asset_id": ev.asset_id,
        "severity": ev.severity,
        "state": ev.state,
        "previous_state": ev.previous,
        "source": ev.source,
        "reason": ev.reason,
        "opened_at": ev.opened_at.isoformat(),
        "ts": ev.ts.isoformat(),
        "who": ev.who,
        "note": ev.note,
        "action_code": ev.action_code,
        "auto_cleared": ev.auto_cleared,
        "shelved_until": _iso(ev.shelved_until),
        "shelved_by": ev.shelved_by,
        "shelve_reason": ev.shelve_reason,
        "link": asset_link(base_url, ev.asset_id),
    }


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat()


def _when(iso: str) -> str:
    """An ISO-8601 time as people read it in a subject: ``2026-03-02 09:00 UTC``."""
    return to_utc(datetime.fromisoformat(iso)).strftime("%Y-%m-%d %H:%M UTC")


def _verb(body: dict[str, Any]) -> str:
    kind = body["type"].removeprefix("alarm.")
    verb = _VERB.get(kind, kind)
    if kind == "shelved":
        until = body.get("shelved_until")
        verb = verb.format(
            shelved_by=body.get("shelved_by") or body.get("who") or "?",
            shelved_until=_when(until) if until else "?",
        )
    return verb


def subject(body: dict[str, Any]) -> str:
    """E-mail subject: ``[Rotorwatch] CRITICAL alarm opened on pump-3: <reason>`` (reason cut at 120)."""
    verb = _verb(body)
    reason = body["reason"] if len(body["reason"]) <= 120 else body["reason"][:119] + "…"
    return f"[Rotorwatch] {body['severity']} alarm {verb} on {body['asset_id']}: {reason}"


def text(body: dict[str, Any]) -> str:
    """Plain-text e-mail body: every field people act on, and the link to the asset view."""
    lines = [
        subject(body).removeprefix("[Rotorwatch] "),
        "",
        f"Asset:     {body['asset_id']}",
        f"Severity:  {body['severity']}",
        f"State:     {body['state']}" + (f" (was {was})" if (was := body["previous_state"]) else ""),
        f"Reason:    {body['reason']}",
        f"Source:    {body['source']}",
        f"Opened at: {body['opened_at']}",
        f"At:        {body['ts']}",
    ]
    if body.get("who"):
        lines.append(f"By:        {body['who']}")
    if body.get("note"):
        lines.append(f"Note:      {body['note']}")
    if body.get("action_code"):
        lines.append(f"Action:    {body['action_code']}")
    if body.get("auto_cleared"):
        lines.append("Cleared automatically: the condition went away.")
    if body.get("shelved_until"):
        by, why = body.get("shelved_by") or "?", body.get("shelve_reason") or "no reason given"
        lines.append(f"Shelved:   by {by} until {body['shelved_until']}: {why}")
    if body["type"] == "alarm.unshelved":
        lines.append("Returned from shelf: the alarm is back on the alarm list.")
    lines += ["", f"Open the asset: {body['link']}", "", f"Transition id: {body['transition_id']}"]
    return "\n".join(lines) + "\n"
