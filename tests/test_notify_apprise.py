"""Apprise notification channels (``kind: "apprise"``): real apprise, no mocks.

Pure (no I/O): the configuration is validated (1..16 URLs of <= 2048 characters, each one apprise can
make a service of, the refusal naming the channel and the scheme only), redacted (``<scheme>://***``)
and merged (a PUT that sends the URLs back redacted, or leaves them out, keeps the stored ones); the
title and text are the e-mail's; a failure reason never carries a URL's pieces.

Integration (a local HTTP receiver; apprise's ``json://127.0.0.1:<port>/path`` POSTs
``{"title", "message", "type", ...}`` to it): an alarm that opens and clears gives one message per
transition; a receiver that is down gets every message once it is back; a URL apprise cannot parse is
a 422 with the reason; the admin API never shows a URL's token and a PUT of the redacted form keeps the
stored URLs; a scheduled report's PDF is attached.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.reporter.notifications import Notifications
from services.reporter.notify_io import SendFailed, apprise_message, send_apprise
from shared.notify import messages
from shared.notify.config import (
    Channel,
    NotificationConfig,
    merged,
    redact_url,
    redacted,
    scrub,
)
from shared.notify.outbox import Delivery
from shared.service import running_in_memory
from tests.support.gateway import MemoryGateway, memory_gateway, memory_settings, poll
from tests.support.notify import WebhookReceiver, reporter
from tests.test_notify_delivery import publish, transitions

TOKEN = "s3cr3t-T0KEN-8f2b1c"
TG = "tgram://123456789:AAH-bot-token-zz/-1001234567"
BASE = "https://rotorwatch.plant.example"


def channel(*urls: str, cid: str = "ops-chat", **extra: Any) -> dict[str, Any]:
    return {"id": cid, "kind": "apprise", "apprise": {"urls": list(urls)}, **extra}


def cfg(*channels: dict[str, Any], **retry: float) -> NotificationConfig:
    return NotificationConfig.model_validate(
        {"channels": list(channels), "retry": {"first_s": 0.05, "factor": 2.0, "max_s": 0.4, **retry}}
    )


def json_url(hook: WebhookReceiver) -> str:
    """apprise's JSON POST to the receiver; the path holds the token, as a real service's would."""
    return f"json://127.0.0.1:{hook.port}/hooks/{TOKEN}"


# -- configuration (pure) -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ch", "reason"),
    [
        ({"id": "a", "kind": "apprise"}, "an apprise channel needs 'apprise' (urls)"),
        (channel(TG, webhook={"url": "http://h/x"}), "and no 'webhook' or 'email'"),
        (channel(), "at least 1 item"),
        (channel(*[TG] * 17), "at most 16 items"),
        (channel("json://h/" + "x" * 2048), "at most 2048 characters"),
        (channel(f"no-scheme-{TOKEN}"), "urls[0] is not a URL"),
        (channel(TG, "tgram://***"), "all of them redacted"),
    ],
)
def test_malformed_apprise_channels_are_refused_with_the_reason(ch: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError) as err:
        Channel.model_validate(ch)
    assert reason in str(err.value)
    assert all(TOKEN not in e["msg"] for e in err.value.errors())


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (f"bogus://{TOKEN}", "apprise.urls[1] (bogus://…) refused: apprise has no bogus:// service"),
        (f"tgram://{TOKEN}", "apprise.urls[1] (tgram://…) refused: apprise could not parse it"),
        ("json://", "apprise.urls[1] (json://…) refused: apprise could not parse it"),
    ],
)
def test_a_url_apprise_cannot_use_is_refused_naming_channel_and_scheme(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match="channel 'ops-chat'") as err:
        merged(cfg(channel(TG, url)), None)
    assert reason in str(err.value) and TOKEN not in str(err.value)


def test_redacted_shows_each_url_as_its_scheme_only() -> None:
    config = merged(cfg(channel(TG, f"json://user:pw@127.0.0.1:9/hooks/{TOKEN}")), None)
    shown = redacted(config)
    assert shown["channels"][0]["apprise"] == {"urls": ["tgram://***", "json://***"]}  # type: ignore[index]
    text = json.dumps(shown)
    assert TOKEN not in text and "bot-token" not in text and "pw@" not in text
    assert redact_url("Slack://T1/B2/C3") == "slack://***"


def test_a_put_with_the_redacted_form_or_without_urls_keeps_the_stored_ones() -> None:
    stored = merged(cfg(channel(TG, min_severity="WARNING")), None)
    back = NotificationConfig.model_validate(redacted(stored))
    back.channels[0] = back.channels[0].model_copy(update={"min_severity": "CRITICAL"})
    kept = merged(back, stored)
    assert kept.channels[0].apprise is not None and kept.channels[0].apprise.urls == [TG]
    assert kept.channels[0].min_severity == "CRITICAL"
    left_out = merged(cfg({"id": "ops-chat", "kind": "apprise", "apprise": {}}), stored)
    assert left_out.channels[0].apprise is not None and left_out.channels[0].apprise.urls == [TG]
    new = f"json://127.0.0.1:9/hooks/{TOKEN}"
    replaced = merged(cfg(channel(new)), stored)
    assert replaced.channels[0].apprise is not None and replaced.channels[0].apprise.urls == [new]


def test_the_redacted_form_without_stored_urls_is_refused() -> None:
    with pytest.raises(ValueError, match="channel 'ops-chat': apprise.urls is required"):
        merged(cfg(channel("tgram://***")), None)
    other = merged(cfg(channel(TG, cid="other")), None)  # another channel's URLs are not taken
    with pytest.raises(ValueError, match="channel 'ops-chat': apprise.urls is required"):
        merged(cfg(channel("tgram://***"), channel(TG, cid="other")), other)


def test_the_message_is_the_e_mails_subject_and_text() -> None:
    ev = transitions("pump-7")[0]
    body = messages.payload(ev, BASE)
    d = Delivery(
        id="t@c", channel="c", kind="apprise", transition_id="t", asset_id="pump-7",
        severity="WARNING", body=body, created_at=0.0,
    )  # fmt: skip
    title, text, notify_type, attach = apprise_message(d)
    assert (title, text) == (messages.subject(body), messages.text(body))
    assert notify_type == "warning" and attach is None
    assert apprise_message(d.model_copy(update={"body": {**body, "severity": "CRITICAL"}}))[2] == "failure"
    assert apprise_message(d.model_copy(update={"body": {**body, "type": "alarm.resolved"}}))[2] == "success"


def test_scrub_removes_every_piece_of_the_urls() -> None:
    said = "Failed to send to 123456789:AAH-bot-token-zz chat -1001234567: 401 (host 127.0.0.1)"
    out = scrub(said, [TG, "json://user:pw@127.0.0.1:9/hooks/x"])
    assert "AAH-bot-token-zz" not in out and "-1001234567" not in out and "127.0.0.1" not in out
    assert out.startswith("Failed to send to ***")


# -- delivery (integration) -----------------------------------------------------------------------
async def _put(gw: MemoryGateway, body: dict[str, Any]) -> Any:
    r = await gw.api.put("/notifications/config", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def _wire(hook: WebhookReceiver, **retry: float) -> dict[str, Any]:
    return {
        "base_url": BASE,
        "retry": {"first_s": 0.05, "factor": 2.0, "max_s": 0.4, **retry},
        "channels": [channel(json_url(hook))],
    }


@pytest.mark.integration
async def test_an_alarm_that_opens_and_clears_gives_one_message_per_transition(tmp_path: Path) -> None:
    asset = f"pump-{uuid.uuid4().hex[:6]}"
    opened, _, cleared = transitions(asset)
    hook = WebhookReceiver()
    await hook.start()
    try:
        async with memory_gateway(memory_settings(tmp_path, command_timeout_s=5)) as gw:
            notify = Notifications(tmp_path / "notifications", "http://unused")
            async with running_in_memory(reporter(notify), gw.bus):
                await _put(gw, _wire(hook))
                await publish(gw.bus, [opened, cleared, opened])  # the opening delivered twice
                await poll(lambda: notify.outbox.counts()["delivered"] >= 2)
                assert notify.outbox.counts()["pending"] == 0
    finally:
        await hook.stop()
    bodies = hook.bodies()
    assert len(bodies) == 2
    for b, kind in zip(bodies, ["opened", "cleared"], strict=True):
        assert b["title"].startswith(f"[Rotorwatch] WARNING alarm {kind} on {asset}: ")
        assert asset in b["message"] and "Severity:  WARNING" in b["message"]
        assert opened.reason in b["message"] and f"{BASE}/#/asset/{asset}" in b["message"]
    assert [b["type"] for b in bodies] == ["warning", "success"]
    assert all(h.get("content-type", "").startswith("application/json") for h, _ in hook.received)


@pytest.mark.integration
async def test_a_receiver_that_is_down_gets_every_message_once_it_is_back(tmp_path: Path) -> None:
    asset = f"fan-{uuid.uuid4().hex[:6]}"
    events = [transitions(asset)[0], transitions(asset)[2]]
    hook = WebhookReceiver()  # not started: down
    try:
        async with memory_gateway(memory_settings(tmp_path, command_timeout_s=5)) as gw:
            notify = Notifications(tmp_path / "notifications", "http://unused")
            async with running_in_memory(reporter(notify), gw.bus):
                await _put(gw, _wire(hook))
                await publish(gw.bus, events)
                await poll(lambda: any(d.attempts >= 3 for d in notify.outbox.pending()), timeout=20)
                r = await gw.api.get("/notifications/deliveries", params={"status": "pending"})
                shown = r.json()
                head = shown["deliveries"][-1]
                assert head["attempts"] >= 3 and head["last_error"].startswith("apprise json://: ")
                assert "Connection error" in head["last_error"]
                assert TOKEN not in r.text and "127.0.0.1" not in head["last_error"]  # scrubbed
                assert shown["counts"]["pending"] == 2 and hook.received == []

                await hook.start()  # the receiver is back
                await poll(lambda: notify.outbox.counts()["delivered"] >= 2, timeout=20)
    finally:
        await hook.stop()
    titles = [b["title"] for b in hook.bodies()]
    assert len(titles) == 2 and " opened on " in titles[0] and " cleared on " in titles[1]


@pytest.mark.integration
async def test_the_api_refuses_a_url_apprise_cannot_parse_and_never_shows_a_token(tmp_path: Path) -> None:
    hook = WebhookReceiver()
    await hook.start()
    try:
        async with memory_gateway(memory_settings(tmp_path, command_timeout_s=5)) as gw:
            notify = Notifications(tmp_path / "notifications", "http://unused")
            async with running_in_memory(reporter(notify), gw.bus):
                bad = {"channels": [channel(json_url(hook), f"tgram://{TOKEN}")]}
                r = await gw.api.put("/notifications/config", json=bad)
                assert r.status_code == 422, r.text
                detail = r.json()["detail"]
                assert "channel 'ops-chat': apprise.urls[1] (tgram://…) refused" in detail
                assert TOKEN not in r.text and notify.config.channels == []

                shown = await _put(gw, _wire(hook))
                assert shown["channels"][0]["apprise"] == {"urls": ["json://***"]}
                got = await gw.api.get("/notifications/config")
                assert got.json() == shown and TOKEN not in got.text

                shown["channels"][0]["min_severity"] = "CRITICAL"  # PUT back what was shown
                shown["channels"][0]["asset_min_severity"] = {"pump-9": "WARNING"}
                assert (await _put(gw, shown))["channels"][0]["apprise"] == {"urls": ["json://***"]}
                ch = notify.config.channels[0]
                assert ch.min_severity == "CRITICAL" and ch.apprise is not None
                assert ch.apprise.urls == [json_url(hook)]

                await publish(gw.bus, [transitions("pump-9")[0]])  # the kept URL still delivers
                await poll(lambda: len(hook.received) >= 1)
    finally:
        await hook.stop()
    assert "pump-9" in hook.bodies()[0]["title"]


@pytest.mark.integration
async def test_a_scheduled_reports_pdf_is_attached(tmp_path: Path) -> None:
    hook = WebhookReceiver()
    await hook.start()
    pdf = tmp_path / "0123abcd.pdf"
    pdf.write_bytes(b"%PDF-1.7\n% a report\n%%EOF\n")
    body = {
        "type": "report.scheduled", "kind": "executive", "asset_id": "pump-3", "schedule_id": "weekly",
        "due": "2026-11-30T07:00:00+00:00", "start": "2026-11-23T07:00:00+00:00",
        "end": "2026-11-30T07:00:00+00:00",
        "attachment": {
            "path": str(pdf), "filename": "pump-3 executive.pdf", "content_type": "application/pdf",
            "size_bytes": pdf.stat().st_size, "pages": 1,
        },
    }  # fmt: skip
    d = Delivery(
        id="r@c", channel="c", kind="apprise", transition_id="r", asset_id="pump-3", severity="INFO",
        body=body, created_at=0.0,
    )  # fmt: skip
    ch = Channel.model_validate(channel(json_url(hook)))
    try:
        await asyncio.to_thread(send_apprise, ch, d)
        pdf.unlink()
        with pytest.raises(SendFailed, match="the report file is unreadable"):
            await asyncio.to_thread(send_apprise, ch, d)
    finally:
        await hook.stop()
    (sent,) = hook.bodies()
    assert sent["title"] == "[Rotorwatch] Scheduled executive report of pump-3"
    (att,) = sent["attachments"]
    assert (att["filename"], att["mimetype"]) == ("pump-3 executive.pdf", "application/pdf")
    assert base64.b64decode(att["base64"]) == b"%PDF-1.7\n% a report\n%%EOF\n"
