"""The request context (settings, store, auth store, bus view, bus) and its FastAPI dependency
:data:`ContextDep`; :class:`JsonBodyMiddleware` (JSON request bodies whatever their Content-Type)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any

import aiomqtt
from fastapi import Depends, HTTPException, Request
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from services.gateway.auth.store import AuthStore
from services.gateway.requests import ReplyCheck
from services.gateway.view import BusView
from shared.bus import Bus, ServeState
from shared.settings import Settings
from shared.store import Store

#: Seconds to wait for the broker's PUBACK of a QoS 1 publish before answering 503.
PUBLISH_TIMEOUT_S = 5.0


@dataclass
class GatewayContext:
    """Everything a request handler may use; built by the app's lifespan."""

    settings: Settings
    store: Store
    view: BusView
    serve_state: ServeState
    #: Users, API keys and sessions (:mod:`services.gateway.auth`).
    auth: AuthStore

    def bus(self) -> Bus:
        """The connected bus, or HTTP 503 when the broker is not connected."""
        st = self.serve_state
        if not st.connected or st.bus is None:
            b = self.settings.broker
            raise HTTPException(503, f"MQTT broker not connected ({b.host}:{b.port}); retry later")
        return st.bus

    async def publish(
        self, topic: str, payload: BaseModel | dict[str, Any] | bytes, *, retain: bool = False
    ) -> None:
        """Publish QoS 1 and wait for the broker's acknowledgement; HTTP 503 if that fails."""
        bus = self.bus()
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                await bus.publish(topic, payload, qos=1, retain=retain)
        except TimeoutError:
            reason = f"MQTT broker did not acknowledge within {PUBLISH_TIMEOUT_S} s"
            raise HTTPException(503, reason) from None
        except aiomqtt.MqttError as exc:
            raise HTTPException(503, f"MQTT publish failed: {exc}") from None

    async def request(
        self,
        topic: str,
        payload: BaseModel,
        timeout: float,
        *,
        responder: str,
        accept: ReplyCheck | None = None,
    ) -> dict[str, Any]:
        """Request/reply over the bus (:meth:`Requests.request`), with HTTP errors: 503 when the broker
        is not connected or the publish fails, 504 when ``responder`` sends no (accepted) reply within
        ``timeout`` s."""
        bus = self.bus()
        try:
            return await self.view.requests.request(bus, topic, payload, timeout, accept=accept)
        except TimeoutError:
            reason = f"no reply from the {responder} within {timeout:g} s (is the {responder} running?)"
            raise HTTPException(504, reason) from None
        except aiomqtt.MqttError as exc:
            raise HTTPException(503, f"MQTT publish failed: {exc}") from None


def get_context(request: Request) -> GatewayContext:
    """The gateway's context; HTTP 503 while the gateway is starting."""
    ctx = getattr(request.app.state, "ctx", None)
    if ctx is None:
        raise HTTPException(503, "gateway is starting up")
    return ctx  # type: ignore[no-any-return]


async def context_dependency(request: Request) -> GatewayContext:
    """:func:`get_context` as a coroutine, the dependency behind :data:`ContextDep`: FastAPI runs a
    plain ``def`` dependency in its thread pool, one thread hop per request for a dictionary look-up
    (issue 14)."""
    return get_context(request)


ContextDep = Annotated[GatewayContext, Depends(context_dependency)]


# ---------------------------------------------------------------------------------------------
# JSON bodies whatever the Content-Type
# ---------------------------------------------------------------------------------------------
#: Content types a client sends by default for a JSON body it did not label (``curl -d`` sends
#: ``application/x-www-form-urlencoded``); no gateway endpoint takes an HTML form, so such a body is
#: read as JSON. Multipart uploads and JSON types are left alone.
UNLABELLED_TYPES = (b"", b"application/x-www-form-urlencoded", b"text/plain")


class JsonBodyMiddleware:
    """A ``POST``/``PUT``/``PATCH`` to the API whose Content-Type is missing, form-urlencoded or plain
    text is handed on as ``application/json``: the body is parsed as JSON (a body that is not JSON gets
    the usual 422 ``malformed JSON`` with the position). Cross-site forms gain nothing from it: sessions
    are ``SameSite=Strict`` cookies and API keys are headers a form cannot set."""

    def __init__(self, app: ASGIApp, prefix: str = "/api/") -> None:
        self.app = app
        self.prefix = prefix

    def _unlabelled(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return False
        if not scope["path"].startswith(self.prefix):
            return False
        types = [v for k, v in scope["headers"] if k == b"content-type"]
        media = types[0].split(b";", 1)[0].strip().lower() if types else b""
        return media in UNLABELLED_TYPES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._unlabelled(scope):
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        await self.app(scope, receive, send)
