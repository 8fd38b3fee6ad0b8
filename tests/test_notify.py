"""Pure notification logic (shared.notify): webhook signatures, quiet hours, the per-asset minimum
severity, the retry schedule, one message per transition and its dedupe, the outbox order and replay,
secrets never echoed back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from shared.messages import AlarmEvent
from shared.notify import messages, policy, signing
from shared.notify.config import (
    SECRET_MARK,
    Channel,
    NotificationConfig,
    QuietHours,
    RetryPolicy,
    merged,
    redacted,
)
from shared.notify.outbox import Outbox

OPENED = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SECRET = "s3cret-key-of-the-hook"


def event(
    state: str = "ACTIVE", *, severity: str = "WARNING", ts: datetime = OPENED, **kw: Any
) -> AlarmEvent:
    return AlarmEvent(
        alarm_id=kw.pop("alarm_id", "a1b2"),
        asset_id=kw.pop("asset_id", "pump-3"),
        state=state,  # type: ignore[arg-type]
        source="model_consensus",
        severity=severity,  # type: ignore[arg-type]
        reason="2 of 3 models above threshold",
        opened_at=OPENED,
        ts=ts,
        **kw,
    )


def hook(cid: str = "ops", **kw: Any) -> Channel:
    return Channel.model_validate(
        {"id": cid, "kind": "webhook", "webhook": {"url": "http://127.0.0.1:9/h", "secret": SECRET}, **kw}
    )


def mail(cid: str = "mail", password: str | None = None, **kw: Any) -> Channel:
    target = {
        "password": password,
        "host": "127.0.0.1",
        "port": 25,
        "security": "none",
        "from": "rw@plant.example",
        "to": ["a@b.example"],
    }
    return Channel.model_validate({"id": cid, "kind": "email", "email": target, **kw})


# -- signing -------------------------------------------------------------------------------------
def test_signature_verifies_and_refuses_tampering_other_keys_and_old_timestamps() -> None:
    body = b'{"asset_id":"pump-3"}'
    header = signing.sign(SECRET, body, now=1_700_000_000.7)
    assert header.startswith("t=1700000000,v1=")
    assert signing.verify(SECRET, header, body, now=1_700_000_100) == 1_700_000_000
    # The digest is HMAC-SHA256 over "<t>.<body>" (a receiver in any language recomputes it).
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    with pytest.raises(signing.BadSignature, match="does not match"):
        signing.verify(SECRET, header, body + b" ", now=1_700_000_000)
    with pytest.raises(signing.BadSignature, match="does not match"):
        signing.verify("another-secret-0000", header, body, now=1_700_000_000)
    with pytest.raises(signing.BadSignature, match="away"):
        signing.verify(SECRET, header, body, now=1_700_000_000 + 301)
    with pytest.raises(signing.BadSignature, match="malformed"):
        signing.verify(SECRET, "v1=abc", body, now=1_700_000_000)
    with pytest.raises(signing.BadSignature, match="missing"):
        signing.verify(SECRET, None, body, now=1_700_000_000)


# -- severity filter ---------------------------------------------------------------------------
def test_minimum_severity_per_channel_and_asset_and_event_kinds() -> None:
    ch = hook(min_severity="CRITICAL", asset_min_severity={"fan-1": "WARNING", "old-9": "OFF"})
    assert not policy.wants(ch, "pump-3", "WARNING", "opened")
    assert policy.wants(ch, "pump-3", "CRITICAL", "opened")
    assert policy.wants(ch, "fan-1", "WARNING", "opened")
    assert not policy.wants(ch, "old-9", "CRITICAL", "opened")
    only_open = hook(events=["opened", "escalated"])
    assert policy.wants(only_open, "pump-3", "WARNING", "opened")
    assert not policy.wants(only_open, "pump-3", "WARNING", "resolved")
    assert not policy.wants(hook(enabled=False), "pump-3", "CRITICAL", "opened")


# -- quiet hours -------------------------------------------------------------------------------
def test_quiet_hours_wrap_midnight_in_the_channels_time_zone_and_critical_bypasses() -> None:
    qh = QuietHours(start="22:00", end="07:00", timezone="Europe/Paris")
    # 2026-03-02 21:30 UTC = 22:30 in Paris (CET, UTC+1): quiet until 07:00 Paris = 06:00 UTC next day.
    late = datetime(2026, 3, 2, 21, 30, tzinfo=UTC).timestamp()
    assert policy.quiet_until(qh, late) == datetime(2026, 3, 3, 6, 0, tzinfo=UTC).timestamp()
    # 05:00 UTC = 06:00 Paris: still quiet, until 06:00 UTC the same day.
    early = datetime(2026, 3, 3, 5, 0, tzinfo=UTC).timestamp()
    assert policy.quiet_until(qh, early) == datetime(2026, 3, 3, 6, 0, tzinfo=UTC).timestamp()
    noon = datetime(2026, 3, 3, 11, 0, tzinfo=UTC).timestamp()
    assert policy.quiet_until(qh, noon) is None
    # Summer time (CEST, UTC+2): 07:00 Paris is 05:00 UTC.
    summer = datetime(2026, 7, 1, 4, 0, tzinfo=UTC).timestamp()
    assert policy.quiet_until(qh, summer) == datetime(2026, 7, 1, 5, 0, tzinfo=UTC).timestamp()
    ch = hook(quiet_hours=qh.model_dump())
    assert policy.hold_until(ch, "WARNING", late) is not None
    assert policy.hold_until(ch, "CRITICAL", late) is None  # critical_bypass defaults to true
    strict = hook(quiet_hours={**qh.model_dump(), "critical_bypass": False})
    assert policy.hold_until(strict, "CRITICAL", late) == policy.quiet_until(qh, late)
    same = QuietHours(start="09:00", end="09:00")
    assert policy.quiet_until(same, noon) is None


def test_quiet_hours_refuse_bad_times_and_zones_with_the_reason() -> None:
    with pytest.raises(ValidationError, match="HH:MM"):
        QuietHours(start="25:00", end="07:00")
    with pytest.raises(ValidationError, match="unknown time zone"):
        QuietHours(start="22:00", end="07:00", timezone="Mars/Olympus")


# -- back-off ----------------------------------------------------------------------------------
def test_retry_schedule_doubles_up_to_the_cap() -> None:
    r = RetryPolicy(first_s=5, factor=2, max_s=60)
    assert [policy.retry_delay(r, n) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]
    assert policy.retry_delay(r, 10_000) == 60
    with pytest.raises(ValueError):
        policy.retry_delay(r, 0)


# -- messages ----------------------------------------------------------------------------------
def test_each_transition_has_its_kind_id_and_a_message_with_asset_severity_reason_and_link() -> None:
    later = OPENED + timedelta(minutes=5)
    kinds = {
        "opened": event(),
        "escalated": event(severity="CRITICAL", ts=later),
        "acknowledged": event("ACKNOWLEDGED", ts=later, previous="ACTIVE", who="ana"),
        "resolved": event("RESOLVED", ts=later, previous="ACKNOWLEDGED", who="ana", action_code="lubricated"),
    }
    ids = set()
    for kind, ev in kinds.items():
        assert messages.transition_kind(ev) == kind
        ids.add(messages.transition_id(ev))
        body = messages.payload(ev, "https://rw.plant.example/")
        assert body["link"] == "https://rw.plant.example/#/asset/pump-3"
        assert (body["asset_id"], body["severity"], body["reason"]) == ("pump-3", ev.severity, ev.reason)
        text = messages.text(body)
        for part in ("pump-3", ev.severity, ev.reason, body["link"]):
            assert part in text
    assert len(ids) == 4
    assert messages.subject(messages.payload(kinds["resolved"], "http://x")).startswith(
        "[Rotorwatch] WARNING alarm cleared on pump-3"
    )


# -- outbox: plan, dedupe, order, replay ---------------------------------------------------------
def test_one_delivery_per_transition_per_wanting_channel_and_duplicates_are_dropped() -> None:
    cfg = NotificationConfig(channels=[hook(), mail(), hook("crit", min_severity="CRITICAL")])
    box = Outbox()
    ops = box.plan(event(), cfg, "http://rw", now=100.0)
    assert [op["op"] for op in ops] == ["seen", "put", "put"]
    assert {d.channel for d in box.pending()} == {"ops", "mail"}
    assert box.plan(event(), cfg, "http://rw", now=101.0) == []  # the same transition again
    box.plan(event("RESOLVED", ts=OPENED + timedelta(minutes=1), previous="ACTIVE"), cfg, "http://rw", 102.0)
    assert len(box.pending()) == 4


def test_a_channel_gets_its_messages_in_order_and_retries_back_off() -> None:
    retry = RetryPolicy(first_s=1, factor=2, max_s=8)
    cfg = NotificationConfig(channels=[hook()], retry=retry)
    box = Outbox()
    box.plan(event(), cfg, "http://rw", now=0.0)
    box.plan(event("RESOLVED", ts=OPENED + timedelta(minutes=1), previous="ACTIVE"), cfg, "http://rw", 0.0)
    [head] = box.due(0.0)
    assert head.body["type"] == "alarm.opened"
    box.failed(head.id, "connection refused", now=0.0, retry=retry)
    assert box.due(0.5) == []  # the head waits its back-off and the later message waits behind it
    assert box.next_wake(0.5) == 1.0
    box.failed(head.id, "connection refused", now=1.0, retry=retry)
    assert box.next_wake(1.0) == 3.0
    assert box.due(3.0)[0].id == head.id
    box.succeeded(head.id, now=3.0)
    [second] = box.due(3.0)
    assert second.body["type"] == "alarm.resolved"
    assert box.counts() == {"pending": 1, "delivered": 1, "failed": 0, "cancelled": 0}
    assert box.items[head.id].attempts == 3 and box.items[head.id].last_error is None


def test_a_delivery_failing_past_give_up_is_failed_and_visible() -> None:
    retry = RetryPolicy(first_s=1, give_up_after_s=10)
    box = Outbox()
    box.plan(event(), NotificationConfig(channels=[hook()], retry=retry), "http://rw", now=0.0)
    [d] = box.due(0.0)
    box.failed(d.id, "HTTP 500", now=11.0, retry=retry)
    assert box.items[d.id].status == "failed" and box.items[d.id].last_error == "HTTP 500"
    assert box.due(100.0) == []


def test_held_messages_wait_for_the_end_of_quiet_hours_and_critical_goes_ahead() -> None:
    qh = {"start": "22:00", "end": "07:00", "timezone": "UTC"}
    cfg = NotificationConfig(channels=[hook(quiet_hours=qh)])
    night = datetime(2026, 3, 2, 23, 0, tzinfo=UTC).timestamp()
    morning = datetime(2026, 3, 3, 7, 0, tzinfo=UTC).timestamp()
    box = Outbox()
    box.plan(event(), cfg, "http://rw", now=night)
    box.plan(event(severity="CRITICAL", ts=OPENED + timedelta(minutes=1)), cfg, "http://rw", now=night)
    [crit] = box.due(night)
    assert crit.severity == "CRITICAL"
    box.succeeded(crit.id, night)
    assert box.due(night + 3600) == [] and box.next_wake(night) == morning
    [warn] = box.due(morning)
    assert warn.severity == "WARNING" and warn.body["type"] == "alarm.opened"


def test_the_outbox_replays_from_its_operations_pending_and_dedupe_included() -> None:
    cfg = NotificationConfig(channels=[hook(), mail()])
    box = Outbox()
    journal = box.plan(event(), cfg, "http://rw", now=0.0)
    [d, _] = box.due(0.0)
    journal.append(box.succeeded(d.id, now=1.0))
    again = Outbox()
    for op in journal:
        again.apply(op)
    assert again.counts() == box.counts() == {"pending": 1, "delivered": 1, "failed": 0, "cancelled": 0}
    assert again.plan(event(), cfg, "http://rw", now=2.0) == []  # deduped after the restart
    compact = Outbox()
    for op in again.snapshot():
        compact.apply(op)
    assert compact.counts() == again.counts() and compact.seen == again.seen


# -- configuration -------------------------------------------------------------------------------
def test_secrets_are_redacted_kept_on_put_without_them_and_required_for_webhooks() -> None:
    old = NotificationConfig(channels=[hook(), mail(password="smtp-pass")])
    shown = redacted(old)
    assert shown["channels"][0]["webhook"]["secret"] == SECRET_MARK
    assert shown["channels"][1]["email"]["password"] == SECRET_MARK
    assert shown["channels"][1]["email"]["from"] == "rw@plant.example"
    assert SECRET not in str(shown) and "smtp-pass" not in str(shown)
    again = NotificationConfig.model_validate(shown)  # what a client GETs, edits and PUTs back
    kept = merged(again, old)
    assert kept.channels[0].webhook is not None and kept.channels[0].webhook.secret == SECRET
    assert kept.channels[1].email is not None and kept.channels[1].email.password == "smtp-pass"
    new_hook = {"id": "new", "kind": "webhook", "webhook": {"url": "http://127.0.0.1:9/x"}}
    with pytest.raises(ValueError, match="'new': webhook.secret is required"):
        merged(NotificationConfig.model_validate({"channels": [new_hook]}), old)
    with pytest.raises(ValidationError, match="at least 16"):
        hook(webhook={"url": "http://x", "secret": "short"})
    with pytest.raises(ValidationError, match="duplicate channel ids: ops"):
        NotificationConfig(channels=[hook(), hook()])
    with pytest.raises(ValidationError, match="needs 'email'"):
        Channel.model_validate({"id": "m", "kind": "email", "webhook": {"url": "http://x", "secret": SECRET}})
