"""The gateway on the in-memory bus for router tests: the real app (lifespan, routers, SQLite store)
with ``create_app(settings, bus=MemoryBus())``, an HTTP client on it (no server, no broker), and fake
responders that answer commands on that bus.

Its auth store is seeded with one user per role (user name = role name) and the API keys in
:data:`KEYS`; ``api`` sends the admin's key, ``clients[role]`` (``None``: anonymous) another one's."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import BaseModel

from services.gateway.app import API_PREFIX, create_app
from services.gateway.auth.roles import Role
from services.gateway.auth.store import open_auth_store
from services.gateway.view import BusView
from shared import topics
from shared.apikey import auth_headers
from shared.bus import MemoryBus
from shared.messages import ModelManifest, RawScore, ServiceStatus
from shared.settings import Settings
from tests.support.signing import VERIFY_KEY

#: The seeded users' API keys, by user name (= role).
KEYS: dict[str, str] = {r.value: f"test-{r.value}-key-{'0' * 24}" for r in Role}
#: The seeded ``device`` user's assets.
DEVICE_ASSETS = ("m1", "motor_01")


@dataclass
class MemoryGateway:
    app: FastAPI
    bus: MemoryBus
    #: Clients (as admin) rooted at the API prefix (``/api/v1``) and at ``/`` (``/healthz``, ``/docs``,
    #: dashboard).
    api: httpx.AsyncClient
    root: httpx.AsyncClient
    settings: Settings
    #: Clients rooted at the API prefix by seeded user (``None``: no credentials).
    clients: dict[str | None, httpx.AsyncClient]

    @property
    def view(self) -> BusView:
        return self.app.state.ctx.view  # type: ignore[no-any-return]

    async def retain(self, topic: str, message: BaseModel | bytes) -> None:
        """Publish retained (``b""`` clears) as a service would, and return once the gateway's view has
        taken it (its subscription queues drained): a request made next sees it. (The data posts used
        to hop to a thread pool, which gave the view its turn by chance; they no longer do.)"""
        await self.bus.publish(topic, message, qos=1, retain=True)
        for _ in range(10_000):
            await asyncio.sleep(0)
            if self.bus.drained():
                break
        for _ in range(5):  # the message taken last is handled within a few turns (no awaits inside)
            await asyncio.sleep(0)


def memory_settings(data_dir: Path, **over: Any) -> Settings:
    """Settings for :func:`memory_gateway`: SQLite under ``data_dir``, a broker address never used,
    development mode (missing secrets are generated under ``data_dir``)."""
    base = {
        "mqtt_url": "mqtt://127.0.0.1:1",
        "data_dir": data_dir,
        "influx_url": None,
        "rotorwatch_env": "development",
        # Model announcements are trusted when signed with the test key (tests.support.signing).
        "model_verify_key": VERIFY_KEY,
    }
    return Settings(**{**base, **over})


def seed_auth(data_dir: Path) -> None:
    """One user per role with the API keys in :data:`KEYS` (no passwords: no argon2 cost), unless the
    store under ``data_dir`` has users already."""
    store = open_auth_store(data_dir)
    try:
        if not store.has_users():
            for role in Role:
                store.create_user(role.value, role, assets=DEVICE_ASSETS if role is Role.device else ())
                store.create_key(role.value, "test", secret=KEYS[role.value])
    finally:
        store.close()


@contextlib.asynccontextmanager
async def memory_gateway(settings: Settings, *, seed: bool = True) -> AsyncIterator[MemoryGateway]:
    """The gateway app with its lifespan running on a fresh :class:`MemoryBus`; ``api`` is rooted at
    the API prefix. ``seed``: the users of :data:`KEYS` exist (else the first start creates ``admin``)."""
    if seed:
        seed_auth(settings.data_dir)
    bus = MemoryBus()
    # An ingest service is online (its retained status): data posts are accepted (routers/data.py).
    ingest_online = ServiceStatus(service="ingest", state="online")
    await bus.publish(topics.service_status("ingest"), ingest_online, retain=True)
    app = create_app(settings, bus=bus)
    async with app.router.lifespan_context(app), contextlib.AsyncExitStack() as stack:
        transport = httpx.ASGITransport(app=app)
        base = "http://gateway" + API_PREFIX
        clients: dict[str | None, httpx.AsyncClient] = {
            user: await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=transport, base_url=base, headers=auth_headers(KEYS.get(user or ""))
                )
            )
            for user in (None, *KEYS)
        }
        root = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=transport, base_url="http://gateway", headers=auth_headers(KEYS["admin"])
            )
        )
        yield MemoryGateway(app, bus, clients["admin"], root, settings, clients)


async def poll(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Await until ``check()`` (sync) returns a truthy value (bounded in time)."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.005)


Replies = Callable[[dict[str, Any]], list[dict[str, Any]] | Awaitable[list[dict[str, Any]]]]


@contextlib.asynccontextmanager
async def responder(
    bus: MemoryBus, name: str, replies: Replies, model: type[BaseModel] | None = None
) -> AsyncIterator[list[dict[str, Any]]]:
    """A fake service on ``cmd/<name>``: each request is recorded and answered with ``replies(req)`` (a
    list, or a coroutine that may publish first)
    (each reply gets the request's ``correlation_id``; with ``model``, it must be one: the fakes speak
    the contract)."""
    seen: list[dict[str, Any]] = []
    requests = bus.subscribe(topics.command(name))

    async def loop() -> None:
        while True:
            req = json.loads((await requests.get()).payload)
            seen.append(req)
            out = replies(req)
            for rep in await out if inspect.isawaitable(out) else out:
                reply = {"correlation_id": req["correlation_id"], **rep}
                if model is not None:
                    reply = model.model_validate(reply).model_dump(mode="json")
                await bus.publish(req["reply_to"], reply, qos=1)

    task = asyncio.create_task(loop())
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def manifest(kind: str, features: list[str] | None = None, **over: Any) -> ModelManifest:
    """A minimal valid manifest entry of a ``kind`` model (``over`` sets baselines etc.)."""
    names = features or ["f0"]
    return ModelManifest(
        kind=kind,  # type: ignore[arg-type]
        algorithm="autoencoder" if kind == "autoencoder" else "isolation_forest",
        features=names,
        n_features=len(names),
        input="x",
        output="score",
        raw_score=RawScore(transform="identity"),
        threshold=0.5,
        **over,
    )
