"""The gateway's per-request fast path (issue 14): API keys and sessions answered from the auth store's
memory after the first look-up, and forgotten on any change to the store (here or by another process,
as the admin CLI does); request dependencies resolved without a thread hop; the guard's route string
from the ASGI scope. On the in-memory gateway (no server, no broker)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from starlette.requests import Request

from services.gateway import deps
from services.gateway.auth.cache import IdentityCache
from services.gateway.auth.guard import route_of
from services.gateway.auth.roles import Identity, Role
from services.gateway.auth.store import AuthStore, open_auth_store
from shared.apikey import auth_headers
from tests.support.gateway import KEYS, MemoryGateway, memory_gateway, memory_settings

PASSWORD = "correct horse battery"


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[MemoryGateway]:
    async with memory_gateway(memory_settings(tmp_path)) as g:
        yield g


def auth_of(gw: MemoryGateway) -> AuthStore:
    return gw.app.state.ctx.auth  # type: ignore[no-any-return]


@pytest.fixture
def lookups(gw: MemoryGateway, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the SQLite identity look-ups the gateway makes (``key`` / ``session``)."""
    store = auth_of(gw)
    seen: list[str] = []
    real_key, real_session = store.identify_key, store.identify_session

    def key(secret: str) -> Identity:
        seen.append("key")
        return real_key(secret)

    def session(token: str) -> Identity:
        seen.append("session")
        return real_session(token)

    monkeypatch.setattr(store, "identify_key", key)
    monkeypatch.setattr(store, "identify_session", session)
    return seen


async def new_key(gw: MemoryGateway, user: str) -> tuple[str, httpx.AsyncClient]:
    r = await gw.api.post(f"/users/{user}/keys", json={"label": "fastpath"})
    assert r.status_code == 201, r.text
    body = r.json()
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gw.app),
        base_url=str(gw.api.base_url),
        headers=auth_headers(body["api_key"]),
    )
    return body["id"], client


async def test_a_key_is_looked_up_once_then_answered_from_memory(
    gw: MemoryGateway, lookups: list[str]
) -> None:
    viewer = gw.clients["viewer"]
    for _ in range(5):
        r = await viewer.get("/auth/me")
        assert r.status_code == 200 and r.json()["username"] == "viewer"
    assert lookups == ["key"]


async def test_a_key_revoked_through_the_api_is_refused_on_the_very_next_request(
    gw: MemoryGateway, lookups: list[str]
) -> None:
    key_id, client = await new_key(gw, "viewer")
    async with client:
        assert (await client.get("/auth/me")).status_code == 200
        assert (await client.get("/auth/me")).status_code == 200  # from memory
        assert (await gw.api.delete(f"/keys/{key_id}")).status_code == 200
        r = await client.get("/auth/me")
    assert r.status_code == 401 and r.json()["detail"] == f"API key {key_id} is disabled"


async def test_a_change_by_another_process_is_seen_on_the_very_next_request(gw: MemoryGateway) -> None:
    """The admin CLI writes the same SQLite file through its own connection: nothing in the gateway
    is told, the cache notices through SQLite's ``data_version``."""
    key_id, client = await new_key(gw, "viewer")
    async with client:
        assert (await client.get("/auth/me")).status_code == 200
        assert (await client.get("/auth/me")).status_code == 200
        other = await asyncio.to_thread(open_auth_store, gw.settings.data_dir)
        try:
            await asyncio.to_thread(other.disable_key, key_id)
        finally:
            await asyncio.to_thread(other.close)
        r = await client.get("/auth/me")
    assert r.status_code == 401, r.text


async def test_a_role_change_or_disabled_user_applies_on_the_very_next_request(gw: MemoryGateway) -> None:
    operator = gw.clients["operator"]
    log = {"asset_id": "m1", "text": "bearing greased"}
    assert (await operator.get("/auth/me")).json()["role"] == "operator"
    assert (await operator.get("/auth/me")).json()["role"] == "operator"
    assert (await gw.api.patch("/users/operator", json={"role": "viewer"})).status_code == 200
    assert (await operator.get("/auth/me")).json()["role"] == "viewer"
    assert (await operator.post("/logs", json=log)).status_code == 403
    assert (await gw.api.patch("/users/operator", json={"disabled": True})).status_code == 200
    r = await operator.get("/auth/me")
    assert r.status_code == 401 and r.json()["detail"] == "user operator is disabled"


async def test_a_session_is_answered_from_memory_until_logout(gw: MemoryGateway, lookups: list[str]) -> None:
    await asyncio.to_thread(auth_of(gw).set_password, "viewer", PASSWORD)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gw.app), base_url=str(gw.api.base_url)
    ) as browser:
        r = await browser.post("/auth/login", json={"username": "viewer", "password": PASSWORD})
        assert r.status_code == 200, r.text
        for _ in range(3):
            assert (await browser.get("/auth/me")).json()["via"] == "session"
        assert lookups == ["session"]
        cookies = dict(browser.cookies)
        assert (await browser.post("/auth/logout")).status_code == 200
        browser.cookies.update(cookies)  # a copy of the cookie kept by someone else
        r = await browser.get("/auth/me")
    assert r.status_code == 401 and "log in again" in r.json()["detail"]


async def test_an_expired_session_is_not_answered_from_memory(tmp_path: Path) -> None:
    store = open_auth_store(tmp_path)
    try:
        store.create_user("ann", Role.viewer, password=PASSWORD)
        token, _, _ = store.login("ann", PASSWORD, ttl_s=0.2)
        assert store.identify_session(token).user == "ann"
        assert store.cached(token, session=True) is not None
        deadline = asyncio.get_running_loop().time() + 5.0
        while store.cached(token, session=True) is not None:  # until its expiry passes
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        assert store.cached(token, session=True) is None
    finally:
        store.close()


def test_the_cache_is_bounded_and_drops_the_least_recently_used() -> None:
    cache = IdentityCache(size=3)
    g = cache.generation
    for name in "abcd":
        cache.put(name, Identity(name, Role.viewer), g)
    assert len(cache) == 3 and cache.get("a", 0.0) is None
    assert cache.get("b", 0.0) is not None  # b is now the most recent
    cache.put("e", Identity("e", Role.viewer), g)
    assert cache.get("c", 0.0) is None and cache.get("b", 0.0) is not None


def test_a_lookup_that_raced_with_a_write_is_not_cached() -> None:
    cache = IdentityCache()
    before = cache.generation
    cache.clear()  # a write landed while the lookup ran
    cache.put("k", Identity("v", Role.viewer), before)
    assert cache.get("k", 0.0) is None
    cache.observe(7)
    now = cache.generation
    cache.observe(7)
    assert cache.generation == now  # same data_version: nothing changed
    cache.observe(8)
    assert cache.generation == now + 1


def test_the_store_is_never_waited_for_on_the_event_loop(tmp_path: Path) -> None:
    """While a worker thread holds the store, the fast path answers None (ask in a thread) at once."""
    store = open_auth_store(tmp_path)
    try:
        store.create_user("ann", Role.viewer)
        _, secret = store.create_key("ann")
        assert store.identify_key(secret).user == "ann"
        assert store.cached(secret) is not None
        with store._lock:
            assert store.cached(secret) is None
    finally:
        store.close()


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def test_no_route_resolves_the_context_in_a_thread(gw: MemoryGateway) -> None:
    routes = [rc for rc in iter_route_contexts(gw.app.routes) if hasattr(rc, "dependant")]
    assert len(routes) > 20
    used = {c for r in routes for c in _calls(r.dependant)}
    assert deps.context_dependency in used
    assert deps.get_context not in used
    assert asyncio.iscoroutinefunction(deps.context_dependency)


async def test_authenticated_requests_make_no_thread_hop(
    gw: MemoryGateway, monkeypatch: pytest.MonkeyPatch, lookups: list[str]
) -> None:
    """Neither FastAPI's thread pool (a plain ``def`` dependency) nor the API-key look-up's
    ``asyncio.to_thread`` once the key is known."""
    import fastapi.dependencies.utils as fastapi_deps

    hops: list[Any] = []
    real = fastapi_deps.run_in_threadpool

    async def counting(func: Any, *args: Any, **kw: Any) -> Any:
        hops.append(func)
        return await real(func, *args, **kw)

    monkeypatch.setattr(fastapi_deps, "run_in_threadpool", counting)
    viewer = gw.clients["viewer"]
    for path in ("/auth/me", "/monitoring/status", "/auth/me"):
        assert (await viewer.get(path)).status_code == 200
    assert hops == [] and lookups == ["key"]


def test_the_route_string_comes_from_the_scope() -> None:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/data/simple",
        "headers": [],
        "query_string": b"a=1",
    }
    assert route_of(Request(scope)) == "POST /api/v1/data/simple"


async def test_the_seeded_keys_still_work(gw: MemoryGateway) -> None:
    for user in KEYS:
        r = await gw.clients[user].get("/auth/me")
        assert r.status_code == 200 and r.json()["username"] == user


def test_uvicorn_parses_http_with_httptools() -> None:
    """The gateway's uvicorn (``http="auto"``, service.py sets no protocol) takes httptools' C parser
    when it is installed (requirements.txt), instead of the pure-Python h11 (issue 14's profile: 30%
    of the event loop in request parsing and response writing)."""
    from uvicorn.config import Config
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from tests.conftest import ROOT

    assert "httptools==" in (ROOT / "requirements.txt").read_text()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    config = Config(app, log_config=None)  # as services/gateway/service.py builds it: no http=
    config.load()
    assert config.http_protocol_class is HttpToolsProtocol
