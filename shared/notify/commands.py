"""``cmd/notifications`` (gateway → reporter, request/reply): get or replace the channel configuration,
list deliveries. The reply never carries a secret (:func:`shared.notify.config.redacted`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from shared.messages.base import Message
from shared.messages.commands import Reply
from shared.notify.config import NotificationConfig
from shared.notify.outbox import Status


class NotifyRequest(Message):
    correlation_id: str
    reply_to: str
    action: Literal["get", "put", "deliveries"]
    #: For ``put``: the new configuration (a secret left out keeps the stored one).
    config: NotificationConfig | None = None
    #: For ``deliveries``: only this status, newest first, at most ``limit``.
    status: Status | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class NotifyReply(Reply):
    #: The configuration with secrets replaced by ``***``.
    config: dict[str, Any] | None = None
    deliveries: list[dict[str, Any]] = Field(default_factory=list)
    #: Deliveries kept, by status.
    counts: dict[str, int] = Field(default_factory=dict)
