"""The gateway's FastAPI application: :func:`create_app` wires routers, error handlers, the request
body limit and the lifespan (store + background bus loop)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway import configs
from services.gateway.deps import GatewayContext
from services.gateway.routers import (
    alarms,
    assets,
    calibration,
    data,
    logs,
    models,
    monitoring,
    stream,
    system,
)
from services.gateway.stream import StreamHub
from services.gateway.view import BusView
from shared.bus import ServeState, serve
from shared.settings import Settings
from shared.store import StoreError, StoreUnavailable, open_store

SERVICE = "gateway"
API_PREFIX = "/api/v1"

log = structlog.get_logger()


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
def create_app(settings: Settings, *, view: BusView | None = None) -> FastAPI:
    """The gateway app. The lifespan opens the store and runs the bus loop in the background; HTTP
    handlers publish through it and answer from the store and the in-memory :class:`BusView`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = open_store(settings)
        bus_view = view or BusView(hub=StreamHub(settings.sse_queue_size))
        state = ServeState()
        republish = configs.republish_task(configs.config_dir(settings.data_dir))
        task = asyncio.create_task(
            serve(
                SERVICE, settings, bus_view.subscriptions(), bus_view.handle, state=state, tasks=[republish]
            ),
            name="gateway-bus",
        )
        app.state.ctx = GatewayContext(settings=settings, store=store, view=bus_view, serve_state=state)
        log.info("gateway_started", requester=bus_view.requester)
        try:
            yield
        finally:
            app.state.ctx = None
            await _cancel(task)
            store.close()

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
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StoreUnavailable, _store_unavailable)
    app.add_exception_handler(StoreError, _store_error)
    for r in (
        data.router,
        assets.router,
        monitoring.router,
        calibration.router,
        alarms.router,
        logs.router,
        models.router,
        system.api_router,
        stream.router,
    ):
        app.include_router(r, prefix=API_PREFIX)
    app.include_router(system.router)
    _include_dashboard(app)
    return app


def _include_dashboard(app: FastAPI) -> None:
    """Serve the dashboard (``/`` and ``/static``) when its router and files are present; the API works
    without it."""
    try:
        from services.gateway.routers import dashboard
    except ImportError as exc:
        log.warning("dashboard_unavailable", error=str(exc))
        return
    router = getattr(dashboard, "router", None)
    if router is not None:
        app.include_router(router)
    mount = getattr(dashboard, "mount_static", None)
    if mount is not None:
        try:
            mount(app)
        except RuntimeError as exc:  # static files missing
            log.warning("dashboard_static_unavailable", error=str(exc))
