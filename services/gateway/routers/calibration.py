"""``/calibration``: ask the calibrator to learn an asset's baseline.

Asynchronous by default: ``202 calibration_started`` once the calibrator collected the data and found it
enough (progress and result: ``GET /monitoring/status``); ``?wait=true`` answers with the final result.
Failures found before training (too little data, busy, bad input) answer 4xx at once either way."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.gateway.auth.guard import Operator
from services.gateway.commands import command, http_status
from services.gateway.deps import ContextDep
from shared.messages import AssetId, CalibrationReply, CalibrationRequest, Timestamp, utcnow
from shared.messages.assets import TrainingParams

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
    training: TrainingParams | None = Field(
        default=None,
        description="Autoencoder training parameters for this calibration (preset default|flowfuse, "
        "threshold_sigma, min_std, clip, epochs, learning_rate, batch full|mini, rolling_window); "
        "default: the asset configuration's, else the default preset",
    )
    accept_fault_signature: bool = Field(
        default=False,
        strict=True,
        description="Calibrate even when the vibration data shows a bearing-fault signature (median excess "
        "kurtosis or envelope SNR at a defect frequency beyond the healthy range): for machines impulsive by "
        "nature; the reply states the signature",
    )


class CalibrationResult(BaseModel):
    """A completed calibration: the models trained (kind -> version) and how much data they saw."""

    status: Literal["completed"]
    asset_id: str
    data_points_collected: int
    message: str
    models: dict[str, str]


class CalibrationStarted(BaseModel):
    """An accepted calibration (202): the data it trains on is collected and enough; it goes on in the
    background (``GET /monitoring/status``: CALIBRATING with its progress, then CALIBRATED, or the
    previous state with the reason when it fails)."""

    status: Literal["calibration_started"] = "calibration_started"
    message: str = "Baseline calibration in progress"
    asset_id: str
    #: Readings + vibration windows the calibration uses (from the store, look-back before ``end``).
    data_points_collected: int
    lookback_minutes: float
    #: Where to follow it.
    status_url: str = "/api/v1/monitoring/status"


class CalibrationError(BaseModel):
    """A failed or rejected calibration (HTTP status from its error code: 400 for insufficient data or a
    failed validation, 409 when busy, 422 invalid, 500 internal); ``detail`` is the calibrator's reason."""

    detail: str
    status: Literal["failed", "rejected"]
    asset_id: str
    data_points_collected: int


_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": CalibrationStarted, "description": "Calibration started (default, without ?wait=true)"},
    400: {"model": CalibrationError, "description": "Calibration failed (e.g. insufficient data)"},
    409: {"model": CalibrationError, "description": "Rejected (e.g. the asset is already calibrating)"},
    422: {"description": "Invalid asset id or look-back"},
    500: {"model": CalibrationError, "description": "The calibrator failed (see its logs)"},
    502: {"description": "The calibrator sent a malformed reply"},
    503: {"description": "MQTT broker not connected"},
    504: {"description": "No (final, with ?wait=true) reply within CALIBRATION_TIMEOUT_S"},
}


def _final(reply: dict[str, Any]) -> bool:
    """Interim ``accepted`` replies are skipped; completed/failed/rejected end the wait."""
    return reply.get("status") != "accepted"


#: HTTP status of a failed / rejected calibration whose reply names no error code.
_UNCODED = {"failed": 400, "rejected": 409}


@router.post("/start", response_model=CalibrationResult, responses=_RESPONSES)
async def start_calibration(
    body: CalibrationStart,
    ctx: ContextDep,
    who: Operator,
    wait: Annotated[
        bool, Query(description="Answer when the calibration is done (200 completed, or its error)")
    ] = False,
) -> CalibrationResult | JSONResponse:
    """Calibrate one asset on the ``lookback_minutes`` of data before ``end`` (default: now, i.e. its
    newest data; the calibrator waits for the historian to store what was accepted before). Answers 202
    ``calibration_started`` with the number of data points once the calibrator has collected enough data
    (progress: ``GET /monitoring/status``, ``calibration`` of the asset), or, with ``?wait=true``, when it
    is done."""
    cid, reply_to = ctx.view.requests.new_correlation()
    req = CalibrationRequest(
        correlation_id=cid,
        reply_to=reply_to,
        asset_id=body.asset_id,
        lookback_minutes=body.lookback_minutes,
        end=body.end or utcnow(),  # a reading accepted before this request is data the calibration uses
        reply_accepted=True,
        training=body.training,
        accept_fault_signature=body.accept_fault_signature,
    )
    reply = await command(
        ctx,
        "calibrate",
        req,
        CalibrationReply,
        responder="calibrator",
        timeout=ctx.settings.calibration_timeout_s,
        accept=_final if wait else None,
    )
    if reply.status == "accepted":
        started = CalibrationStarted(
            asset_id=reply.asset_id,
            data_points_collected=reply.data_points_collected,
            lookback_minutes=body.lookback_minutes,
        )
        return JSONResponse(started.model_dump(), status_code=202)
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
