"""``/notifications`` (admin only): alarm notification channels and their deliveries, owned by the
reporter (``cmd/notifications``, request/reply; it keeps the configuration retained on
``notify/config``). Secrets (webhook ``secret``, SMTP ``password``) are never answered: they come back
as ``***``, and a PUT that sends ``***`` or leaves them out keeps the stored ones."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from services.gateway.auth.guard import Admin
from services.gateway.commands import COMMAND_RESPONSES, command, raise_failed
from services.gateway.deps import ContextDep
from shared.notify.commands import NotifyReply, NotifyRequest
from shared.notify.config import NOTIFY_COMMAND, NotificationConfig
from shared.notify.outbox import Status

router = APIRouter(prefix="/notifications", tags=["notifications"])

_RESPONSES = {**COMMAND_RESPONSES, 422: {"description": "Invalid configuration; `detail` says why"}}


class DeliveryList(BaseModel):
    #: Deliveries kept (pending ones and the latest finished), by status.
    counts: dict[str, int]
    deliveries: list[dict[str, Any]] = Field(description="Newest first")


async def _ask(ctx: ContextDep, action: str, **fields: Any) -> NotifyReply:
    cid, reply_to = ctx.view.requests.new_correlation()
    req = NotifyRequest(correlation_id=cid, reply_to=reply_to, action=action, **fields)  # type: ignore[arg-type]
    reply = await command(ctx, NOTIFY_COMMAND, req, NotifyReply, responder="reporter")
    raise_failed(reply, f"notifications {action}")
    return reply


@router.get("/config", responses=_RESPONSES)
async def get_config(ctx: ContextDep, who: Admin) -> dict[str, Any]:
    """The channels, link base URL and retry policy (secrets as ``***``)."""
    return (await _ask(ctx, "get")).config or {}


@router.put("/config", responses=_RESPONSES)
async def put_config(body: NotificationConfig, ctx: ContextDep, who: Admin) -> dict[str, Any]:
    """Replace the configuration; answers it as stored (secrets as ``***``)."""
    return (await _ask(ctx, "put", config=body)).config or {}


@router.get("/deliveries", response_model=DeliveryList, responses=_RESPONSES)
async def deliveries(
    ctx: ContextDep,
    who: Admin,
    status: Annotated[Status | None, Query(description="Only this status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeliveryList:
    """Deliveries (pending, delivered, failed, cancelled) with attempts, last error and next attempt."""
    reply = await _ask(ctx, "deliveries", status=status, limit=limit)
    return DeliveryList(counts=reply.counts, deliveries=reply.deliveries)
