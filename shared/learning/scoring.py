"""Scoring with exported models: ONNX Runtime sessions, rolling mean, severity (no torch, no sklearn).

Every model follows one convention: ``raw_score`` is an anomaly measure where higher = more
anomalous and typical healthy training data ≈ 0, and ``threshold`` (> 0, from the manifest entry) is
the training-time cut. The manifest entry says how the ONNX output y becomes the raw score:

* ``identity`` (autoencoder): raw = y, the per-sample reconstruction error.
* ``median_minus_score`` (Isolation Forest): raw = ``score_median`` − y, y = sklearn's
  ``score_samples``.

``anomaly_score`` = rolling mean of the last ``window`` raw scores (:class:`RollingScore`); severity
(:func:`classify`) is WARNING above the threshold and CRITICAL above twice the threshold. The
threshold is read from the entry each time a model is loaded, so a hand-edited manifest takes
effect on the next load.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from shared.messages.learning import Severity, severity_of

from ._checks import as_matrix, as_names, count

TRANSFORMS = ("identity", "median_minus_score")


def _finite(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name}: must be finite, got {value!r}")
    return v


def check_threshold(value: Any, name: str = "threshold") -> float:
    """Return ``value`` as a finite float > 0 (a raw-score cut; dimensionless)."""
    v = _finite(value, name)
    if v <= 0:
        raise ValueError(f"{name}: must be > 0 (raw scores of healthy data are ≈ 0), got {v!r}")
    return v


def check_entry(entry: Any) -> dict[str, Any]:
    """Validate the scoring-relevant part of a manifest entry; return it unchanged.

    Needs ``features`` (distinct names), ``threshold`` (finite > 0), ``input``/``output`` tensor names
    and ``raw_score.transform`` ∈ :data:`TRANSFORMS` (plus a finite ``score_median`` for
    ``median_minus_score``). Raises ``ValueError`` naming the first problem.
    """
    if not isinstance(entry, dict):
        raise ValueError(f"manifest entry: expected an object, got {type(entry).__name__}")
    for key in ("features", "threshold", "input", "output", "raw_score"):
        if key not in entry:
            raise ValueError(f"manifest entry: missing {key!r}")
    feats = entry["features"]
    if not isinstance(feats, list) or not feats:
        raise ValueError("manifest entry: 'features' must be a non-empty list of names")
    as_names(feats, len(feats), "manifest entry.features")
    check_threshold(entry["threshold"], "manifest entry.threshold")
    rs = entry["raw_score"]
    if not isinstance(rs, dict) or rs.get("transform") not in TRANSFORMS:
        raise ValueError(f"manifest entry.raw_score.transform: expected one of {TRANSFORMS}, got {rs!r}")
    if rs["transform"] == "median_minus_score":
        _finite(rs.get("score_median"), "manifest entry.raw_score.score_median")
    return entry


def raw_from_output(entry: dict[str, Any], y: Any) -> NDArray[np.float64]:
    """Apply the entry's raw-score transform to the ONNX output ``y`` (any shape, flattened to [N])."""
    out = np.asarray(y, dtype=np.float64).reshape(-1)
    rs = entry["raw_score"]
    if rs["transform"] == "identity":
        return out
    if rs["transform"] == "median_minus_score":
        return float(rs["score_median"]) - out
    raise ValueError(f"unknown raw_score transform {rs['transform']!r}")


def session_options(threads: int = 1) -> ort.SessionOptions:
    """ONNX Runtime options: ``threads`` intra-op threads, one inter-op thread, sequential, quiet."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = count(threads, "threads")
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return so


class OnnxModel:
    """One exported model plus its manifest entry. ``raw_scores(X[N, d]) -> [N]``."""

    def __init__(self, session: ort.InferenceSession, entry: dict[str, Any]) -> None:
        self.session = session
        self.entry = check_entry(entry)
        inputs = {i.name: i for i in session.get_inputs()}
        outputs = {o.name for o in session.get_outputs()}
        if entry["input"] not in inputs:
            raise ValueError(f"ONNX model has no input {entry['input']!r} (has {sorted(inputs)})")
        if entry["output"] not in outputs:
            raise ValueError(f"ONNX model has no output {entry['output']!r} (has {sorted(outputs)})")
        shape = inputs[entry["input"]].shape
        if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != len(entry["features"])):
            raise ValueError(
                f"ONNX input shape {shape} does not fit the manifest's {len(entry['features'])} features"
            )

    @classmethod
    def from_bytes(cls, data: bytes, entry: dict[str, Any], *, threads: int = 1) -> OnnxModel:
        """Build from serialised ONNX; if the entry has ``sha256``, the bytes must match it."""
        if not isinstance(data, bytes | bytearray) or not data:
            raise ValueError("ONNX model: expected non-empty bytes")
        check_entry(entry)
        want = entry.get("sha256")
        if want is not None and hashlib.sha256(data).hexdigest() != want:
            raise ValueError("ONNX model bytes do not match the manifest's sha256")
        try:
            sess = ort.InferenceSession(
                bytes(data), session_options(threads), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ValueError(f"ONNX model could not be loaded: {exc}") from exc
        return cls(sess, entry)

    @classmethod
    def load(cls, path: str | Path, manifest_entry: dict[str, Any], *, threads: int = 1) -> OnnxModel:
        """Read ``path`` (an ``.onnx`` file) and build the model with ``manifest_entry``."""
        return cls.from_bytes(Path(path).read_bytes(), manifest_entry, threads=threads)

    @property
    def features(self) -> list[str]:
        return list(self.entry["features"])

    @property
    def n_features(self) -> int:
        return len(self.entry["features"])

    @property
    def threshold(self) -> float:
        """The raw-score cut from the manifest entry (dimensionless, > 0)."""
        return float(self.entry["threshold"])

    def outputs(self, X: Any) -> NDArray[np.float32]:
        """The graph's output for ``X[N, d]`` as float32 [N] (before the raw-score transform)."""
        A = as_matrix(X, n_features=self.n_features, dtype=np.float32)
        y = self.session.run([self.entry["output"]], {self.entry["input"]: np.ascontiguousarray(A)})[0]
        return np.asarray(y, dtype=np.float32).reshape(-1)

    def raw_scores(self, X: Any) -> NDArray[np.float64]:
        """Raw anomaly scores [N] of the rows of ``X[N, d]`` (columns in ``features`` order)."""
        return raw_from_output(self.entry, self.outputs(X))


class RollingScore:
    """Rolling mean of the last ``window`` raw scores: anomaly = (1/k)·Σ last k values, k ≤ window.

    The mean is re-summed exactly (``math.fsum``) at each update, so there is no running-sum drift.
    """

    def __init__(self, window: int = 10) -> None:
        self.window = count(window, "window")
        self._values: deque[float] = deque(maxlen=self.window)

    def update(self, raw: float) -> float:
        """Add one raw score (finite) and return the mean of the last ≤ ``window`` scores."""
        self._values.append(_finite(raw, "raw score"))
        return math.fsum(self._values) / len(self._values)

    @property
    def value(self) -> float | None:
        """Current rolling mean, or ``None`` before the first update."""
        return math.fsum(self._values) / len(self._values) if self._values else None

    def __len__(self) -> int:
        return len(self._values)

    def reset(self) -> None:
        self._values.clear()


def classify(anomaly_score: float, threshold: float) -> Severity:
    """Severity of a score by the contract's ratios (:func:`shared.messages.severity_of`): NORMAL up to
    the threshold, WARNING above it, CRITICAL above ``CRITICAL_RATIO`` (2) × threshold."""
    return severity_of(_finite(anomaly_score, "anomaly_score"), check_threshold(threshold))
