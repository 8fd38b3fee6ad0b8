"""Commands (request/reply with a correlation id) and their typed replies.

A request carries ``correlation_id`` and ``reply_to`` (``reply/<requester>/<correlation_id>``); the
responder answers there with a :class:`Reply` subclass. A failed reply names an :data:`ErrorCode` so a
requester maps it (e.g. to an HTTP status) without reading the message text.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, Strict

from shared.messages.assets import AssetConfig, TrainingParams
from shared.messages.base import AssetId, Message, Timestamp
from shared.messages.health import ActionCode, AlarmEvent

#: Why a command failed: ``invalid`` request, ``not_found`` (no such asset/alarm/model), ``conflict``
#: with the current state (e.g. resolving a resolved alarm), ``busy`` (already running),
#: ``insufficient_data`` / ``validation_failed`` (calibration), ``internal`` (a bug; see the logs).
ErrorCode = Literal[
    "invalid", "not_found", "conflict", "busy", "insufficient_data", "validation_failed", "internal"
]


class Reply(Message):
    """Every reply: ``status`` ok or failed; ``code`` says why when failed."""

    correlation_id: str
    status: Literal["ok", "failed"]
    code: ErrorCode | None = None
    message: str = ""


class CalibrationRequest(Message):
    """Request on ``cmd/calibrate`` (gateway → calibrator)."""

    correlation_id: str
    reply_to: str
    asset_id: AssetId
    lookback_minutes: float = Field(default=10.0, gt=0, le=60 * 24 * 30)
    #: Data time the calibration's data ends at: the calibrator first waits until the store holds the
    #: asset's data up to it (bounded), then uses the ``lookback_minutes`` before the newest stored point
    #: not after it. The gateway sends the client's ``end`` or the time of the request; ``None``: the
    #: time the calibrator receives it.
    end: Timestamp | None = None
    #: Autoencoder training parameters for this calibration (replaces the asset configuration's).
    training: TrainingParams | None = None
    #: Also reply ``accepted`` (with ``data_points_collected``) once the data is collected and enough to
    #: train on, before training; the final reply follows. False: only the final reply.
    reply_accepted: bool = False
    #: Calibrate even when the vibration data shows a bearing-fault signature (a machine impulsive by
    #: nature); the reply and the manifest then state the signature (:mod:`shared.learning.fault_signature`).
    accept_fault_signature: bool = False


class CalibrationReply(Message):
    correlation_id: str
    asset_id: AssetId
    status: Literal["accepted", "completed", "failed", "rejected"]
    code: ErrorCode | None = None
    data_points_collected: int = 0
    message: str = ""
    models: dict[str, str] = Field(default_factory=dict)


class AssetCommand(Message):
    """Request on ``cmd/purge`` or ``cmd/reload``: one asset, or every asset when ``asset_id`` is None."""

    correlation_id: str
    reply_to: str
    asset_id: AssetId | None = None


class PurgeDetail(Message):
    models_deleted: bool
    data_deleted: bool


class PurgeReply(Reply):
    """Reply to ``cmd/purge``: the assets purged and what was deleted for each."""

    assets: list[str] = Field(default_factory=list)
    deleted: dict[str, PurgeDetail] = Field(default_factory=dict)


class ReloadReply(Reply):
    """Reply to ``cmd/reload``: asset → model version re-announced from the registry."""

    versions: dict[str, str] = Field(default_factory=dict)


class AlarmActionRequest(Message):
    """Request on ``cmd/alarm_action`` (gateway → health)."""

    correlation_id: str
    reply_to: str
    alarm_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    action: Literal["ack", "resolve", "shelve", "unshelve"]
    who: str = Field(min_length=1, max_length=100)
    #: The operator's note; for ``shelve`` the reason (required there).
    note: str = Field(default="", max_length=2000)
    action_code: ActionCode | None = None
    #: ``shelve`` only: for how many data-time seconds (at most the asset's ``alarms.max_shelve_s``).
    duration_s: float | None = Field(default=None, gt=0, le=30 * 86_400)


class AlarmActionReply(Reply):
    """Reply to ``cmd/alarm_action``: the alarm transition that was published."""

    alarm: AlarmEvent | None = None


class ConfigRequest(Message):
    """Request on ``cmd/config`` (gateway → calibrator, which owns asset configuration): store and
    publish (retained) ``config``."""

    correlation_id: str
    reply_to: str
    config: AssetConfig


class ConfigReply(Reply):
    config: AssetConfig | None = None


# ---------------------------------------------------------------------------------------------
# Model interchange (cmd/model_import, cmd/model_export): the FlowFuse three-file autoencoder form
# ---------------------------------------------------------------------------------------------
#: Base64 of one file of the three (an ONNX of a few MB at most).
FileB64 = str


class ModelImportRequest(Message):
    """Request on ``cmd/model_import`` (gateway → calibrator): make ``files`` (file name → base64 bytes:
    ``motor_autoencoder.onnx``, ``scaler_params.json``, ``threshold.json``) the asset's autoencoder."""

    correlation_id: str
    reply_to: str
    asset_id: AssetId
    files: dict[str, FileB64] = Field(max_length=3)
    #: The training parameters the files were trained with (recorded in the manifest).
    training: TrainingParams | None = None
    who: str = Field(default="", max_length=100)


class ModelImportReply(Reply):
    """Reply to ``cmd/model_import``: the new registry version (every model of the asset announced
    again with it), or ``invalid`` with the reason the files were refused."""

    asset_id: str = ""
    version: str = ""
    threshold: float | None = None
    models: dict[str, str] = Field(default_factory=dict)


class ModelExportRequest(Message):
    """Request on ``cmd/model_export`` (gateway → calibrator): the three files of the asset's current
    autoencoder."""

    correlation_id: str
    reply_to: str
    asset_id: AssetId


class ModelExportReply(Reply):
    """Reply to ``cmd/model_export``: file name → base64 bytes, and the version they come from."""

    asset_id: str = ""
    version: str = ""
    files: dict[str, FileB64] = Field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Reports (cmd/report, gateway → reporter)
# ---------------------------------------------------------------------------------------------
ReportKindName = Literal["executive", "excel", "industrial"]
#: Longest period a report covers (days).
MAX_REPORT_DAYS = 366
#: A period bound: an aware time, parsed from JSON text too (unlike :data:`Timestamp`, it may lie ahead
#: of the clock: a period ending in the future holds what is stored up to now).
PeriodTime = Annotated[AwareDatetime, Strict(False)]


class ReportRequest(Message):
    """Request on ``cmd/report``: the ``kind`` of report of one asset over ``[start, end]`` (data time).
    ``end`` unset: the asset's newest stored reading, window or health update; ``start`` unset: 24 h
    before ``end``."""

    correlation_id: str
    reply_to: str
    asset_id: AssetId
    kind: ReportKindName
    start: PeriodTime | None = None
    end: PeriodTime | None = None


class ReplyPart(Message):
    """One part of a reply too large for one message: the responder publishes ``parts`` of them in
    order of ``index`` (0 … parts-1) on the reply topic, then the final reply naming ``parts``."""

    correlation_id: str
    status: Literal["part"] = "part"
    index: int = Field(ge=0)
    parts: int = Field(ge=1)
    #: The part's slice of the base64 text of the whole payload (base64 of the parts joined in order).
    data_b64: str


class ReportReply(Reply):
    """Final reply to ``cmd/report``: what the document rests on, after its ``parts``
    (:class:`ReplyPart`: the document's base64 in order; their joined bytes have ``size_bytes`` and
    ``sha256``); a failure names its code (``not_found``: no data in the period or an unknown asset,
    ``invalid``: a bad period or a document over REPORT_MAX_BYTES, ``internal``: the renderer failed)
    and the reason in ``message``."""

    asset_id: str = ""
    kind: ReportKindName | None = None
    filename: str = ""
    content_type: str = ""
    size_bytes: int = 0
    #: SHA-256 (hex) of the document bytes.
    sha256: str = ""
    #: Page count of a PDF (``None`` for the workbook).
    pages: int | None = None
    #: Number of :class:`ReplyPart` messages that carried the document before this reply.
    parts: int = Field(default=0, ge=0)
    #: The period the report covers (data time) and when it was generated.
    start: PeriodTime | None = None
    end: PeriodTime | None = None
    generated_at: Timestamp | None = None
    #: Stored points the report rests on, per series (``readings`` is the period's total).
    counts: dict[str, int] = Field(default_factory=dict)
    #: Readings in the report when the period held more than the row cap (``None``: all).
    capped: int | None = None
    #: Model kind → version the report names.
    models: dict[str, str] = Field(default_factory=dict)
