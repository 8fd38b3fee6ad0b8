"""``/reports``: report documents of one asset over a period, built by the reporter (``cmd/report``).

``GET /reports/{executive|excel|industrial}?asset_id=&from=&to=`` answers with the file as an attachment
(``Content-Disposition: attachment; filename="<asset>_<kind>_<UTC yyyymmddTHHMMSSZ>.pdf|xlsx"``) and
what it rests on in ``X-Report-*`` headers. Default period: the last 24 h of the asset's data (ending at
its newest stored reading, window or health update), so replayed history works. The reporter sends the
document in parts before its final reply (:class:`~services.gateway.requests.ReplyParts`); they are
joined here and checked against the reply's part count, size and SHA-256 (502 when they disagree).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.responses import Response

from services.gateway.auth.guard import Viewer
from services.gateway.commands import command, http_status
from services.gateway.deps import ContextDep
from services.gateway.history import history_range, known_or_404
from services.gateway.requests import ReplyParts
from shared.messages.commands import MAX_REPORT_DAYS, ReportKindName, ReportReply, ReportRequest
from shared.topics import ASSET_ID_PATTERN, valid_asset_id

router = APIRouter(prefix="/reports", tags=["reports"])

_FILE = {"schema": {"type": "string", "format": "binary"}}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The report file (attachment; X-Report-Pages, X-Report-Sha256, X-Report-From, "
        "X-Report-To, X-Report-Readings, X-Report-Capped headers)",
        "content": {
            "application/pdf": _FILE,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": _FILE,
        },
    },
    404: {"description": "Unknown asset, or no stored data in the period (`detail` says which)"},
    422: {
        "description": "Invalid asset id, unreadable or reversed dates, a period over 366 days, "
        "a document over REPORT_MAX_BYTES"
    },
    500: {"description": "The reporter failed to build the report; `detail` is its reason"},
    502: {"description": "Malformed reply from the reporter (e.g. a part missing, a wrong checksum)"},
    503: {"description": "MQTT broker not connected"},
    504: {"description": "No reply from the reporter within REPORT_TIMEOUT_S"},
}


def _bad(name: str, reason: str) -> HTTPException:
    return HTTPException(422, f"{name}: {reason}")


def _document(reply: ReportReply, parts: ReplyParts) -> bytes:
    """The document joined from its parts, checked against the reply's part count, size and SHA-256
    (502 with the reason when they disagree)."""
    if reply.size_bytes > parts.max_bytes:
        size, limit = reply.size_bytes, parts.max_bytes
        raise HTTPException(502, f"the reporter's document has {size} bytes, over REPORT_MAX_BYTES {limit}")
    try:
        doc = parts.payload(reply.parts)
    except ValueError as exc:
        raise HTTPException(502, f"malformed reply from the reporter: {exc}") from None
    if len(doc) != reply.size_bytes or hashlib.sha256(doc).hexdigest() != reply.sha256 or not reply.filename:
        raise HTTPException(502, "malformed reply from the reporter: document does not match its size/sha256")
    return doc


def _headers(reply: ReportReply) -> dict[str, str]:
    headers = {
        "Content-Disposition": f'attachment; filename="{reply.filename}"',
        "X-Report-Sha256": reply.sha256,
        "X-Report-Readings": str(reply.counts.get("readings", 0)),
        "Cache-Control": "no-store",
    }
    if reply.start is not None and reply.end is not None:
        headers |= {"X-Report-From": reply.start.isoformat(), "X-Report-To": reply.end.isoformat()}
    if reply.pages is not None:
        headers["X-Report-Pages"] = str(reply.pages)
    if reply.capped is not None:
        headers["X-Report-Capped"] = str(reply.capped)
    return headers


@router.get("/{kind}", response_class=Response, responses=_RESPONSES)
async def get_report(
    kind: Annotated[
        ReportKindName,
        PathParam(description="executive (1-page PDF), excel (workbook), industrial (5-page PDF)"),
    ],
    ctx: ContextDep,
    who: Viewer,
    asset_id: Annotated[str, Query(max_length=200, description=f"Asset id ({ASSET_ID_PATTERN})")],
    from_: Annotated[
        str | None, Query(alias="from", description="Start of the period, data time (ISO-8601 or epoch s)")
    ] = None,
    to: Annotated[
        str | None,
        Query(
            description="End of the period, data time (ISO-8601 or epoch s; default: the asset's newest data)"
        ),
    ] = None,
) -> Response:
    """The ``kind`` report of ``asset_id`` over ``[from, to]`` (default: the last 24 h of the asset's
    data; ``from`` alone: from there to the newest data), as a file download."""
    if not valid_asset_id(asset_id):
        raise _bad("asset_id", f"{asset_id[:80]!r} is not an asset id (must match {ASSET_ID_PATTERN})")
    start, end = history_range(from_, to)
    if start is not None and end is not None and end - start > timedelta(days=MAX_REPORT_DAYS):
        days = (end - start) / timedelta(days=1)
        raise _bad("from", f"the period is {days:.1f} days; a report covers at most {MAX_REPORT_DAYS}")
    await known_or_404(ctx, asset_id)
    cid, reply_to = ctx.view.requests.new_correlation()
    req = ReportRequest(
        correlation_id=cid, reply_to=reply_to, asset_id=asset_id, kind=kind, start=start, end=end
    )
    parts = ReplyParts(ctx.settings.report_max_bytes)
    reply = await command(
        ctx,
        "report",
        req,
        ReportReply,
        responder="reporter",
        timeout=ctx.settings.report_timeout_s,
        accept=parts.accept,
    )
    if reply.status != "ok":
        raise HTTPException(http_status(reply.code), reply.message or f"{kind} report failed")
    doc = _document(reply, parts)
    return Response(doc, media_type=reply.content_type, headers=_headers(reply))
