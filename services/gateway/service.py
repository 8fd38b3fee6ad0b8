"""The gateway as a declared service: its bus side (the routes of its
:class:`~services.gateway.view.BusView`: retained views, command replies, live events) with the HTTP
API as its state port.

``python -m services.gateway`` runs it like every service (:func:`shared.service.main`): the state port
opens the store and starts serving the REST API, the SSE stream and the dashboard on
GATEWAY_HOST:GATEWAY_PORT before the bus connects (requests that need the broker answer 503 until it
is connected), and stops the server and closes the store after the bus side stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence

import structlog
import uvicorn

from services.gateway.app import create_app
from services.gateway.auth.bootstrap import StartupRefused, open_auth
from services.gateway.auth.store import AuthStore
from services.gateway.deps import GatewayContext
from services.gateway.stream import StreamHub
from services.gateway.view import SERVICE, BusView, bus_side
from shared.bus import ServeState
from shared.learning.signing import load_verifier
from shared.service import Service, no_arguments
from shared.settings import Settings
from shared.store import Store, open_store

log = structlog.get_logger()

#: Seconds the HTTP server waits for open requests on shutdown before cancelling them.
SHUTDOWN_GRACE_S = 5.0


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the service runner owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpApi:
    """The HTTP side of the gateway as a :class:`~shared.service.StatePort` of its bus side."""

    def __init__(self, settings: Settings, view: BusView, serve_state: ServeState) -> None:
        self.settings = settings
        self.view = view
        self.serve_state = serve_state
        self._store: Store | None = None
        self._auth: AuthStore | None = None
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        s = self.settings
        try:
            self._auth = await asyncio.to_thread(open_auth, s)
        except StartupRefused as exc:
            log.error("gateway_refused", reason=str(exc))
            raise SystemExit(2) from None
        self._store = await asyncio.to_thread(open_store, s)
        ctx = GatewayContext(
            settings=s, store=self._store, view=self.view, serve_state=self.serve_state, auth=self._auth
        )
        config = uvicorn.Config(
            create_app(s, context=ctx),
            host=s.gateway_host,
            port=s.gateway_port,
            log_config=None,
            log_level=s.log_level.lower(),
            timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(), name="gateway-http")

    async def close(self) -> None:
        if self._server is not None and self._task is not None:
            self.view.hub.close()  # open SSE streams end, so the server can finish its connections
            self._server.should_exit = True
            await self._task
        if self._store is not None:
            await asyncio.to_thread(self._store.close)
        if self._auth is not None:
            await asyncio.to_thread(self._auth.close)


def build(settings: Settings, argv: Sequence[str] = ()) -> Service:
    """The bus side of a fresh view, serving the HTTP API as its state port."""
    no_arguments(SERVICE, argv)
    view = BusView(hub=StreamHub(settings.sse_queue_size), verifier=load_verifier(settings))
    service = bus_side(view)
    service.state = HttpApi(settings, view, service.serve_state)
    return service
