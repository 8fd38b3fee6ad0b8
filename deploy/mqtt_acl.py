"""Mosquitto's password-file and ACL-file formats, written and checked in Python.

The embedded broker (``deploy/broker.py``) enforces the very files Mosquitto reads, so both brokers
follow the same rules (``tests/test_mqtt_auth_brokers.py`` runs one matrix on both):

- **Password file**: ``user:$7$<iterations>$<base64 salt>$<base64 hash>`` per line, the format
  ``mosquitto_passwd`` writes: PBKDF2-HMAC-SHA512 of the UTF-8 password, 12 random salt bytes,
  101 iterations, a 64-byte hash.
- **ACL file** (Mosquitto's ``acl_file``): ``user <name>`` starts a user's section, ``topic
  [read|write|readwrite] <filter>`` grants that user access (readwrite when the access word is
  missing), ``topic deny <filter>`` takes it away again on what the filter matches, before any grant
  (Mosquitto's explicit deny); ``topic`` lines before the first ``user`` line apply to anonymous
  clients; ``pattern [access] <filter>`` lines apply to every client with ``%u`` (user name) and
  ``%c`` (client id) substituted. Publishing on a topic needs a write rule whose filter matches it;
  receiving a message needs a read rule that matches its topic; subscribing needs a read rule that
  covers the whole filter. Anything not granted is denied.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

#: What mosquitto_passwd (2.0) uses for its ``$7$`` hashes.
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12

Access = Literal["read", "write", "readwrite", "deny"]
Action = Literal["publish", "subscribe", "receive"]
ACCESS_WORDS: frozenset[str] = frozenset({"read", "write", "readwrite", "deny"})


# --- passwords --------------------------------------------------------------------------------------
def hash_password(password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """The ``$7$`` hash of ``password`` as mosquitto_passwd writes it (random salt unless given)."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches a ``$7$`` hash (any other or malformed hash: False)."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[0] != "" or parts[1] != "7":
        return False
    try:
        iterations = int(parts[2])
        salt, expected = base64.b64decode(parts[3], validate=True), base64.b64decode(parts[4], validate=True)
    except (ValueError, binascii.Error):
        return False
    if not 1 <= iterations <= 10_000_000:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, dklen=len(expected))
    return hmac.compare_digest(digest, expected)


def password_file_text(credentials: Mapping[str, str]) -> str:
    """A password file for ``{user: password}`` (sorted by user, fresh salts)."""
    for user in credentials:
        check_user_name(user)
    return "".join(f"{user}:{hash_password(credentials[user])}\n" for user in sorted(credentials))


def parse_password_file(text: str) -> dict[str, str]:
    """``{user: hash}`` from a password file (blank lines and ``#`` comments skipped)."""
    users: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, encoded = line.partition(":")
        if not sep or not user or not encoded:
            raise ValueError(f"password file line {n}: expected user:hash")
        users[user] = encoded
    return users


def check_user_name(user: str) -> str:
    """User names: non-empty, no ``:`` (password file), whitespace, ``/``, ``+``, ``#`` (ACL patterns)."""
    if not user or any(c in user for c in ":/+# \t\r\n"):
        raise ValueError(f"invalid MQTT user name {user!r}")
    return user


# --- topic filters -----------------------------------------------------------------------------------
def topic_matches(filter_: str, topic: str) -> bool:
    """MQTT matching of a concrete ``topic`` against ``filter_`` (``+`` one level, ``#`` the rest,
    including none: ``a/#`` matches ``a``)."""
    f, t = filter_.split("/"), topic.split("/")
    for i, level in enumerate(f):
        if level == "#":
            return True
        if i >= len(t) or (level != "+" and level != t[i]):
            return False
    return len(f) == len(t)


def filter_covers(rule: str, filter_: str) -> bool:
    """Whether every topic ``filter_`` can match is matched by ``rule`` (a subscription allowed by a
    read rule): ``a/+/b`` covers ``a/x/b`` and ``a/+/b``, not ``a/#``; ``a/#`` covers all of them."""
    r, f = rule.split("/"), filter_.split("/")
    for i, level in enumerate(r):
        if level == "#":
            return True
        if i >= len(f) or f[i] == "#":
            return False
        if level != "+" and (f[i] == "+" or level != f[i]):
            return False
    return len(r) == len(f)


# --- ACL file ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    access: Access
    filter: str

    def grants(self, action: Action) -> bool:
        need = "write" if action == "publish" else "read"
        return self.access in (need, "readwrite")

    def denies(self, action: Action, topic: str) -> bool:
        """A ``deny`` rule matching the topic (publish, receive) or covering the whole subscription."""
        if self.access != "deny":
            return False
        return (filter_covers if action == "subscribe" else topic_matches)(self.filter, topic)

    def line(self, keyword: str = "topic") -> str:
        return f"{keyword} {self.access} {self.filter}"


@dataclass
class Acl:
    """A parsed ACL file: per-user rules, rules for anonymous clients, and patterns for everyone."""

    users: dict[str, list[Rule]] = field(default_factory=dict)
    anonymous: list[Rule] = field(default_factory=list)
    patterns: list[Rule] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> Acl:
        acl, current = cls(), None
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            words = line.split(None, 2)
            if words[0] == "user" and len(words) == 2:
                current = acl.users.setdefault(check_user_name(words[1]), [])
            elif words[0] in ("topic", "pattern") and len(words) in (2, 3):
                rule = _rule(words[1:], n)
                if words[0] == "pattern":
                    acl.patterns.append(rule)
                else:
                    (acl.anonymous if current is None else current).append(rule)
            else:
                raise ValueError(f"ACL line {n}: cannot read {line!r}")
        return acl

    def rules_for(self, user: str | None, client_id: str) -> Iterable[Rule]:
        """The rules that apply to one client (patterns with ``%u``/``%c`` filled in)."""
        yield from (self.users.get(user, []) if user is not None else self.anonymous)
        for p in self.patterns:
            if "%u" in p.filter and (user is None or _unsafe(user)):
                continue
            if "%c" in p.filter and _unsafe(client_id):
                continue
            yield Rule(p.access, p.filter.replace("%u", user or "").replace("%c", client_id))

    def allows(self, user: str | None, action: Action, topic: str, client_id: str = "") -> bool:
        """Whether ``user`` may publish on / receive ``topic``, or subscribe to the filter ``topic``."""
        match = filter_covers if action == "subscribe" else topic_matches
        rules = list(self.rules_for(user, client_id))
        if any(r.denies(action, topic) for r in rules):
            return False
        return any(r.grants(action) and match(r.filter, topic) for r in rules)


def _rule(words: list[str], n: int) -> Rule:
    access, topic = ("readwrite", words[0]) if len(words) == 1 else (words[0], words[1])
    if access not in ACCESS_WORDS:
        raise ValueError(f"ACL line {n}: access must be read, write, readwrite or deny, got {access!r}")
    return Rule(access, topic)  # type: ignore[arg-type]


def _unsafe(name: str) -> bool:
    return not name or any(c in name for c in "/+#")
