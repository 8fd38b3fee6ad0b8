"""Input checks shared by the learning modules (precise ``ValueError`` messages, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray


def as_matrix(
    X: Any, name: str = "X", *, min_rows: int = 1, n_features: int | None = None, dtype: Any = np.float64
) -> NDArray[Any]:
    """Return ``X`` as a finite 2-D array ``[n, d]`` of ``dtype``; raise ``ValueError`` otherwise."""
    try:
        arr = np.asarray(X, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected a numeric matrix [n, d], got {type(X).__name__} ({exc})") from exc
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D matrix [n, d], got shape {arr.shape}")
    n, d = arr.shape
    if d == 0:
        raise ValueError(f"{name}: has no feature columns (shape {arr.shape})")
    if n < min_rows:
        raise ValueError(f"{name}: needs at least {min_rows} row(s), got {n}")
    if n_features is not None and d != n_features:
        raise ValueError(f"{name}: expected {n_features} feature column(s), got {d}")
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        raise ValueError(
            f"{name}: {int((~finite).sum())} non-finite value(s) (NaN/inf), "
            f"first at row {bad[0]}, column {bad[1]}"
        )
    return arr


def as_names(names: Any, d: int, name: str = "names") -> list[str]:
    """Return ``names`` as a list of ``d`` distinct non-empty strings; raise ``ValueError`` otherwise."""
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise ValueError(f"{name}: expected a sequence of {d} feature names, got {type(names).__name__}")
    out = list(names)
    if len(out) != d:
        raise ValueError(f"{name}: {len(out)} feature names for {d} column(s)")
    for i, n in enumerate(out):
        if not isinstance(n, str) or not n:
            raise ValueError(f"{name}[{i}]: feature names must be non-empty strings, got {n!r}")
    if len(set(out)) != len(out):
        dup = sorted({n for n in out if out.count(n) > 1})
        raise ValueError(f"{name}: duplicate feature names {dup}")
    return out


def positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a finite float > 0 (or >= 0 with ``allow_zero``)."""
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected a number, got a bool")
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected a number, got {value!r}") from exc
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name}: must be a finite number {'>=' if allow_zero else '>'} 0, got {value!r}")
    return v


def count(value: Any, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")
    return int(value)


def fraction(value: Any, name: str, *, open_low: bool = True, high: float = 1.0) -> float:
    """Return ``value`` as a float in (0, high] (or [0, high] with ``open_low=False``)."""
    v = positive(value, name, allow_zero=not open_low)
    if v > high:
        raise ValueError(f"{name}: must be <= {high}, got {value!r}")
    return v
