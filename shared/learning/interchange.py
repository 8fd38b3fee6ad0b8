"""The FlowFuse/Node-RED three-file autoencoder form: read, check, wrap for scoring, unwrap for export.

The three files (what the published ESP32 → MQTT → Node-RED pipeline trains and deploys):

* ``motor_autoencoder.onnx``: input ``features`` float32 ``[N, 33]`` (*normalised* features), one output
  float32 ``[N, 33]``, the reconstruction (any output name: the flow takes the first output).
* ``scaler_params.json``: ``{"mean": [33 floats], "std": [33 floats], "clip": float}``.
* ``threshold.json``: ``{"threshold": float}``.

The flow scores one window x (33 raw features, axis-major x, y, z × the 11 time-domain features) as::

    z = clip((x − mean) / max(std, 0.1), −clip, +clip)      (0.1 = the flow's fixed MIN_STD)
    e = mean_j (ẑ_j − z_j)²                                 (ẑ = the ONNX output; standardised units²)
    anomaly = mean of the last 10 e;  WARNING if anomaly > threshold, CRITICAL if > 2 × threshold

Rotorwatch scores raw feature vectors with one graph per model (input raw ``[N, d]`` → error ``[N]``):
:func:`wrap` puts the flow's normalisation in front of the reconstruction graph and the mean squared
error behind it (ONNX ``Sub``/``Div``/``Max``/``Min`` and ``Sub``/``Mul``/``ReduceMean``, all named
``rw_*``), leaving the reconstruction nodes untouched; :func:`unwrap` removes exactly those nodes again,
so the exported reconstruction graph is the one that scored live. Pure: bytes in, bytes out, no I/O.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .interchange_graph import (
    ERROR_OUTPUT,
    FILES,
    FLOW_CLIP,
    FLOW_FEATURES,
    FLOW_INPUT,
    FLOW_MIN_STD,
    FLOW_WINDOW,
    FORMAT,
    MAX_ZIP_BYTES,
    ONNX_FILE,
    RAW_INPUT,
    RECONSTRUCTION,
    SCALER_FILE,
    THRESHOLD_FILE,
    InterchangeError,
    check_reconstruction,
    reconstruction_graph,
    unwrap,
    wrap,
)

__all__ = [
    "ERROR_OUTPUT",
    "FILES",
    "FLOW_CLIP",
    "FLOW_FEATURES",
    "FLOW_INPUT",
    "FLOW_MIN_STD",
    "FLOW_WINDOW",
    "FORMAT",
    "ONNX_FILE",
    "RAW_INPUT",
    "RECONSTRUCTION",
    "SCALER_FILE",
    "THRESHOLD_FILE",
    "InterchangeError",
    "ThreeFiles",
    "check_reconstruction",
    "export_files",
    "from_zip",
    "parse_files",
    "to_zip",
    "reconstruction_graph",
    "unwrap",
    "wrap",
]


@dataclass(frozen=True)
class ThreeFiles:
    """The three files, parsed: reconstruction ONNX bytes, scaler (feature units) and threshold
    (standardised units², > 0)."""

    onnx: bytes
    mean: list[float]
    std: list[float]
    clip: float
    threshold: float

    def files(self) -> dict[str, bytes]:
        """The files as the article's trainer writes them (``json.dump(..., indent=2)``)."""
        scaler = {"mean": self.mean, "std": self.std, "clip": self.clip}
        return {
            ONNX_FILE: self.onnx,
            SCALER_FILE: json.dumps(scaler, indent=2).encode(),
            THRESHOLD_FILE: json.dumps({"threshold": self.threshold}, indent=2).encode(),
        }

    def flow_std(self) -> NDArray[np.float64]:
        """The divisor the flow uses: max(std, 0.1) per feature (feature units)."""
        return np.maximum(np.asarray(self.std, dtype=np.float64), FLOW_MIN_STD)

    def zip(self) -> bytes:
        """A zip of the three files (:func:`to_zip`)."""
        return to_zip(self.files())


def to_zip(files: Mapping[str, bytes]) -> bytes:
    """A zip of ``files`` (name → bytes; deflated, fixed timestamps, so the same files give the same zip)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# Reading the files
# ---------------------------------------------------------------------------------------------
def from_zip(data: bytes) -> dict[str, bytes]:
    """The three files of a zip (found by base name, in any folder); other members are ignored."""
    if len(data) > MAX_ZIP_BYTES:
        raise InterchangeError(f"zip is {len(data)} bytes (at most {MAX_ZIP_BYTES})")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise InterchangeError(f"not a zip file: {exc}") from None
    out: dict[str, bytes] = {}
    with zf:
        for info in zf.infolist():
            base = PurePosixPath(info.filename.replace("\\", "/")).name
            if base in FILES and not info.is_dir():
                if base in out:
                    raise InterchangeError(f"zip holds {base} more than once")
                if info.file_size > MAX_ZIP_BYTES:
                    raise InterchangeError(f"{base} is {info.file_size} bytes (at most {MAX_ZIP_BYTES})")
                out[base] = zf.read(info)
    return out


def _json(files: Mapping[str, bytes], name: str) -> dict[str, Any]:
    try:
        value = json.loads(files[name])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InterchangeError(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InterchangeError(f"{name}: expected a JSON object, got {type(value).__name__}")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InterchangeError(f"{where}: expected a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise InterchangeError(f"{where}: must be finite, got {value!r}")
    return v


def _vector(value: Any, where: str, n: int) -> list[float]:
    if not isinstance(value, list) or len(value) != n:
        got = f"{len(value)} values" if isinstance(value, list) else type(value).__name__
        raise InterchangeError(f"{where}: expected a list of {n} numbers (one per feature), got {got}")
    return [_number(v, f"{where}[{i}]") for i, v in enumerate(value)]


def parse_files(files: Mapping[str, bytes], n_features: int = FLOW_FEATURES) -> ThreeFiles:
    """Check the JSON files (mean/std of ``n_features`` finite numbers, std > 0, clip > 0, threshold
    finite > 0) and return the parsed form; the ONNX graph is checked by :func:`check_reconstruction`."""
    missing = [f for f in FILES if f not in files]
    if missing:
        raise InterchangeError(f"missing file(s): {', '.join(missing)} (need {', '.join(FILES)})")
    scaler = _json(files, SCALER_FILE)
    for key in ("mean", "std"):
        if key not in scaler:
            raise InterchangeError(f"{SCALER_FILE}: missing key {key!r} (expected mean, std, clip)")
    mean = _vector(scaler["mean"], f"{SCALER_FILE}.mean", n_features)
    std = _vector(scaler["std"], f"{SCALER_FILE}.std", n_features)
    bad = [i for i, s in enumerate(std) if s <= 0]
    if bad:
        raise InterchangeError(f"{SCALER_FILE}.std: must be > 0, feature(s) {bad[:5]} are {std[bad[0]]!r}")
    # The flow reads ``scaler.clip || 5.0``: a missing clip is 5.
    clip = _number(scaler.get("clip", FLOW_CLIP), f"{SCALER_FILE}.clip")
    if clip <= 0:
        raise InterchangeError(f"{SCALER_FILE}.clip: must be > 0, got {clip!r}")
    th = _json(files, THRESHOLD_FILE)
    if "threshold" not in th:
        raise InterchangeError(f"{THRESHOLD_FILE}: missing key 'threshold'")
    threshold = _number(th["threshold"], f"{THRESHOLD_FILE}.threshold")
    if threshold <= 0:
        raise InterchangeError(
            f"{THRESHOLD_FILE}.threshold: must be > 0 (a reconstruction error ≥ 0 is compared with it), "
            f"got {threshold!r}"
        )
    onnx_bytes = files[ONNX_FILE]
    if not onnx_bytes:
        raise InterchangeError(f"{ONNX_FILE} is empty")
    return ThreeFiles(onnx=bytes(onnx_bytes), mean=mean, std=std, clip=clip, threshold=threshold)


def export_files(scoring_onnx: bytes, entry: Mapping[str, Any]) -> ThreeFiles:
    """The three files of an autoencoder manifest ``entry`` (scaler, threshold, ``interchange`` block) and
    its scoring graph. The scaler's std is the divisor as used; the flow floors it at 0.1 again, so an
    entry whose divisor is below 0.1 anywhere (a relative floor, :mod:`shared.learning.scaler`, usually
    gives such divisors) cannot be scored the same by the flow and is refused."""
    scaler = entry.get("scaler") or {}
    d = len(entry.get("features") or [])
    std = [float(s) for s in scaler.get("std", [])]
    if d != FLOW_FEATURES or len(std) != d:
        raise InterchangeError(
            f"the flow scores {FLOW_FEATURES} features (3 axes x 11); this model has {d} features"
        )
    low = [i for i, s in enumerate(std) if s < FLOW_MIN_STD]
    if low:
        raise InterchangeError(
            f"scaler std of feature(s) {low[:5]} is below the flow's fixed MIN_STD {FLOW_MIN_STD} "
            f"({scaler.get('floor') or 'absolute'} floor, min_std {scaler.get('min_std')}): the flow would "
            f"score it differently; calibrate with scaler_floor 'absolute' (preset flowfuse) and min_std >= "
            f"{FLOW_MIN_STD}"
        )
    recon = unwrap(scoring_onnx, entry.get("interchange") or {}, d)
    return ThreeFiles(
        onnx=recon,
        mean=[float(v) for v in scaler["mean"]],
        std=std,
        clip=float(scaler["clip"]),
        threshold=float(entry["threshold"]),
    )
