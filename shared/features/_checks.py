"""Input checks shared by the feature modules (private).

Every public feature function validates its inputs with these helpers *before* computing anything,
so bad input fails with a ``ValueError`` that names the argument and the problem.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: Largest accepted |value| of a signal sample. Far above any physical accelerometer, voltage or
#: current range; keeps squared and fourth-power quantities finite in float64.
MAX_ABS_VALUE = 1e100


def as_signal(x: Any, name: str, *, min_samples: int, min_ndim: int = 1) -> NDArray[np.float64]:
    """Return ``x`` as a float64 array after checking it.

    Checks, in order: real numeric dtype (bool, complex, object and string arrays are refused);
    at least ``min_ndim`` dimensions; at least ``min_samples`` samples along the last axis; no
    empty batch axis; every value finite and ``|value| <= MAX_ABS_VALUE``.
    """
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:  # ragged nested sequences
        raise ValueError(f"{name}: not a rectangular numeric array ({exc})") from None
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise ValueError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    if arr.ndim < min_ndim:
        raise ValueError(f"{name}: expected at least {min_ndim} dimension(s), got shape {arr.shape}")
    n = arr.shape[-1]
    if n < min_samples:
        raise ValueError(f"{name}: too short: {n} samples on the last axis, need at least {min_samples}")
    if arr.size == 0:
        raise ValueError(f"{name}: empty array of shape {arr.shape}")
    out = arr.astype(np.float64, copy=False)
    finite = np.isfinite(out)
    if not finite.all():
        bad = int(np.count_nonzero(~finite))
        first = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(f"{name}: {bad} non-finite value(s) (NaN or inf), first at index {first}")
    peak = float(np.max(np.abs(out)))
    if peak > MAX_ABS_VALUE:
        raise ValueError(f"{name}: |value| up to {peak:g} exceeds the supported {MAX_ABS_VALUE:g}")
    return out


def as_positive_float(value: Any, name: str) -> float:
    """Return ``value`` as a finite float > 0, or raise ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name}: expected a number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name}: must be finite, got {v}")
    if v <= 0.0:
        raise ValueError(f"{name}: must be > 0, got {v}")
    return v


def as_finite_float(value: Any, name: str) -> float:
    """Return ``value`` as a finite float, or raise ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name}: expected a number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name}: must be finite, got {v}")
    return v


def as_count(value: Any, name: str, *, minimum: int) -> int:
    """Return ``value`` as an int >= ``minimum`` (bools and non-integral numbers are refused)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name}: expected an integer, got {type(value).__name__}")
    v = int(value)
    if v < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {v}")
    return v
