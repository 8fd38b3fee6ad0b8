"""``/calibration``: ask the calibrator to learn an asset's baseline and wait for its final reply."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.gateway.deps import ContextDep
from shared import topics
from shared.messages import AssetId, CalibrationReply, CalibrationRequest

router = APIRouter(prefix="/calibration", tags=["calibration"])

#: Longest look-back the calibrator accepts (30 days), minutes.
MAX_LOOKBACK_MINUTES = 60 * 24 * 30


class CalibrationStart(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    asset_id: AssetId
    lookback_minutes: float = Field(
        default=10.0, gt=0, le=MAX_LOOKBACK_MINUTES, description="Use data of the last N minutes"
    )


class CalibrationResult(BaseModel):
    """A completed calibration: the models trained (kind -> version) and how much data they saw."""

    status: Literal["completed"]
    asset_id: str
    data_points_collected: int
    message: str
    models: dict[str, str]


class CalibrationError(BaseModel):
    """A failed (400) or rejected (409) calibration; ``detail`` is the calibrator's reason."""

    detail: str
    status: Literal["failed", "rejected"]
    asset_id: str
    data_points_collected: int


_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": CalibrationError, "description": "Calibration failed (e.g. insufficient data)"},
    409: {"model": CalibrationError, "description": "Rejected (e.g. the asset is already calibrating)"},
    422: {"description": "Invalid asset id or look-back"},
    502: {"description": "The calibrator sent a malformed reply"},
    503: {"description": "MQTT broker not connected"},
    504: {"description": "No final reply within CALIBRATION_TIMEOUT_S"},
}


def _final(reply: dict[str, Any]) -> bool:
    """Interim ``accepted`` replies are skipped; completed/failed/rejected end the wait."""
    return reply.get("status") != "accepted"


@router.post("/start", response_model=CalibrationResult, responses=_RESPONSES)
async def start_calibration(body: CalibrationStart, ctx: ContextDep) -> CalibrationResult | JSONResponse:
    """Calibrate one asset on its last ``lookback_minutes`` of data; answers when the calibrator is done
    (progress meanwhile: ``GET /monitoring/status``, state CALIBRATING with the step in ``reason``)."""
    cid, reply_to = ctx.view.new_correlation()
    req = CalibrationRequest(
        correlation_id=cid, reply_to=reply_to, asset_id=body.asset_id, lookback_minutes=body.lookback_minutes
    )
    raw = await ctx.request(
        topics.command("calibrate"),
        req,
        ctx.settings.calibration_timeout_s,
        responder="calibrator",
        accept=_final,
    )
    try:
        reply = CalibrationReply.model_validate(raw)
    except ValidationError as exc:
        return JSONResponse({"detail": f"malformed reply from the calibrator: {exc.errors()[0]['msg']}"}, 502)
    if reply.status == "completed":
        return CalibrationResult(
            status="completed",
            asset_id=reply.asset_id,
            data_points_collected=reply.data_points_collected,
            message=reply.message,
            models=reply.models,
        )
    error = CalibrationError(
        detail=reply.message or f"calibration {reply.status}",
        status=reply.status,  # type: ignore[arg-type]
        asset_id=reply.asset_id,
        data_points_collected=reply.data_points_collected,
    )
    return JSONResponse(error.model_dump(), status_code=400 if reply.status == "failed" else 409)
