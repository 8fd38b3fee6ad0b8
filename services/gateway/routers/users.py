"""``/users`` and ``/keys`` (admin only): users with their role and device assets, and API keys.

The same operations as the admin CLI (``python -m services.gateway.admin``). A new API key is shown
once, in the answer that creates it; only its SHA-256 is stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import structlog
from fastapi import APIRouter, HTTPException, status
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from services.gateway.auth.guard import Admin
from services.gateway.auth.roles import Role
from services.gateway.auth.store import USERNAME_PATTERN, ApiKey, Conflict, NotFound, User, check_password
from services.gateway.deps import ContextDep

router = APIRouter(tags=["users"])
log = structlog.get_logger()
T = TypeVar("T")

UserPath = Annotated[str, PathParam(pattern=USERNAME_PATTERN, description="User name")]
KeyIdPath = Annotated[str, PathParam(pattern=r"^[0-9a-f]{8}$", description="API key id (8 hex digits)")]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown user or key"},
    409: {"description": "Name taken, or the change would leave no enabled admin"},
    422: {"description": "Invalid name, role, asset id or password"},
}


class UserOut(BaseModel):
    username: str
    role: Role
    assets: list[str]
    disabled: bool
    has_password: bool
    created_at: datetime


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=USERNAME_PATTERN)
    role: Role
    assets: list[str] = Field(default_factory=list, max_length=10_000, description="Device: its assets")
    password: str | None = Field(default=None, max_length=1024, description="None: API keys only")


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    assets: list[str] | None = Field(default=None, max_length=10_000)
    disabled: bool | None = None
    password: str | None = Field(default=None, max_length=1024, description="New password (ends sessions)")


class KeyOut(BaseModel):
    id: str
    user: str
    label: str
    disabled: bool
    created_at: datetime


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(default="", max_length=200)


class NewKey(KeyOut):
    api_key: str = Field(description="The key: shown this once, send it as `Authorization: Bearer <key>`")


def _user(u: User) -> UserOut:
    return UserOut(
        username=u.name,
        role=u.role,
        assets=list(u.assets),
        disabled=u.disabled,
        has_password=u.has_password,
        created_at=datetime.fromtimestamp(u.created_at, UTC),
    )


def _key(k: ApiKey) -> KeyOut:
    return KeyOut(
        id=k.id,
        user=k.user,
        label=k.label,
        disabled=k.disabled,
        created_at=datetime.fromtimestamp(k.created_at, UTC),
    )


async def _call(fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    """Run a store operation off the event loop; its errors as 404/409/422."""
    try:
        return await asyncio.to_thread(fn, *args, **kw)
    except NotFound as exc:
        raise HTTPException(404, str(exc).strip("'\"")) from None
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("/users", response_model=list[UserOut])
async def list_users(ctx: ContextDep, who: Admin) -> list[UserOut]:
    """Every user, by name."""
    return [_user(u) for u in await _call(ctx.auth.users)]


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED, responses=_RESPONSES)
async def create_user(body: UserIn, ctx: ContextDep, who: Admin) -> UserOut:
    """A new user (``password`` for people; devices and scripts use API keys)."""
    u = await _call(
        ctx.auth.create_user, body.username, body.role, password=body.password, assets=body.assets
    )
    log.info("user_created", by=who.describe(), user=u.name, role=u.role.value, assets=list(u.assets))
    return _user(u)


@router.patch("/users/{username}", response_model=UserOut, responses=_RESPONSES)
async def update_user(username: UserPath, body: UserPatch, ctx: ContextDep, who: Admin) -> UserOut:
    """Change role, device assets, enabled state or password (absent fields stay)."""
    if body.password is not None:
        await _call(check_password, body.password)  # refused before anything changes
    u = await _call(
        ctx.auth.update_user, username, role=body.role, assets=body.assets, disabled=body.disabled
    )
    if body.password is not None:
        await _call(ctx.auth.set_password, username, body.password)
    changed = body.model_dump(exclude_none=True, exclude={"password"}) | (
        {"password": "changed"} if body.password is not None else {}
    )
    log.info("user_changed", by=who.describe(), user=u.name, **changed)
    return _user(u)


@router.get("/users/{username}/keys", response_model=list[KeyOut], responses=_RESPONSES)
async def list_keys(username: UserPath, ctx: ContextDep, who: Admin) -> list[KeyOut]:
    """The user's API keys (ids and labels; never the keys)."""
    await _call(ctx.auth.user, username)
    return [_key(k) for k in await _call(ctx.auth.keys, username)]


@router.post(
    "/users/{username}/keys", response_model=NewKey, status_code=status.HTTP_201_CREATED, responses=_RESPONSES
)
async def create_key(username: UserPath, body: KeyIn, ctx: ContextDep, who: Admin) -> NewKey:
    """A new API key for the user: the answer holds the key, shown this once."""
    k, secret = await _call(ctx.auth.create_key, username, body.label)
    log.info("api_key_created", by=who.describe(), user=username, key_id=k.id)
    return NewKey(**_key(k).model_dump(), api_key=secret)


@router.delete("/keys/{key_id}", response_model=KeyOut, responses=_RESPONSES)
async def disable_key(key_id: KeyIdPath, ctx: ContextDep, who: Admin) -> KeyOut:
    """Disable (revoke) an API key; requests with it get 401 from now on."""
    k = await _call(ctx.auth.disable_key, key_id)
    log.info("api_key_disabled", by=who.describe(), key_id=k.id, user=k.user)
    return _key(k)
