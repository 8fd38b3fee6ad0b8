"""Calibration: validate healthy data, train, export and sanity-check every model (pure: no I/O).

``calibrate`` takes feature matrices (``legacy`` readings, ``batch`` reading windows,
``autoencoder`` vibration windows), and returns ONNX bytes + manifest entries + stats for
:func:`shared.learning.registry.save_version`. Steps, in order (so bad data fails before any
training):

1. count: each dataset needs ``min_readings`` (legacy/batch, 100) or ``min_windows`` (autoencoder,
   300) rows, else :class:`InsufficientData` ("Insufficient data for calibration: found N readings,
   need 100"), and at least one feature that varies, else :class:`DegenerateData`;
2. validate: :func:`shared.learning.baseline.validate_baseline` on each dataset, else
   :class:`BaselineRejected` ("Baseline validation failed: 12.3% outliers");
3. train: Isolation Forests for legacy/batch, the autoencoder for vibration windows;
4. export to ONNX and check each exported model on its own training data: ONNX and native outputs
   agree (|a − b| ≤ atol + rtol·|b|), and the fraction of the rows that set the threshold scoring
   above it is plausible (forest: ≤ contamination + max(0.01, 2/m) of its m threshold rows — all n
   training rows, or the n_holdout held-out ones when the cut comes from them; the older rows of a
   non-stationary feature such as a 1 h mean still settling may legitimately score higher, so they
   are reported, not judged; autoencoder: ≤ ``max_ae_flagged`` of all rows), else
   :class:`ModelCheckFailed`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import structlog
from numpy.typing import NDArray

from ._checks import as_matrix, as_names, count, fraction, positive
from .autoencoder import AutoencoderConfig, export_autoencoder_onnx, train_autoencoder
from .baseline import Baseline, ValidationResult, validate_baseline
from .forest import export_forest_onnx, train_forest
from .scoring import OnnxModel

log = structlog.get_logger()

KINDS = ("legacy", "batch", "autoencoder")
_LABEL = {"legacy": "legacy forest", "batch": "batch forest", "autoencoder": "autoencoder"}
_UNIT = {"legacy": "readings", "batch": "batch windows", "autoencoder": "windows"}


class CalibrationError(Exception):
    """Calibration could not produce models; the message is meant for the operator."""


class InsufficientData(CalibrationError):
    def __init__(self, kind: str, found: int, needed: int) -> None:
        self.kind, self.found, self.needed = kind, found, needed
        super().__init__(f"Insufficient data for calibration: found {found} {_UNIT[kind]}, need {needed}")


class BaselineRejected(CalibrationError):
    def __init__(self, kind: str, result: ValidationResult) -> None:
        self.kind, self.result = kind, result
        super().__init__(result.message)


class DegenerateData(CalibrationError):
    """Every feature of a dataset is constant: there is no "normal variation" to learn."""


class ModelCheckFailed(CalibrationError):
    """An exported model disagreed with its native twin or flagged implausibly much training data."""


@dataclass(frozen=True)
class CalibrationConfig:
    """Calibration settings; fractions are 0..1, tolerances are in raw-output units."""

    min_readings: int = 100
    min_windows: int = 300
    sigma: float = 3.0
    max_outlier_fraction: float = 0.05
    validate: bool = True
    contamination: float = 0.02
    n_estimators: int = 100
    random_state: int = 0
    #: Per forest kind, the fraction of newest rows held out to set the threshold (see ``train_forest``);
    #: e.g. ``{"batch": 0.3}`` for sliding-window features. Default: none (in-sample cut).
    holdout: Mapping[str, float] = field(default_factory=dict)
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    onnx_atol: float = 1e-5
    onnx_rtol: float = 1e-5
    max_ae_flagged: float = 0.05
    onnx_threads: int = 1

    def check(self) -> CalibrationConfig:
        count(self.min_readings, "min_readings", minimum=2)
        count(self.min_windows, "min_windows", minimum=2)
        positive(self.sigma, "sigma")
        fraction(self.max_outlier_fraction, "max_outlier_fraction", open_low=False)
        fraction(self.contamination, "contamination", high=0.5)
        count(self.n_estimators, "n_estimators")
        positive(self.onnx_atol, "onnx_atol", allow_zero=True)
        positive(self.onnx_rtol, "onnx_rtol", allow_zero=True)
        fraction(self.max_ae_flagged, "max_ae_flagged")
        count(self.onnx_threads, "onnx_threads")
        for kind, h in dict(self.holdout).items():
            if kind not in ("legacy", "batch"):
                raise ValueError(f"holdout: only the forests (legacy, batch) take a holdout, got {kind!r}")
            fraction(h, f"holdout[{kind!r}]", open_low=False, high=0.5)
        self.autoencoder.check()
        return self


@dataclass
class CalibrationResult:
    """What :func:`calibrate` produced; pass ``models``, ``baseline_info`` and ``training_stats`` on to
    :func:`shared.learning.registry.save_version`."""

    models: dict[str, tuple[bytes, dict[str, Any]]]
    baseline_info: dict[str, Any]
    training_stats: dict[str, Any]
    data_points: dict[str, int]
    timings: dict[str, float]


def _noop(_: str) -> None:
    return None


def _stats(v: NDArray[np.float64]) -> dict[str, float]:
    """Mean, population std, median, 99th percentile and max of raw scores (units of the raw score)."""
    return {
        "mean": float(v.mean()),
        "std": float(v.std()),
        "median": float(np.median(v)),
        "p99": float(np.percentile(v, 99)),
        "max": float(v.max()),
    }


def _check_agreement(
    kind: str, onnx_y: NDArray[Any], native_y: NDArray[Any], cfg: CalibrationConfig
) -> float:
    """Max |onnx − native|; raise ModelCheckFailed beyond atol + rtol·|native|."""
    a = onnx_y.astype(np.float64)
    b = native_y.astype(np.float64)
    diff = np.abs(a - b)
    bad = diff > cfg.onnx_atol + cfg.onnx_rtol * np.abs(b)
    if bad.any():
        i = int(np.argmax(diff))
        raise ModelCheckFailed(
            f"{_LABEL[kind]}: ONNX output differs from the trained model on {int(bad.sum())} training "
            f"row(s), worst row {i}: {a[i]!r} vs {b[i]!r}"
        )
    return float(diff.max())


def _pairs(obj: Any, what: str) -> dict[str, tuple[NDArray[np.float64], list[str]]]:
    if not isinstance(obj, dict):
        raise ValueError(f"{what}: expected a mapping with keys among {KINDS}")
    unknown = sorted(set(obj) - set(KINDS))
    if unknown:
        raise ValueError(f"{what}: unknown kind(s) {unknown}; expected keys among {KINDS}")
    out = {}
    for kind in KINDS:
        if kind not in obj:
            continue
        pair = obj[kind]
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ValueError(f"{what}[{kind!r}]: expected (X, names)")
        X = as_matrix(pair[0], f"{what}[{kind!r}].X")
        out[kind] = (X, as_names(pair[1], X.shape[1], f"{what}[{kind!r}].names"))
    return out


def _check_amounts(
    kinds: list[str],
    data: dict[str, tuple[NDArray[np.float64], list[str]]],
    cfg: CalibrationConfig,
    progress: Callable[[str], None],
) -> None:
    """Step 1: enough rows (``min_readings`` / ``min_windows``) and at least one varying feature."""
    for kind in kinds:
        X = data[kind][0]
        n = X.shape[0]
        need = cfg.min_windows if kind == "autoencoder" else cfg.min_readings
        if n < need:
            raise InsufficientData(kind, n, need)
        if np.all(X.max(axis=0) == X.min(axis=0)):
            raise DegenerateData(
                f"Calibration data for the {_LABEL[kind]} does not vary: all {X.shape[1]} features are "
                f"constant over {n} {_UNIT[kind]} (sensor stuck or machine stopped?)"
            )
        progress(f"Collected {n} data points for the {_LABEL[kind]}")


def _validate_all(
    kinds: list[str],
    data: dict[str, tuple[NDArray[np.float64], list[str]]],
    checks: dict[str, tuple[NDArray[np.float64], list[str]]],
    cfg: CalibrationConfig,
    progress: Callable[[str], None],
) -> dict[str, ValidationResult]:
    """Step 2: the baseline verdict of every dataset (``checks`` replaces a kind's matrix when given)."""
    verdicts: dict[str, ValidationResult] = {}
    for kind in kinds:
        X, names = checks.get(kind, data[kind])
        res = validate_baseline(X, names, sigma=cfg.sigma, max_outlier_fraction=cfg.max_outlier_fraction)
        verdicts[kind] = res
        if cfg.validate and not res.ok:
            raise BaselineRejected(kind, res)
        progress(f"{_LABEL[kind].capitalize()} data: {res.message}")
    return verdicts


@dataclass
class _Fitted:
    """A trained and exported model before its check: ONNX bytes, manifest entry, the native raw
    outputs on the training rows, the largest plausible flagged fraction, the training time (s),
    extra training statistics and when training ended (``time.perf_counter``)."""

    blob: bytes
    entry: dict[str, Any]
    native_y: NDArray[Any]
    limit: float
    train_seconds: float
    extra: dict[str, float]
    trained_at: float
    #: The limit applies to the newest ``checked`` rows (the held-out ones); 0 = all rows.
    checked: int = 0


def _fit_autoencoder(
    X: NDArray[np.float64], names: list[str], cfg: CalibrationConfig, progress: Callable[[str], None]
) -> _Fitted:
    """Train and export the autoencoder; at most ``max_ae_flagged`` of its training rows may score above
    its threshold."""
    progress(f"Training autoencoder ({cfg.autoencoder.epochs} epochs)...")
    ae = train_autoencoder(X, names, cfg.autoencoder, epoch_reporter(progress))
    trained_at = time.perf_counter()
    blob = export_autoencoder_onnx(ae)
    extra = {"error_mean": ae.error_mean, "error_std": ae.error_std, "final_loss": ae.final_loss}
    native_y = ae.raw_scores(X.astype(np.float32))
    return _Fitted(blob, ae.entry(), native_y, cfg.max_ae_flagged, ae.train_seconds, extra, trained_at)


def epoch_reporter(progress: Callable[[str], None]) -> Callable[[int, int, float], None]:
    """Per-epoch progress of the autoencoder: the log every 5 % of the epochs, ``progress`` every 10 %."""

    def report(epoch: int, epochs: int, loss: float) -> None:
        if epoch % max(1, epochs // 20) == 0 or epoch == epochs:
            log.info("autoencoder_epoch", epoch=epoch, epochs=epochs, loss=round(loss, 6))
        if epoch % max(1, epochs // 10) == 0 or epoch == epochs:
            progress(f"Training autoencoder: epoch {epoch}/{epochs}, loss {loss:.6g}")

    return report


def _fit_forest(
    kind: str,
    X: NDArray[np.float64],
    names: list[str],
    cfg: CalibrationConfig,
    progress: Callable[[str], None],
) -> _Fitted:
    """Train and export an Isolation Forest. Plausible flagged fraction of the m rows its cut comes from
    (all n rows, or the n_holdout held-out ones): c + max(0.01, 2/m) (c = contamination)."""
    progress(f"Training {_LABEL[kind]}...")
    fm = train_forest(
        X,
        names,
        contamination=cfg.contamination,
        n_estimators=cfg.n_estimators,
        random_state=cfg.random_state,
        holdout_fraction=float(dict(cfg.holdout).get(kind, 0.0)),
    )
    trained_at = time.perf_counter()
    blob = export_forest_onnx(fm)
    c = cfg.contamination
    limit = c + max(0.01, 2.0 / (fm.n_holdout or X.shape[0]))
    native_y = fm.score_samples(X.astype(np.float32))
    return _Fitted(blob, fm.entry(), native_y, limit, fm.train_seconds, {}, trained_at, fm.n_holdout)


def _check_export(
    kind: str, fitted: _Fitted, X32: NDArray[np.float32], cfg: CalibrationConfig
) -> tuple[float, NDArray[np.float64], float]:
    """Step 4: the exported model agrees with the native one and flags a plausible fraction of its
    training rows; returns the max |ONNX − native|, the raw scores and the flagged fraction."""
    onnx_model = OnnxModel.from_bytes(fitted.blob, fitted.entry, threads=cfg.onnx_threads)
    max_diff = _check_agreement(kind, onnx_model.outputs(X32), fitted.native_y, cfg)
    raw = onnx_model.raw_scores(X32)
    flagged = float(np.mean(raw > onnx_model.threshold))
    judged = float(np.mean(raw[-fitted.checked :] > onnx_model.threshold)) if fitted.checked else flagged
    if judged > fitted.limit:
        rows = f"held-out {fitted.checked} rows" if fitted.checked else "training data"
        raise ModelCheckFailed(
            f"{_LABEL[kind]}: {100 * judged:.1f}% of the {rows} scores above its own threshold "
            f"(at most {100 * fitted.limit:.1f}% expected)"
        )
    return max_diff, raw, flagged


def _train_kind(
    kind: str,
    X: NDArray[np.float64],
    names: list[str],
    verdict: ValidationResult,
    cfg: CalibrationConfig,
    progress: Callable[[str], None],
) -> tuple[bytes, dict[str, Any], dict[str, Any], dict[str, float]]:
    """Steps 3–4 for one kind: ONNX bytes, the manifest entry, its training statistics and timings (s)."""
    n = X.shape[0]
    X32 = X.astype(np.float32)
    t0 = time.perf_counter()
    if kind == "autoencoder":
        fitted = _fit_autoencoder(X, names, cfg, progress)
    else:
        fitted = _fit_forest(kind, X, names, cfg, progress)
    t1, t2 = fitted.trained_at, time.perf_counter()
    progress(f"Checking exported {_LABEL[kind]}...")
    max_diff, raw, flagged = _check_export(kind, fitted, X32, cfg)
    t3 = time.perf_counter()
    training = {
        "n": n,
        "train_seconds": fitted.train_seconds,
        "export_seconds": t2 - t1,
        "check_seconds": t3 - t2,
        "raw_score": _stats(raw),
        "flagged_fraction": flagged,
        "onnx_max_abs_diff": max_diff,
        "onnx_bytes": len(fitted.blob),
        **fitted.extra,
    }
    entry = {
        **fitted.entry,
        "kind": kind,
        "baseline": Baseline.fit(X, names).to_dict(),
        "validation": verdict.to_dict(),
        "training": training,
    }
    timings = {f"{kind}_train": t1 - t0, f"{kind}_export": t2 - t1, f"{kind}_check": t3 - t2}
    return fitted.blob, entry, training, timings


def calibrate(
    datasets: dict[str, tuple[Any, list[str]]],
    config: CalibrationConfig | None = None,
    progress: Callable[[str], None] = _noop,
    validation: dict[str, tuple[Any, list[str]]] | None = None,
) -> CalibrationResult:
    """Validate, train, export and check the models for the given datasets (see the module docstring).

    ``datasets`` maps kinds among ``legacy``, ``batch``, ``autoencoder`` to ``(X[n, d], names)``.
    ``validation`` optionally gives, per kind, the matrix to run the baseline validation on instead
    of the training matrix — e.g. for ``batch`` (features of heavily overlapping reading windows,
    which are not independent rows) the underlying readings ``[m, 4]``. ``progress`` receives
    human-readable step messages. Raises ``ValueError`` for malformed input,
    :class:`InsufficientData`, :class:`DegenerateData`, :class:`BaselineRejected` or
    :class:`ModelCheckFailed` (the last four are :class:`CalibrationError` subclasses).
    """
    cfg = (config or CalibrationConfig()).check()
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    data = _pairs(datasets, "datasets")
    if not data:
        raise ValueError(f"datasets: expected at least one of {KINDS}")
    kinds = list(data)
    checks = _pairs(validation if validation is not None else {}, "validation")
    extra = sorted(set(checks) - set(kinds))
    if extra:
        raise ValueError(f"validation: kind(s) {extra} have no dataset")

    _check_amounts(kinds, data, cfg, progress)
    t0 = time.perf_counter()
    verdicts = _validate_all(kinds, data, checks, cfg, progress)
    timings["validate"] = time.perf_counter() - t0

    models: dict[str, tuple[bytes, dict[str, Any]]] = {}
    per_model: dict[str, Any] = {}
    for kind in kinds:
        blob, entry, training, spent = _train_kind(kind, *data[kind], verdicts[kind], cfg, progress)
        models[kind] = (blob, entry)
        per_model[kind] = training
        timings.update(spent)
    timings["total"] = time.perf_counter() - t_start
    progress("Validated")
    data_points = {k: int(data[k][0].shape[0]) for k in kinds}
    return CalibrationResult(
        models=models,
        baseline_info={k: verdicts[k].to_dict() for k in kinds},
        training_stats={"data_points": data_points, "seconds": dict(timings), "models": per_model},
        data_points=data_points,
        timings=timings,
    )
