"""Alarm shelving through the health service on a real Mosquitto (issue 16): a fault opens an alarm, an
operator shelves it for 60 data seconds over ``cmd/alarm_action`` (the reply carries the shelved event),
the data runs past the shelf and the alarm returns by itself (``unshelved`` by ``system`` on
``alarms/<asset>``)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.health.service import build
from shared import topics
from shared.messages import AlarmActionRequest, ModelAnnouncement
from shared.service import run_service
from shared.settings import Settings
from tests.support.pipeline import Collector, client
from tests.support.signing import VERIFY_KEY, signed
from tests.test_health_service import T0, manifest, parts

pytestmark = pytest.mark.integration


def announcement(asset: str) -> ModelAnnouncement:
    """The legacy model of ``asset`` (signed): its windows wait for their score."""
    return signed(
        ModelAnnouncement(
            asset_id=asset,
            model="legacy",
            version="v1",
            path=f"{asset}/v1",
            created_at=T0,
            manifest=manifest(),
            onnx_b64="AA==",
        )
    )


def at(i: int) -> datetime:
    return T0 + timedelta(seconds=i)


async def send_windows(url: str, asset: str, first: int, last: int, ratio: float) -> None:
    async with client(url) as c:
        for i in range(first, last):
            for topic, msg in parts(i, ratio, asset):
                await c.publish(topic, msg.model_dump_json(), qos=1)


async def test_shelve_over_the_broker_and_the_alarm_returns_when_the_data_passes_the_shelf(
    mosquitto: Any, tmp_path: Path
) -> None:
    asset = f"shelf-{uuid.uuid4().hex[:8]}"
    s = Settings(data_dir=tmp_path, model_verify_key=VERIFY_KEY, mqtt_url=mosquitto.url)
    svc = build(s)
    model_topic = topics.model_announce(asset, "legacy")
    async with client(mosquitto.url) as c:
        await c.publish(model_topic, announcement(asset).model_dump_json(), qos=1, retain=True)
    reply_to = topics.reply("gw", uuid.uuid4().hex)
    watched = [topics.alarm(asset), topics.health(asset), reply_to]
    async with Collector(mosquitto.url, watched) as col:
        task = asyncio.create_task(run_service(svc, s))
        try:
            await send_windows(mosquitto.url, asset, 0, 600, 0.3)  # healthy ...
            await send_windows(mosquitto.url, asset, 600, 720, 4.0)  # ... then a severe fault
            _, opened, _ = await col.wait_for(
                lambda t, p: t == topics.alarm(asset) and p["state"] == "ACTIVE"
            )
            # the service has assessed the last window (data time at(719)) before the operator acts
            await col.wait_for(
                lambda t, p: t == topics.health(asset) and datetime.fromisoformat(p["ts"]) == at(719)
            )
            req = AlarmActionRequest(
                correlation_id="c1",
                reply_to=reply_to,
                alarm_id=opened["alarm_id"],
                action="shelve",
                who="ana",
                note="valve work",
                duration_s=60,
            )
            async with client(mosquitto.url) as c:
                await c.publish(topics.command("alarm_action"), req.model_dump_json(), qos=1)
            _, reply, _ = await col.wait_for(lambda t, p: t == reply_to)
            assert reply["status"] == "ok", reply
            ev = reply["alarm"]
            assert (ev["transition"], ev["shelved_by"], ev["shelve_reason"]) == (
                "shelved",
                "ana",
                "valve work",
            )
            assert datetime.fromisoformat(ev["shelved_until"]) == at(779)
            await send_windows(mosquitto.url, asset, 720, 790, 4.0)  # the fault goes on past the shelf
            _, back, _ = await col.wait_for(
                lambda t, p: t == topics.alarm(asset) and p.get("transition") == "unshelved"
            )
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            async with client(mosquitto.url) as c:
                for t in (model_topic, topics.health(asset)):
                    await c.publish(t, b"", qos=1, retain=True)
    assert (back["who"], back["alarm_id"], back["shelved_until"]) == ("system", opened["alarm_id"], None)
    assert datetime.fromisoformat(back["ts"]) == at(779)
    shelving = [
        p.get("transition") for p in col.on(topics.alarm(asset)) if p["alarm_id"] == opened["alarm_id"]
    ]
    assert shelving.count("shelved") == 1 and shelving.count("unshelved") == 1
