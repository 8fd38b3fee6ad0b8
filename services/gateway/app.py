"""The gateway's FastAPI application: :func:`create_app` wires routers, error handlers, the request
body limit and the lifespan (store + the bus side, :func:`~services.gateway.view.bus_side`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway.auth.bootstrap import StartupRefused, open_auth
from services.gateway.deps import GatewayContext, JsonBodyMiddleware
from services.gateway.routers import (
    alarms,
    assets,
    auth,
    calibration,
    dashboard,
    data,
    logs,
    models,
    monitoring,
    notifications,
    reports,
    stream,
    system,
    users,
)
from services.gateway.stream import StreamHub
from services.gateway.view import BusView, bus_side
from shared.bus import MemoryBus
from shared.learning.signing import load_verifier
from shared.service import Service, run_service, serve_memory
from shared.settings import Settings
from shared.store import StoreError, StoreUnavailable, open_store

API_PREFIX = "/api/v1"

log = structlog.get_logger()

#: Routers under :data:`API_PREFIX` (``/healthz`` and the dashboard are at the root).
API_ROUTERS = (
    data.router,
    assets.router,
    monitoring.router,
    calibration.router,
    alarms.router,
    logs.router,
    models.router,
    system.api_router,
    stream.router,
    auth.router,
    users.router,
    notifications.router,
    reports.router,
)


# ---------------------------------------------------------------------------------------------
# Errors: always {"detail": "<clear reason>"}
# ---------------------------------------------------------------------------------------------
def describe_validation(errors: Sequence[Any]) -> str:
    """One line naming each failing field (``voltage_v: Input should be a finite number``)."""
    parts = []
    for err in list(errors)[:5]:
        loc = [str(p) for p in err.get("loc", ())]
        if err.get("type") == "json_invalid":
            pos = loc[-1] if len(loc) > 1 else "?"
            parts.append(f"malformed JSON: {err.get('ctx', {}).get('error', 'invalid')} at position {pos}")
            continue
        if loc and loc[0] == "body":
            loc = loc[1:]
        parts.append(f"{'.'.join(loc) or 'body'}: {err.get('msg', 'invalid')}")
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    # Only loc/msg/type: the rejected input itself may be NaN, which JSON cannot carry.
    slim = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in errors
    ]
    return JSONResponse({"detail": describe_validation(errors), "errors": slim}, status_code=422)


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": f"store unavailable: {exc}"}, status_code=503)


async def _store_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("store_error", path=request.url.path, error=str(exc))
    return JSONResponse({"detail": f"store error: {exc}"}, status_code=500)


# ---------------------------------------------------------------------------------------------
# Request body limit (413 with a JSON reason)
# ---------------------------------------------------------------------------------------------
class BodyLimitMiddleware:
    """Refuse request bodies over ``limit`` bytes with 413: at once from ``Content-Length``, else while
    the body streams in (chunked uploads)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    def _reason(self, size: int | str) -> str:
        return f"request body too large: {size} bytes > limit {self.limit} bytes (MAX_PAYLOAD_BYTES)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    declared = int(v)
                except ValueError:
                    declared = -1
                if declared > self.limit:
                    resp = JSONResponse({"detail": self._reason(declared)}, status_code=413)
                    await resp(scope, receive, send)
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise HTTPException(413, self._reason(f"more than {self.limit}"))
            return msg

        await self.app(scope, limited, send)


# ---------------------------------------------------------------------------------------------
# The app
# ---------------------------------------------------------------------------------------------
async def _cancel(task: asyncio.Task[None], grace_s: float = 3.0) -> None:
    """Cancel ``task`` and wait until it ends, cancelling again after each ``grace_s`` s: on Python 3.11
    ``asyncio.wait_for`` (used by aiomqtt's publish) can swallow a cancellation that arrives just as the
    awaited publish completes, and the bus loop would then run on."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=grace_s)
    if not task.cancelled() and task.exception() is not None:
        log.error("bus_loop_failed", error=repr(task.exception()))


async def _start_bus_side(service: Service, settings: Settings, bus: MemoryBus | None) -> asyncio.Task[None]:
    """Run ``service`` in the background: on ``bus`` when given (ready on return), else on the broker
    (reconnecting; HTTP handlers answer 503 until it is connected)."""
    if bus is None:
        return asyncio.create_task(run_service(service, settings), name="gateway-bus")
    task = asyncio.create_task(
        serve_memory(service, bus, max_payload_bytes=settings.max_payload_bytes), name="gateway-bus"
    )
    await service.serve_state.ready.wait()
    return task


Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def _running(settings: Settings, bus: MemoryBus | None) -> Lifespan:
    """Lifespan that opens the store and runs the bus side (:func:`bus_side`) in the background."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            auth = await asyncio.to_thread(open_auth, settings)
        except StartupRefused as exc:
            log.error("gateway_refused", reason=str(exc))
            raise
        store = open_store(settings)
        view = BusView(hub=StreamHub(settings.sse_queue_size), verifier=load_verifier(settings))
        service = bus_side(view)
        task = await _start_bus_side(service, settings, bus)
        app.state.ctx = GatewayContext(
            settings=settings, store=store, view=view, serve_state=service.serve_state, auth=auth
        )
        log.info("gateway_started", requester=view.requester, in_memory=bus is not None)
        try:
            yield
        finally:
            app.state.ctx = None
            await _cancel(task)
            store.close()
            await asyncio.to_thread(auth.close)

    return lifespan


def _attached(context: GatewayContext) -> Lifespan:
    """Lifespan for an app whose store and bus side are run by its owner (:mod:`services.gateway.service`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.ctx = context
        try:
            yield
        finally:
            app.state.ctx = None

    return lifespan


def create_app(
    settings: Settings, *, bus: MemoryBus | None = None, context: GatewayContext | None = None
) -> FastAPI:
    """The gateway app. By default its lifespan opens the store and runs the gateway's bus side
    (:func:`~services.gateway.view.bus_side`) in the background: on the broker or, given ``bus``, on that
    in-memory bus. Given ``context``, the app serves it and starts nothing (``python -m
    services.gateway``: the service runner runs the bus side). HTTP handlers publish through the bus
    side and answer from the store and the :class:`BusView`."""
    lifespan = _attached(context) if context is not None else _running(settings, bus)
    app = FastAPI(
        title="Rotorwatch gateway",
        version="1",
        description=(
            "REST API of Rotorwatch: data input, assets (readings, scores, health, configuration), "
            "calibration, monitoring state and baselines, alarms, operator logs, live SSE stream."
        ),
        lifespan=lifespan,
    )
    app.state.ctx = None
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_payload_bytes)
    app.add_middleware(JsonBodyMiddleware, prefix=API_PREFIX + "/")
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StoreUnavailable, _store_unavailable)
    app.add_exception_handler(StoreError, _store_error)
    for r in API_ROUTERS:
        app.include_router(r, prefix=API_PREFIX)
    app.include_router(system.router)
    app.include_router(dashboard.router)
    try:
        dashboard.mount_static(app)
    except RuntimeError as exc:  # static files missing: the API works without the dashboard
        log.warning("dashboard_static_unavailable", error=str(exc))
    return app
