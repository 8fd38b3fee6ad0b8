"""Webhook signatures: HMAC-SHA256 over ``<unix seconds>.<raw body>`` with the channel's secret.

Header ``X-Rotorwatch-Signature: t=<unix seconds>,v1=<hex digest>``. A receiver recomputes the digest
over the timestamp and the exact body bytes it received, compares in constant time, and refuses a
timestamp older (or newer) than its tolerance (default 300 s), which stops replays of a captured request.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Rotorwatch-Signature"
#: Also sent: the delivery id (transition id + channel), for receivers that dedupe.
DELIVERY_HEADER = "X-Rotorwatch-Delivery"
DEFAULT_TOLERANCE_S = 300.0


class BadSignature(ValueError):
    """The signature header is missing, malformed, too old, or does not match."""


def digest(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return mac.hexdigest()


def sign(secret: str, body: bytes, now: float) -> str:
    """The header value for ``body`` sent at ``now`` (Unix seconds)."""
    ts = int(now)
    return f"t={ts},v1={digest(secret, ts, body)}"


def verify(
    secret: str, header: str | None, body: bytes, now: float, tolerance_s: float = DEFAULT_TOLERANCE_S
) -> int:
    """Check ``header`` for ``body`` at ``now``; return its timestamp, raise :class:`BadSignature`."""
    if not header:
        raise BadSignature(f"missing {SIGNATURE_HEADER} header")
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        ts = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        raise BadSignature("malformed signature header (expected t=<unix>,v1=<hex>)") from None
    if abs(now - ts) > tolerance_s:
        raise BadSignature(f"signature timestamp {ts} is {abs(now - ts):.0f} s away (> {tolerance_s:g} s)")
    if not hmac.compare_digest(given, digest(secret, ts, body)):
        raise BadSignature("signature does not match the body")
    return ts
