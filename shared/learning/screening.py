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

Readings use the per-column rule (:func:`screen`). Vibration windows for the autoencoder use
:func:`screen_windows`: real healthy vibration is heavy-tailed (impacts) and drifts (run-in, wear-in),
and the per-column rule rejected 7 of 18 real healthy sets (FEMTO early life, CWRU normal); windows are
judged on their energy (ln RMS) against their neighbours and against the whole calibration instead.

*Frames* (:mod:`shared.features.frames`: each long window split into k consecutive frames, rows in
time order, what the autoencoder trains on): ``screen_windows(..., frames_per_window=k)`` takes the
running median over the frames of the same 21 windows (half-width 10·k rows), so a faulty window's k
frames are a short block against it, not a level the median follows. Measured
(``benchmarks.bench_calibration_real``): FEMTO Bearing1_2's first 44 snapshots hold 5 windows at
×1.22-1.53 their neighbours' RMS (impacts), 11 % of the windows → rejected when whole windows are
screened; 1.1 % of its 880 frames → accepted, those frames excluded.

Slow drift (run-in, wear-in, temperature) is not an outlier under either rule, without detrending
(``tests/test_fault_signature_drift.py``): a linear trend of any size spreads a column evenly, so its
ends lie ≤ 1.8 robust σ from the median; a window's energy is compared with the running median of its
21 neighbours, which follows a trend. Accepted with nothing flagged: window RMS rising ×2 or falling
×0.5 over the set, a warm-up ×1.6 with a time constant of 20 % of the set, a ±20 % temperature cycle;
readings drifting 10 σ (225 → 235 V with 1 V noise, every signal at once). Spikes and jumps on top of
the drift are still found: 8.3 % spikes → rejected, 3.3 % → exactly those rows excluded and stated, a
×3 (windows) or ×2 (current) jump over the last 8 % → rejected. Limit: a *fast* transient is not slow
drift — window energy ×3 decaying with a time constant of 3 % of the set has its first windows
excluded (stated); readings with such a start-up transient in 10 %+ of the rows can be rejected:
calibrate after the machine has settled. Whether the *whole* set is a fault recording is judged by
:mod:`shared.learning.fault_signature`, not here (relative rules cannot see it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._checks import as_matrix, as_names, count, fraction, positive
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
    #: How a row is judged, as the messages say it (``None``: the per-column rule of :func:`screen`).
    rule: str | None = None

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
        rule = self.rule or (
            f"beyond 3σ (robust median/MAD σ, {self.cutoff:.2f}σ per column for {len(self.names)} columns)"
        )
        detail = f"{self.n_flagged} of {self.n} {self.what} {rule}"
        if not self.ok:
            return (
                f"Baseline validation failed: {pct} outliers ({detail}: {self.columns_text()}; limit "
                f"{100.0 * self.max_fraction:.1f}%): the data looks contaminated; calibrate on healthy data"
            )
        if self.n_flagged:
            return (
                f"Excluded {detail} from training ({self.columns_text()}; trained on the other "
                f"{self.n - self.n_flagged}); {pct} outliers, limit {100.0 * self.max_fraction:.1f}%"
            )
        return f"Baseline validated: 0 of {self.n} {self.what} {rule}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary for the manifest (fractions 0..1, σ units for the cut-off)."""
        return {
            "rule": (self.rule or "|x - median| > cutoff * robust sigma in any column")
            + "; reject above max_fraction, else exclude the flagged rows",
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


#: Vibration windows are judged on their energy: the RMS of each axis, features named ``<axis>_rms`` (g).
ENERGY_SUFFIX = "_rms"
#: Half-width, in windows, of the centred running median a window's level is compared with (21 windows).
LOCAL_HALF_WIDTH = 10
#: Least RMS ratio to the running median of the neighbours that can count as an outlier (×1.2, +1.6 dB).
LOCAL_MIN_RATIO = 1.2
#: Least RMS ratio to the median of the whole calibration that can count as an outlier (×2, +6 dB).
GLOBAL_MIN_RATIO = 2.0
#: RMS below this (g) is taken as this, so a dead (all-zero) window has a finite log level.
RMS_FLOOR_G = 1e-9


def running_median(v: Any, half_width: int) -> NDArray[np.float64]:
    """Centred running median of the columns of ``v[n, k]``: row i is the median of rows
    ``max(0, i − h) .. min(n − 1, i + h)`` (fewer rows at the ends; same unit as ``v``)."""
    A = np.asarray(v, dtype=np.float64)
    pad = np.pad(A, ((half_width, half_width), (0, 0)), constant_values=np.nan)
    win = np.lib.stride_tricks.sliding_window_view(pad, 2 * half_width + 1, axis=0)  # [n, k, 2h+1]
    return np.nanmedian(win, axis=-1)


def _side_z(dev: NDArray[np.float64]) -> NDArray[np.float64]:
    """|dev − median| in robust σ of its own side, per column (``robust_scales``)."""
    med, lo, hi = robust_scales(dev)
    d = dev - med
    return np.where(d > 0, d / hi, -d / lo)


def screen_windows(
    X: Any,
    names: Any,
    *,
    what: str = "vibration windows",
    sigma: float = 3.0,
    max_fraction: float = 0.05,
    half_width: int = LOCAL_HALF_WIDTH,
    frames_per_window: int = 1,
) -> Screening:
    """Flag the vibration windows ``X[n, d]`` (rows in time order) whose energy is out of line.

    Real healthy vibration features are heavy-tailed and drift (measured on FEMTO early life: isolated
    impacts push kurtosis to 300 and crest factor far beyond any σ rule in up to 36 % of the windows;
    run-in and slow drift move the RMS by up to 1.7× within 300 snapshots), so the per-column rule of
    :func:`screen` rejected healthy data. Windows are judged on ℓ = ln(RMS) of each axis (columns
    ``<axis>_rms``) with two tests, each a robust ``sigma`` rule (per-side σ, ``robust_scales``) with the
    family-wise cut-off c = ``familywise_cutoff(sigma, 2·axes)`` (3.20σ for one axis):

    * *local*: r = ℓ − running median of ℓ over the 2h + 1 = 21 neighbouring windows; flagged when
      |r| is beyond c robust σ of r **and** the RMS differs from the running median by more than
      ×1.2 (``LOCAL_MIN_RATIO``). Catches isolated faulty windows; a median filter keeps steps and
      follows drift, so run-in and slow change are not outliers;
    * *global*: ℓ − median ℓ beyond c robust σ **and** more than ×2 (``GLOBAL_MIN_RATIO``) from the
      median RMS. Catches a block of faulty windows longer than the median filter follows (h + 1).

    A window is flagged when any axis fails either test. Shape features (kurtosis, crest, skewness) are
    not screened: on real healthy data they cannot tell impacts from faults. Without ``*_rms`` columns
    the per-column rule :func:`screen` applies. ``center`` is the median RMS (g) per axis,
    ``scale_low``/``scale_high`` the robust σ of ln RMS (dimensionless, ≈ relative spread).

    ``frames_per_window`` = k > 1: the rows are frames, k per window (module doc, *Frames*).
    """
    A = as_matrix(X, min_rows=2)
    nm = as_names(names, A.shape[1])
    cols = [j for j, name in enumerate(nm) if name.endswith(ENERGY_SUFFIX)]
    if not cols:
        return screen(A, nm, what=what, sigma=sigma, max_fraction=max_fraction)
    sigma = positive(sigma, "sigma")
    max_fraction = fraction(max_fraction, "max_fraction", open_low=False)
    level = np.log(np.maximum(A[:, cols], RMS_FLOOR_G))
    cutoff = familywise_cutoff(sigma, 2 * len(cols))
    resid = level - running_median(level, half_width * count(frames_per_window, "frames_per_window"))
    local = (_side_z(resid) > cutoff) & (np.abs(resid) > np.log(LOCAL_MIN_RATIO))
    med, lo, hi = robust_scales(level)
    glob = (_side_z(level) > cutoff) & (np.abs(level - med) > np.log(GLOBAL_MIN_RATIO))
    beyond = local | glob
    return Screening(
        what=what,
        names=tuple(nm[j] for j in cols),
        flagged=beyond.any(axis=1),
        per_column={nm[j]: int(beyond[:, i].sum()) for i, j in enumerate(cols)},
        cutoff=cutoff,
        sigma=sigma,
        max_fraction=max_fraction,
        center=tuple(float(v) for v in np.exp(med)),
        scale_low=tuple(float(v) for v in lo),
        scale_high=tuple(float(v) for v in hi),
        rule=_windows_rule(cutoff, len(cols), half_width),
    )


def _windows_rule(cutoff: float, n_axes: int, half_width: int) -> str:
    """How :func:`screen_windows` judges a window, for the messages."""
    axes = f"{n_axes} ax{'is' if n_axes == 1 else 'es'}"
    return (
        f"whose RMS is beyond 3σ (robust σ of ln RMS, {cutoff:.2f}σ for {axes} × 2 tests) and off by more "
        f"than ×{LOCAL_MIN_RATIO:g} from the running median of {2 * half_width + 1} windows or "
        f"×{GLOBAL_MIN_RATIO:g} from the median of all"
    )
