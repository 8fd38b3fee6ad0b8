"""The autoencoder's input scaler: per-feature mean and a floored spread (pure numpy, no I/O).

Each raw feature x_j (in its own unit: g, g², Hz, dimensionless, ...) is standardised inside the
exported graph as ``z_j = clip((x_j − mean_j) / s_j, −clip, +clip)``. ``mean_j`` and ``std_j`` are the
training mean and population standard deviation (ddof = 0); the divisor ``s_j`` is ``std_j`` with a
floor, so a feature that barely varies in healthy data cannot turn noise-level drift into huge z:

* ``relative`` (default)::

      s_j = max(std_j, rel_floor · scale_j, abs_eps),   scale_j = median_i |x_ij|

  The floor follows each feature's own magnitude (``scale_j``, the median absolute value of the
  training rows, in the feature's unit), so the model keeps seeing a relative change of any feature,
  whatever its unit: a feature with std 0.0018 g around 0.5 g is divided by 0.025 (= 0.05 · 0.5), not
  by 0.1, and a 2× change of it is 20 z-units (clipped at 5), not 5. ``rel_floor`` = 0.05 (one floored
  σ is at least 5 % of the level) rests on measurements: the CWRU healthy record's level features
  drift by +2.3 % (RMS) and +4.7 % (variance) between its first 3 s and its last 2 s (12 kHz, whole
  windows), so 5 % keeps that drift within one floored σ; on the 128-sample frames the live model
  trains on, real features spread more than that (FEMTO early life and CWRU normal: coefficient of
  variation ≥ 0.026 (shape factor), ≥ 0.06 for the others), so the floor raises only the shape
  factors there. Swept over 0.02/0.05/0.1/0.2 (``benchmarks/scaler_sensitivity.py``, and
  ``scripts/evaluate.py``), 0.05 had the fewest first-half false alarms on the six FEMTO bearings (2
  episodes; absolute 9) and kept the CWRU 12 kHz live rule at 0.966 with 0/22. ``abs_eps`` (1e-6
  feature units) only guards features whose scale is 0 (identically 0 in healthy data): float32, in
  which the graph computes, resolves 1.2e-7 of a value of order 1, so its rounding noise stays below
  0.12 z-units there.
* ``absolute`` (the published FlowFuse/Node-RED pipeline's ``MIN_STD``; kept for interoperability:
  models imported from and exported to its three-file form)::

      s_j = max(std_j, min_std)      (min_std = 0.1 feature units)

  A feature whose spread is far below 0.1 units (RMS 0.07 g with std 0.005 g) is divided by 0.1, so
  it must move 20× further than its own spread to look the same to the model.

The manifest records which floor was used, its parameters, ``std_j`` before the floor (``raw_std``),
``scale_j`` (relative only) and the floored divisor ``s_j`` (``std``). Entries written before the floor
was recorded were trained with the absolute floor: :func:`floor_of` reads them as ``absolute``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ._checks import as_matrix, positive

ScalerFloor = Literal["relative", "absolute"]
#: The floors, default first.
SCALER_FLOORS: tuple[ScalerFloor, ...] = ("relative", "absolute")
#: Default relative floor: one floored σ is at least this fraction of the feature's median |x|.
REL_FLOOR = 0.05
#: Smallest divisor of the relative floor (feature units): only features whose scale is 0 reach it.
ABS_EPS = 1e-6
#: The published pipeline's fixed floor (feature units).
MIN_STD = 0.1


def check_floor(floor: Any) -> ScalerFloor:
    """Return ``floor`` if it names a scaler floor; ``ValueError`` naming the choices otherwise."""
    if floor not in SCALER_FLOORS:
        raise ValueError(f"scaler_floor: expected one of {', '.join(SCALER_FLOORS)}, got {floor!r}")
    return floor  # type: ignore[no-any-return]


def floor_of(scaler: Mapping[str, Any] | None) -> ScalerFloor:
    """The floor a manifest's ``scaler`` block was trained with: its ``floor``, or ``absolute`` when the
    block predates the field (every model trained before it used the absolute ``min_std`` floor)."""
    return check_floor((scaler or {}).get("floor") or "absolute")


@dataclass(frozen=True)
class Scaler:
    """A fitted scaler: ``mean``, ``raw_std`` (population std), ``scale`` (median |x|) and the divisor
    ``std`` (floored), all ``[d]`` in each feature's unit; ``floor`` and the parameters it used."""

    mean: NDArray[np.float64]
    raw_std: NDArray[np.float64]
    scale: NDArray[np.float64]
    std: NDArray[np.float64]
    floor: ScalerFloor
    min_std: float
    rel_floor: float
    abs_eps: float

    def info(self) -> dict[str, Any]:
        """The manifest's fields for this scaler (JSON-ready; ``mean`` and ``clip`` are the caller's): the
        floored ``std``, the floor, its parameters, the unfloored ``raw_std`` per feature, ``scale``
        (median |x|) with the relative floor, and the rule as ``formula``."""
        out: dict[str, Any] = {
            "std": [float(v) for v in self.std],
            "floor": self.floor,
            "min_std": self.min_std,
            "raw_std": [float(v) for v in self.raw_std],
        }
        if self.floor == "relative":
            out |= {"rel_floor": self.rel_floor, "abs_eps": self.abs_eps}
            out["scale"] = [float(v) for v in self.scale]
        return out | {"formula": self.formula()}

    def formula(self) -> str:
        """The divisor's rule in one line (for the manifest)."""
        if self.floor == "relative":
            return (
                "z = clip((x - mean) / std, -clip, clip); std = max(raw_std, rel_floor * scale, abs_eps), "
                "scale = median |x| of the training rows"
            )
        return "z = clip((x - mean) / std, -clip, clip); std = max(raw_std, min_std)"


def floored_std(
    raw_std: Any,
    scale: Any,
    floor: ScalerFloor = "relative",
    *,
    min_std: float = MIN_STD,
    rel_floor: float = REL_FLOOR,
    abs_eps: float = ABS_EPS,
) -> NDArray[np.float64]:
    """The divisor per feature: ``max(raw_std, rel_floor·scale, abs_eps)`` (relative) or
    ``max(raw_std, min_std)`` (absolute); inputs ``[d]`` in feature units (≥ 0), output ``[d]``."""
    s = as_matrix(np.atleast_1d(raw_std)[None, :], "raw_std").reshape(-1)
    c = as_matrix(np.atleast_1d(scale)[None, :], "scale", n_features=s.size).reshape(-1)
    if (s < 0).any() or (c < 0).any():
        raise ValueError("raw_std and scale: must be >= 0 (a spread and a magnitude)")
    if check_floor(floor) == "absolute":
        return np.maximum(s, positive(min_std, "min_std"))
    rel = positive(rel_floor, "rel_floor")
    return np.maximum(np.maximum(s, rel * c), positive(abs_eps, "abs_eps"))


def fit_scaler(
    X: Any,
    floor: ScalerFloor = "relative",
    *,
    min_std: float = MIN_STD,
    rel_floor: float = REL_FLOOR,
    abs_eps: float = ABS_EPS,
) -> Scaler:
    """Fit the scaler on training rows ``X[n, d]`` (n ≥ 1, finite): column means, population stds,
    median |x| and the floored divisor (:func:`floored_std`; module docstring for the rule and units)."""
    A = as_matrix(X, dtype=np.float64)
    raw_std = A.std(axis=0)
    scale = np.median(np.abs(A), axis=0)
    std = floored_std(raw_std, scale, floor, min_std=min_std, rel_floor=rel_floor, abs_eps=abs_eps)
    return Scaler(
        mean=A.mean(axis=0),
        raw_std=raw_std,
        scale=scale,
        std=std,
        floor=floor,
        min_std=float(min_std),
        rel_floor=float(rel_floor),
        abs_eps=float(abs_eps),
    )
