"""``POST /data/*``: accept raw input and publish it to the raw topics; ingest normalises it.

One validation for HTTP and MQTT: the body is parsed by :mod:`shared.raw`, exactly as ingest parses
MQTT input (no coercion of ``"230"``, ``true`` or ``["0.1"]``; the reason names the field).

The edge of the event's identity: a reading without ``event_id`` gets one here, and one without a
timestamp is stamped with its arrival time, both returned in the answer, so the event is the same one
however often it is re-delivered (the store keeps it once; a client that retries with the returned
``event_id`` and ``timestamp`` is idempotent too).

202 means the reading is safe: the broker acknowledged it (PUBACK, QoS 1) and an ingest service is
online (its retained ``status/ingest``, or every replica's when partitioned; ingest's persistent
session holds what it has not taken yet). Otherwise 503 with ``Retry-After`` and the reason, plus the
``event_id`` and ``timestamp`` to retry with (the publish may have reached the broker before the
connection was lost).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import aiomqtt
import structlog
from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from services.gateway.auth.guard import Ingest, require_asset
from services.gateway.auth.roles import Identity
from services.gateway.deps import PUBLISH_TIMEOUT_S, GatewayContext, get_context
from services.gateway.view import stage_online
from shared import raw, topics
from shared.bus import Rejected, describe_error
from shared.messages import SimpleReadingIn, VibrationBatchIn, new_event_id, utcnow

router = APIRouter(prefix="/data", tags=["data"])

log = structlog.get_logger()

#: Seconds a client is told to wait before retrying a 503.
RETRY_AFTER_S = 2


async def _context(request: Request) -> GatewayContext:
    """:func:`~services.gateway.deps.get_context` as a coroutine: FastAPI runs a plain ``def`` dependency
    in its thread pool, one thread hop per request on the ingest path for a dictionary look-up."""
    return get_context(request)


#: The request context, resolved on the event loop (no thread hop).
ContextDep = Annotated[GatewayContext, Depends(_context)]

_ERRORS: dict[int | str, dict[str, str]] = {
    413: {"description": "Request body larger than MAX_PAYLOAD_BYTES"},
    422: {"description": "Invalid input; `detail` names the field and the problem"},
    503: {
        "description": "Not accepted (broker not connected or no PUBACK, or no ingest online): retry after "
        "`Retry-After` s with the returned `event_id` and `timestamp`"
    },
}


class Accepted(BaseModel):
    """The input was valid, the broker acknowledged it (QoS 1) and an ingest is online."""

    status: Literal["accepted"] = "accepted"
    event_id: str
    #: The reading's time (the client's, or its arrival at the gateway).
    timestamp: datetime


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI request body of a route that parses its body itself (with :mod:`shared.raw`)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


async def _parse(request: Request, parse: Any) -> Any:
    try:
        return parse(await request.body())
    except (Rejected, ValidationError) as exc:
        reason = describe_error(exc)
        log.info("input_refused", path=request.url.path, reason=reason)
        raise HTTPException(422, reason) from None


def _unavailable(reason: str, event_id: str, ts: datetime) -> JSONResponse:
    log.warning("input_not_accepted", reason=reason, event_id=event_id)
    body = {"detail": reason, "event_id": event_id, "timestamp": ts.isoformat()}
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})


async def _hand_over(ctx: GatewayContext, topic: str, msg: BaseModel, event_id: str, ts: datetime) -> Any:
    """202 once the broker acknowledged ``msg`` and an ingest is online; else 503 (see the module)."""
    try:
        ctx.bus()  # 503 when the broker is not connected
        if not stage_online(ctx.view.services, "ingest"):
            raise HTTPException(503, "no ingest service online to take the reading; retry later")
        await ctx.publish(topic, msg.model_dump_json(exclude_none=True).encode())
    except HTTPException as exc:
        return _unavailable(str(exc.detail), event_id, ts)
    return Accepted(event_id=event_id, timestamp=ts)


@router.post(
    "/simple",
    response_model=Accepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=_ERRORS,
    openapi_extra=_body_schema(SimpleReadingIn),
)
async def post_simple(request: Request, ctx: ContextDep, who: Ingest) -> Any:
    """One reading (:class:`SimpleReadingIn`). A client-given ``event_id`` and ``timestamp`` are kept
    (idempotent retries); else the event id is assigned here and the arrival time stamped."""
    body: SimpleReadingIn = await _parse(request, raw.parse_simple)
    require_asset(who, body.asset_id)
    eid, ts = body.event_id or new_event_id(), body.timestamp or utcnow()
    msg = body.model_copy(update={"event_id": eid, "timestamp": ts})
    return await _hand_over(ctx, topics.raw_simple(msg.asset_id), msg, eid, ts)


@router.post(
    "/batch",
    response_model=Accepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=_ERRORS,
    openapi_extra=_body_schema(VibrationBatchIn),
)
async def post_batch(request: Request, ctx: ContextDep, who: Ingest) -> Any:
    """One accelerometer window (:class:`VibrationBatchIn`: any 1 to 3 of x, y, z by name, or
    ``channels``: 1 to 3 arrays taken as x, y, z; in g at ``fs_hz`` Hz); event id and arrival time as
    for ``/simple``."""
    body: VibrationBatchIn = await _parse(request, raw.parse_vibration)
    require_asset(who, body.motor_id)
    eid, ts = body.event_id or new_event_id(), body.ts or utcnow()
    msg = body.model_copy(update={"event_id": eid, "ts": ts})
    return await _hand_over(ctx, topics.raw_vibration(msg.motor_id), msg, eid, ts)


# ---------------------------------------------------------------------------------------------
# POST /data/simple/batch
# ---------------------------------------------------------------------------------------------
#: Publishes of a bulk request awaiting their PUBACK at once. More buys nothing (the MQTT client sends
#: one packet per message) and costs: each waiter registers on the client's shared disconnect future,
#: whose callbacks are removed one by one (quadratic in the number of waiters).
BULK_IN_FLIGHT = 32
#: Seconds added to the acknowledgement deadline of a bulk request per reading (10,000: 45 s in all;
#: a broker on a loaded 2-core machine acknowledged about 500 a second).
BULK_ACK_S_PER_ITEM = 0.004
_READING_SCHEMA = SimpleReadingIn.model_json_schema()

#: Content types read as NDJSON (one reading per line); any other body is a JSON array.
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/jsonlines")


class ItemResult(BaseModel):
    """One item of a bulk request: accepted (its ``event_id`` and ``timestamp``, to retry with) or
    refused (its ``reason``)."""

    index: int
    status: Literal["accepted", "refused"]
    event_id: str | None = None
    timestamp: datetime | None = None
    reason: str | None = None


class BatchAccepted(BaseModel):
    """Per-item results, in the request's order; ``accepted + refused`` is the number of items."""

    status: Literal["accepted"] = "accepted"
    accepted: int
    refused: int
    items: list[ItemResult]


_BATCH_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    413: {"description": f"Body larger than MAX_PAYLOAD_BYTES or more than {raw.MAX_BULK_ITEMS} readings"},
    422: {"description": "Not a JSON array / NDJSON of readings, or no valid reading; `items` has reasons"},
}


def _identify(items: list[SimpleReadingIn | raw.ItemRefused], who: Identity) -> list[Any]:
    """Each valid item with its event id and timestamp (the client's, else assigned here; stamped items
    get the arrival time plus 1 µs per item index, so two readings of a batch never share a time);
    an item for an asset the caller may not send for is refused."""
    arrival = utcnow()
    out: list[Any] = []
    for i, item in enumerate(items):
        if isinstance(item, raw.ItemRefused):
            out.append(item)
        elif not who.may_send_for(item.asset_id):
            mine = ", ".join(who.assets) or "none"
            who_ = f"{who.role.value} {who.user}"
            out.append(
                raw.ItemRefused(
                    i, f"{who_} may not send data for asset {item.asset_id!r} (its assets: {mine})"
                )
            )
        else:
            ts = item.timestamp or arrival + timedelta(microseconds=i)
            out.append(item.model_copy(update={"event_id": item.event_id or new_event_id(), "timestamp": ts}))
    return out


def _results(items: list[Any]) -> list[ItemResult]:
    return [
        ItemResult(index=i.index, status="refused", reason=i.reason)
        if isinstance(i, raw.ItemRefused)
        else ItemResult(index=n, status="accepted", event_id=i.event_id, timestamp=i.timestamp)
        for n, i in enumerate(items)
    ]


async def _hand_over_all(ctx: GatewayContext, msgs: list[SimpleReadingIn]) -> str | None:
    """Publish every message QoS 1, pipelined (:data:`BULK_IN_FLIGHT` awaiting their PUBACK at any time,
    not one after another), in item order, and wait until the broker acknowledged all of them, for at
    most :data:`PUBLISH_TIMEOUT_S` plus :data:`BULK_ACK_S_PER_ITEM` per message; the reason of a
    failure, else None."""
    try:
        bus = ctx.bus()
    except HTTPException as exc:
        return str(exc.detail)
    if not stage_online(ctx.view.services, "ingest"):
        return "no ingest service online to take the readings; retry later"
    todo = iter(msgs)
    acked = 0

    async def sender() -> None:
        nonlocal acked
        for m in todo:  # taken and handed to the client in item order (no await in between)
            await bus.publish(topics.raw_simple(m.asset_id), m.model_dump_json(exclude_none=True))
            acked += 1

    timeout = PUBLISH_TIMEOUT_S + BULK_ACK_S_PER_ITEM * len(msgs)
    try:
        async with asyncio.timeout(timeout), asyncio.TaskGroup() as tg:
            for _ in range(min(BULK_IN_FLIGHT, len(msgs))):
                tg.create_task(sender())
    except TimeoutError:
        return f"MQTT broker acknowledged {acked} of {len(msgs)} readings within {timeout:g} s"
    except ExceptionGroup as group:
        lost, other = group.split(aiomqtt.MqttError)
        if other is not None or lost is None:
            raise
        return f"MQTT publish failed after {acked} of {len(msgs)} readings: {lost.exceptions[0]}"
    return None


@router.post(
    "/simple/batch",
    response_model=BatchAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=_BATCH_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "array", "items": _READING_SCHEMA}},
                "application/x-ndjson": {"schema": _READING_SCHEMA},
            },
        }
    },
)
async def post_simple_batch(request: Request, ctx: ContextDep, who: Ingest) -> Any:
    """Many readings at once, for gateways that buffer: a JSON array of the objects ``/simple`` takes,
    or NDJSON (``Content-Type: application/x-ndjson``, one object per line), at most
    ``MAX_BULK_ITEMS`` (10,000) per request (413 beyond).

    **Per item, not all-or-nothing**: every item is validated first; an invalid item (or one for an
    asset a device may not send for) is refused with its index and reason and does not block the
    valid ones. Each valid item keeps its ``event_id`` and ``timestamp`` or gets them here (as for
    ``/simple``; stamped items 1 µs apart in item order), and is published to the same raw topic as a
    single reading, in item order, QoS 1 and pipelined (:data:`BULK_IN_FLIGHT` awaiting their PUBACK
    at once); the answer, 202 with per-item results, comes only once the broker acknowledged every one.
    422 (with ``items``) when no item is valid. 503 when the broker or the ingest is unavailable or an
    acknowledgement failed: some items may have reached the broker, so retry the whole batch with the
    returned ``event_id`` and ``timestamp`` of each item (idempotent: the stages keep one copy of an
    event)."""
    ndjson = request.headers.get("content-type", "").split(";")[0].strip().lower() in NDJSON_TYPES
    try:
        parsed = raw.parse_simple_many(await request.body(), ndjson=ndjson)
    except raw.TooManyItems as exc:
        raise HTTPException(413, str(exc)) from None
    except Rejected as exc:
        log.info("input_refused", path=request.url.path, reason=str(exc))
        raise HTTPException(422, str(exc)) from None
    items = _identify(parsed, who)
    results = _results(items)
    msgs = [i for i in items if not isinstance(i, raw.ItemRefused)]
    body = BatchAccepted(accepted=len(msgs), refused=len(items) - len(msgs), items=results)
    if not msgs:
        detail = f"no valid reading in the batch: item {results[0].index}: {results[0].reason}"
        return JSONResponse({"detail": detail, **body.model_dump(mode="json")}, status_code=422)
    reason = await _hand_over_all(ctx, msgs)
    if reason is not None:
        log.warning("input_not_accepted", reason=reason, items=len(msgs))
        out = {"detail": reason, **body.model_dump(mode="json", exclude_none=True)}
        return JSONResponse(out, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})
    return body
