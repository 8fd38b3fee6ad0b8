"""``/stream``: live Server-Sent Events (readings, scores, health, alarms, state changes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from services.gateway.auth.guard import Viewer
from services.gateway.deps import ContextDep
from services.gateway.stream import sse_frames
from shared.topics import ASSET_ID_PATTERN

router = APIRouter(tags=["stream"])

_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "SSE stream"},
        422: {"description": "Invalid asset id"},
    },
)
async def stream(
    ctx: ContextDep,
    who: Viewer,
    asset_id: Annotated[str | None, Query(pattern=ASSET_ID_PATTERN, description="Only this asset")] = None,
) -> StreamingResponse:
    """Server-Sent Events: ``event:`` is ``reading``, ``score``, ``health``, ``alarm`` or ``state`` and
    ``data:`` the message JSON as published on the bus. On connect, the current state and health of
    the (matching) assets are sent first. A comment line ``: heartbeat dropped=<n>`` comes after
    ``SSE_HEARTBEAT_S`` s without events; ``n`` counts events this client lost by falling behind (its
    queue holds ``SSE_QUEUE_SIZE`` events; the oldest are dropped)."""
    view = ctx.view
    initial: list[tuple[str, str]] = []
    for a, sc in sorted(view.states.items()):
        if asset_id is None or a == asset_id:
            initial.append(("state", sc.model_dump_json()))
    for a, hu in sorted(view.health.items()):
        if asset_id is None or a == asset_id:
            initial.append(("health", hu.model_dump_json()))
    client = view.hub.connect(asset_id)

    async def frames() -> AsyncIterator[str]:
        try:
            async for chunk in sse_frames(client, ctx.settings.sse_heartbeat_s, initial):
                yield chunk
        finally:
            view.hub.disconnect(client)

    return StreamingResponse(frames(), media_type="text/event-stream", headers=_SSE_HEADERS)
