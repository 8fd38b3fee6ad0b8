"""Roles, what each may do, and the identity of an authenticated request.

``viewer`` reads; ``operator`` also acknowledges/resolves alarms, writes logs and calibrates; ``admin``
also purges, reloads models, changes asset configuration and manages users and keys; ``device`` only
sends data (``POST /data/*``), and only for the assets it is given. Every route declares one of the
grants below (:mod:`services.gateway.auth.guard`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    viewer = "viewer"
    operator = "operator"
    admin = "admin"
    device = "device"


@dataclass(frozen=True)
class Grant:
    """Who may call a route: ``roles`` (None: anyone, no credentials needed) and a short ``action``
    naming what the route does (used in 403 reasons)."""

    name: str
    roles: frozenset[Role] | None
    action: str

    def allows(self, role: Role) -> bool:
        return self.roles is None or role in self.roles

    def needed(self) -> str:
        return "anyone" if self.roles is None else " or ".join(sorted(r.value for r in self.roles))


PUBLIC = Grant("public", None, "anything")
#: Any authenticated identity (e.g. ``/auth/me``).
AUTHENTICATED = Grant("authenticated", frozenset(Role), "see who they are")
READ = Grant("read", frozenset({Role.viewer, Role.operator, Role.admin}), "read monitoring data")
OPERATE = Grant("operate", frozenset({Role.operator, Role.admin}), "operate (alarms, logs, calibration)")
ADMINISTER = Grant("administer", frozenset({Role.admin}), "administer (purge, reload, config, users)")
INGEST = Grant("ingest", frozenset({Role.device, Role.admin}), "send data")

GRANTS = (PUBLIC, AUTHENTICATED, READ, OPERATE, ADMINISTER, INGEST)


@dataclass(frozen=True)
class Identity:
    """Who a request is: the user, its role, a device's assets and how it authenticated
    (``key:<key id>`` or ``session``). Never holds a secret."""

    user: str
    role: Role
    assets: tuple[str, ...] = ()
    via: str = "session"
    #: The route being called (``POST /api/v1/data/simple``), set by the guard, for denial logs.
    route: str = ""

    def may_send_for(self, asset_id: str) -> bool:
        """Admins send for any asset; devices only for theirs; other roles for none."""
        if self.role is Role.admin:
            return True
        return self.role is Role.device and asset_id in self.assets

    def describe(self) -> str:
        return f"{self.user} ({self.role.value}, {self.via})"
