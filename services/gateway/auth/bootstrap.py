"""Start-up of the auth store: refuse a non-loopback bind without credentials, and create the first
admin on the first start.

When the store has no user, the gateway creates ``admin`` with a password and an API key: the ones in
``ROTORWATCH_ADMIN_PASSWORD`` / ``ROTORWATCH_ADMIN_API_KEY`` when set, else random ones, written to
``DATA_DIR/admin.password`` and ``DATA_DIR/admin.key`` (mode 0600; the scripts read the key from there,
:func:`shared.apikey.resolve_api_key`). The log says where they are and how to log in, never the
secrets. Binding GATEWAY_HOST to a non-loopback address is refused unless credentials exist (a store
with users, or the two variables for the first admin): no one-off secret is handed out to a network.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import structlog

from services.gateway.auth.roles import Role
from services.gateway.auth.store import AuthStore, new_api_key, new_password, open_auth_store
from shared.apikey import KEY_FILE
from shared.settings import Settings

PASSWORD_FILE = "admin.password"
FIRST_ADMIN = "admin"
ENV_PASSWORD = "ROTORWATCH_ADMIN_PASSWORD"
ENV_API_KEY = "ROTORWATCH_ADMIN_API_KEY"

log = structlog.get_logger()


class StartupRefused(RuntimeError):
    """The gateway must not start with this configuration; the message says why and what to set."""


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP (127.0.0.0/8, ::1); ``0.0.0.0``, ``::`` and names are not."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def write_secret(path: Path, value: str) -> None:
    """Write ``value`` to ``path`` readable by its owner only (0600, also when it existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    path.chmod(0o600)


def _env_secret(value: object) -> str | None:
    if value is None:
        return None
    text = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
    return text.strip() or None


def create_first_admin(store: AuthStore, settings: Settings) -> None:
    """Create user ``admin`` with a password and an API key (configured or random, see the module)."""
    password = _env_secret(settings.rotorwatch_admin_password)
    key = _env_secret(settings.rotorwatch_admin_api_key)
    store.create_user(FIRST_ADMIN, Role.admin, password=password or new_password_kept(settings))
    _, key = store.create_key(FIRST_ADMIN, "first admin", secret=key or new_key_kept(settings))
    where = settings.data_dir.resolve()
    log.warning(
        "first_admin_created",
        user=FIRST_ADMIN,
        password=f"from {ENV_PASSWORD}" if password else str(where / PASSWORD_FILE),
        api_key=f"from {ENV_API_KEY}"
        if _env_secret(settings.rotorwatch_admin_api_key)
        else str(where / KEY_FILE),
        login=f"open the dashboard and log in as {FIRST_ADMIN!r}; scripts read the API key file",
        manage="python -m services.gateway.admin --help",
    )


def new_password_kept(settings: Settings) -> str:
    value = new_password()
    write_secret(settings.data_dir / PASSWORD_FILE, value)
    return value


def new_key_kept(settings: Settings) -> str:
    value = new_api_key()
    write_secret(settings.data_dir / KEY_FILE, value)
    return value


def open_auth(settings: Settings) -> AuthStore:
    """The gateway's auth store, ready: the bind check (:class:`StartupRefused`) and, on the first
    start, the first admin. Blocking (call it through ``asyncio.to_thread``)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_auth_store(settings.data_dir)
    try:
        if not store.has_users():
            configured = _env_secret(settings.rotorwatch_admin_password) or _env_secret(
                settings.rotorwatch_admin_api_key
            )
            if not is_loopback(settings.gateway_host) and not configured:
                raise StartupRefused(
                    f"GATEWAY_HOST={settings.gateway_host} is not a loopback address and no credentials are "
                    f"configured: set {ENV_PASSWORD} (and/or {ENV_API_KEY}) for the first admin, or "
                    "create users with `python -m services.gateway.admin` first"
                )
            create_first_admin(store, settings)
    except BaseException:
        store.close()
        raise
    return store
