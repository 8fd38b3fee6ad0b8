"""Secrets kept under ``DATA_DIR/secrets/``: generated once in development, required in production.

``ROTORWATCH_ENV=development`` (what ``make run`` sets for its children): a missing secret is made by the
caller's ``make()``, written once (directory mode 0700, file mode 0600) and reused on every later start.
In production (the default) a missing secret is a start-up error (:class:`MissingSecret`) that names the
setting to provide: secrets never have defaults outside development.

Creation is race-free between processes: the secret is written to a private temporary file and linked
into place; whoever links second reads the first one's secret.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import structlog

from shared.settings import BrokerAddress, Settings

log = structlog.get_logger()

SECRETS_DIR = "secrets"
#: ``{user: password}`` of the embedded broker's users, written by ``make run`` (deploy/mqtt_auth.py).
MQTT_CREDENTIALS = "mqtt.json"


class MissingSecret(RuntimeError):
    """A secret that production must be given is missing (the message names the variable or file)."""


def secret_dir(settings: Settings) -> Path:
    """``DATA_DIR/secrets`` (not created here)."""
    return settings.data_dir / SECRETS_DIR


def secret_file(settings: Settings, name: str) -> Path:
    """Path of secret ``name`` (a plain file name, no directories) under :func:`secret_dir`."""
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise ValueError(f"invalid secret name {name!r}")
    return secret_dir(settings) / name


def load_or_create(
    settings: Settings,
    name: str,
    make: Callable[[], bytes],
    *,
    variable: str | None = None,
) -> bytes:
    """The bytes of secret ``name``; in development create it with ``make()`` when missing.

    Raises :class:`MissingSecret` in production when the file does not exist (``variable``, when given,
    is the setting the message tells the operator to set instead).
    """
    path = secret_file(settings, name)
    with contextlib.suppress(FileNotFoundError):
        return path.read_bytes()
    if settings.rotorwatch_env != "development":
        hint = f"set {variable}" if variable else f"provide {path}"
        log.error("secret_missing", secret=name, path=str(path), variable=variable)
        raise MissingSecret(
            f"secret {name!r} is missing: {hint} (secrets are generated only with ROTORWATCH_ENV=development)"
        )
    created = write_secret(settings, name, make(), replace=False)
    if created:
        log.info("secret_created", secret=name, path=str(path))
    return path.read_bytes()


def write_secret(settings: Settings, name: str, data: bytes, *, replace: bool = True) -> bool:
    """Write secret ``name`` atomically with mode 0600 (its directory 0700).

    ``replace=False`` keeps an existing file (another process was first); returns whether this call
    wrote the file.
    """
    path = secret_file(settings, name)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:  # mkstemp creates the file with mode 0600
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def development_mqtt_login(data_dir: Path, user: str = "device") -> tuple[str, str] | None:
    """``(user, password)`` from ``DATA_DIR/secrets/mqtt.json`` (what ``make run`` generated for its
    embedded broker), or ``None`` when the file or the user is missing: the fallback of scripts that
    publish over MQTT (``device`` may publish raw input for any asset)."""
    try:
        creds = json.loads((data_dir / SECRETS_DIR / MQTT_CREDENTIALS).read_text())
    except (OSError, ValueError):
        return None
    password = creds.get(user) if isinstance(creds, dict) else None
    return (user, password) if isinstance(password, str) else None


def with_device_login(broker: BrokerAddress, data_dir: Path) -> BrokerAddress:
    """``broker`` with the credentials of a script that publishes device input (generator): the URL's
    user info when it has one, else ``MQTT_USERNAME``/``MQTT_PASSWORD`` from the environment, else the
    development ``device`` user of ``make run`` (``DATA_DIR/secrets/mqtt.json``), else none."""
    return _with_login(broker, data_dir, "device")


def with_replay_login(broker: BrokerAddress, data_dir: Path) -> BrokerAddress:
    """``broker`` with the credentials of ``scripts/replay.py``: the URL's user info, else
    ``MQTT_USERNAME``/``MQTT_PASSWORD``, else the development ``replay`` user of ``make run`` (it
    publishes raw input and reads the features, scores and models that acknowledge it), else none."""
    return _with_login(broker, data_dir, "replay")


def _with_login(broker: BrokerAddress, data_dir: Path, dev_user: str) -> BrokerAddress:
    if broker.username:
        return broker
    user, password = os.environ.get("MQTT_USERNAME"), os.environ.get("MQTT_PASSWORD")
    login = (user, password or "") if user else development_mqtt_login(data_dir, dev_user)
    if login is None:
        return broker
    return broker.model_copy(update={"username": login[0], "password": login[1]})
