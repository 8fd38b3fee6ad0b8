"""``/models``: reload (re-announce) the current models of an asset from the registry on disk, and
import/export an asset's autoencoder in the FlowFuse/Node-RED three-file form.

``POST /models/import`` (admin) takes ``motor_autoencoder.onnx``, ``scaler_params.json`` and
``threshold.json`` as a ``multipart/form-data`` upload (one part per file, recognised by its file name or
field name; or one part holding a zip of them) or as a zip body (``application/zip``), with ``asset_id``
as a query parameter or form field and optional ``training`` (JSON of
:class:`~shared.messages.assets.TrainingParams`: the parameters the files were trained with, recorded in
the manifest). The calibrator checks them (``cmd/model_import``): refusals are 422 with the reason.

``GET /models/{asset_id}/export`` (admin) answers a zip of the three files of the asset's current
autoencoder (``cmd/model_export``), usable unchanged by the article's flow.
"""

from __future__ import annotations

import base64
import json
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from services.gateway.auth.guard import Admin
from services.gateway.commands import (
    COMMAND_RESPONSES,
    CommandResult,
    ReloadData,
    asset_command,
    command,
    raise_failed,
)
from services.gateway.deps import ContextDep
from shared.learning.interchange import FILES, InterchangeError, from_zip, to_zip
from shared.messages import ReloadReply
from shared.messages.assets import TrainingParams
from shared.messages.commands import (
    ModelExportReply,
    ModelExportRequest,
    ModelImportReply,
    ModelImportRequest,
)
from shared.topics import ASSET_ID_PATTERN, valid_asset_id

router = APIRouter(prefix="/models", tags=["models"])

#: Largest upload accepted (bytes): an autoencoder of this kind is a few kB.
MAX_UPLOAD_BYTES = 8 * 1024 * 1024


@router.post("/reload", response_model=CommandResult[ReloadData], responses=COMMAND_RESPONSES)
async def reload_models(
    ctx: ContextDep,
    who: Admin,
    asset_id: Annotated[
        str | None, Query(pattern=ASSET_ID_PATTERN, description="Only this asset (default: every asset)")
    ] = None,
) -> CommandResult[ReloadData]:
    """Ask the calibrator to re-read the latest model version(s) from disk and re-announce them
    (``cmd/reload``), e.g. after editing a manifest's threshold by hand."""
    return await asset_command(ctx, "reload", asset_id, ReloadReply, ReloadData)


class ImportData(BaseModel):
    """The registry version the files became (every model of the asset is announced with it)."""

    asset_id: str
    version: str
    threshold: float | None
    models: dict[str, str]


# ---------------------------------------------------------------------------------------------
# Upload parsing: multipart/form-data or a zip body
# ---------------------------------------------------------------------------------------------
def _parts(content_type: str, body: bytes) -> list[EmailMessage]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    msg = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not msg.is_multipart():
        raise HTTPException(422, "multipart body without parts (is the boundary right?)")
    return [p for p in msg.iter_parts() if isinstance(p, EmailMessage)]


def _add_file(files: dict[str, bytes], name: str, data: bytes) -> None:
    if name in files:
        raise HTTPException(422, f"{name} given more than once")
    files[name] = data


def _take_part(part: EmailMessage, files: dict[str, bytes], fields: dict[str, str]) -> None:
    """One form part: one of the three files, a zip of them, or a text field."""
    field = part.get_param("name", header="content-disposition") or ""
    filename = (part.get_filename() or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    data = part.get_payload(decode=True) or b""
    if not isinstance(field, str) or not isinstance(data, bytes):
        raise HTTPException(422, "malformed multipart part")
    name = filename if filename in FILES else field if field in FILES else None
    if name is not None:
        _add_file(files, name, data)
    elif filename.lower().endswith(".zip") or part.get_content_type() in (
        "application/zip",
        "application/x-zip-compressed",
    ):
        for zname, zdata in _unzip(data).items():
            _add_file(files, zname, zdata)
    elif field and not filename:
        fields[field] = data.decode("utf-8", errors="replace").strip()
    else:
        raise HTTPException(
            422, f"unexpected file {filename or field!r}: expected {', '.join(FILES)} or a zip"
        )


def _unzip(data: bytes) -> dict[str, bytes]:
    try:
        return from_zip(data)
    except InterchangeError as exc:
        raise HTTPException(422, str(exc)) from None


async def read_upload(request: Request) -> tuple[dict[str, bytes], dict[str, str]]:
    """The three files (name → bytes) and the text form fields of an import request."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise HTTPException(413, f"upload of {declared} bytes is over {MAX_UPLOAD_BYTES}")
    body = await request.body()
    if len(body) > MAX_UPLOAD_BYTES:
        raise HTTPException(413, f"upload of {len(body)} bytes is over {MAX_UPLOAD_BYTES}")
    ctype = request.headers.get("content-type", "")
    files: dict[str, bytes] = {}
    fields: dict[str, str] = {}
    if ctype.lower().startswith("multipart/"):
        for part in _parts(ctype, body):
            _take_part(part, files, fields)
    elif body[:2] == b"PK":  # a zip, whatever the declared type
        files = _unzip(body)
    else:
        raise HTTPException(
            415, f"send multipart/form-data with {', '.join(FILES)} (or a zip of them), or a zip body"
        )
    missing = [f for f in FILES if f not in files]
    if missing:
        raise HTTPException(422, f"missing file(s): {', '.join(missing)} (need {', '.join(FILES)})")
    return files, fields


def _training(text: str | None) -> TrainingParams | None:
    if not text:
        return None
    try:
        return TrainingParams.model_validate(json.loads(text))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise HTTPException(422, f"training: not valid training parameters: {exc}") from None


def _asset(query: str | None, fields: dict[str, str]) -> str:
    asset = query or fields.get("asset_id")
    if not asset or not valid_asset_id(asset):
        raise HTTPException(422, f"asset_id: give a valid asset id (query or form field), got {asset!r}")
    return asset


# ---------------------------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------------------------
@router.post(
    "/import",
    response_model=CommandResult[ImportData],
    responses={
        **COMMAND_RESPONSES,
        413: {"description": "Upload too large"},
        415: {"description": "Not multipart/zip"},
    },
)
async def import_model(
    request: Request,
    ctx: ContextDep,
    who: Admin,
    asset_id: Annotated[
        str | None, Query(pattern=ASSET_ID_PATTERN, description="Asset to import for")
    ] = None,
    training: Annotated[str | None, Query(description="TrainingParams as JSON (optional)")] = None,
) -> CommandResult[ImportData]:
    """Import the FlowFuse three-file autoencoder as a new model version of the asset (see the module
    docstring); 422 with the reason when the files are refused."""
    files, fields = await read_upload(request)
    cid, reply_to = ctx.view.requests.new_correlation()
    req = ModelImportRequest(
        correlation_id=cid,
        reply_to=reply_to,
        asset_id=_asset(asset_id, fields),
        files={name: base64.b64encode(data).decode() for name, data in files.items()},
        training=_training(training or fields.get("training")),
        who=who.user[:100],
    )
    reply = await command(ctx, "model_import", req, ModelImportReply, responder="calibrator")
    raise_failed(reply, "import")
    data = ImportData(
        asset_id=reply.asset_id, version=reply.version, threshold=reply.threshold, models=reply.models
    )
    return CommandResult[ImportData](message=reply.message, data=data)


@router.get(
    "/{asset_id}/export",
    response_class=Response,
    responses={
        **COMMAND_RESPONSES,
        200: {"content": {"application/zip": {}}},
        409: {"description": "No three-file form"},
    },
)
async def export_model(
    ctx: ContextDep,
    who: Admin,
    asset_id: Annotated[str, Path(pattern=ASSET_ID_PATTERN)],
) -> Response:
    """A zip of ``motor_autoencoder.onnx``, ``scaler_params.json`` and ``threshold.json`` of the asset's
    current autoencoder; 404 without one, 409 when it cannot be given in that form (the reason)."""
    cid, reply_to = ctx.view.requests.new_correlation()
    req = ModelExportRequest(correlation_id=cid, reply_to=reply_to, asset_id=asset_id)
    reply = await command(ctx, "model_export", req, ModelExportReply, responder="calibrator")
    raise_failed(reply, "export")
    files = {name: base64.b64decode(text) for name, text in reply.files.items()}
    name = f"{asset_id}-{reply.version}-flowfuse.zip"
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "X-Model-Version": reply.version}
    return Response(to_zip(files), media_type="application/zip", headers=headers)
