"""The auth store: users (role, device assets, argon2 password hash), API keys and login sessions in
one SQLite file (``DATA_DIR/auth.db``, WAL, so the admin CLI can change it while the gateway runs).

Secrets are never stored: an API key (``rw_`` + 32 random bytes, base64url) and a session token (32
random bytes) are kept as their SHA-256, which is safe for high-entropy secrets and cheap to check on
every request; passwords are hashed with argon2id (pwdlib's recommended parameters, ~0.1 s a hash).
Every method blocks (SQLite, argon2): the gateway calls them through ``asyncio.to_thread``, except
:meth:`AuthStore.cached`, which answers a known key or session from memory without blocking
(:mod:`services.gateway.auth.cache`; every write clears it).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pwdlib import PasswordHash

from services.gateway.auth.cache import IdentityCache
from services.gateway.auth.roles import Identity, Role
from shared.topics import ASSET_ID_PATTERN

AUTH_DB = "auth.db"
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"
MIN_PASSWORD_LEN = 10
MIN_KEY_LEN = 24
#: Lifetime of a dashboard session, seconds.
SESSION_TTL_S = 12 * 3600.0

_USER_COLUMNS = "name, role, assets, password_hash IS NOT NULL, disabled, created_at"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, assets TEXT NOT NULL DEFAULT '[]',
    password_hash TEXT, disabled INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY, user TEXT NOT NULL REFERENCES users(name), hash TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL DEFAULT '', disabled INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    hash TEXT PRIMARY KEY, user TEXT NOT NULL REFERENCES users(name),
    created_at REAL NOT NULL, expires_at REAL NOT NULL);
"""


class AuthError(Exception):
    """Credentials refused; ``str(exc)`` is the reason (safe to show: names no secret)."""


class Conflict(ValueError):
    """The change would break an invariant (duplicate name, last admin)."""


class NotFound(LookupError):
    pass


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    assets: tuple[str, ...]
    disabled: bool
    has_password: bool
    created_at: float


@dataclass(frozen=True)
class ApiKey:
    id: str
    user: str
    label: str
    disabled: bool
    created_at: float


def digest(secret: str) -> str:
    """SHA-256 hex of a high-entropy secret (API key or session token)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_api_key() -> str:
    return "rw_" + secrets.token_urlsafe(32)


def new_password() -> str:
    return secrets.token_urlsafe(18)


def check_username(name: str) -> str:
    if not re.fullmatch(USERNAME_PATTERN, name):
        raise ValueError(
            f"invalid user name {name!r}: letters, digits, _ . @ - (1-64, not starting with a symbol)"
        )
    return name


def check_assets(assets: Iterable[str]) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(a.strip() for a in assets if a.strip()))
    bad = [a for a in out if not re.fullmatch(ASSET_ID_PATTERN, a)]
    if bad:
        raise ValueError(f"invalid asset id(s): {', '.join(map(repr, bad))}")
    return out


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LEN:
        raise ValueError(f"password too short: at least {MIN_PASSWORD_LEN} characters")
    return password


class AuthStore:
    """Users, API keys and sessions in ``path`` (created with its tables when missing)."""

    def __init__(self, path: Path, *, hasher: PasswordHash | None = None) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._hasher = hasher or PasswordHash.recommended()
        self._dummy_hash: str | None = None
        self._lock = threading.Lock()
        self._cache = IdentityCache()
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=10.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        for f in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if f.exists():
                f.chmod(0o600)  # password and key hashes: the owner's only

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _rows(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _write(self, sql: str, args: tuple[object, ...] = ()) -> int:
        with self._lock:
            try:
                return self._db.execute(sql, args).rowcount
            finally:
                self._cache.clear()

    def _lookup(self, sql: str, args: tuple[object, ...]) -> tuple[list[tuple[object, ...]], int]:
        """Rows of an identity query and the cache generation they may be cached under."""
        with self._lock:
            self._cache.observe(self._db.execute("PRAGMA data_version").fetchone()[0])
            return self._db.execute(sql, args).fetchall(), self._cache.generation

    def cached(self, secret: str, *, session: bool = False) -> Identity | None:
        """The identity of an API key (``session``: a session token) as last looked up, if nothing in
        the store changed since (in this process or another); None when unknown, or when the store is
        busy (never blocks): then ask :meth:`identify_key` / :meth:`identify_session`."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            self._cache.observe(self._db.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error:
            return None
        finally:
            self._lock.release()
        return self._cache.get(("s:" if session else "k:") + digest(secret), time.time())

    # -- users ------------------------------------------------------------------------------------
    def has_users(self) -> bool:
        return bool(self._rows("SELECT 1 FROM users LIMIT 1"))

    def create_user(
        self, name: str, role: Role, *, password: str | None = None, assets: Iterable[str] = ()
    ) -> User:
        """A new enabled user; ``password`` None: no login (API keys only). Raises Conflict when the
        name is taken, ValueError for an invalid name, password or asset id."""
        check_username(name)
        pw_hash = self._hasher.hash(check_password(password)) if password is not None else None
        try:
            self._write(
                "INSERT INTO users (name, role, assets, password_hash, created_at) VALUES (?, ?, ?, ?, ?)",
                (name, Role(role).value, json.dumps(check_assets(assets)), pw_hash, time.time()),
            )
        except sqlite3.IntegrityError:
            raise Conflict(f"user {name!r} exists") from None
        return self.user(name)

    def user(self, name: str) -> User:
        rows = self._rows(f"SELECT {_USER_COLUMNS} FROM users WHERE name = ?", (name,))
        if not rows:
            raise NotFound(f"no user {name!r}")
        return _user(rows[0])

    def users(self) -> list[User]:
        rows = self._rows(f"SELECT {_USER_COLUMNS} FROM users ORDER BY name")
        return [_user(r) for r in rows]

    def update_user(
        self,
        name: str,
        *,
        role: Role | None = None,
        assets: Iterable[str] | None = None,
        disabled: bool | None = None,
    ) -> User:
        """Change a user's role, device assets or enabled state; refuses (Conflict) to demote or
        disable the last enabled admin. Disabling ends the user's sessions."""
        current = self.user(name)
        new_role = Role(role) if role is not None else current.role
        new_disabled = current.disabled if disabled is None else disabled
        new_assets = current.assets if assets is None else check_assets(assets)
        if (
            current.role is Role.admin
            and not current.disabled
            and (new_role is not Role.admin or new_disabled)
        ):
            if self._enabled_admins() <= 1:
                raise Conflict(f"{name!r} is the last enabled admin: create another admin first")
        self._write(
            "UPDATE users SET role = ?, assets = ?, disabled = ? WHERE name = ?",
            (new_role.value, json.dumps(new_assets), int(new_disabled), name),
        )
        if new_disabled:
            self._write("DELETE FROM sessions WHERE user = ?", (name,))
        return self.user(name)

    def set_password(self, name: str, password: str | None) -> None:
        """Set (or with None remove) a user's password; ends the user's sessions."""
        self.user(name)
        pw_hash = self._hasher.hash(check_password(password)) if password is not None else None
        self._write("UPDATE users SET password_hash = ? WHERE name = ?", (pw_hash, name))
        self._write("DELETE FROM sessions WHERE user = ?", (name,))

    def _enabled_admins(self) -> int:
        rows = self._rows("SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0")
        return int(rows[0][0])  # type: ignore[call-overload]

    # -- API keys ---------------------------------------------------------------------------------
    def create_key(self, user: str, label: str = "", *, secret: str | None = None) -> tuple[ApiKey, str]:
        """A new API key of ``user``: ``(key record, the secret)``. The secret is returned this once
        (only its SHA-256 is stored); ``secret`` given (first-admin bootstrap): that one is used."""
        self.user(user)
        key = secret if secret is not None else new_api_key()
        if len(key) < MIN_KEY_LEN:
            raise ValueError(f"API key too short: at least {MIN_KEY_LEN} characters")
        key_id = secrets.token_hex(4)
        try:
            self._write(
                "INSERT INTO api_keys (id, user, hash, label, created_at) VALUES (?, ?, ?, ?, ?)",
                (key_id, user, digest(key), label[:200], time.time()),
            )
        except sqlite3.IntegrityError:
            raise Conflict("this API key is already registered") from None
        return self.key(key_id), key

    def key(self, key_id: str) -> ApiKey:
        rows = self._rows(
            "SELECT id, user, label, disabled, created_at FROM api_keys WHERE id = ?", (key_id,)
        )
        if not rows:
            raise NotFound(f"no API key {key_id!r}")
        return _key(rows[0])

    def keys(self, user: str | None = None) -> list[ApiKey]:
        sql = "SELECT id, user, label, disabled, created_at FROM api_keys"
        rows = (
            self._rows(sql + " WHERE user = ? ORDER BY created_at", (user,))
            if user
            else self._rows(sql + " ORDER BY user, created_at")
        )
        return [_key(r) for r in rows]

    def disable_key(self, key_id: str) -> ApiKey:
        if not self._write("UPDATE api_keys SET disabled = 1 WHERE id = ?", (key_id,)):
            raise NotFound(f"no API key {key_id!r}")
        return self.key(key_id)

    def identify_key(self, secret: str) -> Identity:
        """The identity of an API key; AuthError when it is unknown, disabled or its user is."""
        key = digest(secret)
        rows, generation = self._lookup(
            "SELECT k.id, k.disabled, u.name, u.role, u.assets, u.disabled FROM api_keys k "
            "JOIN users u ON u.name = k.user WHERE k.hash = ?",
            (key,),
        )
        if not rows:
            raise AuthError("unknown API key")
        key_id, key_off, name, role, assets, user_off = rows[0]
        if key_off:
            raise AuthError(f"API key {key_id} is disabled")
        if user_off:
            raise AuthError(f"user {name} is disabled")
        identity = Identity(str(name), Role(str(role)), tuple(json.loads(str(assets))), via=f"key:{key_id}")
        self._cache.put("k:" + key, identity, generation)
        return identity

    # -- sessions ---------------------------------------------------------------------------------
    def login(self, name: str, password: str, ttl_s: float = SESSION_TTL_S) -> tuple[str, Identity, float]:
        """Check ``name``'s password and open a session: ``(token, identity, expires_at)``. AuthError
        (one message for every case, so names cannot be probed; the log gets the detail)."""
        rows = self._rows("SELECT password_hash, role, assets, disabled FROM users WHERE name = ?", (name,))
        stored = str(rows[0][0]) if rows and rows[0][0] is not None else None
        ok = self._hasher.verify(password, stored) if stored else self._burn(password)
        if not ok:
            why = "wrong password" if stored else "no such user" if not rows else "no password set"
            raise AuthError(f"invalid user name or password ({why})")
        _, role, assets, disabled = rows[0]
        if disabled:
            raise AuthError("invalid user name or password (account disabled)")
        if Role(str(role)) is Role.device:
            raise AuthError("device accounts cannot log in: use an API key")
        token = secrets.token_urlsafe(32)
        now = time.time()
        self._write("DELETE FROM sessions WHERE expires_at < ?", (now,))
        self._write(
            "INSERT INTO sessions (hash, user, created_at, expires_at) VALUES (?, ?, ?, ?)",
            (digest(token), name, now, now + ttl_s),
        )
        return (
            token,
            Identity(name, Role(str(role)), tuple(json.loads(str(assets))), via="session"),
            now + ttl_s,
        )

    def _burn(self, password: str) -> bool:
        """Verify against a throw-away hash (unknown user, no password): the same time as a real check."""
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash(secrets.token_hex(16))
        self._hasher.verify(password, self._dummy_hash)
        return False

    def identify_session(self, token: str) -> Identity:
        key = digest(token)
        rows, generation = self._lookup(
            "SELECT s.expires_at, u.name, u.role, u.assets, u.disabled FROM sessions s "
            "JOIN users u ON u.name = s.user WHERE s.hash = ?",
            (key,),
        )
        if not rows:
            raise AuthError("session unknown or ended: log in again")
        expires_at, name, role, assets, disabled = rows[0]
        if float(expires_at) < time.time():  # type: ignore[arg-type]
            self.logout(token)
            raise AuthError("session expired: log in again")
        if disabled:
            raise AuthError(f"user {name} is disabled")
        identity = Identity(str(name), Role(str(role)), tuple(json.loads(str(assets))), via="session")
        self._cache.put("s:" + key, identity, generation, float(expires_at))  # type: ignore[arg-type]
        return identity

    def logout(self, token: str) -> bool:
        return bool(self._write("DELETE FROM sessions WHERE hash = ?", (digest(token),)))


def _user(row: tuple[object, ...]) -> User:
    name, role, assets, has_pw, disabled, created = row
    return User(
        name=str(name),
        role=Role(str(role)),
        assets=tuple(json.loads(str(assets))),
        disabled=bool(disabled),
        has_password=bool(has_pw),
        created_at=float(created),  # type: ignore[arg-type]
    )


def _key(row: tuple[object, ...]) -> ApiKey:
    key_id, user, label, disabled, created = row
    return ApiKey(str(key_id), str(user), str(label), bool(disabled), float(created))  # type: ignore[arg-type]


def open_auth_store(data_dir: Path) -> AuthStore:
    return AuthStore(data_dir / AUTH_DB)
