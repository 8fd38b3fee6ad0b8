"""Commands as request/reply from HTTP handlers, and the one table from reply codes to HTTP statuses.

A responder answers with a typed reply (:class:`~shared.messages.Reply` and its subclasses,
:class:`~shared.messages.CalibrationReply`); a failed reply names an
:data:`~shared.messages.ErrorCode`, which :data:`HTTP_STATUS` maps to the HTTP status. The message
text is the HTTP ``detail`` and is never interpreted.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from fastapi import HTTPException
from pydantic import BaseModel, ValidationError

from services.gateway.deps import GatewayContext
from services.gateway.requests import ReplyCheck
from shared import topics
from shared.messages import AssetCommand, ErrorCode, PurgeDetail, Reply

#: Reply error code → HTTP status.
HTTP_STATUS: dict[ErrorCode, int] = {
    "invalid": 422,
    "not_found": 404,
    "conflict": 409,
    "busy": 409,
    "insufficient_data": 400,
    "validation_failed": 400,
    "internal": 500,
}
#: A failed reply that names no code: the service refused the request.
UNCODED_STATUS = 400


def http_status(code: ErrorCode | None, uncoded: int = UNCODED_STATUS) -> int:
    """The HTTP status of a failed reply with ``code`` (``uncoded`` when it names none)."""
    return uncoded if code is None else HTTP_STATUS[code]


COMMAND_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "The service refused the command; `detail` is its reason"},
    404: {"description": "Nothing to act on (e.g. unknown asset)"},
    422: {"description": "Invalid asset id"},
    500: {"description": "The service failed (see its logs)"},
    502: {"description": "Malformed reply"},
    503: {"description": "MQTT broker not connected"},
    504: {"description": "No reply within COMMAND_TIMEOUT_S"},
}

R = TypeVar("R", bound=BaseModel)


def parse_reply(raw: dict[str, Any], model: type[R], responder: str) -> R:
    """The reply as ``model``; HTTP 502 when it is not one."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ())) or "reply"
        raise HTTPException(502, f"malformed reply from the {responder}: {where}: {err['msg']}") from None


async def command(
    ctx: GatewayContext,
    name: str,
    request: BaseModel,
    model: type[R],
    *,
    responder: str,
    timeout: float | None = None,
    accept: ReplyCheck | None = None,
) -> R:
    """Send ``request`` on ``cmd/<name>`` and return the reply as ``model`` (503/504/502 on failure).
    ``timeout`` defaults to ``COMMAND_TIMEOUT_S``."""
    wait = ctx.settings.command_timeout_s if timeout is None else timeout
    raw = await ctx.request(topics.command(name), request, wait, responder=responder, accept=accept)
    return parse_reply(raw, model, responder)


def raise_failed(reply: Reply, what: str) -> None:
    """HTTP error for a failed reply (status from :data:`HTTP_STATUS`, ``detail`` its message)."""
    if reply.status != "ok":
        raise HTTPException(http_status(reply.code), reply.message or f"{what} failed")


# ---------------------------------------------------------------------------------------------
# Asset commands (cmd/purge, cmd/reload)
# ---------------------------------------------------------------------------------------------
class PurgeData(BaseModel):
    """What the calibrator purged: the assets, and per asset whether models and data were deleted."""

    assets: list[str]
    deleted: dict[str, PurgeDetail]


class ReloadData(BaseModel):
    """Asset → model version re-announced from the registry."""

    versions: dict[str, str]


D = TypeVar("D", bound=BaseModel)


class CommandResult(BaseModel, Generic[D]):
    status: Literal["ok"] = "ok"
    message: str = ""
    #: What the service reports it did.
    data: D


async def asset_command(
    ctx: GatewayContext,
    name: Literal["purge", "reload"],
    asset_id: str | None,
    reply_model: type[Reply],
    data_model: type[D],
) -> CommandResult[D]:
    """An :class:`AssetCommand` (one asset, or all when ``asset_id`` is None) to the calibrator; the
    result carries the reply's own fields (those beyond :class:`Reply`) as ``data``."""
    cid, reply_to = ctx.view.requests.new_correlation()
    req = AssetCommand(correlation_id=cid, reply_to=reply_to, asset_id=asset_id)
    reply = await command(ctx, name, req, reply_model, responder="calibrator")
    raise_failed(reply, name)
    data = reply.model_dump(mode="json", exclude=set(Reply.model_fields))
    return CommandResult[D](message=reply.message, data=data_model.model_validate(data))
