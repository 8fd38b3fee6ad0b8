"""Calibration-data screening: flag the rows beyond the 3σ rule with robust statistics (pure numpy).

The calibration guide's rule: values beyond 3σ are outliers, and calibration data of which more than
5 % is flagged is rejected as contaminated. Applied with the plain mean and standard deviation the
rule defeats itself: the faulty rows it should find inflate σ (a 10-minute window holding 4 % voltage
spikes of 280-330 V raised the voltage σ from 1.9 to 5.2 V) and then hide behind it. Here:

* centre and scale per column are the median and the reweighted, per-side MAD scale of
  :func:`shared.learning.baseline.robust_scales`: a fault cluster cannot move them;
* a row is *flagged* when any of its d values lies more than c_d robust σ from the median, with c_d
  the family-wise 3σ cut-off of :func:`shared.learning.baseline.familywise_cutoff` (a healthy
  Gaussian row is flagged with the probability of one value beyond 3σ, 0.27 %, whatever d is:
  c_1 = 3, c_4 = 3.40 for the four reading signals, c_33 = 3.94);
* more than ``max_fraction`` (5 %) of the rows flagged → the data is rejected
  (``Screening.ok`` is False); otherwise the flagged rows are **excluded** and the models, baselines
  and statistics are built from the rest, and the reply and manifest say how many were excluded
  and which columns put them beyond the cut-off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._checks import as_matrix, as_names, fraction, positive
from .baseline import familywise_cutoff, robust_scales
from .calibration import CalibrationError


class ContaminatedData(CalibrationError):
    """More than the allowed fraction of the calibration data lies beyond the robust 3σ rule."""

    def __init__(self, screening: Screening) -> None:
        self.screening = screening
        super().__init__(screening.message())


@dataclass(frozen=True)
class Screening:
    """Outcome of :func:`screen` over ``n`` rows of ``len(names)`` columns.

    ``flagged[i]``: row i lies beyond ``cutoff`` robust σ in at least one column; ``per_column[name]``:
    how many rows that column puts beyond the cut-off (a row can count in several columns);
    ``center``/``scale_low``/``scale_high``: per-column median and robust scales (column units;
    ``inf`` = a side that cannot be judged, see ``robust_scales``).
    """

    what: str
    names: tuple[str, ...]
    flagged: NDArray[np.bool_]
    per_column: dict[str, int]
    cutoff: float
    sigma: float
    max_fraction: float
    center: tuple[float, ...]
    scale_low: tuple[float, ...]
    scale_high: tuple[float, ...]

    @property
    def n(self) -> int:
        return int(self.flagged.shape[0])

    @property
    def n_flagged(self) -> int:
        return int(self.flagged.sum())

    @property
    def fraction(self) -> float:
        """Flagged rows / rows, 0..1."""
        return self.n_flagged / self.n

    @property
    def ok(self) -> bool:
        """Not more than ``max_fraction`` of the rows flagged."""
        return self.fraction <= self.max_fraction

    def columns_text(self) -> str:
        """``voltage_v 12, power_factor 3`` (columns with flagged rows, most first)."""
        items = sorted(((k, v) for k, v in self.per_column.items() if v), key=lambda kv: (-kv[1], kv[0]))
        return ", ".join(f"{k} {v}" for k, v in items)

    def message(self) -> str:
        """The operator's sentence: the rejection (``Baseline validation failed: 12.3% outliers ...``),
        the exclusion, or that nothing was flagged."""
        pct = f"{100.0 * self.fraction:.1f}%"
        rule = f"beyond 3σ (robust median/MAD σ, {self.cutoff:.2f}σ per column for {len(self.names)} columns)"
        detail = f"{self.n_flagged} of {self.n} {self.what} {rule}"
        if not self.ok:
            return (
                f"Baseline validation failed: {pct} outliers ({detail}: {self.columns_text()}; limit "
                f"{100.0 * self.max_fraction:.1f}%): the data looks contaminated; calibrate on healthy data"
            )
        if self.n_flagged:
            return (
                f"Excluded {detail} from training ({self.columns_text()}); {pct} outliers, limit "
                f"{100.0 * self.max_fraction:.1f}%"
            )
        return f"Baseline validated: 0 of {self.n} {self.what} {rule}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary for the manifest (fractions 0..1, σ units for the cut-off)."""
        return {
            "rule": "robust 3-sigma: |x - median| > cutoff * robust sigma in any column; "
            "reject above max_fraction, else exclude the flagged rows",
            "what": self.what,
            "n": self.n,
            "n_flagged": self.n_flagged,
            "excluded": self.n_flagged if self.ok else 0,
            "fraction": self.fraction,
            "max_fraction": self.max_fraction,
            "ok": self.ok,
            "sigma": self.sigma,
            "cutoff_sigma": self.cutoff,
            "per_column": dict(self.per_column),
            "center": dict(zip(self.names, self.center, strict=True)),
            "scale_low": {k: _finite(v) for k, v in zip(self.names, self.scale_low, strict=True)},
            "scale_high": {k: _finite(v) for k, v in zip(self.names, self.scale_high, strict=True)},
            "message": self.message(),
        }


def _finite(v: float) -> float | None:
    return v if np.isfinite(v) else None


def screen(
    X: Any,
    names: Any = None,
    *,
    what: str = "rows",
    sigma: float = 3.0,
    max_fraction: float = 0.05,
    min_scale: float = 1e-9,
) -> Screening:
    """Flag the rows of ``X[n, d]`` (n ≥ 2) beyond the robust family-wise ``sigma`` rule (module doc).

    |z_ij| = |x_ij − median_j| / s_j with s_j the lower or upper robust scale of column j (the side
    x_ij lies on); row i is flagged when max_j |z_ij| > ``familywise_cutoff(sigma, d)``. ``what``
    names the rows in messages ("readings", "windows").
    """
    A = as_matrix(X, min_rows=2)
    n, d = A.shape
    nm = as_names(names, d) if names is not None else [f"f{j}" for j in range(d)]
    sigma = positive(sigma, "sigma")
    max_fraction = fraction(max_fraction, "max_fraction", open_low=False)
    med, lo, hi = robust_scales(A, min_scale=min_scale)
    dev = A - med
    absz = np.where(dev > 0, dev / hi, -dev / lo)
    cutoff = familywise_cutoff(sigma, d)
    beyond = absz > cutoff
    return Screening(
        what=what,
        names=tuple(nm),
        flagged=beyond.any(axis=1),
        per_column={name: int(beyond[:, j].sum()) for j, name in enumerate(nm)},
        cutoff=cutoff,
        sigma=sigma,
        max_fraction=max_fraction,
        center=tuple(float(v) for v in med),
        scale_low=tuple(float(v) for v in lo),
        scale_high=tuple(float(v) for v in hi),
    )
