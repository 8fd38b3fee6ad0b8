"""``/calibration``: ask the calibrator to learn an asset's baseline and wait for its final reply."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.gateway.auth.guard import Operator
from services.gateway.commands import command, http_status
from services.gateway.deps import ContextDep
from shared.messages import AssetId, CalibrationReply, CalibrationRequest, Timestamp, utcnow

router = APIRouter(prefix="/calibration", tags=["calibration"])

#: Longest look-back the calibrator accepts (30 days), minutes.
MAX_LOOKBACK_MINUTES = 60 * 24 * 30


class CalibrationStart(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    asset_id: AssetId
    lookback_minutes: float = Field(
        default=10.0,
        gt=0,
        le=MAX_LOOKBACK_MINUTES,
        strict=True,
        description='Use data of the last N minutes (a JSON number: "10" is refused, as everywhere)',
    )
    end: Timestamp | None = Field(
        default=None,
        description="Data time the calibration's data ends at (ISO-8601 or epoch s; default: now). The "
        "calibrator first waits until the store holds the asset's data up to it (bounded by "
        "CALIBRATION_STORE_WAIT_S), then uses the look-back before the newest stored point not after it",
    )


class CalibrationResult(BaseModel):
    """A completed calibration: the models trained (kind -> version) and how much data they saw."""

    status: Literal["completed"]
    asset_id: str
    data_points_collected: int
    message: str
    models: dict[str, str]


class CalibrationError(BaseModel):
    """A failed or rejected calibration (HTTP status from its error code: 400 for insufficient data or a
    failed validation, 409 when busy, 422 invalid, 500 internal); ``detail`` is the calibrator's reason."""

    detail: str
    status: Literal["failed", "rejected"]
    asset_id: str
    data_points_collected: int


_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": CalibrationError, "description": "Calibration failed (e.g. insufficient data)"},
    409: {"model": CalibrationError, "description": "Rejected (e.g. the asset is already calibrating)"},
    422: {"description": "Invalid asset id or look-back"},
    500: {"model": CalibrationError, "description": "The calibrator failed (see its logs)"},
    502: {"description": "The calibrator sent a malformed reply"},
    503: {"description": "MQTT broker not connected"},
    504: {"description": "No final reply within CALIBRATION_TIMEOUT_S"},
}


def _final(reply: dict[str, Any]) -> bool:
    """Interim ``accepted`` replies are skipped; completed/failed/rejected end the wait."""
    return reply.get("status") != "accepted"


#: HTTP status of a failed / rejected calibration whose reply names no error code.
_UNCODED = {"failed": 400, "rejected": 409}


@router.post("/start", response_model=CalibrationResult, responses=_RESPONSES)
async def start_calibration(
    body: CalibrationStart, ctx: ContextDep, who: Operator
) -> CalibrationResult | JSONResponse:
    """Calibrate one asset on the ``lookback_minutes`` of data before ``end`` (default: now, i.e. its
    newest data; the calibrator waits for the historian to store what was accepted before); answers when
    the calibrator is done (progress meanwhile: ``GET /monitoring/status``, state CALIBRATING with the
    step in ``reason``)."""
    cid, reply_to = ctx.view.requests.new_correlation()
    req = CalibrationRequest(
        correlation_id=cid,
        reply_to=reply_to,
        asset_id=body.asset_id,
        lookback_minutes=body.lookback_minutes,
        end=body.end or utcnow(),  # a reading accepted before this request is data the calibration uses
    )
    reply = await command(
        ctx,
        "calibrate",
        req,
        CalibrationReply,
        responder="calibrator",
        timeout=ctx.settings.calibration_timeout_s,
        accept=_final,
    )
    if reply.status == "completed":
        return CalibrationResult(
            status="completed",
            asset_id=reply.asset_id,
            data_points_collected=reply.data_points_collected,
            message=reply.message,
            models=reply.models,
        )
    status = "rejected" if reply.status == "rejected" else "failed"
    error = CalibrationError(
        detail=reply.message or f"calibration {status}",
        status=status,
        asset_id=reply.asset_id,
        data_points_collected=reply.data_points_collected,
    )
    return JSONResponse(error.model_dump(), status_code=http_status(reply.code, _UNCODED[status]))
