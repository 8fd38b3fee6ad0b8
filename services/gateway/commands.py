"""Asset commands (``cmd/purge``, ``cmd/reload``) as request/reply from HTTP handlers."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import HTTPException
from pydantic import BaseModel, Field, ValidationError

from services.gateway.deps import GatewayContext
from shared import topics
from shared.messages import AssetCommand, CommandReply

COMMAND_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "The service refused or failed the command; `detail` is its reason"},
    422: {"description": "Invalid asset id"},
    502: {"description": "Malformed reply"},
    503: {"description": "MQTT broker not connected"},
    504: {"description": "No reply within COMMAND_TIMEOUT_S"},
}


class CommandResult(BaseModel):
    status: Literal["ok"] = "ok"
    message: str = ""
    #: What the service reports it did (e.g. counts of deleted points / models).
    data: dict[str, Any] = Field(default_factory=dict)


def parse_reply(raw: dict[str, Any], responder: str) -> CommandReply:
    """The reply as a :class:`CommandReply`; HTTP 502 when it is not one."""
    try:
        return CommandReply.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ())) or "reply"
        raise HTTPException(502, f"malformed reply from the {responder}: {where}: {err['msg']}") from None


async def command(ctx: GatewayContext, name: str, payload: BaseModel, *, responder: str) -> CommandReply:
    """Send ``payload`` on ``cmd/<name>`` and return the (validated) reply (503/504/502 on failure)."""
    raw = await ctx.request(
        topics.command(name), payload, ctx.settings.command_timeout_s, responder=responder
    )
    return parse_reply(raw, responder)


async def asset_command(
    ctx: GatewayContext, name: str, asset_id: str | None, *, responder: str
) -> CommandResult:
    """An :class:`AssetCommand` (one asset, or all when ``asset_id`` is None); a ``failed`` reply is
    HTTP 400 with the service's message."""
    cid, reply_to = ctx.view.new_correlation()
    reply = await command(
        ctx, name, AssetCommand(correlation_id=cid, reply_to=reply_to, asset_id=asset_id), responder=responder
    )
    if reply.status != "ok":
        raise HTTPException(400, reply.message or f"{name} failed")
    return CommandResult(message=reply.message, data=reply.data)
