"""The FastAPI guards: every route declares who may call it with one of the ``Annotated`` types below.

    async def list_assets(ctx: ContextDep, who: Viewer) -> ...      # viewer, operator or admin
    async def purge(ctx: ContextDep, who: Admin) -> ...              # admin only
    async def healthz(ctx: ContextDep, _: Public) -> ...             # anyone, no credentials

A request authenticates with ``Authorization: Bearer <API key>`` (machines) or the dashboard's session
cookie (:data:`SESSION_COOKIE`, set by ``POST /auth/login``). Every denial is an HTTP error with the
reason in ``detail`` and a ``auth_denied`` log line (route, identity, reason; never a secret): 401 with
``WWW-Authenticate: Bearer`` for missing or invalid credentials, 403 when the role may not call the
route or a device sends for an asset that is not its own (:func:`require_asset`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from typing import Annotated, NoReturn

import structlog
from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from services.gateway.auth.roles import (
    ADMINISTER,
    AUTHENTICATED,
    INGEST,
    OPERATE,
    PUBLIC,
    READ,
    Grant,
    Identity,
)
from services.gateway.auth.store import AuthError, AuthStore

SESSION_COOKIE = "rw_session"

log = structlog.get_logger()

_bearer = HTTPBearer(auto_error=False, description="API key (`Authorization: Bearer <key>`)")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="Dashboard session (login)")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
CookieDep = Annotated[str | None, Depends(_cookie)]


def route_of(request: Request) -> str:
    """``METHOD /path`` of the request (the path as called, e.g. ``POST /api/v1/system/purge``), from
    the ASGI scope (no URL parsing)."""
    scope = request.scope
    return f"{scope['method']} {scope['path']}"


def deny(
    status: int,
    reason: str,
    *,
    route: str,
    identity: str,
    client: str | None = None,
    logged: str | None = None,
) -> NoReturn:
    """Log the denial (``logged``, when given, is a fuller reason for the log only) and raise it as an
    HTTP error with ``reason`` (401s carry ``WWW-Authenticate: Bearer``)."""
    log.warning(
        "auth_denied", status=status, route=route, identity=identity, reason=logged or reason, client=client
    )
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    raise HTTPException(status, reason, headers=headers)


def auth_store(request: Request) -> AuthStore:
    ctx = getattr(request.app.state, "ctx", None)
    if ctx is None:
        raise HTTPException(503, "gateway is starting up")
    return ctx.auth  # type: ignore[no-any-return]


def _fingerprint(secret: str) -> str:
    """A non-secret name for an unknown credential in logs: 8 hex digits of its SHA-256."""
    return hashlib.sha256(secret.encode()).hexdigest()[:8]


async def authenticate(request: Request, bearer: str | None, cookie: str | None) -> Identity:
    """The identity of the request's API key, else of its session cookie; 401 (logged) otherwise. A
    credential seen before is answered from the store's memory (:meth:`AuthStore.cached`), others
    from SQLite in a worker thread."""
    route = route_of(request)
    client = request.client.host if request.client else None
    if bearer is None and request.headers.get("authorization"):
        deny(401, "Authorization header must be 'Bearer <API key>'", route=route, identity="?", client=client)
    secret, kind = (bearer, "API key") if bearer is not None else (cookie, "session")
    if not secret:
        reason = "authentication required: send 'Authorization: Bearer <API key>' or log in"
        deny(401, reason, route=route, identity="anonymous", client=client)
    store = auth_store(request)
    identity = store.cached(secret, session=bearer is None)
    if identity is None:
        lookup = store.identify_key if bearer is not None else store.identify_session
        try:
            identity = await asyncio.to_thread(lookup, secret)
        except AuthError as exc:
            deny(401, str(exc), route=route, identity=f"{kind} {_fingerprint(secret)}", client=client)
    return dataclasses.replace(identity, route=route)


class Require:
    """Dependency that admits a request whose identity holds one of ``grant``'s roles and returns
    that identity (with :attr:`Identity.route` set); 401/403 otherwise."""

    def __init__(self, grant: Grant) -> None:
        self.grant = grant

    async def __call__(self, request: Request, bearer: BearerDep, cookie: CookieDep) -> Identity:
        identity = await authenticate(request, bearer.credentials if bearer else None, cookie)
        if not self.grant.allows(identity.role):
            reason = f"role {identity.role.value} may not {self.grant.action}: needs {self.grant.needed()}"
            deny(403, reason, route=identity.route, identity=identity.describe())
        return identity


class Anyone(Require):
    """Dependency of a route open to anyone without credentials (declared, so none is forgotten)."""

    def __init__(self) -> None:
        super().__init__(PUBLIC)

    async def __call__(self) -> None:  # type: ignore[override]
        return None


def require_asset(who: Identity, asset_id: str) -> None:
    """403 (logged) unless ``who`` may send data for ``asset_id`` (devices: only their assets)."""
    if not who.may_send_for(asset_id):
        mine = ", ".join(who.assets) or "none"
        reason = f"{who.role.value} {who.user} may not send data for asset {asset_id!r} (its assets: {mine})"
        deny(403, reason, route=who.route, identity=who.describe())


#: Route declarations, one per :class:`~services.gateway.auth.roles.Grant`.
Public = Annotated[None, Depends(Anyone())]
Authenticated = Annotated[Identity, Depends(Require(AUTHENTICATED))]
Viewer = Annotated[Identity, Depends(Require(READ))]
Operator = Annotated[Identity, Depends(Require(OPERATE))]
Admin = Annotated[Identity, Depends(Require(ADMINISTER))]
Ingest = Annotated[Identity, Depends(Require(INGEST))]
