"""Calibration baselines as the health stage reads them: statistics per feature name, checked (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = ["Baseline", "check_baseline"]

Baseline = Mapping[str, Mapping[str, float]]


def check_baseline(baseline: Baseline | None) -> dict[str, dict[str, float]] | None:
    """Baseline statistics per feature name, ``{"mean", "std", "min"?, "max"?}``, as floats (std >= 0)."""
    if baseline is None:
        return None
    if not isinstance(baseline, Mapping):
        raise ValueError(f"baseline must be a mapping name -> stats, got {type(baseline).__name__}")
    out: dict[str, dict[str, float]] = {}
    for name, stats in baseline.items():
        if not isinstance(stats, Mapping) or "mean" not in stats or "std" not in stats:
            raise ValueError(f"baseline of {name!r} must have 'mean' and 'std'")
        entry: dict[str, float] = {}
        for k, v in stats.items():
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(float(v)):
                raise ValueError(f"baseline {k} of {name!r} must be a finite number, got {v!r}")
            entry[str(k)] = float(v)
        if entry["std"] < 0:
            raise ValueError(f"baseline std of {name!r} must be >= 0, got {entry['std']}")
        out[str(name)] = entry
    return out
