"""Alarm notifications delivered: the gateway's admin API configures a webhook and an e-mail channel,
the reporter's :class:`Notifications` turns alarm transitions into messages, a local webhook receiver
(asyncio HTTP on a free port) and a local SMTP server (aiosmtpd) receive them.

- an alarm that opens, is acknowledged and clears gives exactly one message per transition per channel,
  with asset, severity, reason and the link to the asset view; the webhook signature verifies; a
  redelivered transition is not sent again, not even by a restarted reporter (journal under DATA_DIR);
- a receiver that is down (several failed attempts at an accelerated back-off: first 0.05 s, doubling
  — at the default 5 s first delay three failures span 35 s) gets every message once it is back, in
  order, once;
- on real Mosquitto with a persistent session, alarms published while the reporter is stopped are
  delivered when it comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from services.reporter.notifications import Notifications
from shared import topics
from shared.bus import MemoryBus
from shared.messages import AlarmEvent
from shared.notify import signing
from shared.service import running_in_memory, serve_routes
from shared.settings import Settings
from tests.support.gateway import memory_gateway, memory_settings, poll
from tests.support.notify import WebhookReceiver, email_channel, receivers, reporter
from tests.support.servers import MosquittoServer

pytestmark = pytest.mark.integration

SECRET = "hook-secret-0123456789"
OPENED = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)


def config(hook: WebhookReceiver, smtp_port: int, **retry: float) -> dict[str, Any]:
    return {
        "base_url": "https://rotorwatch.plant.example",
        "retry": {"first_s": 0.05, "factor": 2.0, "max_s": 0.4, **retry},
        "channels": [
            {"id": "ops-hook", "kind": "webhook", "webhook": {"url": hook.url, "secret": SECRET}},
            email_channel("ops-mail", smtp_port, "maintenance@plant.example"),
        ],
    }


def transitions(asset: str) -> list[AlarmEvent]:
    """Open (WARNING), acknowledge, clear of one alarm."""
    base = {
        "alarm_id": uuid.uuid4().hex,
        "asset_id": asset,
        "source": "model_consensus",
        "severity": "WARNING",
        "reason": "2 of 3 models above threshold (vibration RMS 0.41 g)",
        "opened_at": OPENED,
    }
    return [
        AlarmEvent(**base, state="ACTIVE", ts=OPENED),
        AlarmEvent(
            **base, state="ACKNOWLEDGED", previous="ACTIVE", ts=OPENED + timedelta(minutes=1), who="ana"
        ),
        AlarmEvent(
            **base, state="RESOLVED", previous="ACKNOWLEDGED", ts=OPENED + timedelta(minutes=2), who="ana"
        ),
    ]


async def publish(bus: MemoryBus, events: list[AlarmEvent]) -> None:
    for ev in events:
        await bus.publish(topics.alarm(ev.asset_id), ev.model_dump(mode="json"))


async def test_open_ack_clear_gives_one_signed_message_per_transition_per_channel(tmp_path: Path) -> None:
    asset = f"pump-{uuid.uuid4().hex[:6]}"
    events = transitions(asset)
    async with (
        receivers() as (hook, sink, smtp_port),
        memory_gateway(memory_settings(tmp_path, command_timeout_s=5)) as gw,
    ):
        notify = Notifications(tmp_path / "notifications", "http://unused")
        async with running_in_memory(reporter(notify), gw.bus):
            r = await gw.api.put("/notifications/config", json=config(hook, smtp_port))
            assert r.status_code == 200, r.text
            assert r.json()["channels"][0]["webhook"] == {"url": hook.url, "secret": "***"}
            shown = (await gw.api.get("/notifications/config")).json()
            assert shown == r.json() and SECRET not in json.dumps(shown)
            retained = gw.bus.on("rotorwatch/v1/notify/config")[-1]
            assert json.loads(retained.payload)["channels"][0]["webhook"]["secret"] == SECRET
            assert retained.retain

            await publish(gw.bus, [*events, events[0]])  # the opening is delivered twice by the broker
            await poll(lambda: len(hook.received) >= 3 and len(sink.messages) >= 3)
            await poll(lambda: _delivered(notify, 6))
            r = await _deliveries(gw)
            assert r["counts"]["delivered"] == 6 and r["counts"]["pending"] == 0
            assert {d["channel"] for d in r["deliveries"]} == {"ops-hook", "ops-mail"}

        kinds = ["alarm.opened", "alarm.acknowledged", "alarm.resolved"]
        assert [b["type"] for b in hook.bodies()] == kinds
        for (headers, raw), ev in zip(hook.received, events, strict=True):
            signing.verify(SECRET, headers[signing.SIGNATURE_HEADER.lower()], raw, now=time.time())
            body = json.loads(raw)
            assert (body["asset_id"], body["severity"], body["reason"]) == (asset, "WARNING", ev.reason)
            assert body["link"] == f"https://rotorwatch.plant.example/#/asset/{asset}"
            assert headers[signing.DELIVERY_HEADER.lower()] == f"{body['transition_id']}@ops-hook"
        subjects = [m["Subject"] for m in sink.messages]
        assert [s.split(" alarm ")[1].split(" on ")[0] for s in subjects] == [
            "opened",
            "acknowledged",
            "cleared",
        ]
        for m in sink.messages:
            text = m.get_payload(decode=True).decode()
            assert asset in text and "WARNING" in text and events[0].reason in text
            assert f"https://rotorwatch.plant.example/#/asset/{asset}" in text
            assert m["To"] == "maintenance@plant.example"

        # A restarted reporter (same DATA_DIR) does not send the same transitions again.
        again = Notifications(tmp_path / "notifications", "http://unused")
        async with running_in_memory(reporter(again), gw.bus):
            await publish(gw.bus, events)
            assert await _deliveries(gw) and again.outbox.counts()["delivered"] == 6
            new = transitions(asset)[0]
            await publish(gw.bus, [new])  # a new alarm still goes out, after nothing else
            await poll(lambda: len(hook.received) >= 4 and len(sink.messages) >= 4)
        assert (
            hook.bodies()[3]["alarm_id"] == new.alarm_id
            and new.alarm_id in sink.messages[3]["X-Rotorwatch-Delivery"]
        )
        assert len(hook.received) == 4 and len(sink.messages) == 4


def _delivered(notify: Notifications, n: int) -> bool:
    return notify.outbox.counts()["delivered"] >= n


async def _deliveries(gw: Any) -> dict[str, Any]:
    r = await gw.api.get("/notifications/deliveries")
    assert r.status_code == 200, r.text
    return r.json()


async def test_a_receiver_that_is_down_gets_every_message_once_it_is_back(tmp_path: Path) -> None:
    asset = f"fan-{uuid.uuid4().hex[:6]}"
    events = [transitions(asset)[0], transitions(asset)[2]]  # open, clear
    async with (
        receivers(start_webhook=False) as (hook, sink, smtp_port),
        memory_gateway(memory_settings(tmp_path, command_timeout_s=5)) as gw,
    ):
        notify = Notifications(tmp_path / "notifications", "http://unused")
        async with running_in_memory(reporter(notify), gw.bus):
            cfg = config(hook, smtp_port)
            cfg["channels"] = cfg["channels"][:1]
            assert (await gw.api.put("/notifications/config", json=cfg)).status_code == 200
            await publish(gw.bus, events)

            def retried() -> bool:
                pending = [d for d in notify.outbox.pending() if d.attempts >= 3]
                return bool(pending)

            await poll(retried)
            shown = (await gw.api.get("/notifications/deliveries", params={"status": "pending"})).json()
            head = shown["deliveries"][-1]
            assert head["attempts"] >= 3 and "ConnectError" in head["last_error"]
            assert shown["counts"]["pending"] == 2 and hook.received == []

            await hook.start()  # the receiver is back
            await poll(lambda: len(hook.received) >= 2 and _delivered(notify, 2))
        assert [b["type"] for b in hook.bodies()] == ["alarm.opened", "alarm.resolved"]
        assert len({b["transition_id"] for b in hook.bodies()}) == 2


async def test_alarms_published_while_the_reporter_is_stopped_are_delivered_on_real_mosquitto(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    asset = f"mill-{uuid.uuid4().hex[:6]}"
    settings = Settings(mqtt_url=mosquitto.url, data_dir=tmp_path)
    events = transitions(asset)
    async with receivers() as (hook, sink, smtp_port):
        cfg = config(hook, smtp_port)
        cfg["channels"] = cfg["channels"][:1]
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as c:
            await c.publish("rotorwatch/v1/notify/config", json.dumps(cfg), qos=1, retain=True)
        first = Notifications(tmp_path / "notifications", "http://unused")
        service = reporter(first)
        task = asyncio.create_task(serve_routes(service, settings))
        try:
            # Subscribed (alarms included) and configured: an alarm published now reaches it.
            await poll(lambda: service.serve_state.connected and first.config.channels, timeout=20)
            await _publish_mqtt(mosquitto, events[:1])
            # Stop once the delivery is recorded (a stop between the send and its record re-sends it:
            # at-least-once, receivers dedupe on X-Rotorwatch-Delivery); this test checks a clean stop.
            await poll(lambda: len(hook.received) == 1 and _delivered(first, 1), timeout=20)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await _publish_mqtt(mosquitto, events)  # while stopped: the broker queues them (persistent session)
        second = Notifications(tmp_path / "notifications", "http://unused")
        task = asyncio.create_task(serve_routes(reporter(second), settings))
        try:
            await poll(lambda: len(hook.received) >= 3 and _delivered(second, 3), timeout=20)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            async with aiomqtt.Client("127.0.0.1", mosquitto.port) as c:
                await c.publish("rotorwatch/v1/notify/config", b"", qos=1, retain=True)
    assert [b["type"] for b in hook.bodies()] == ["alarm.opened", "alarm.acknowledged", "alarm.resolved"]


async def _publish_mqtt(mosquitto: MosquittoServer, events: list[AlarmEvent]) -> None:
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as c:
        for ev in events:
            await c.publish(topics.alarm(ev.asset_id), ev.model_dump_json(), qos=1)
