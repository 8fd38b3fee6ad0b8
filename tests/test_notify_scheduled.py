"""Scheduled reports delivered: a schedule of the notification configuration (retained on
``notify/config``) comes due on the reporter's clock; the reporter builds the executive PDF from the
SQLite store's stored data (the real builder) and a local SMTP server (aiosmtpd) receives exactly one
e-mail per asset per due time: with the 1-page PDF naming the asset, or — for an asset without data —
an e-mail saying so and no PDF. The same schedule's apprise channel (apprise's JSON POST to a local
receiver) gets the same two messages, the same PDF attached. A restarted reporter (same journal) does not
send them again."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import time
from email.message import Message
from pathlib import Path

import pytest

from services.reporter.notifications import Notifications
from shared import records
from shared.bus import MemoryBus
from shared.messages import AssetConfig
from shared.notify.config import NOTIFY_CONFIG_TOPIC
from shared.service import running_in_memory
from shared.store.sqlite import SqliteStore
from tests.support.gateway import poll
from tests.support.notify import Sink, WebhookReceiver, email_channel, receivers, reporter
from tests.test_reporter import A, health, reading

pytestmark = pytest.mark.integration

EMPTY = "spare_9"


class Clock:
    """The reporter's clock, moved on by the test (one due time, not a stream of them)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def config(smtp_port: int, hook: WebhookReceiver) -> dict[str, object]:
    mail = email_channel("managers", smtp_port, "managers@plant.example")
    chat = {"id": "chat", "kind": "apprise", "apprise": {"urls": [f"json://127.0.0.1:{hook.port}/reports"]}}
    schedule = {"id": "weekly-exec", "channels": ["managers", "chat"], "assets": [A, EMPTY], "every_s": 3600}
    return {
        "retry": {"first_s": 0.05, "factor": 2.0, "max_s": 0.4},
        "channels": [mail, chat],
        "schedules": [schedule],
    }


def pdf_of(m: Message) -> bytes | None:
    parts = [p for p in m.walk() if p.get_content_type() == "application/pdf"]
    assert len(parts) <= 1
    return parts[0].get_payload(decode=True) if parts else None  # type: ignore[return-value]


def text_of(m: Message) -> str:
    part = next(p for p in m.walk() if p.get_content_type() == "text/plain")
    return part.get_payload(decode=True).decode()  # type: ignore[union-attr]


async def test_a_due_schedule_mails_the_executive_pdf_once_per_asset(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db.sqlite")
    points = [records.reading_to_point(reading(i, vib=2.75 if i == 91 else None)) for i in range(120)]
    points += [records.health_to_point(health(i, 95.0 if i < 60 else 40.0)) for i in range(0, 120, 10)]
    store.write(points)
    clock, bus = Clock(), MemoryBus()
    try:
        async with receivers() as (hook, sink, smtp_port):
            notify = Notifications(tmp_path / "notifications", "http://unused", clock=clock)
            notify.scheduled.store = store
            # the reporter's retained asset configurations (service.build shares its handlers' map)
            notify.scheduled.configs = {A: AssetConfig(asset_id=A, name="Boiler feed pump 2", type="pump")}
            async with running_in_memory(reporter(notify), bus):
                await bus.publish(NOTIFY_CONFIG_TOPIC, config(smtp_port, hook), retain=True)
                await poll(lambda: "schedule:weekly-exec" in notify.outbox.seen)
                assert sink.messages == []  # not due yet: the first occurrence is an hour after
                clock.offset = 3600.5
                notify.scheduled.wake.set()
                await poll(lambda: notify.outbox.counts()["delivered"] == 4, timeout=60)
            _check(sink, tmp_path)
            _check_apprise(hook, sink)
            # every delivery done: the next check deletes the report file (none other was written)
            reports = tmp_path / "notifications" / "reports"
            assert [p.suffix for p in reports.iterdir()] == [".pdf"]
            assert await notify.scheduled.tick() is not None
            assert list(reports.iterdir()) == []

            # restarted on the same journal, still past that due time: nothing is sent again
            again = Notifications(tmp_path / "notifications", "http://unused", clock=clock)
            again.scheduled.store = store
            await again.load()
            assert again.config.schedules and "schedule:weekly-exec" in again.outbox.seen
            assert await again.scheduled.tick() is not None
            assert again.outbox.counts() == {"pending": 0, "delivered": 4, "failed": 0, "cancelled": 0}
            assert (len(sink.messages), len(hook.received)) == (2, 2)
    finally:
        store.close()


def _check(sink: Sink, tmp_path: Path) -> None:
    assert len(sink.messages) == 2
    by_asset = {m["Subject"].split(" report of ")[1].split(":")[0]: m for m in sink.messages}
    assert set(by_asset) == {A, EMPTY}

    m = by_asset[A]
    assert m["Subject"] == f"[Rotorwatch] Scheduled executive report of {A}"
    assert m["To"] == "managers@plant.example" and m["X-Rotorwatch-Delivery"].endswith("@managers")
    assert f"Asset:    {A}" in text_of(m) and "Attached: " in text_of(m)
    pdf = pdf_of(m)
    assert pdf is not None and pdf.startswith(b"%PDF")
    path = tmp_path / "scheduled.pdf"
    path.write_bytes(pdf)
    assert shutil.which("pdfinfo") and shutil.which("pdftotext")
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"^Pages:\s+1$", info, re.M), info
    words = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert A in words and "Boiler feed pump 2" in words  # the asset's configuration is used

    empty = by_asset[EMPTY]
    assert pdf_of(empty) is None
    assert empty["Subject"].endswith(": no data in the period")
    assert f"No report: no stored data of asset {EMPTY}" in text_of(empty)


def _check_apprise(hook: WebhookReceiver, sink: Sink) -> None:
    """The apprise channel got the e-mails' subjects, the PDF attached to the asset with data only."""
    got = {b["title"]: b for b in hook.bodies()}
    assert set(got) == {m["Subject"].replace("\r\n", "").strip() for m in sink.messages}  # unfolded
    with_data = got[f"[Rotorwatch] Scheduled executive report of {A}"]
    (att,) = with_data["attachments"]
    assert att["mimetype"] == "application/pdf" and att["filename"].endswith(".pdf")
    mailed = next(pdf_of(m) for m in sink.messages if A in m["Subject"])
    assert base64.b64decode(att["base64"]) == mailed
    (empty,) = [b for t, b in got.items() if EMPTY in t]
    assert not empty.get("attachments") and "no data in the period" in empty["title"]
