"""``/api/v1/notifications`` on the in-memory bus with the reporter's notification handlers (no broker,
no receivers): bad configurations are refused with the reason, secrets are never answered and are kept
when a PUT leaves them out, the reporter's absence is a 504 with the reason."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from services.reporter.notifications import Notifications
from shared.service import Service, running_in_memory
from tests.support.gateway import MemoryGateway, memory_gateway, memory_settings

SECRET = "hook-secret-0123456789"
HOOK = {"id": "ops", "kind": "webhook", "webhook": {"url": "http://127.0.0.1:9/h", "secret": SECRET}}


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[MemoryGateway]:
    async with memory_gateway(memory_settings(tmp_path, command_timeout_s=2)) as g:
        yield g


@pytest.fixture
async def notify(gw: MemoryGateway, tmp_path: Path) -> AsyncIterator[Notifications]:
    n = Notifications(tmp_path / "notifications", "http://rw")
    async with running_in_memory(Service(name="reporter", routes=n.routes(), tasks=n.tasks()), gw.bus):
        yield n


async def test_secrets_are_never_answered_and_kept_when_left_out(
    gw: MemoryGateway, notify: Notifications
) -> None:
    r = await gw.api.put("/notifications/config", json={"channels": [HOOK]})
    assert r.status_code == 200 and r.json()["channels"][0]["webhook"]["secret"] == "***"
    edited: dict[str, Any] = r.json()
    edited["channels"][0]["min_severity"] = "CRITICAL"  # the client PUTs back what it got, "***" included
    r = await gw.api.put("/notifications/config", json=edited)
    assert r.status_code == 200, r.text
    ch = notify.config.channels[0]
    assert ch.min_severity == "CRITICAL" and ch.webhook is not None and ch.webhook.secret == SECRET
    assert SECRET not in (await gw.api.get("/notifications/config")).text
    # The reporter's cache (it must sign) holds the secret, readable by its owner only.
    cache = notify.file.config_path
    assert SECRET in cache.read_text() and cache.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"channels": [{**HOOK, "webhook": {"url": "ftp://x", "secret": SECRET}}]}, "channels.0.webhook.url"),
        ({"channels": [{**HOOK, "quiet_hours": {"start": "22:00", "end": "7"}}]}, "HH:MM"),
        ({"channels": [{**HOOK, "min_severity": "INFO"}]}, "channels.0.min_severity"),
        ({"channels": [HOOK, HOOK]}, "duplicate channel ids: ops"),
        ({"channels": [{**HOOK, "asset_min_severity": {"../x": "OFF"}}]}, "asset_min_severity"),
    ],
)
async def test_invalid_configurations_are_422_with_the_reason(
    gw: MemoryGateway, notify: Notifications, body: dict[str, Any], reason: str
) -> None:
    r = await gw.api.put("/notifications/config", json=body)
    assert r.status_code == 422 and reason in r.json()["detail"], r.text
    assert notify.config.channels == []


async def test_a_new_webhook_without_its_secret_is_refused_by_the_reporter(
    gw: MemoryGateway, notify: Notifications
) -> None:
    r = await gw.api.put(
        "/notifications/config", json={"channels": [{**HOOK, "webhook": {"url": "http://h"}}]}
    )
    assert r.status_code == 422 and "webhook.secret is required" in r.json()["detail"]


async def test_without_a_reporter_the_api_answers_504_with_the_reason(gw: MemoryGateway) -> None:
    r = await gw.api.get("/notifications/deliveries")
    assert r.status_code == 504 and "reporter" in r.json()["detail"]
