"""Does a calibration set carry a bearing-fault signature? (pure numpy, no I/O)

The screening of :mod:`shared.learning.screening` is *relative* to the data: a whole recording of a
faulty machine is stationary, so every window looks like its neighbours and the set passes. Offered as
calibration data it would teach the models that the fault is normal. This module judges the set as a
*population* against what healthy bearings show, with two indicators (limit compared with the median
over all windows, so a few impacts or spikes cannot refuse a healthy set):

* ``{axis}_kurtosis`` — the window's excess kurtosis m4/m2² − 3 (1; Gaussian noise 0, a sine −1.5;
  :mod:`shared.features.vibration`). Periodic impacts of a damaged race or ball raise it.
  Refused when the median over the windows of **any axis** exceeds :data:`KURTOSIS_LIMIT` = 1.0
  (Pearson kurtosis 4, the usual "suspect" level for rolling bearings).
* ``env_{d}_snr`` — envelope-spectrum SNR at the bearing defect frequency d ∈ {bpfo, bpfi, bsf, ftf}
  (1; amplitude at f_d over the median of the nearby envelope spectrum, :mod:`shared.features.envelope`).
  Present only when the asset config gives rpm and bearing geometry (FeatureVector extras). Refused
  when the median over the windows exceeds :data:`ENVELOPE_SNR_LIMIT` = 5.0.

Measured (``python -m benchmarks.bench_calibration_real``; windows of 2,048 samples at 12 kHz,
8,192 at 48 kHz, FEMTO whole 2,560-sample snapshots at 25.6 kHz; CWRU SKF 6205 orders from geometry,
1797 rpm; FEMTO 13 balls 3.5/25.6 mm at the run's rpm):

======================================================  ===================  =====================
set (median over its windows)                            excess kurtosis      envelope SNR (max d)
======================================================  ===================  =====================
healthy: CWRU normal DE/FE (48 kHz and resampled 12 kHz)  −0.30 .. −0.24       1.6 .. 3.7
healthy: FEMTO 6 bearings, each channel and x+y, early   −0.02 .. 0.46        1.3 .. 2.3
faults, CWRU drive end (IR007, OR007@6/@3/@12, IR014,     1.2 .. 19.2          IR/OR 0.007 in:
B014, IR021, OR021@6; 12 and 48 kHz)                                           5.6 .. 13.0
faults without either signature, drive end (B007,         −0.06 .. 0.76        1.5 .. 3.1
B021, B028, OR014@6, IR028); most fan-end/base channels
======================================================  ===================  =====================

So the kurtosis limit is ≈2× the highest healthy median (0.46 → 1.0) and the envelope limit 1.35× it
(3.7 → 5.0; the 3.7 is the CWRU normal fan-end channel judged at the drive-end bearing's BPFO; FEMTO ≤ 2.3),
the kurtosis limit below every drive-end record of IR007, IR014, IR021, OR007 (@6, @3, @12), OR021@6 and
B014 (lowest OR007@3, 1.23), the envelope limit below the drive-end IR007/OR007@6/@3 and IR021 records
(5.6-13; it adds some fan-end and base channels the kurtosis misses). Ball faults B007/B021/B028,
OR014@6 and IR028 show neither indicator
at 0 HP (known to be hard in the literature) and are accepted: this check is a guard
against the obvious mistake, not a diagnosis.

Some machines are impulsive by nature (gearboxes, reciprocating compressors, presses, impact tools):
their healthy kurtosis is high. The calibration request's ``accept_fault_signature: true`` turns the
refusal into a note (:attr:`FaultSignature.accepted_on_request`), kept in the manifest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._checks import as_names, positive
from .calibration import CalibrationError

#: Median excess kurtosis (1) of an axis above which the set shows impacts (Pearson kurtosis 4).
KURTOSIS_LIMIT = 1.0
#: Median envelope SNR (1) at a bearing defect frequency above which the set shows a bearing defect.
ENVELOPE_SNR_LIMIT = 5.0
#: Range of the per-set medians measured on healthy bearings (module table), for the messages.
HEALTHY_KURTOSIS = (-0.30, 0.46)
HEALTHY_ENVELOPE_SNR = (1.3, 3.7)
#: The calibration request field that accepts a set with a fault signature.
OVERRIDE_FIELD = "accept_fault_signature"

KURTOSIS_SUFFIX = "_kurtosis"
ENVELOPE_SNR = re.compile(r"^env_(bpfo|bpfi|bsf|ftf)_snr$")
DEFECT_WORDS = {
    "bpfo": "BPFO (outer-race defect frequency)",
    "bpfi": "BPFI (inner-race defect frequency)",
    "bsf": "BSF (ball defect frequency)",
    "ftf": "FTF (cage frequency)",
}


@dataclass(frozen=True)
class Indicator:
    """One judged indicator: column ``name``, its median over ``n`` windows (1), the ``limit`` (1)."""

    name: str
    label: str
    median: float
    limit: float
    healthy: tuple[float, float]
    n: int

    @property
    def over(self) -> bool:
        return self.median > self.limit

    @property
    def kind(self) -> str:
        return "kurtosis" if self.name.endswith(KURTOSIS_SUFFIX) else "envelope"

    def text(self, healthy: bool = True) -> str:
        """``median excess kurtosis of axis x 4.33 over 59 windows (limit 1; healthy bearings ...)``"""
        lo, hi = self.healthy
        tail = f"; healthy bearings {lo:.2f}..{hi:.2f}" if healthy else ""
        return f"median {self.label} {self.median:.2f} over {self.n} windows (limit {self.limit:g}{tail})"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "median": self.median, "limit": self.limit, "over": self.over, "n": self.n}


@dataclass(frozen=True)
class FaultSignature:
    """Outcome of :func:`fault_signature`: every judged indicator, whether the request accepted a
    signature (``override``), and ``ok`` = no indicator over its limit, or accepted on request."""

    n: int
    indicators: tuple[Indicator, ...]
    override: bool = False

    @property
    def found(self) -> tuple[Indicator, ...]:
        """The indicators over their limits."""
        return tuple(i for i in self.indicators if i.over)

    @property
    def accepted_on_request(self) -> bool:
        return bool(self.found) and self.override

    @property
    def ok(self) -> bool:
        return not self.found or self.override

    def message(self) -> str:
        """The operator's sentence: refusal (which indicator, value vs limit, healthy range, what to do),
        acceptance on request, or what was checked."""
        if not self.indicators:
            return "Fault signature not checked: the data has no kurtosis or envelope indicators"
        if not self.found:
            best = max(self.indicators, key=lambda i: i.median / i.limit)
            return f"No bearing-fault signature in {self.n} windows: highest {best.text()}"
        what = _found_text(self.found)
        if self.override:
            return f"Bearing-fault signature accepted on request ({OVERRIDE_FIELD}): {what}"
        return (
            f"Calibration data refused: it shows a bearing-fault signature: {what}. Calibrating on it "
            "would teach the models that this vibration is normal. Calibrate on data from a healthy "
            f"period, or, if the machine is impulsive by nature (gearbox, reciprocating or impact "
            f"machine), repeat the request with {OVERRIDE_FIELD}: true"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary for the manifest (medians and limits dimensionless)."""
        return {
            "rule": "median over the windows of each axis' excess kurtosis and envelope SNR vs its limit",
            "n": self.n,
            "ok": self.ok,
            "found": [i.name for i in self.found],
            "accepted_on_request": self.accepted_on_request,
            "indicators": [i.to_dict() for i in self.indicators],
            "message": self.message(),
        }


Judged = tuple[str, float, tuple[float, float]]


def _found_text(found: Sequence[Indicator]) -> str:
    """The found indicators, the healthy range said once per kind (kurtosis, envelope)."""
    parts = []
    for kind in ("kurtosis", "envelope"):
        items = [i for i in found if i.kind == kind]
        if items:
            lo, hi = items[0].healthy
            parts.append(
                "; ".join(i.text(healthy=False) for i in items) + f" (healthy bearings: {lo:.2f}..{hi:.2f})"
            )
    return "; ".join(parts)


class FaultSignatureFound(CalibrationError):
    """The calibration data shows a bearing-fault signature and the request did not accept it."""

    def __init__(self, signature: FaultSignature) -> None:
        self.signature = signature
        super().__init__(signature.message())


Columns = dict[str, NDArray[np.float64]]


def _columns(X: Any, names: Any, extras: Mapping[str, Any] | None) -> tuple[int, Columns]:
    """``(n, {name: values[n]})`` of the columns and extras; NaN allowed (a window without the extra)."""
    A = np.asarray(X, dtype=np.float64)
    if A.ndim != 2:
        raise ValueError(f"X: expected a 2-D matrix [n, d], got shape {A.shape}")
    nm = as_names(names, A.shape[1])
    cols = {name: A[:, j] for j, name in enumerate(nm)}
    for name, values in (extras or {}).items():
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        if v.shape[0] != A.shape[0]:
            raise ValueError(f"extras[{name!r}]: {v.shape[0]} values for {A.shape[0]} rows")
        cols.setdefault(name, v)
    return A.shape[0], cols


def _judged(name: str, kurtosis_limit: float, snr_limit: float) -> Judged | None:
    """``(label, limit, healthy range)`` of a judged column, ``None`` for the others."""
    if name.endswith(KURTOSIS_SUFFIX) and len(name) > len(KURTOSIS_SUFFIX):
        return f"excess kurtosis of axis {name[: -len(KURTOSIS_SUFFIX)]}", kurtosis_limit, HEALTHY_KURTOSIS
    m = ENVELOPE_SNR.match(name)
    if m:
        return f"envelope SNR at {DEFECT_WORDS[m.group(1)]}", snr_limit, HEALTHY_ENVELOPE_SNR
    return None


def fault_signature(
    X: Any,
    names: Sequence[str],
    *,
    extras: Mapping[str, Any] | None = None,
    accept: bool = False,
    kurtosis_limit: float = KURTOSIS_LIMIT,
    snr_limit: float = ENVELOPE_SNR_LIMIT,
) -> FaultSignature:
    """Judge the vibration feature rows ``X[n, d]`` (columns ``names``, e.g. ``x_rms .. z_clearance_factor``)
    for a bearing-fault signature (module doc): the median over the rows of every ``{axis}_kurtosis``
    column against ``kurtosis_limit`` and of every ``env_{d}_snr`` column or extra (``extras``: name →
    one value per row, NaN where a row lacks it) against ``snr_limit``. NaN values are left out of a
    median; an envelope SNR that is 0 in every row (the band cannot carry f_d) is not judged.
    ``accept``: the request's ``accept_fault_signature`` (a found signature becomes a note).
    """
    kurtosis_limit = positive(kurtosis_limit, "kurtosis_limit")
    snr_limit = positive(snr_limit, "snr_limit")
    n, cols = _columns(X, names, extras)
    out = []
    for name, values in cols.items():
        judged = _judged(name, kurtosis_limit, snr_limit)
        finite = values[np.isfinite(values)]
        if judged is None or finite.size == 0 or (name.startswith("env_") and not finite.any()):
            continue
        label, limit, healthy = judged
        out.append(Indicator(name, label, float(np.median(finite)), limit, healthy, int(finite.size)))
    return FaultSignature(n=n, indicators=tuple(out), override=bool(accept))
