"""Shelved alarms in notifications (issue 16, ISA-18.2: a shelved alarm is not annunciated).

Pure: an event's ``transition`` is its kind (older events without one are still inferred); a shelved
event reaches only the channels that list ``shelved`` (the default list leaves it out and has
``unshelved``: the alarm's return is announced); every other event of an alarm shelved at that time
(``shelved_until`` after its ``ts``) is sent to nobody, except an escalation; the shelving and the
return have their own message text; configurations saved before shelving existed still load.

Integration (the reporter on the in-memory bus, a local webhook receiver): a default channel and a
channel that opts in to ``shelved`` get exactly the messages above, in order.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import pytest

from services.reporter.notifications import Notifications
from services.reporter.notify_io import OutboxFile, apprise_message
from shared.messages import AlarmEvent, AlarmTransitionKind
from shared.notify import messages
from shared.notify.config import DEFAULT_EVENTS, TRANSITION_KINDS, Channel, NotificationConfig
from shared.notify.outbox import Delivery, Outbox
from shared.service import running_in_memory
from tests.support.gateway import memory_gateway, memory_settings, poll
from tests.support.notify import WebhookReceiver, reporter

OPENED = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SHELVED_AT = OPENED + timedelta(minutes=1)
UNTIL = SHELVED_AT + timedelta(hours=1)
SECRET = "s3cret-key-of-the-hook"
WHY = "bearing swap planned for Friday's stop"


def event(
    transition: str | None,
    *,
    ts: datetime,
    state: str = "ACTIVE",
    shelved: bool = False,
    **kw: Any,
) -> AlarmEvent:
    """An event of alarm ``a1b2`` on pump-3; ``shelved``: it carries the shelf (by ana until UNTIL)."""
    shelf = {"shelved_until": UNTIL, "shelved_by": "ana", "shelve_reason": WHY} if shelved else {}
    return AlarmEvent.model_validate(
        {
            "alarm_id": kw.pop("alarm_id", "a1b2"),
            "asset_id": kw.pop("asset_id", "pump-3"),
            "state": state,
            "source": "model_consensus",
            "severity": kw.pop("severity", "WARNING"),
            "reason": "2 of 3 models above threshold",
            "opened_at": OPENED,
            "ts": ts,
            "transition": transition,
            **shelf,
            **kw,
        }
    )


def lifecycle(**kw: Any) -> dict[str, AlarmEvent]:
    """Opened, shelved, acknowledged while shelved, returned by the system, resolved; an escalation."""
    return {
        "opened": event("opened", ts=OPENED, **kw),
        "shelved": event(
            "shelved", ts=SHELVED_AT, previous="ACTIVE", shelved=True, who="ana", note=WHY, **kw
        ),
        "acknowledged": event(
            "acknowledged",
            ts=SHELVED_AT + timedelta(minutes=5),
            state="ACKNOWLEDGED",
            previous="ACTIVE",
            shelved=True,
            who="bob",
            **kw,
        ),
        "unshelved": event(
            "unshelved",
            ts=UNTIL + timedelta(seconds=1),
            state="ACKNOWLEDGED",
            previous="ACKNOWLEDGED",
            who="system",
            note="shelf ended: shelved by ana until 2026-03-02T09:01:00Z",
            **kw,
        ),
        "resolved": event(
            "resolved",
            ts=UNTIL + timedelta(minutes=10),
            state="RESOLVED",
            previous="ACKNOWLEDGED",
            who="bob",
            action_code="bearing_replaced",
            **kw,
        ),
    }


def hook(cid: str = "ops", **kw: Any) -> Channel:
    return Channel.model_validate(
        {"id": cid, "kind": "webhook", "webhook": {"url": "http://127.0.0.1:9/h", "secret": SECRET}, **kw}
    )


def planned(box: Outbox, events: list[AlarmEvent], cfg: NotificationConfig) -> dict[str, list[str]]:
    """Channel -> the kinds planned for it, in order."""
    for ev in events:
        box.plan(ev, cfg, "http://rw", now=0.0)
    out: dict[str, list[str]] = {}
    for d in box.items.values():
        out.setdefault(d.channel, []).append(d.body["type"].removeprefix("alarm."))
    return out


# -- kinds and the default -----------------------------------------------------------------------
def test_the_channel_kinds_are_the_alarm_contracts_and_the_default_leaves_out_shelving() -> None:
    assert set(TRANSITION_KINDS) == set(get_args(AlarmTransitionKind))
    assert "shelved" not in DEFAULT_EVENTS and "unshelved" in DEFAULT_EVENTS
    assert hook().events == list(DEFAULT_EVENTS)
    assert hook(events=["opened", "shelved", "unshelved"]).events == ["opened", "shelved", "unshelved"]


def test_the_events_transition_is_its_kind_and_older_events_are_still_inferred() -> None:
    for kind, ev in lifecycle().items():
        assert messages.transition_kind(ev) == kind
        assert messages.transition_id(ev).split(":")[1] == kind
    # An event stored before the field existed: the states tell it (the same ids as before).
    old_ack = event(None, ts=SHELVED_AT, state="ACKNOWLEDGED", previous="ACTIVE")
    assert messages.transition_kind(old_ack) == "acknowledged"
    assert messages.transition_kind(event(None, ts=OPENED)) == "opened"
    assert messages.transition_kind(event(None, ts=SHELVED_AT, severity="CRITICAL")) == "escalated"
    # The field wins over the inference: a shelving of an ACTIVE alarm is not an escalation.
    assert messages.transition_kind(lifecycle()["shelved"]) == "shelved"


def test_only_events_of_a_shelved_alarm_other_than_shelve_return_and_escalation_are_suppressed() -> None:
    ev = lifecycle()
    assert [k for k, e in ev.items() if messages.suppressed(e)] == ["acknowledged"]
    # The shelf lasts until shelved_until: an event at or after it is not held back by it.
    assert not messages.suppressed(event("acknowledged", ts=UNTIL, state="ACKNOWLEDGED", shelved=True))
    assert messages.suppressed(
        event("resolved", ts=UNTIL - timedelta(seconds=1), state="RESOLVED", shelved=True)
    )
    # An escalation ends a shelf: it is announced even if an event still says shelved.
    assert not messages.suppressed(event("escalated", ts=SHELVED_AT, severity="CRITICAL", shelved=True))


# -- who gets what --------------------------------------------------------------------------------
def test_a_default_channel_gets_the_return_not_the_shelving_and_an_opted_in_channel_gets_both() -> None:
    cfg = NotificationConfig(
        channels=[hook("ops"), hook("audit", events=list(TRANSITION_KINDS)), hook("quiet-return")]
    )
    cfg.channels[2].events = ["opened", "escalated", "acknowledged", "resolved"]  # saved before shelving
    got = planned(Outbox(), list(lifecycle().values()), cfg)
    assert got["ops"] == ["opened", "unshelved", "resolved"]
    assert got["audit"] == ["opened", "shelved", "unshelved", "resolved"]
    assert got["quiet-return"] == ["opened", "resolved"]


def test_an_escalation_of_a_shelved_alarm_is_delivered_and_a_suppressed_event_is_seen_once() -> None:
    cfg = NotificationConfig(channels=[hook("ops"), hook("crit", min_severity="CRITICAL")])
    box = Outbox()
    ev = lifecycle()
    escalated = event("escalated", ts=SHELVED_AT + timedelta(minutes=2), severity="CRITICAL", shelved=True)
    got = planned(box, [ev["opened"], ev["shelved"], ev["acknowledged"], escalated], cfg)
    assert got == {"ops": ["opened", "escalated"], "crit": ["escalated"]}
    # The suppressed acknowledgement was planned (to nobody) and is not reconsidered when redelivered.
    assert messages.transition_id(ev["acknowledged"]) in box.seen
    assert box.plan(ev["acknowledged"], cfg, "http://rw", now=1.0) == []


# -- message text ----------------------------------------------------------------------------------
def test_the_shelving_and_the_return_have_their_own_words() -> None:
    ev = lifecycle()
    body = messages.payload(ev["shelved"], "https://rw.plant.example")
    assert body["type"] == "alarm.shelved"
    assert (body["shelved_until"], body["shelved_by"], body["shelve_reason"]) == (
        UNTIL.isoformat(),
        "ana",
        WHY,
    )
    assert messages.subject(body) == (
        "[Rotorwatch] WARNING alarm shelved by ana until 2026-03-02 09:01 UTC on pump-3: "
        "2 of 3 models above threshold"
    )
    text = messages.text(body)
    assert f"Shelved:   by ana until {UNTIL.isoformat()}: {WHY}" in text
    assert "https://rw.plant.example/#/asset/pump-3" in text

    back = messages.payload(ev["unshelved"], "https://rw.plant.example")
    assert back["shelved_until"] is None and back["who"] == "system"
    assert messages.subject(back) == (
        "[Rotorwatch] WARNING alarm returned from shelf on pump-3: 2 of 3 models above threshold"
    )
    text = messages.text(back)
    assert "Returned from shelf" in text and "shelf ended: shelved by ana" in text
    assert "Shelved:" not in text
    # An event without a shelf says nothing of shelving (the payload's fields are null).
    opened = messages.payload(ev["opened"], "http://x")
    assert opened["shelved_until"] is None and "Shelved" not in messages.text(opened)


@pytest.mark.parametrize(
    ("kind", "severity", "apprise_type"),
    [
        ("shelved", "WARNING", "info"),
        ("unshelved", "WARNING", "warning"),
        ("unshelved", "CRITICAL", "failure"),
    ],
)
def test_apprise_types_of_the_shelving_and_the_return(kind: str, severity: str, apprise_type: str) -> None:
    ev = lifecycle(severity=severity)[kind]
    body = messages.payload(ev, "http://x")
    d = Delivery(
        id="x@ops",
        channel="ops",
        kind="apprise",
        transition_id="x",
        asset_id="pump-3",
        severity=severity,
        body=body,
        created_at=0.0,
    )
    title, text, notify_type, path = apprise_message(d)
    assert (title, text, notify_type, path) == (
        messages.subject(body),
        messages.text(body),
        apprise_type,
        None,
    )


# -- stored configurations -------------------------------------------------------------------------
def test_configurations_saved_before_shelving_existed_still_load(tmp_path: Path) -> None:
    old = {
        "channels": [
            {
                "id": "ops",
                "kind": "webhook",
                "enabled": True,
                "webhook": {"url": "http://127.0.0.1:9/h", "secret": SECRET},
                "email": None,
                "apprise": None,
                "min_severity": "WARNING",
                "asset_min_severity": {},
                "events": ["opened", "escalated", "acknowledged", "resolved"],
                "quiet_hours": None,
            }
        ],
        "base_url": "",
        "retry": {"first_s": 5.0, "factor": 2.0, "max_s": 600.0, "give_up_after_s": 604800.0},
        "schedules": [],
    }
    (tmp_path / "config.json").write_text(json.dumps(old), encoding="utf-8")
    cfg = OutboxFile(tmp_path).load_config()
    assert cfg is not None
    assert cfg.channels[0].events == ["opened", "escalated", "acknowledged", "resolved"]
    # Saved again, it keeps its list (and a channel naming no events gets the default).
    OutboxFile(tmp_path).save_config(cfg)
    again = OutboxFile(tmp_path).load_config()
    assert again == cfg
    del old["channels"][0]["events"]  # type: ignore[attr-defined]
    assert NotificationConfig.model_validate(old).channels[0].events == list(DEFAULT_EVENTS)


# -- the reporter on the in-memory bus ---------------------------------------------------------------
@pytest.mark.integration
async def test_the_reporter_sends_a_default_channel_the_return_and_an_opted_in_one_the_shelving(
    tmp_path: Path,
) -> None:
    asset = f"pump-{uuid.uuid4().hex[:6]}"
    ev = lifecycle(asset_id=asset, alarm_id=uuid.uuid4().hex)
    other = uuid.uuid4().hex
    escalated = event(
        "escalated",
        ts=SHELVED_AT + timedelta(minutes=3),
        severity="CRITICAL",
        asset_id=asset,
        alarm_id=other,
    )
    sentinel = event("opened", ts=UNTIL + timedelta(hours=1), asset_id=asset, alarm_id=uuid.uuid4().hex)
    sequence = [
        ev["opened"],
        event("opened", ts=OPENED, asset_id=asset, alarm_id=other),
        ev["shelved"],
        event("shelved", ts=SHELVED_AT, previous="ACTIVE", shelved=True, asset_id=asset, alarm_id=other),
        ev["acknowledged"],  # while shelved: nobody
        escalated,
        ev["unshelved"],
        ev["resolved"],
        ev["acknowledged"],  # redelivered: still nobody
        sentinel,  # once both channels have it, everything before it was planned (a channel keeps order)
    ]
    hook_rx = WebhookReceiver()
    await hook_rx.start()
    try:
        async with memory_gateway(memory_settings(tmp_path, command_timeout_s=5)) as gw:
            notify = Notifications(tmp_path / "notifications", "http://unused")
            async with running_in_memory(reporter(notify), gw.bus):
                wire = {"url": hook_rx.url, "secret": SECRET}
                body = {
                    "retry": {"first_s": 0.05, "factor": 2.0, "max_s": 0.4},
                    "channels": [
                        {"id": "ops", "kind": "webhook", "webhook": wire},
                        {"id": "audit", "kind": "webhook", "webhook": wire, "events": list(TRANSITION_KINDS)},
                    ],
                }
                r = await gw.api.put("/notifications/config", json=body)
                assert r.status_code == 200, r.text
                assert r.json()["channels"][0]["events"] == list(DEFAULT_EVENTS)
                for e in sequence:
                    await gw.bus.publish(f"rotorwatch/v1/alarms/{asset}", e.model_dump(mode="json"))
                await poll(lambda: notify.outbox.counts()["delivered"] >= 14)
                assert notify.outbox.counts() == {"pending": 0, "delivered": 14, "failed": 0, "cancelled": 0}
    finally:
        await hook_rx.stop()
    by_channel: dict[str, list[tuple[str, str]]] = {}
    for headers, raw in hook_rx.received:
        b = json.loads(raw)
        channel = headers["x-rotorwatch-delivery"].rsplit("@", 1)[1]
        by_channel.setdefault(channel, []).append((b["alarm_id"][:4], b["type"].removeprefix("alarm.")))
    a, o, s = ev["opened"].alarm_id[:4], other[:4], sentinel.alarm_id[:4]
    assert by_channel["ops"] == [
        (a, "opened"),
        (o, "opened"),
        (o, "escalated"),
        (a, "unshelved"),
        (a, "resolved"),
        (s, "opened"),
    ]
    assert by_channel["audit"] == [
        (a, "opened"),
        (o, "opened"),
        (a, "shelved"),
        (o, "shelved"),
        (o, "escalated"),
        (a, "unshelved"),
        (a, "resolved"),
        (s, "opened"),
    ]
    assert len(hook_rx.received) == 14
