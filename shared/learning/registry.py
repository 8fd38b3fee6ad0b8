"""Model registry on disk: ONNX + JSON only (this module does the file I/O; no pickle anywhere).

Layout::

    MODEL_DIR/<asset_id>/<version>/manifest.json
    MODEL_DIR/<asset_id>/<version>/{legacy,batch,autoencoder}.onnx   (only the models trained)

Version ids are ``vYYYYMMDDTHHMMSSZ-<6 hex>`` (UTC creation time + random suffix): they sort by time
to the second; versions created within the same second are ordered by the manifest's
``created_at`` (microseconds). A version is written into ``<asset_id>/.tmp-<version>`` and then
renamed into place, so readers never see a half-written version.

Manifest (JSON)::

    {"schema": 1, "asset_id", "version", "created_at" (ISO-8601 UTC),
     "models": {kind: entry + {"file", "sha256", "bytes"}},
     "baseline": baseline_info, "training": training_stats, "libraries": {name: version}}

Each entry holds its features, scaler (or null), threshold, raw-score convention parameters,
baseline and training stats (see :mod:`shared.learning.calibration`). Editing ``threshold`` by hand
takes effect the next time the manifest is loaded. So does editing an autoencoder's
``threshold_rule`` (``k``, ``error_mean``, ``error_std``): the rule records the threshold it gave
(``threshold_rule.threshold``); when the rule now gives another value and ``threshold`` was not edited,
``threshold`` becomes the rule's value (written back to the file); when both were edited the manifest
is refused (``ValueError`` naming both), as is a ``k`` that is not a finite number ≥ 0 or a rule
without the training error statistics (an imported threshold: edit ``threshold``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from shared.messages.learning import ModelManifest
from shared.topics import MODEL_KINDS, valid_asset_id

from .scoring import OnnxModel, check_entry
from .threshold_rule import apply_threshold_rule

MANIFEST = "manifest.json"
SCHEMA = 1
VERSION_RE = re.compile(r"^v\d{8}T\d{6}Z-[0-9a-f]{6}$")
_LIBRARIES = ("numpy", "scipy", "scikit-learn", "torch", "onnx", "onnxruntime", "skl2onnx")


class ModelNotFound(FileNotFoundError):
    """No such asset/version/model in the registry."""


def check_asset_id(asset_id: Any) -> str:
    """Return ``asset_id`` if it is a valid topic asset id and a safe single path segment."""
    if not isinstance(asset_id, str) or not valid_asset_id(asset_id) or asset_id in (".", ".."):
        raise ValueError(
            f"invalid asset id {asset_id!r}: must match [A-Za-z0-9_.-]{{1,64}} and not be '.' or '..'"
        )
    return asset_id


def check_version(version: Any) -> str:
    if not isinstance(version, str) or not VERSION_RE.match(version):
        raise ValueError(f"invalid model version {version!r}: expected vYYYYMMDDTHHMMSSZ-xxxxxx")
    return version


def check_kind(kind: Any) -> str:
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}: expected one of {MODEL_KINDS}")
    return str(kind)


def new_version_id(now: datetime | None = None) -> str:
    """``v`` + UTC time ``YYYYMMDDTHHMMSSZ`` + ``-`` + 6 random hex digits."""
    t = (now or datetime.now(UTC)).astimezone(UTC)
    return f"v{t:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def asset_dir(model_dir: str | Path, asset_id: str) -> Path:
    return Path(model_dir) / check_asset_id(asset_id)


def version_dir(model_dir: str | Path, asset_id: str, version: str) -> Path:
    return asset_dir(model_dir, asset_id) / check_version(version)


def model_path(model_dir: str | Path, asset_id: str, version: str, kind: str) -> Path:
    """Path of ``<kind>.onnx`` in a version directory (not checked for existence)."""
    return version_dir(model_dir, asset_id, version) / f"{check_kind(kind)}.onnx"


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that produce or read the models (and Python)."""
    out = {"python": sys.version.split()[0]}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _checked_models(
    models: dict[str, tuple[bytes, dict[str, Any]]],
) -> tuple[dict[str, dict[str, Any]], dict[str, bytes]]:
    """Manifest entries (with ``file``, ``sha256``, ``bytes`` added) and file name → ONNX bytes;
    ``ValueError`` on a bad kind, pair, empty bytes or entry."""
    if not isinstance(models, dict) or not models:
        raise ValueError("models: expected a non-empty mapping kind -> (onnx_bytes, entry)")
    entries: dict[str, dict[str, Any]] = {}
    blobs: dict[str, bytes] = {}
    for kind, pair in models.items():
        check_kind(kind)
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ValueError(f"models[{kind!r}]: expected (onnx_bytes, entry)")
        data, entry = pair
        if not isinstance(data, bytes | bytearray) or not data:
            raise ValueError(f"models[{kind!r}]: ONNX bytes are empty or not bytes")
        check_entry(entry)
        fname = f"{kind}.onnx"
        entries[kind] = {
            **entry,
            "file": fname,
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
        }
        blobs[fname] = bytes(data)
    return entries, blobs


def save_version(
    model_dir: str | Path,
    asset_id: str,
    models: dict[str, tuple[bytes, dict[str, Any]]],
    baseline_info: dict[str, Any],
    training_stats: dict[str, Any],
    *,
    now: datetime | None = None,
) -> str:
    """Write a new version atomically and return its id.

    ``models`` maps a kind (``legacy``/``batch``/``autoencoder``) to ``(onnx_bytes, entry)``; each entry
    is stored in the manifest with ``file``, ``sha256`` and ``bytes`` added. Raises ``ValueError`` on
    a bad asset id, kind, entry or a non-JSON (NaN/inf) value, before anything is written.
    """
    adir = asset_dir(model_dir, asset_id)
    created = (now or datetime.now(UTC)).astimezone(UTC)
    entries, blobs = _checked_models(models)
    adir.mkdir(parents=True, exist_ok=True)
    version = new_version_id(created)
    while (adir / version).exists():
        version = new_version_id(created)
    manifest = {
        "schema": SCHEMA,
        "asset_id": asset_id,
        "version": version,
        "created_at": created.isoformat(timespec="microseconds"),
        "models": entries,
        "baseline": baseline_info,
        "training": training_stats,
        "libraries": library_versions(),
    }
    try:
        text = json.dumps(manifest, indent=2, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"manifest is not valid JSON (NaN/inf or a non-JSON type): {exc}") from exc
    tmp = adir / f".tmp-{version}"
    try:
        tmp.mkdir()
        for fname, data in blobs.items():
            _write(tmp / fname, data)
        _write(tmp / MANIFEST, text.encode("utf-8"))
        _fsync_dir(tmp)
        os.rename(tmp, adir / version)
        _fsync_dir(adir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return version


def _write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Replace ``path`` atomically with ``manifest`` (JSON, indented)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(3)}")
    try:
        _write(tmp, json.dumps(manifest, indent=2, allow_nan=False).encode("utf-8"))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_manifest(model_dir: str | Path, asset_id: str, version: str) -> dict[str, Any]:
    """Read and check ``manifest.json`` of one version (every model entry via ``check_entry``; an edited
    threshold rule applied and written back, :func:`apply_threshold_rule`)."""
    path = version_dir(model_dir, asset_id, version) / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ModelNotFound(f"no model version {version} for asset {asset_id!r}") from exc
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("models"), dict):
        raise ValueError(f"{path}: expected an object with a 'models' mapping")
    changed = False
    for kind, entry in manifest["models"].items():
        check_kind(kind)
        try:
            check_entry(entry)
            changed = apply_threshold_rule(entry, f"models.{kind}") or changed
        except ValueError as exc:
            raise ValueError(f"{path}: models.{kind}: {exc}") from exc
    if changed:
        _write_manifest(path, manifest)
    return manifest


def model_entries(manifest: dict[str, Any]) -> dict[str, ModelManifest]:
    """The model entries of a loaded manifest, typed, each with the raw-signal baseline of the
    calibration data (``baseline.signal_baseline``) and, when stored, its envelope baseline
    (``baseline.envelope_baseline``) attached; ``ValueError`` for an entry the contract does not
    accept (e.g. a key it does not declare)."""
    baseline = manifest.get("baseline") or {}
    attached = {"signal_baseline": baseline.get("signal_baseline") or {}}
    if baseline.get("envelope_baseline"):
        attached["envelope_baseline"] = baseline["envelope_baseline"]
    models = manifest["models"]
    return {kind: ModelManifest.model_validate({**entry, **attached}) for kind, entry in models.items()}


def _created_key(model_dir: str | Path, asset_id: str, version: str) -> str:
    try:
        return str(
            json.loads((version_dir(model_dir, asset_id, version) / MANIFEST).read_text())["created_at"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def list_versions(model_dir: str | Path, asset_id: str) -> list[str]:
    """Complete versions of an asset, oldest first (empty if the asset has none)."""
    adir = asset_dir(model_dir, asset_id)
    if not adir.is_dir():
        return []
    found = [
        p.name for p in adir.iterdir() if p.is_dir() and VERSION_RE.match(p.name) and (p / MANIFEST).is_file()
    ]
    # The id sorts to the second; created_at (µs) orders versions made within the same second.
    return sorted(found, key=lambda v: (v[:17], _created_key(model_dir, asset_id, v), v))


def latest_version(model_dir: str | Path, asset_id: str) -> str | None:
    """Newest complete version of an asset, or ``None``."""
    versions = list_versions(model_dir, asset_id)
    return versions[-1] if versions else None


def list_assets(model_dir: str | Path) -> list[str]:
    """Asset ids that have at least one complete version, sorted."""
    root = Path(model_dir)
    if not root.is_dir():
        return []
    out = []
    for p in root.iterdir():
        if (
            p.is_dir()
            and valid_asset_id(p.name)
            and p.name not in (".", "..")
            and list_versions(root, p.name)
        ):
            out.append(p.name)
    return sorted(out)


def load_model(model_dir: str | Path, asset_id: str, version: str, kind: str) -> OnnxModel:
    """Load one model of a version with its (freshly read) manifest entry; the sha256 is checked."""
    manifest = load_manifest(model_dir, asset_id, version)
    entry = manifest["models"].get(check_kind(kind))
    if entry is None:
        raise ModelNotFound(f"version {version} of asset {asset_id!r} has no {kind} model")
    path = model_path(model_dir, asset_id, version, kind)
    try:
        return OnnxModel.load(path, entry)
    except FileNotFoundError as exc:
        raise ModelNotFound(f"{path} is missing") from exc


def delete_version(model_dir: str | Path, asset_id: str, version: str) -> bool:
    """Remove one version; ``True`` if it existed."""
    vdir = version_dir(model_dir, asset_id, version)
    if not vdir.is_dir():
        return False
    shutil.rmtree(vdir)
    return True


def delete_asset(model_dir: str | Path, asset_id: str) -> bool:
    """Remove every version of an asset; ``True`` if there was anything to remove."""
    adir = asset_dir(model_dir, asset_id)
    if not adir.is_dir() or adir.is_symlink():
        return False
    shutil.rmtree(adir)
    return True


def read_model_bytes(model_dir: str | Path, asset_id: str, version: str, kind: str) -> bytes:
    """The ONNX bytes of one model of a version, checked against the manifest's sha256."""
    manifest = load_manifest(model_dir, asset_id, version)
    entry = manifest["models"].get(check_kind(kind))
    if entry is None:
        raise ModelNotFound(f"version {version} of asset {asset_id!r} has no {kind} model")
    try:
        data = model_path(model_dir, asset_id, version, kind).read_bytes()
    except FileNotFoundError as exc:
        raise ModelNotFound(f"{kind} model file of {asset_id} {version} is missing") from exc
    if entry.get("sha256") and hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise ValueError(f"{kind} model file of {asset_id} {version} does not match its sha256")
    return data


_STORED_KEYS = ("file", "sha256", "bytes")


def save_replacing(
    model_dir: str | Path,
    asset_id: str,
    kind: str,
    onnx: bytes,
    entry: dict[str, Any],
    training: dict[str, Any],
) -> str:
    """A new version of ``asset_id`` with ``kind`` replaced by ``(onnx, entry)`` and every other model of
    the newest version carried over unchanged (same bytes and entries; baseline and training blocks kept,
    ``training[kind]`` replaced); returns the version id."""
    models: dict[str, tuple[bytes, dict[str, Any]]] = {}
    baseline: dict[str, Any] = {}
    stats: dict[str, Any] = {}
    latest = latest_version(model_dir, asset_id)
    if latest is not None:
        manifest = load_manifest(model_dir, asset_id, latest)
        baseline = dict(manifest.get("baseline") or {})
        stats = dict(manifest.get("training") or {})
        for other, old in manifest["models"].items():
            if other != kind:
                clean = {k: v for k, v in old.items() if k not in _STORED_KEYS}
                models[other] = (read_model_bytes(model_dir, asset_id, latest, other), clean)
    models[kind] = (onnx, entry)
    stats[kind] = training
    return save_version(model_dir, asset_id, models, baseline, stats)
