"""``python -m services.gateway.admin``: manage the gateway's users and API keys (``DATA_DIR/auth.db``).

    python -m services.gateway.admin user list
    python -m services.gateway.admin user create alice --role operator        # prints a new password
    python -m services.gateway.admin user create pump7 --role device --assets motor_01,motor_02 --no-password
    python -m services.gateway.admin user set alice --role admin | --disable | --enable | --assets a,b
    python -m services.gateway.admin user passwd alice                         # asks (or --password-stdin)
    python -m services.gateway.admin key create pump7 --label "esp32 hall 2"   # prints the key once
    python -m services.gateway.admin key list [--user pump7]
    python -m services.gateway.admin key disable 1a2b3c4d

Works while the gateway runs (SQLite WAL): changes apply to the next request. The same operations are
in the API (``/api/v1/users``, admin only).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from services.gateway.auth.roles import Role
from services.gateway.auth.store import AuthStore, Conflict, NotFound, User, new_password, open_auth_store
from shared.settings import Settings

Handler = Callable[[AuthStore, argparse.Namespace], str]


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _assets(text: str | None) -> list[str] | None:
    return None if text is None else [a for a in text.split(",") if a.strip()]


def _row(u: User) -> str:
    state = "disabled" if u.disabled else "enabled"
    login = "password" if u.has_password else "keys only"
    assets = f"  assets={','.join(u.assets)}" if u.assets else ""
    return f"{u.name:<24} {u.role.value:<9} {state:<9} {login:<10} {_when(u.created_at)}{assets}"


def _password(a: argparse.Namespace) -> str:
    if a.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("new password: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the passwords differ")
    return first


def user_list(store: AuthStore, a: argparse.Namespace) -> str:
    return "\n".join(_row(u) for u in store.users()) or "(no users)"


def user_create(store: AuthStore, a: argparse.Namespace) -> str:
    role = Role(a.role)
    password: str | None = None
    generated = False
    if a.password_stdin:
        password = _password(a)
    elif not a.no_password and role is not Role.device:
        password, generated = new_password(), True
    u = store.create_user(a.name, role, password=password, assets=_assets(a.assets) or ())
    out = f"created {_row(u)}"
    return out + (f"\npassword (shown once): {password}" if generated else "")


def user_set(store: AuthStore, a: argparse.Namespace) -> str:
    disabled = True if a.disable else False if a.enable else None
    role = Role(a.role) if a.role else None
    return (
        f"updated {_row(store.update_user(a.name, role=role, assets=_assets(a.assets), disabled=disabled))}"
    )


def user_passwd(store: AuthStore, a: argparse.Namespace) -> str:
    store.set_password(a.name, None if a.remove else _password(a))
    return f"password of {a.name} {'removed' if a.remove else 'set'} (its sessions ended)"


def key_create(store: AuthStore, a: argparse.Namespace) -> str:
    k, secret = store.create_key(a.user, a.label)
    return f"API key {k.id} for {k.user} (shown once, send as 'Authorization: Bearer <key>'):\n{secret}"


def key_list(store: AuthStore, a: argparse.Namespace) -> str:
    rows = [
        f"{k.id}  {k.user:<24} {'disabled' if k.disabled else 'enabled':<9} {_when(k.created_at)}  {k.label}"
        for k in store.keys(a.user)
    ]
    return "\n".join(rows) or "(no keys)"


def key_disable(store: AuthStore, a: argparse.Namespace) -> str:
    k = store.disable_key(a.key_id)
    return f"disabled API key {k.id} of {k.user}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m services.gateway.admin",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    p.add_argument("--data-dir", type=Path, help="where auth.db is (default: DATA_DIR)")
    kinds = p.add_subparsers(dest="kind", required=True)
    users = kinds.add_parser("user", help="users").add_subparsers(dest="op", required=True)
    users.add_parser("list").set_defaults(run=user_list)
    c = users.add_parser("create")
    c.add_argument("name")
    c.add_argument("--role", required=True, choices=[r.value for r in Role])
    c.add_argument("--assets", help="device: comma-separated asset ids it may send data for")
    c.add_argument("--no-password", action="store_true", help="API keys only (default for devices)")
    c.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    c.set_defaults(run=user_create)
    s = users.add_parser("set")
    s.add_argument("name")
    s.add_argument("--role", choices=[r.value for r in Role])
    s.add_argument("--assets", help="replace the device's assets (comma-separated; '' for none)")
    on_off = s.add_mutually_exclusive_group()
    on_off.add_argument("--disable", action="store_true")
    on_off.add_argument("--enable", action="store_true")
    s.set_defaults(run=user_set)
    pw = users.add_parser("passwd")
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    pw.add_argument("--remove", action="store_true", help="no password: API keys only")
    pw.set_defaults(run=user_passwd)
    keys = kinds.add_parser("key", help="API keys").add_subparsers(dest="op", required=True)
    kc = keys.add_parser("create")
    kc.add_argument("user")
    kc.add_argument("--label", default="")
    kc.set_defaults(run=key_create)
    kl = keys.add_parser("list")
    kl.add_argument("--user")
    kl.set_defaults(run=key_list)
    kd = keys.add_parser("disable")
    kd.add_argument("key_id")
    kd.set_defaults(run=key_disable)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; 0 on success, 1 with the reason on stderr when it is refused."""
    a = build_parser().parse_args(argv)
    store = open_auth_store(a.data_dir or Settings().data_dir)
    try:
        print(a.run(store, a))
    except (NotFound, Conflict, ValueError) as exc:
        print(f"error: {str(exc).strip(chr(34) + chr(39))}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
