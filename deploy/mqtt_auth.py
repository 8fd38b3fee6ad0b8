"""Who may do what on the broker: ONE declared table, rendered as Mosquitto's password and ACL files.

Every process connects as the user of its kind (:data:`GRANTS`): the topics it may subscribe to (read)
and publish on (write). Besides those, every process may publish its own ``status/<process>`` (retained
online/offline, also its last will) and ``deadletter/<process>``, and read and write its private
``sync/<process>/+`` markers. Only the calibrator publishes ``models/#`` and ``config/#``; ``state/#``
is the calibrator's and the scorers' (MONITORING); only the health stage publishes ``alarms/#`` (and
``health/#``, which the calibrator clears on purge); only the features service publishes the retained
sensor status ``sensor/#`` (the health stage reads it, the features service reads its own back).
Device users may publish only on their own assets' ``raw/<asset>/simple`` and ``raw/<asset>/vibration``;
the development user ``device`` on any asset's.
The reporter reads ``cmd/report``, the retained ``config/+`` and ``models/+/+`` (report contents), and
``alarms/+``, ``notify/config`` and ``cmd/notifications`` (alarm notifications); it answers on ``reply/+/+``
and keeps ``notify/config`` retained.
``observer`` reads everything but the topics that carry secrets (:data:`SECRET_TOPICS`: the retained
notification configuration and the admin's notification commands, denied explicitly) and publishes
nothing (operators' ``mosquitto_sub``, dead letters).
``replay`` (``scripts/replay.py``, backfill) publishes raw input for any asset (like ``device``, and the
extra raw filters) and reads what acknowledges it end to end: ``events/+/reading``, ``features/+/+``,
``scores/+/+`` and the retained ``models/+/+`` (which models score an asset); nothing else.

``tests/test_mqtt_auth.py`` derives what each service needs from its declared routes and publishes
(``scripts/architecture.py``) and fails when this table grants less, or more.

Run ``python -m deploy.mqtt_auth --out var/mqtt [--device NAME=ASSET[,ASSET...]]`` to write, for
docker compose or any Mosquitto:

- ``devices.json``: the device users ``{user: [asset ids]}`` (each ``--device`` adds or replaces one,
  ``--remove-device NAME`` drops one; kept between runs);
- ``credentials.json``: ``{user: password}`` (mode 0600); users missing from it get a random password,
  existing ones keep theirs;
- ``passwords/<user>``: each password alone (mode 0600; compose mounts them as Docker secrets);
- ``passwd``: Mosquitto's ``password_file`` (``$7$`` PBKDF2-SHA512 hashes, as ``mosquitto_passwd``);
- ``acl``: Mosquitto's ``acl_file``.

Both broker files are readable by other users (mode 0644: Mosquitto's container user must read
them); they hold only salted hashes of random 256-bit passwords and the rules.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT_DIR = Path(__file__).resolve().parent.parent
if str(ROOT_DIR) not in sys.path:
    sys.path.insert(0, str(ROOT_DIR))

from deploy.mqtt_acl import check_user_name, password_file_text  # noqa: E402
from shared import topics  # noqa: E402
from shared.secrets import MQTT_CREDENTIALS, load_or_create, secret_file, write_secret  # noqa: E402
from shared.settings import Settings  # noqa: E402


def t(relative: str) -> str:
    """A topic filter under the root, written as the architecture document does (``state/+``)."""
    return f"{topics.ROOT}/{relative}"


@dataclass(frozen=True)
class Grant:
    """One broker user: the processes that connect as it, what it may read and what it may write."""

    user: str
    processes: tuple[str, ...]
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()


_SCORER_KINDS = ("legacy", "batch", "autoencoder")

#: The service users. Topic filters are relative to ``rotorwatch/v1``.
GRANTS: tuple[Grant, ...] = (
    Grant(
        "ingest",
        ("ingest",),
        read=("raw/+/simple", "raw/+/vibration"),
        write=("events/+/reading", "events/+/window"),
    ),
    Grant(
        "historian",
        ("historian",),
        read=(
            "events/+/reading",
            "events/+/window",
            "features/+/+",
            "scores/+/+",
            "state/+",
            "health/+",
            "alarms/+",
            "logs/+",
            "sensor/+",
        ),
    ),
    Grant(
        "features",
        ("features",),
        read=("events/+/reading", "events/+/window", "config/+", "sensor/+"),
        write=("features/+/legacy", "features/+/batch", "features/+/vibration", "sensor/+"),
    ),
    Grant(
        "calibrator",
        ("calibrator",),
        read=(
            "state/+",
            "cmd/calibrate",
            "cmd/purge",
            "cmd/reload",
            "cmd/config",
            "cmd/model_import",
            "cmd/model_export",
        ),
        write=("reply/+/+", "state/+", "models/+/+", "config/+", "health/+"),
    ),
    Grant(
        "scorer",
        tuple(f"scorer-{k}" for k in _SCORER_KINDS),
        read=(
            *(f"models/+/{k}" for k in _SCORER_KINDS),
            "state/+",
            "features/+/legacy",
            "features/+/batch",
            "features/+/vibration",
        ),
        write=(
            *(f"scores/+/{k}" for k in _SCORER_KINDS),
            "state/+",
            *(f"rejections/+/{k}" for k in _SCORER_KINDS),
        ),
    ),
    Grant(
        "health",
        ("health",),
        read=(
            "scores/+/+",
            "features/+/+",
            "events/+/reading",
            "config/+",
            "models/+/+",
            "state/+",
            "cmd/alarm_action",
            "sensor/+",
            "logs/+",
        ),
        write=("health/+", "alarms/+", "reply/+/+"),
    ),
    Grant(
        "reporter",
        ("reporter",),
        read=("config/+", "models/+/+", "cmd/report", "alarms/+", "notify/config", "cmd/notifications"),
        write=("reply/+/+", "notify/config"),
    ),
    Grant(
        "gateway",
        ("gateway",),
        read=(
            "state/+",
            "health/+",
            "models/+/+",
            "rejections/+/+",
            "status/#",
            "config/+",
            "reply/+/+",
            "events/+/reading",
            "scores/+/+",
            "alarms/+",
        ),
        write=(
            "raw/+/simple",
            "raw/+/vibration",
            "logs/+",
            "cmd/calibrate",
            "cmd/purge",
            "cmd/reload",
            "cmd/alarm_action",
            "cmd/config",
            "cmd/model_import",
            "cmd/model_export",
            "cmd/report",
            "cmd/notifications",
        ),
    ),
)

#: Development device user: raw input for any asset (scripts and simulators under ``make run``).
DEV_DEVICE = "device"
#: Read-only user for operators and tools.
OBSERVER = "observer"
#: The replay/backfill tool: raw input for any asset, and the topics that acknowledge it end to end.
REPLAY = "replay"
RAW_KINDS = ("simple", "vibration")
#: Topics that carry secrets (notification channels' webhook secrets, SMTP passwords, apprise URLs: the
#: retained configuration and the admin's put commands); ``observer`` reads everything else.
SECRET_TOPICS = ("notify/config", "cmd/notifications")
REPLAY_READS = ("events/+/reading", "features/+/+", "scores/+/+", "models/+/+")


def user_for(process: str) -> str:
    """The broker user a launcher process connects as (``scorer-batch`` → ``scorer``)."""
    for g in GRANTS:
        if process in g.processes:
            return g.user
    raise KeyError(f"no broker user declared for process {process!r} (deploy/mqtt_auth.py GRANTS)")


def service_users() -> list[str]:
    return [g.user for g in GRANTS]


def runner_topics(process: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(read, write)`` every process needs from the runner: status, dead letters, sync markers."""
    sync = f"sync/{process}/+"
    # status/<process>/+: the retained status of each replica of a partitioned stage (shared.partition)
    return (sync,), (f"status/{process}", f"status/{process}/+", f"deadletter/{process}", sync)


def acl_rules(
    devices: Mapping[str, Sequence[str]] | None = None,
    *,
    dev_device: bool = False,
    extra_raw_filters: Sequence[str] = (),
) -> dict[str, list[tuple[str, str]]]:
    """``{user: [(access, absolute filter), ...]}`` for the service users, ``observer``, ``replay``, the
    development ``device`` (when ``dev_device``) and ``devices`` (``{user: [asset ids]}``).

    ``extra_raw_filters`` (``VIBRATION_TOPIC_FILTER``, absolute filters) are read by ingest and written
    by ``replay`` and, in development, by ``device``.
    """
    out: dict[str, list[tuple[str, str]]] = {}
    for g in GRANTS:
        reads, writes = list(g.read), list(g.write)
        for p in g.processes:
            r, w = runner_topics(p)
            reads += r
            writes += w
        rules = [("read", t(f)) for f in dict.fromkeys(reads)] + [
            ("write", t(f)) for f in dict.fromkeys(writes)
        ]
        if g.user == "ingest":
            rules += [("read", f) for f in extra_raw_filters]
        out[g.user] = rules
    out[OBSERVER] = [("read", t("#")), *(("deny", t(f)) for f in SECRET_TOPICS)]
    raw_writes = [("write", t(f"raw/+/{k}")) for k in RAW_KINDS] + [("write", f) for f in extra_raw_filters]
    out[REPLAY] = [*raw_writes, *(("read", t(f)) for f in REPLAY_READS)]
    if dev_device:
        out[DEV_DEVICE] = list(raw_writes)
    for user, assets in (devices or {}).items():
        if user in out:
            raise ValueError(f"device user {user!r} clashes with a declared user")
        out[check_user_name(user)] = [("write", topics.raw_simple(a)) for a in assets] + [
            ("write", topics.raw_vibration(a)) for a in assets
        ]
    return out


def acl_text(rules: Mapping[str, Sequence[tuple[str, str]]]) -> str:
    """Mosquitto's ``acl_file`` for :func:`acl_rules` (no anonymous access, no patterns)."""
    lines = [
        "# Generated by `python -m deploy.mqtt_auth` from deploy/mqtt_auth.py (GRANTS). Do not edit.",
        "# No topic lines before the first user: anonymous clients get nothing.",
    ]
    for user, user_rules in rules.items():
        lines += ["", f"user {check_user_name(user)}"]
        lines += [f"topic {access} {f}" for access, f in user_rules]
    return "\n".join(lines) + "\n"


def new_password() -> str:
    return secrets.token_urlsafe(32)


def complete_credentials(existing: Mapping[str, str], users: Iterable[str]) -> dict[str, str]:
    """``existing`` plus a random password for every user of ``users`` it lacks (order: ``users``)."""
    out = {u: existing[u] for u in users if u in existing}
    out.update({u: new_password() for u in users if u not in existing})
    return out


def write_broker_files(
    directory: Path,
    credentials: Mapping[str, str],
    rules: Mapping[str, Sequence[tuple[str, str]]],
    *,
    passwd_name: str = "passwd",
    acl_name: str = "acl",
) -> tuple[Path, Path]:
    """Write Mosquitto's password file and ACL file into ``directory`` (atomically, mode 0644)."""
    missing = sorted(set(rules) - set(credentials))
    if missing:
        raise ValueError(f"no password for user(s) {', '.join(missing)}")
    passwd, acl = directory / passwd_name, directory / acl_name
    _write(passwd, password_file_text({u: credentials[u] for u in rules}), 0o644)
    _write(acl, acl_text(rules), 0o644)
    return passwd, acl


def _write(path: Path, text: str, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def development_users() -> list[str]:
    """The users ``make run`` creates: the service users, ``observer``, ``replay`` and ``device``."""
    return [*service_users(), OBSERVER, REPLAY, DEV_DEVICE]


def development_credentials(settings: Settings) -> dict[str, str]:
    """``DATA_DIR/secrets/mqtt.json`` (``{user: password}``): created once in development with random
    passwords, completed when a user is added to the table; in production it must exist
    (:class:`shared.secrets.MissingSecret`)."""
    users = development_users()

    def make() -> bytes:
        return json.dumps(complete_credentials({}, users), indent=2).encode()

    stored = json.loads(load_or_create(settings, MQTT_CREDENTIALS, make, variable="MQTT_URL"))
    creds = complete_credentials(stored, users)
    if creds != stored:
        write_secret(settings, MQTT_CREDENTIALS, json.dumps({**stored, **creds}, indent=2).encode())
    return creds


def write_development_broker_files(settings: Settings, credentials: Mapping[str, str]) -> tuple[Path, Path]:
    """The embedded broker's password and ACL files (``mosquitto.passwd``, ``mosquitto.acl`` under
    ``DATA_DIR/secrets``) for ``credentials`` and the table, rewritten on every start."""
    rules = acl_rules(dev_device=True, extra_raw_filters=settings.extra_vibration_filters)
    directory = secret_file(settings, MQTT_CREDENTIALS).parent
    return write_broker_files(
        directory, credentials, rules, passwd_name="mosquitto.passwd", acl_name="mosquitto.acl"
    )


def parse_device(spec: str) -> tuple[str, list[str]]:
    """``NAME=ASSET[,ASSET...]`` → ``(NAME, [assets])`` (asset ids validated like topics do)."""
    user, sep, assets = spec.partition("=")
    names = [a.strip() for a in assets.split(",") if a.strip()]
    if not sep or not names:
        raise argparse.ArgumentTypeError(f"--device expects NAME=ASSET[,ASSET...], got {spec!r}")
    for a in names:
        if not topics.valid_asset_id(a):
            raise argparse.ArgumentTypeError(f"invalid asset id {a!r} in --device {spec!r}")
    try:
        return check_user_name(user), names
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m deploy.mqtt_auth",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", type=Path, default=Path("var/mqtt"), help="output directory (default var/mqtt)")
    p.add_argument("--device", type=parse_device, action="append", default=[], help="NAME=ASSET[,ASSET...]")
    p.add_argument("--remove-device", action="append", default=[], metavar="NAME", help="drop a device user")
    p.add_argument("--dev-device", action="store_true", help=f"also the development user {DEV_DEVICE!r}")
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    dev_path = a.out / "devices.json"
    devices = json.loads(dev_path.read_text()) if dev_path.exists() else {}
    devices.update(dict(a.device))
    for user in a.remove_device:
        devices.pop(user, None)
    _write(dev_path, json.dumps(devices, indent=2) + "\n", 0o644)
    rules = acl_rules(devices, dev_device=a.dev_device, extra_raw_filters=Settings().extra_vibration_filters)
    cred_path = a.out / "credentials.json"
    existing = json.loads(cred_path.read_text()) if cred_path.exists() else {}
    credentials = complete_credentials(existing, list(rules))
    _write(cred_path, json.dumps(credentials, indent=2) + "\n", 0o600)
    (a.out / "passwords").mkdir(mode=0o700, exist_ok=True)
    for user, password in credentials.items():
        _write(a.out / "passwords" / user, password + "\n", 0o600)
    passwd, acl = write_broker_files(a.out, credentials, rules)
    print(f"{len(credentials)} users: {', '.join(credentials)}")
    print(f"wrote {cred_path} and {a.out / 'passwords'}/<user> (0600), {passwd} and {acl}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
