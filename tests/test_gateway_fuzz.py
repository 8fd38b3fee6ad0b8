"""API fuzzing from the gateway's own OpenAPI schema (schemathesis + hypothesis), as admin, on the
in-memory gateway (``create_app(settings, bus=MemoryBus())``) with fake services answering every
command: no 5xx, no hang, for every operation. Fixed budget: :data:`EXAMPLES` generated requests
per operation, derandomized (the same requests every run), each bounded in time.

``GET /stream`` is left out: it is an endless Server-Sent-Events stream by design (its parameters are
the matrix test's and test_gateway's business).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings

from services.gateway.app import create_app
from shared import topics
from shared.apikey import auth_headers
from shared.bus import MemoryBus
from shared.messages import (
    AlarmActionReply,
    CalibrationReply,
    ConfigReply,
    PurgeReply,
    ReloadReply,
    ServiceStatus,
)
from shared.messages.commands import ModelExportReply, ModelImportReply, ReportReply
from shared.notify.commands import NotifyReply
from tests.support.gateway import KEYS, memory_settings, responder, seed_auth

#: Generated requests per operation (the fixed budget) and the longest one request may take.
EXAMPLES = 15
REQUEST_TIMEOUT_S = 10.0
ADMIN = auth_headers(KEYS["admin"])


def _failed(req: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"status": "failed", "code": "not_found", "message": "fuzz: no such thing"}]


def _calibration(req: dict[str, Any]) -> list[dict[str, Any]]:
    reply = {
        "asset_id": req["asset_id"],
        "status": "rejected",
        "code": "insufficient_data",
        "message": "fuzz",
    }
    return [reply]


COMMANDS = (
    ("purge", _failed, PurgeReply),
    ("reload", _failed, ReloadReply),
    ("alarm_action", _failed, AlarmActionReply),
    ("config", _failed, ConfigReply),
    ("calibrate", _calibration, CalibrationReply),
    ("model_import", _failed, ModelImportReply),
    ("model_export", _failed, ModelExportReply),
    ("report", _failed, ReportReply),
    ("notifications", _failed, NotifyReply),
)


def fuzz_app(tmp: Any) -> FastAPI:
    """The gateway app whose lifespan also runs a fake responder for every command and marks every
    service online and ready (schemathesis runs the lifespan in its own event loop)."""
    ready = ("ingest", "historian", "features", "calibrator", "health")
    settings_ = memory_settings(
        tmp, command_timeout_s=2, calibration_timeout_s=2, ready_services=",".join(ready)
    )
    seed_auth(settings_.data_dir)
    bus = MemoryBus()
    app = create_app(settings_, bus=bus)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[None]:
        async with inner(a), AsyncExitStack() as stack:
            for name, replies, model in COMMANDS:
                await stack.enter_async_context(responder(bus, name, replies, model))
            for service in ready:
                status = ServiceStatus(service=service, state="online", ready=True)
                await bus.publish(topics.service_status(service), status, qos=1, retain=True)
            yield

    app.router.lifespan_context = lifespan
    return app


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app(tmp_path_factory.mktemp("fuzz")))
    yield schema.exclude(path="/api/v1/stream")


def fuzz_operation(op: Any, statuses: dict[int, int]) -> None:
    """:data:`EXAMPLES` requests generated from ``op``'s schema, as admin: each under
    :data:`REQUEST_TIMEOUT_S` and answered below 500; ``statuses`` counts the answers."""

    @given(case=op.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def call(case: Any) -> None:
        started = time.monotonic()
        response = case.call(headers=ADMIN, timeout=REQUEST_TIMEOUT_S)
        assert time.monotonic() - started < REQUEST_TIMEOUT_S, f"{case.method} {case.formatted_path}: hang"
        detail = f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
        assert response.status_code < 500, detail
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    call()


def test_no_5xx_and_no_hang(api_schema: Any) -> None:
    """Every operation: :data:`EXAMPLES` requests from its schema (valid and invalid inputs), as admin."""
    seen: dict[str, dict[int, int]] = {}
    took: dict[str, float] = {}
    for result in api_schema.get_all_operations():
        op = result.ok()
        name = f"{op.method.upper()} {op.path}"
        started = time.monotonic()
        fuzz_operation(op, seen.setdefault(name, {}))
        took[name] = time.monotonic() - started
    assert len(seen) >= 25 and all(seen.values()), seen
    total = sum(sum(v.values()) for v in seen.values())
    print(f"\n[fuzz] {total} requests over {len(seen)} operations in {sum(took.values()):.1f} s, none 5xx:")
    for name, statuses in sorted(seen.items()):
        print(f"  {name}: {dict(sorted(statuses.items()))} ({took[name]:.2f} s)")
