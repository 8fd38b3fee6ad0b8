"""Identity and roles on the gateway API: the authorization matrix (every route of the app × anonymous,
viewer, operator, admin, device), devices limited to their assets, login/logout and the session cookie,
the admin API, denials (status, reason, ``WWW-Authenticate``, log line), the first start (admin files,
mode 0600) and the non-loopback bind refusal. All on the in-memory gateway (no server)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from fastapi.routing import iter_route_contexts

from services.gateway.app import API_PREFIX
from services.gateway.auth.bootstrap import PASSWORD_FILE, StartupRefused, is_loopback, open_auth
from services.gateway.auth.guard import SESSION_COOKIE, Require
from services.gateway.auth.roles import Role
from services.gateway.auth.store import AuthStore, open_auth_store
from shared.apikey import KEY_FILE, auth_headers, resolve_api_key
from tests.conftest import ROOT
from tests.support.gateway import DEVICE_ASSETS, KEYS, MemoryGateway, memory_gateway, memory_settings

READING = {"asset_id": "m1", "voltage_v": 230.0, "current_a": 12.5, "power_factor": 0.9, "vibration_g": 0.3}

# Who may call each route. A route of the app missing here fails test_every_route_is_in_the_matrix.
PUBLIC, AUTHENTICATED, READ, OPERATE, ADMIN, INGEST = (
    "public",
    "authenticated",
    "read",
    "operate",
    "admin",
    "ingest",
)
MATRIX: dict[tuple[str, str], str] = {
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/"): PUBLIC,
    ("GET", "/static"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("POST", "/api/v1/auth/login"): PUBLIC,
    ("POST", "/api/v1/auth/logout"): PUBLIC,
    ("GET", "/api/v1/auth/me"): AUTHENTICATED,
    ("POST", "/api/v1/data/simple"): INGEST,
    ("POST", "/api/v1/data/simple/batch"): INGEST,
    ("POST", "/api/v1/data/batch"): INGEST,
    ("GET", "/api/v1/assets"): READ,
    ("GET", "/api/v1/assets/{asset_id}/readings"): READ,
    ("GET", "/api/v1/assets/{asset_id}/scores"): READ,
    ("GET", "/api/v1/assets/{asset_id}/health"): READ,
    ("GET", "/api/v1/assets/{asset_id}/health/series"): READ,
    ("GET", "/api/v1/assets/{asset_id}/sensor"): READ,
    ("GET", "/api/v1/assets/{asset_id}/features"): READ,
    ("GET", "/api/v1/assets/{asset_id}/config"): READ,
    ("PUT", "/api/v1/assets/{asset_id}/config"): ADMIN,
    ("GET", "/api/v1/monitoring/status"): READ,
    ("GET", "/api/v1/monitoring/baseline"): READ,
    ("GET", "/api/v1/alarms"): READ,
    ("GET", "/api/v1/alarms/metrics"): READ,
    ("POST", "/api/v1/alarms/{alarm_id}/ack"): OPERATE,
    ("POST", "/api/v1/alarms/{alarm_id}/resolve"): OPERATE,
    ("POST", "/api/v1/alarms/{alarm_id}/shelve"): OPERATE,
    ("POST", "/api/v1/alarms/{alarm_id}/unshelve"): OPERATE,
    ("GET", "/api/v1/logs"): READ,
    ("POST", "/api/v1/logs"): OPERATE,
    ("POST", "/api/v1/calibration/start"): OPERATE,
    ("POST", "/api/v1/models/reload"): ADMIN,
    ("POST", "/api/v1/models/import"): ADMIN,
    ("GET", "/api/v1/models/{asset_id}/export"): ADMIN,
    ("POST", "/api/v1/system/purge"): ADMIN,
    ("GET", "/api/v1/stream"): READ,
    ("GET", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users"): ADMIN,
    ("PATCH", "/api/v1/users/{username}"): ADMIN,
    ("GET", "/api/v1/users/{username}/keys"): ADMIN,
    ("POST", "/api/v1/users/{username}/keys"): ADMIN,
    ("DELETE", "/api/v1/keys/{key_id}"): ADMIN,
    ("GET", "/api/v1/reports/{kind}"): READ,
    ("GET", "/api/v1/notifications/config"): ADMIN,
    ("PUT", "/api/v1/notifications/config"): ADMIN,
    ("GET", "/api/v1/notifications/deliveries"): ADMIN,
}
ALLOWED: dict[str, set[str | None]] = {
    PUBLIC: {None, *KEYS},
    AUTHENTICATED: set(KEYS),
    READ: {"viewer", "operator", "admin"},
    OPERATE: {"operator", "admin"},
    ADMIN: {"admin"},
    INGEST: {"device", "admin"},
}
CALLERS: tuple[str | None, ...] = (None, "viewer", "operator", "admin", "device")
PATH_VALUES = {"asset_id": "m1", "alarm_id": "0" * 32, "username": "viewer", "key_id": "0" * 8}


def app_routes(app: Any) -> dict[tuple[str, str], Any]:
    """Every (method, path) the app serves (HEAD aside; a mount as ``GET <prefix>``) -> its route."""
    out: dict[tuple[str, str], Any] = {}
    for rc in iter_route_contexts(app.routes):
        for method in rc.methods or {"GET"}:
            if method != "HEAD":
                out[(method, rc.path)] = rc
    return out


def declared_grants(route: Any) -> list[str]:
    """The grants a route's dependencies declare (:class:`Require` anywhere in its dependency tree)."""
    found: list[str] = []
    stack = list(getattr(route, "dependant", None).dependencies) if hasattr(route, "dependant") else []
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, Require):
            found.append(dep.call.grant.name)
        stack.extend(dep.dependencies)
    return found


def concrete(path: str) -> str:
    for name, value in PATH_VALUES.items():
        path = path.replace("{" + name + "}", value)
    return "/static/app.css" if path == "/static" else path


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[MemoryGateway]:
    settings = memory_settings(tmp_path, command_timeout_s=0.05, calibration_timeout_s=0.05)
    async with memory_gateway(settings) as g:
        yield g


def client_of(gw: MemoryGateway, who: str | None) -> httpx.AsyncClient:
    """A client rooted at ``/`` sending ``who``'s key (None: no credentials)."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gw.app),
        base_url="http://gateway",
        headers=auth_headers(KEYS.get(who or "")),
    )


# ---------------------------------------------------------------------------------------------
# The matrix
# ---------------------------------------------------------------------------------------------
async def test_every_route_is_in_the_matrix_and_declares_its_role(gw: MemoryGateway) -> None:
    routes = app_routes(gw.app)
    assert set(routes) == set(MATRIX), "a route was added or removed: declare its role and add it to MATRIX"
    for key, rc in routes.items():
        grants = declared_grants(rc)
        if hasattr(rc, "dependant") and key[1] not in (
            "/openapi.json",
            "/docs",
            "/docs/oauth2-redirect",
            "/redoc",
        ):
            expected = {ADMIN: "administer"}.get(MATRIX[key], MATRIX[key])
            assert grants == [expected], f"{key}: declares {grants}, expected exactly [{expected!r}]"


@pytest.mark.parametrize(("method", "path"), sorted(MATRIX))
async def test_authorization_matrix(gw: MemoryGateway, method: str, path: str) -> None:
    """Each caller gets 401 (anonymous) / 403 (other role) when not allowed, anything else when allowed."""
    grant = MATRIX[(method, path)]
    params = {"asset_id": "bad$id"} if path.endswith("/stream") else None  # allowed: 422, not a live stream
    body = {} if method in ("POST", "PUT", "PATCH") and not path.endswith("/logout") else None
    got: dict[str | None, int] = {}
    for who in CALLERS:
        async with client_of(gw, who) as c:
            r = await c.request(method, concrete(path), params=params, json=body)
        got[who] = r.status_code
        if who in ALLOWED[grant]:
            assert r.status_code not in (401, 403), (who, r.status_code, r.text)
        elif who is None:
            assert r.status_code == 401, (who, r.text)
            assert r.headers["www-authenticate"] == "Bearer"
            assert "authentication required" in r.json()["detail"]
        else:
            assert r.status_code == 403, (who, r.text)
            assert f"role {who} may not" in r.json()["detail"]
    # 504: no fake command responder here; /readyz: 503 is its answer while services are missing
    assert all(s < 500 or s == 504 or s == 503 and path == "/readyz" for s in got.values()), got


# ---------------------------------------------------------------------------------------------
# Devices, keys, denials
# ---------------------------------------------------------------------------------------------
async def test_device_sends_only_for_its_assets(gw: MemoryGateway) -> None:
    dev = gw.clients["device"]
    ok = await dev.post("/data/simple", json={**READING, "asset_id": DEVICE_ASSETS[0]})
    assert ok.status_code not in (401, 403), ok.text
    for path, body in (
        ("/data/simple", {**READING, "asset_id": "m2"}),
        ("/data/batch", {"motor_id": "m2", "x": [0.1] * 64, "fs_hz": 1000.0}),
    ):
        r = await dev.post(path, json=body)
        assert r.status_code == 403, r.text
        assert (
            r.json()["detail"] == "device device may not send data for asset 'm2' (its assets: m1, motor_01)"
        )
    assert (await gw.api.post("/data/simple", json={**READING, "asset_id": "m2"})).status_code == 202


async def test_bad_credentials_are_401_with_reason_and_logged(gw: MemoryGateway) -> None:
    cases = {
        "Bearer rw_not-a-key-at-all-but-long-enough": "unknown API key",
        "Basic YWRtaW46YWRtaW4=": "Authorization header must be 'Bearer <API key>'",
    }
    for header, reason in cases.items():
        with structlog.testing.capture_logs() as logs:
            r = await gw.clients[None].get("/assets", headers={"Authorization": header})
        assert (r.status_code, r.json()["detail"], r.headers["www-authenticate"]) == (401, reason, "Bearer")
        [line] = [e for e in logs if e["event"] == "auth_denied"]
        assert line["route"] == "GET /api/v1/assets" and line["reason"] == reason and line["status"] == 401
        assert "rw_not-a-key" not in repr(line) and "YWRtaW46" not in repr(line)  # never the secret
    with structlog.testing.capture_logs() as logs:
        r = await gw.clients["viewer"].post("/system/purge")
    assert r.status_code == 403
    assert r.json()["detail"] == "role viewer may not administer (purge, reload, config, users): needs admin"
    [line] = [e for e in logs if e["event"] == "auth_denied"]
    assert (
        line["identity"].startswith("viewer (viewer, key:") and line["route"] == "POST /api/v1/system/purge"
    )


async def test_admin_manages_users_and_keys_over_the_api(gw: MemoryGateway) -> None:
    r = await gw.api.post("/users", json={"username": "pump7", "role": "device", "assets": ["p7"]})
    assert r.status_code == 201 and r.json()["assets"] == ["p7"] and not r.json()["has_password"]
    assert (await gw.api.post("/users", json={"username": "pump7", "role": "viewer"})).status_code == 409
    r = await gw.api.post("/users/pump7/keys", json={"label": "esp32"})
    assert r.status_code == 201
    new = r.json()
    key, key_id = new["api_key"], new["id"]
    listed = (await gw.api.get("/users/pump7/keys")).json()
    assert [k["id"] for k in listed] == [key_id] and "api_key" not in listed[0]  # shown once
    async with client_of(gw, None) as c:
        c.headers.update(auth_headers(key))
        me = (await c.get(API_PREFIX + "/auth/me")).json()
        assert (me["username"], me["role"], me["assets"], me["via"]) == (
            "pump7",
            "device",
            ["p7"],
            f"key:{key_id}",
        )
        assert (
            await c.post(API_PREFIX + "/data/simple", json={**READING, "asset_id": "p7"})
        ).status_code == 202
        # Role change applies to the next request; a disabled key or user is refused at once.
        await gw.api.patch("/users/pump7", json={"role": "viewer"})
        assert (
            await c.post(API_PREFIX + "/data/simple", json={**READING, "asset_id": "p7"})
        ).status_code == 403
        assert (await c.get(API_PREFIX + "/assets")).status_code == 200
        assert (await gw.api.delete(f"/keys/{key_id}")).json()["disabled"] is True
        r = await c.get(API_PREFIX + "/assets")
        assert (r.status_code, r.json()["detail"]) == (401, f"API key {key_id} is disabled")
    # The last enabled admin can be neither demoted nor disabled.
    r = await gw.api.patch("/users/admin", json={"disabled": True})
    assert r.status_code == 409 and "last enabled admin" in r.json()["detail"]
    assert (await gw.api.patch("/users/nobody", json={"role": "viewer"})).status_code == 404
    assert (await gw.api.patch("/users/viewer", json={"password": "short"})).status_code == 422


# ---------------------------------------------------------------------------------------------
# Login, logout, session cookie
# ---------------------------------------------------------------------------------------------
async def test_login_sets_a_strict_httponly_session_cookie_and_logout_ends_it(gw: MemoryGateway) -> None:
    assert (
        await gw.api.patch("/users/operator", json={"password": "correct horse battery"})
    ).status_code == 200
    async with client_of(gw, None) as c:
        assert (await c.get(API_PREFIX + "/assets")).status_code == 401
        bad = await c.post(
            API_PREFIX + "/auth/login", json={"username": "operator", "password": "wrong password"}
        )
        assert (bad.status_code, bad.json()["detail"]) == (401, "invalid user name or password")
        unknown = await c.post(
            API_PREFIX + "/auth/login", json={"username": "nobody", "password": "whatever1234"}
        )
        assert (unknown.status_code, unknown.json()["detail"]) == (401, "invalid user name or password")
        r = await c.post(
            API_PREFIX + "/auth/login", json={"username": "operator", "password": "correct horse battery"}
        )
        assert r.status_code == 200 and r.json()["role"] == "operator"
        cookie = r.headers["set-cookie"]
        assert (
            cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
        )
        assert "Max-Age=43200" in cookie and "Path=/" in cookie
        token = c.cookies[SESSION_COOKIE]
        assert (await c.get(API_PREFIX + "/assets")).status_code == 200
        me = (await c.get(API_PREFIX + "/auth/me")).json()
        assert (me["username"], me["via"]) == ("operator", "session")
        assert (await c.post(API_PREFIX + "/system/purge")).status_code == 403  # the session's role counts
        out = await c.post(API_PREFIX + "/auth/logout")
        assert out.status_code == 200 and f'{SESSION_COOKIE}=""' in out.headers["set-cookie"]
        assert SESSION_COOKIE not in c.cookies
        # The old token is dead server-side too.
        c.cookies.set(SESSION_COOKIE, token)
        r = await c.get(API_PREFIX + "/assets")
        assert (r.status_code, r.json()["detail"]) == (401, "session unknown or ended: log in again")


async def test_device_cannot_log_in_and_password_change_ends_sessions(gw: MemoryGateway) -> None:
    await gw.api.patch("/users/device", json={"password": "device password 1"})
    r = await gw.clients[None].post(
        "/auth/login", json={"username": "device", "password": "device password 1"}
    )
    assert (r.status_code, r.json()["detail"]) == (401, "device accounts cannot log in: use an API key")
    await gw.api.patch("/users/viewer", json={"password": "viewer password 1"})
    async with client_of(gw, None) as c:
        await c.post(API_PREFIX + "/auth/login", json={"username": "viewer", "password": "viewer password 1"})
        assert (await c.get(API_PREFIX + "/assets")).status_code == 200
        await gw.api.patch("/users/viewer", json={"password": "viewer password 2"})
        assert (await c.get(API_PREFIX + "/assets")).status_code == 401


def test_expired_session_is_refused(tmp_path: Path) -> None:
    store = AuthStore(tmp_path / "auth.db")
    store.create_user("ana", Role.viewer, password="ana's password")
    token, ident, _ = store.login("ana", "ana's password", ttl_s=-1)
    assert ident.user == "ana"
    with pytest.raises(Exception, match="session expired"):
        store.identify_session(token)
    store.close()


# ---------------------------------------------------------------------------------------------
# First start, bind refusal, key resolution
# ---------------------------------------------------------------------------------------------
async def test_first_start_creates_admin_with_private_files(tmp_path: Path) -> None:
    async with memory_gateway(memory_settings(tmp_path), seed=False) as g:
        key_file, pw_file = tmp_path / KEY_FILE, tmp_path / PASSWORD_FILE
        for f in (key_file, pw_file):
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
        key, password = key_file.read_text().strip(), pw_file.read_text().strip()
        assert key.startswith("rw_") and len(key) > 40 and len(password) >= 20
        assert resolve_api_key(None, tmp_path) == key
        async with client_of(g, None) as c:
            r = await c.get(API_PREFIX + "/auth/me", headers=auth_headers(key))
            assert r.json()["username"] == "admin" and r.json()["role"] == "admin"
            r = await c.post(API_PREFIX + "/auth/login", json={"username": "admin", "password": password})
            assert r.status_code == 200
    # A second start keeps the admin and its files.
    async with memory_gateway(memory_settings(tmp_path), seed=False):
        assert key_file.read_text().strip() == key


def test_non_loopback_bind_needs_credentials(tmp_path: Path) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10") and not is_loopback("gw.example")
    with pytest.raises(StartupRefused, match="GATEWAY_HOST=0.0.0.0 is not a loopback address"):
        open_auth(memory_settings(tmp_path / "a", gateway_host="0.0.0.0"))
    assert not (tmp_path / "a" / KEY_FILE).exists()
    # Configured first admin: starts, and writes no file for the configured secrets.
    settings = memory_settings(
        tmp_path / "b",
        gateway_host="0.0.0.0",
        rotorwatch_admin_password="a configured password",
        rotorwatch_admin_api_key="rw_configured-key-0123456789abcdef",
    )
    open_auth(settings).close()
    assert not (tmp_path / "b" / KEY_FILE).exists() and not (tmp_path / "b" / PASSWORD_FILE).exists()
    store = open_auth_store(tmp_path / "b")
    assert store.identify_key("rw_configured-key-0123456789abcdef").role is Role.admin
    store.close()
    # An existing user store counts as configured.
    open_auth(memory_settings(tmp_path / "b", gateway_host="0.0.0.0")).close()


def test_resolve_api_key_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROTORWATCH_API_KEY", raising=False)
    assert resolve_api_key(None, tmp_path) is None
    (tmp_path / KEY_FILE).write_text("from-file\n")
    assert resolve_api_key(None, tmp_path) == "from-file"
    monkeypatch.setenv("ROTORWATCH_API_KEY", "from-env")
    assert resolve_api_key(None, tmp_path) == "from-env"
    assert resolve_api_key("explicit", tmp_path) == "explicit"
    assert auth_headers("k") == {"Authorization": "Bearer k"} and auth_headers(None) == {}


def test_gateway_process_refuses_a_public_bind_without_credentials(tmp_path: Path) -> None:
    """``python -m services.gateway`` on 0.0.0.0 with no user store and no first-admin credentials
    exits at start-up (before any broker connection) with the reason in its log."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROTORWATCH_", "MQTT_", "INFLUX_"))}
    env.update(
        GATEWAY_HOST="0.0.0.0",
        GATEWAY_PORT="1",
        DATA_DIR=str(tmp_path),
        MQTT_URL="mqtt://127.0.0.1:1",
        ROTORWATCH_ENV="development",
        PYTHONPATH=str(ROOT),
    )
    r = subprocess.run(
        [sys.executable, "-m", "services.gateway"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0
    assert "gateway_refused" in r.stderr and "GATEWAY_HOST=0.0.0.0 is not a loopback address" in r.stderr
    assert not (tmp_path / KEY_FILE).exists()
