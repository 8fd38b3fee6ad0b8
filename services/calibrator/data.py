"""Collect calibration data from the store (the only I/O here is through the Store interface).

The lookback window ends at the asset's newest stored data point, not at the wall clock, so
replayed history and accelerated timestamps calibrate the same way as live data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from shared.messages import SIGNALS
from shared.records import features_measurement, point_to_features
from shared.store import Point, Store

DATASET_FOR_KIND = {"legacy": "legacy", "batch": "batch", "vibration": "autoencoder"}


@dataclass
class Collected:
    asset_id: str
    lookback_minutes: float
    end_ns: int | None
    counts: dict[str, int] = field(default_factory=dict)  # feature kind -> vectors found
    datasets: dict[str, tuple[NDArray[np.float64], list[str]]] = field(default_factory=dict)
    signal_baseline: dict[str, dict[str, float]] = field(default_factory=dict)
    #: Raw readings [n, 4] (voltage V, current A, power factor, vibration g), for validation.
    signals: NDArray[np.float64] | None = None
    #: Data time covered by the readings, seconds.
    reading_span_s: float = 0.0

    @property
    def readings(self) -> int:
        return self.counts.get("readings", 0)

    @property
    def windows(self) -> int:
        return self.counts.get("vibration", 0)


def _matrix(points: list[Point]) -> tuple[NDArray[np.float64], list[str]] | None:
    """Stack feature vectors that share the newest vector's feature names (older layouts are skipped)."""
    if not points:
        return None
    names, _, _ = point_to_features(points[-1])
    rows = []
    for p in points:
        n, v, _ = point_to_features(p)
        if n == names:
            rows.append(v)
    return np.asarray(rows, dtype=np.float64), list(names)


def newest_ns(store: Store, asset_id: str) -> int | None:
    latest = [
        pts[-1].ts_ns
        for m in ("readings", features_measurement("vibration"))
        if (pts := store.query(m, asset_id, limit=1, newest=True))
    ]
    return max(latest) if latest else None


def collect(store: Store, asset_id: str, lookback_minutes: float) -> Collected:
    end = newest_ns(store, asset_id)
    out = Collected(asset_id, lookback_minutes, end)
    if end is None:
        return out
    start = end - int(lookback_minutes * 60e9)
    for kind in ("legacy", "batch", "vibration"):
        pts = store.query(features_measurement(kind), asset_id, start_ns=start, end_ns=end + 1)
        out.counts[kind] = len(pts)
        mat = _matrix(pts)
        if mat is not None:
            out.datasets[DATASET_FOR_KIND[kind]] = mat
    readings = store.query("readings", asset_id, start_ns=start, end_ns=end + 1)
    out.counts["readings"] = len(readings)
    if readings:
        out.reading_span_s = (readings[-1].ts_ns - readings[0].ts_ns) / 1e9
    rows = [[float(p.fields[s]) for s in SIGNALS] for p in readings if all(s in p.fields for s in SIGNALS)]
    if rows:
        out.signals = np.asarray(rows, dtype=np.float64)
        for j, s in enumerate(SIGNALS):
            v = out.signals[:, j]
            out.signal_baseline[s] = {
                "mean": float(v.mean()),
                "std": float(v.std()),
                "min": float(v.min()),
                "max": float(v.max()),
            }
    return out
