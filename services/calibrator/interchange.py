"""Model interchange use cases of the calibrator (it owns the registry and the signing key).

- :func:`import_autoencoder` (``cmd/model_import``): the FlowFuse three-file form (checked by
  :mod:`shared.learning.interchange`) becomes a new registry version of the asset's autoencoder: the
  reconstruction graph wrapped in the flow's scaler (std floored at the flow's 0.1) and per-row MSE,
  manifest ``source: imported``, the threshold from ``threshold.json``, the rolling window and training
  parameters when given; it must pass the same checks as any model a scorer loads
  (:func:`shared.learning.signing.check_model`). The asset's other models are carried over unchanged.
- :func:`export_autoencoder` (``cmd/model_export``): the three files of the newest version's autoencoder.
- :func:`training_config`: the autoencoder training configuration of a calibration from its
  :class:`~shared.messages.assets.TrainingParams` (the request's, else the asset configuration's).

Blocking (registry files, ONNX Runtime): call in ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from shared.features.vibration import vibration_feature_names
from shared.learning import interchange, registry
from shared.learning.autoencoder import AutoencoderConfig
from shared.learning.scoring import OnnxModel
from shared.learning.signing import UntrustedModel, check_model
from shared.messages import ModelManifest, utcnow
from shared.messages.assets import TrainingParams
from shared.messages.commands import (
    ModelExportReply,
    ModelExportRequest,
    ModelImportReply,
    ModelImportRequest,
)
from shared.service import Publish

from .lifecycle import announcements

if TYPE_CHECKING:
    from .job import Calibration

log = structlog.get_logger()

KIND = "autoencoder"


class ImportRefused(ValueError):
    """The files cannot become a model; the text is the reason (reply code ``invalid``)."""


def training_config(params: TrainingParams | None, base: AutoencoderConfig) -> AutoencoderConfig:
    """``base`` with the resolved parameters (:meth:`TrainingParams.resolved`) when ``params`` is given."""
    if params is None:
        return base
    p = params.resolved()
    return replace(
        base,
        k=float(p["threshold_sigma"]),
        min_std=float(p["min_std"]),
        scaler_floor=p["scaler_floor"],
        clip=float(p["clip"]),
        epochs=int(p["epochs"]),
        lr=float(p["learning_rate"]),
        full_batch=p["batch"] == "full",
        window=int(p["rolling_window"]),
        preset=str(p["preset"]),
    ).check()


def _decode(files: dict[str, str]) -> dict[str, bytes]:
    out = {}
    for name, text in files.items():
        try:
            out[name] = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ImportRefused(f"{name}: not valid base64") from None
    return out


def imported_entry(
    three: interchange.ThreeFiles, training: TrainingParams | None
) -> tuple[bytes, dict[str, Any]]:
    """The scoring graph and manifest entry of checked three files (names: the 33 vibration features)."""
    std = [float(v) for v in three.flow_std()]
    blob, info = interchange.wrap(three.onnx, three.mean, std, three.clip, interchange.FLOW_FEATURES)
    given = training.resolved() if training is not None else None
    entry: dict[str, Any] = {
        "kind": KIND,
        "algorithm": "autoencoder",
        "features": vibration_feature_names(),
        "n_features": interchange.FLOW_FEATURES,
        "input": interchange.RAW_INPUT,
        "output": interchange.ERROR_OUTPUT,
        "scaler": {
            "mean": three.mean,
            "std": std,
            "min_std": interchange.FLOW_MIN_STD,
            "floor": "absolute",
            "clip": three.clip,
            "formula": "z = clip((x - mean) / max(std, 0.1), -clip, clip) (the flow's normalisation)",
        },
        "raw_score": {"transform": "identity", "formula": "raw = mean_j (zhat_j - z_j)^2"},
        "threshold": three.threshold,
        "threshold_rule": {"rule": f"imported {interchange.THRESHOLD_FILE}", "threshold": three.threshold},
        "params": {"training": given} if given is not None else {},
        "source": "imported",
        "rolling_window": int(given["rolling_window"]) if given else interchange.FLOW_WINDOW,
        "interchange": info,
    }
    return blob, entry


def check_imported(blob: bytes, entry: dict[str, Any]) -> None:
    """The checks every loaded model passes (graph, probe, sign); :class:`ImportRefused` otherwise."""
    try:
        manifest = ModelManifest.model_validate(entry)
        model = OnnxModel.from_bytes(blob, manifest.entry())
        check_model(model, manifest)
    except (UntrustedModel, ValueError) as exc:
        raise ImportRefused(f"the imported model fails the load checks: {exc}") from None


def import_autoencoder(model_dir: Path, req: ModelImportRequest) -> tuple[str, dict[str, Any]]:
    """Check the request's files and save them as a new version; the version id and the entry.
    :class:`ImportRefused` (or :class:`~shared.learning.interchange.InterchangeError`) with the reason."""
    files = _decode(req.files)
    three = interchange.parse_files(files)
    blob, entry = imported_entry(three, req.training)
    check_imported(blob, entry)
    stats = {
        "source": "imported",
        "imported_at": utcnow().isoformat(),
        "imported_by": req.who,
        "files_sha256": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    version = registry.save_replacing(model_dir, req.asset_id, KIND, blob, entry, stats)
    return version, entry


def export_autoencoder(model_dir: Path, asset_id: str) -> tuple[str, dict[str, bytes]]:
    """The three files of the newest version's autoencoder and the version id; :class:`registry.ModelNotFound`
    when there is none, :class:`~shared.learning.interchange.InterchangeError` when it has no three-file
    form."""
    version = registry.latest_version(model_dir, asset_id)
    if version is None:
        raise registry.ModelNotFound(f"asset {asset_id!r} has no models")
    manifest = registry.load_manifest(model_dir, asset_id, version)
    entry = manifest["models"].get(KIND)
    if entry is None:
        raise registry.ModelNotFound(f"asset {asset_id!r} has no autoencoder model (version {version})")
    blob = registry.read_model_bytes(model_dir, asset_id, version, KIND)
    return version, interchange.export_files(blob, entry).files()


async def model_import(cal: Calibration, req: ModelImportRequest) -> list[Publish]:
    """Import, announce every model of the new version, and reply; an IDLE asset becomes CALIBRATED.
    Refused files: reply ``invalid`` with the reason (nothing saved)."""

    def failed(code: Any, message: str) -> list[Publish]:
        reply = ModelImportReply(
            correlation_id=req.correlation_id,
            status="failed",
            code=code,
            message=message,
            asset_id=req.asset_id,
        )
        return [Publish(req.reply_to, reply)]

    try:
        version, entry = await asyncio.to_thread(import_autoencoder, cal.model_dir, req)
        pubs, models = await announcements(cal.model_dir, req.asset_id, version, signer=cal.signer)
    except (ImportRefused, interchange.InterchangeError) as exc:
        log.warning("model_import_refused", asset_id=req.asset_id, reason=str(exc))
        return failed("invalid", str(exc))
    except Exception as exc:  # a bug or a registry failure must not take the service down
        log.exception("model_import_failed", asset_id=req.asset_id)
        return failed("internal", f"import failed: {type(exc).__name__}: {exc}")
    state = cal.states.get(req.asset_id)
    text = f"autoencoder imported as {version} (FlowFuse three-file form)"
    pubs.append(cal.states.change(req.asset_id, "CALIBRATED" if state == "IDLE" else state, text, models))
    log.info("model_imported", asset_id=req.asset_id, version=version, threshold=entry["threshold"])
    reply = ModelImportReply(
        correlation_id=req.correlation_id,
        status="ok",
        message=text,
        asset_id=req.asset_id,
        version=version,
        threshold=float(entry["threshold"]),
        models=models,
    )
    return [*pubs, Publish(req.reply_to, reply)]


async def model_export(model_dir: Path, req: ModelExportRequest) -> list[Publish]:
    """Reply with the three files (base64) of the asset's autoencoder; ``not_found`` without one,
    ``conflict`` when it has no three-file form."""
    reply = ModelExportReply(correlation_id=req.correlation_id, status="ok", asset_id=req.asset_id)
    try:
        version, files = await asyncio.to_thread(export_autoencoder, model_dir, req.asset_id)
    except registry.ModelNotFound as exc:
        reply = reply.model_copy(update={"status": "failed", "code": "not_found", "message": str(exc)})
    except interchange.InterchangeError as exc:
        reply = reply.model_copy(update={"status": "failed", "code": "conflict", "message": str(exc)})
    else:
        encoded = {name: base64.b64encode(data).decode() for name, data in files.items()}
        reply = reply.model_copy(
            update={"version": version, "files": encoded, "message": f"version {version}"}
        )
    return [Publish(req.reply_to, reply)]
