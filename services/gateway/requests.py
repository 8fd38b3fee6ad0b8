"""Request/reply over the bus: publish a command carrying ``correlation_id`` and ``reply_to``, wait for
the reply on ``reply/<requester>/<correlation_id>``. A reply too large for one message comes as
:class:`~shared.messages.commands.ReplyPart` messages before it: :class:`ReplyParts` collects them
(``accept=parts.accept``) and joins them once the final reply names their count."""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pydantic_core
import structlog
from pydantic import BaseModel, ValidationError

from shared import topics
from shared.bus import Bus, Rejected, describe_error
from shared.messages.commands import ReplyPart

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
class ReplyParts:
    """The parts of one multi-part reply, by index. :meth:`accept` (a :data:`ReplyCheck`) keeps each
    ``status: part`` message and lets the final reply end the wait; :meth:`payload` joins the parts.
    At most ``max_bytes`` decoded bytes are kept (base64: 4/3 of that); a part beyond them, a part
    that disagrees with the others or is malformed is remembered as the reason the payload fails."""

    max_bytes: int
    chunks: dict[int, str] = field(default_factory=dict)
    count: int | None = None
    chars: int = 0
    error: str | None = None

    def accept(self, obj: dict[str, Any]) -> bool:
        if obj.get("status") != "part":
            return True
        if self.error is None:
            self.error = self._add(obj)
        return False

    def _add(self, obj: dict[str, Any]) -> str | None:
        try:
            part = ReplyPart.model_validate(obj)
        except ValidationError as exc:
            return f"malformed part: {describe_error(exc)}"
        if self.count is not None and part.parts != self.count:
            return f"part {part.index} says {part.parts} parts, an earlier one {self.count}"
        if part.index >= part.parts:
            return f"part index {part.index} is not below its count {part.parts}"
        if part.index in self.chunks:  # QoS 1 may deliver twice: the same part again is no news
            return None if self.chunks[part.index] == part.data_b64 else f"part {part.index} sent twice"
        self.chars += len(part.data_b64)
        if self.chars > 4 * (self.max_bytes // 3 + 1):
            return f"the parts hold more than the {self.max_bytes} bytes a reply may have"
        self.count = part.parts
        self.chunks[part.index] = part.data_b64
        return None

    def payload(self, parts: int) -> bytes:
        """The bytes of the ``parts`` parts the final reply names; ValueError with the reason when
        one is missing, they disagree with that count, or are not base64."""
        if self.error is not None:
            raise ValueError(self.error)
        if parts != (self.count or 0):
            raise ValueError(f"the reply names {parts} parts, {self.count or 0} announced")
        missing = [i for i in range(parts) if i not in self.chunks]
        if missing:
            raise ValueError(f"{len(missing)} of {parts} parts missing (first: part {missing[0]})")
        try:
            return base64.b64decode("".join(self.chunks[i] for i in range(parts)), validate=True)
        except binascii.Error:
            raise ValueError("the parts are not base64") from None


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
