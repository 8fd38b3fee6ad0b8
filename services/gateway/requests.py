"""Request/reply over the bus: publish a command carrying ``correlation_id`` and ``reply_to``, wait for
the reply on ``reply/<requester>/<correlation_id>``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pydantic_core
import structlog
from pydantic import BaseModel

from shared import topics
from shared.bus import Bus, Rejected

log = structlog.get_logger()

#: Which replies end the wait (e.g. skip an interim ``accepted``); None accepts the first reply.
ReplyCheck = Callable[[dict[str, Any]], bool]


def json_object(payload: bytes) -> dict[str, Any]:
    """The payload as a JSON object (no NaN/inf); :class:`Rejected` when it is not one."""
    try:
        obj = pydantic_core.from_json(payload, allow_inf_nan=False)
    except ValueError as exc:
        raise Rejected(f"malformed JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise Rejected(f"payload must be a JSON object, got {type(obj).__name__}")
    return obj


@dataclass
class _Pending:
    future: asyncio.Future[dict[str, Any]]
    accept: ReplyCheck | None


class Requests:
    """Pending requests by correlation id; :meth:`on_reply` resolves them."""

    def __init__(self, requester: str | None = None) -> None:
        #: Name in our reply topics ``reply/<requester>/<correlation id>``; unique per gateway process.
        self.requester = requester or f"gateway-{uuid.uuid4().hex[:8]}"
        if not topics.valid_asset_id(self.requester):
            raise ValueError(
                f"invalid requester name {self.requester!r}: must match {topics.ASSET_ID_PATTERN}"
            )
        self._pending: dict[str, _Pending] = {}

    def new_correlation(self) -> tuple[str, str]:
        """A fresh ``(correlation_id, reply_to)``; ``reply_to`` is the full reply topic."""
        cid = uuid.uuid4().hex
        return cid, topics.reply(self.requester, cid)

    def _addressed(self, payload: BaseModel | dict[str, Any]) -> tuple[BaseModel | dict[str, Any], str]:
        """The payload with a valid ``correlation_id`` / ``reply_to`` pair (fresh ones for a dict missing
        them) and its correlation id; ValueError when they are invalid or already pending."""
        if isinstance(payload, BaseModel):
            cid = getattr(payload, "correlation_id", None)
            reply_to = getattr(payload, "reply_to", None)
        else:
            payload = dict(payload)
            if "correlation_id" not in payload:
                payload["correlation_id"] = self.new_correlation()[0]
            payload.setdefault("reply_to", topics.reply(self.requester, str(payload["correlation_id"])))
            cid, reply_to = payload["correlation_id"], payload["reply_to"]
        if not isinstance(cid, str) or not topics.valid_asset_id(cid):
            raise ValueError(
                f"request needs a correlation_id matching {topics.ASSET_ID_PATTERN}, got {cid!r}"
            )
        if reply_to != topics.reply(self.requester, cid):
            raise ValueError(f"reply_to must be {topics.reply(self.requester, cid)!r}, got {reply_to!r}")
        if cid in self._pending:
            raise ValueError(f"a request with correlation_id {cid!r} is already pending")
        return payload, cid

    async def request(
        self,
        bus: Bus,
        topic: str,
        payload: BaseModel | dict[str, Any],
        timeout: float,
        *,
        accept: ReplyCheck | None = None,
    ) -> dict[str, Any]:
        """Publish a request (QoS 1) and wait up to ``timeout`` s for its reply; return the reply JSON.

        ``payload`` carries ``correlation_id`` and ``reply_to`` (the full reply topic, see
        :meth:`new_correlation`); a dict missing them gets fresh ones. With ``accept``, replies for which
        it returns False (e.g. an interim ``accepted``) are skipped and the wait goes on. Raises
        ``TimeoutError`` when no accepted reply arrives in time.
        """
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 s, got {timeout}")
        payload, cid = self._addressed(payload)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[cid] = _Pending(fut, accept)
        try:
            await bus.publish(topic, payload, qos=1)
            async with asyncio.timeout(timeout):
                return await fut
        finally:
            self._pending.pop(cid, None)

    def pending(self) -> int:
        return len(self._pending)

    def on_reply(self, cid: str, payload: bytes) -> None:
        """A reply arrived on ``reply/<requester>/<cid>``: resolve its request (if still waiting)."""
        entry = self._pending.get(cid)
        if entry is None or entry.future.done():
            log.info("reply_without_request", correlation_id=cid)
            return
        obj = json_object(payload)
        if obj.get("correlation_id", cid) != cid:
            raise Rejected(f"reply correlation_id {obj.get('correlation_id')!r} does not match topic {cid!r}")
        if entry.accept is None or entry.accept(obj):
            entry.future.set_result(obj)
