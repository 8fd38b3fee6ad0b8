"""``/auth``: log in (session cookie for the dashboard), log out, and who am I.

The session cookie holds a random token (the store keeps its SHA-256), is ``HttpOnly`` and
``SameSite=Strict`` (``Secure`` over HTTPS) and expires with the session (SESSION_TTL_S).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

import structlog
from fastapi import APIRouter, Cookie, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from services.gateway.auth.guard import SESSION_COOKIE, Authenticated, Public, auth_store, deny, route_of
from services.gateway.auth.roles import Identity, Role
from services.gateway.auth.store import AuthError

router = APIRouter(prefix="/auth", tags=["auth"])
log = structlog.get_logger()


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class Me(BaseModel):
    username: str
    role: Role
    assets: list[str] = Field(default_factory=list, description="Assets a device may send data for")
    via: str = Field(description="`session` or `key:<key id>`")
    expires_at: datetime | None = Field(default=None, description="When the new session ends (login)")


class LoggedOut(BaseModel):
    status: str = "logged out"


def _me(identity: Identity, expires_at: float | None = None) -> Me:
    expiry = datetime.fromtimestamp(expires_at, UTC) if expires_at is not None else None
    return Me(
        username=identity.user,
        role=identity.role,
        assets=list(identity.assets),
        via=identity.via,
        expires_at=expiry,
    )


@router.post("/login", response_model=Me, responses={401: {"description": "Invalid user name or password"}})
async def login(body: LoginIn, request: Request, response: Response, _: Public) -> Me:
    """Check the user's password and open a session: sets the session cookie."""
    store = auth_store(request)
    try:
        token, identity, expires_at = await asyncio.to_thread(store.login, body.username, body.password)
    except AuthError as exc:
        # One answer for unknown users, wrong passwords and disabled accounts; the log says which.
        client = request.client.host if request.client else None
        who = f"login {body.username!r}"
        deny(
            401,
            str(exc).split(" (")[0],
            route=route_of(request),
            identity=who,
            client=client,
            logged=str(exc),
        )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=round(expires_at - datetime.now(UTC).timestamp()),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    log.info("login", user=identity.user, role=identity.role.value)
    return _me(identity, expires_at)


@router.post("/logout", response_model=LoggedOut)
async def logout(
    request: Request,
    response: Response,
    _: Public,
    session: Annotated[str | None, Cookie(alias=SESSION_COOKIE, include_in_schema=False)] = None,
) -> LoggedOut:
    """End the session of the cookie (if any) and clear the cookie."""
    if session:
        ended = await asyncio.to_thread(auth_store(request).logout, session)
        log.info("logout", ended=ended)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return LoggedOut()


@router.get("/me", response_model=Me)
async def me(who: Authenticated) -> Me:
    """The caller's identity (any role, API key or session)."""
    return _me(who)
