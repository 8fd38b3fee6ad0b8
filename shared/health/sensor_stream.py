"""Sensor health over a stream in data time: the per-asset state of the detectors of
:mod:`shared.health.sensor` (stuck, dropout, jump; the window stream's reference rate and length) and
the asset's sensor status (pure: no I/O, time passed in).

:class:`AssetSensors` takes an asset's readings and windows in data order and says when its status
changed: ``fault`` from the first finding on; back to ``ok`` once every finding has been absent for
:attr:`~shared.health.sensor.SensorParams.clear_after` consecutive updates of its stream (a dropout or a
jump, seen on one update, therefore faults the status for that many updates).
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from shared.health.sensor import (
    SensorFinding,
    SensorParams,
    check_window,
    finite_time,
    rate_findings,
    robust_spread,
    window_findings,
)

Stream = Literal["reading", "window"]
Key = tuple[str, str, str]


@dataclass
class Intervals:
    """Recent positive intervals between a stream's updates; ``dropout`` on a gap far beyond them."""

    params: SensorParams
    last_ts: float | None = None
    recent: deque[float] = field(default_factory=deque)

    def update(self, ts: float, signal: str) -> list[SensorFinding]:
        p, out = self.params, []
        if self.last_ts is not None and ts > self.last_ts:
            gap = ts - self.last_ts
            if len(self.recent) >= p.dropout_min_intervals:
                median = float(np.median(np.fromiter(self.recent, dtype=np.float64)))
                if gap > p.dropout_factor * median and gap > p.dropout_min_gap_s:
                    reason = (
                        f"Dropout: no {signal} for {gap:.3g} s, {gap / median:.1f} x the median interval "
                        f"of {median:.3g} s"
                    )
                    out.append(
                        SensorFinding("dropout", signal, ts, reason, {"gap_s": gap, "median_s": median})
                    )
            self.recent.append(gap)
            while len(self.recent) > p.history:
                self.recent.popleft()
        if self.last_ts is None or ts > self.last_ts:
            self.last_ts = ts
        return out


@dataclass
class StreamMonitor:
    """Stuck values, dropouts and single-sample jumps of a stream of readings (named signals)."""

    params: SensorParams
    names: tuple[str, ...] = ()
    intervals: Intervals | None = None
    history: deque[tuple[float, NDArray[np.float64]]] = field(default_factory=deque)
    run: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    run_since: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

    def update(self, ts: float, values: Mapping[str, float]) -> list[SensorFinding]:
        ts = finite_time(ts)
        row = self._row(values)
        out = (self.intervals or self._intervals()).update(ts, "reading")
        out += self._stuck(ts, row)
        out += self._jump(row)
        self.history.append((ts, row))
        while len(self.history) > self.params.history + 1:
            self.history.popleft()
        return out

    def _intervals(self) -> Intervals:
        self.intervals = Intervals(self.params)
        return self.intervals

    def _row(self, values: Mapping[str, float]) -> NDArray[np.float64]:
        if not self.names:
            self.names = tuple(values)
            self.run = np.zeros(len(self.names), dtype=np.int64)
            self.run_since = np.zeros(len(self.names))
        if set(values) != set(self.names):
            raise ValueError(f"signals {sorted(values)} differ from the stream's {sorted(self.names)}")
        row = np.array([float(values[k]) for k in self.names])
        if not np.isfinite(row).all():
            raise ValueError("reading values must be finite")
        return row

    def _stuck(self, ts: float, row: NDArray[np.float64]) -> list[SensorFinding]:
        same = np.zeros(len(row), dtype=bool) if not self.history else row == self.history[-1][1]
        self.run = np.where(same, self.run + 1, 1)
        self.run_since = np.where(same, self.run_since, ts)
        n = self.params.stuck_readings
        return [
            SensorFinding(
                "stuck",
                name,
                float(self.run_since[i]),
                f"{name} stuck at {row[i]:.6g} for {self.run[i]} consecutive readings (noise never repeats)",
                {"value": float(row[i]), "readings": float(self.run[i])},
            )
            for i, name in enumerate(self.names)
            if self.run[i] >= n
        ]

    def _jump(self, new: NDArray[np.float64]) -> list[SensorFinding]:
        """Is the previous reading a single-sample spike, now that the next one (``new``) is here?"""
        p = self.params
        if len(self.history) < p.jump_min_steps + 2:
            return []
        vals = np.array([r for _, r in self.history])  # (h, s); the candidate is the last row
        steps = np.diff(vals[:-1], axis=0)
        spread = np.array([robust_spread(steps[:, j]) for j in range(steps.shape[1])])
        prev, cand = vals[-2], vals[-1]
        limit = p.jump_factor * spread
        quiet = (spread > 0) & (np.abs(steps).max(axis=0) <= limit)
        out_and_back = np.minimum(np.abs(cand - prev), np.abs(cand - new)) > limit
        returned = np.abs(new - prev) <= p.jump_return_factor * spread
        ts = self.history[-1][0]
        return [
            SensorFinding(
                "jump",
                name,
                ts,
                f"{name} jumped to {cand[j]:.6g} for one reading (from {prev[j]:.6g}, back to {new[j]:.6g}): "
                f"{abs(cand[j] - prev[j]) / spread[j]:.0f} x the robust spread of its steps",
                {
                    "value": float(cand[j]),
                    "before": float(prev[j]),
                    "after": float(new[j]),
                    "spread": float(spread[j]),
                },
            )
            for j, name in enumerate(self.names)
            if quiet[j] and out_and_back[j] and returned[j]
        ]


@dataclass
class WindowStream:
    """Reference rate and length, repeated windows and dropouts of a stream of vibration windows."""

    params: SensorParams
    ref: tuple[float, int] | None = None
    #: The rate the device is configured for (Hz; the asset config's ``sensor.sample_rate_hz``):
    #: the reference rate when set, instead of the first window's.
    expected_fs_hz: float | None = None
    intervals: Intervals | None = None
    digest: str = ""
    repeats: int = 0
    repeat_since: float = 0.0

    def update(self, ts: float, fs_hz: float, samples: ArrayLike, axes: Sequence[str]) -> list[SensorFinding]:
        ts = finite_time(ts)
        x = check_window(samples, axes)
        p = self.params
        self.intervals = self.intervals or Intervals(p)
        out = window_findings(x, axes, ts, p) + self.intervals.update(ts, "window")
        if self.ref is None:
            self.ref = (float(fs_hz), x.shape[1])
        ref_fs, basis = (
            (self.ref[0], "stream's") if self.expected_fs_hz is None else (self.expected_fs_hz, "configured")
        )
        out += rate_findings(float(fs_hz), x.shape[1], ref_fs, self.ref[1], ts, p, basis)
        digest = hashlib.sha256(x.tobytes() + f"{fs_hz}".encode()).hexdigest()
        same = digest == self.digest
        self.digest, self.repeats = digest, self.repeats + 1 if same else 1
        self.repeat_since = self.repeat_since if same else ts
        if self.repeats >= p.stuck_windows:
            reason = f"The same window (every sample equal) arrived {self.repeats} times in a row"
            out.append(
                SensorFinding("stuck", "window", self.repeat_since, reason, {"windows": float(self.repeats)})
            )
        return out


@dataclass
class AssetSensors:
    """One asset's detectors and sensor status (module doc)."""

    params: SensorParams = field(default_factory=SensorParams)
    readings: StreamMonitor | None = None
    windows: WindowStream | None = None
    active: dict[Key, SensorFinding] = field(default_factory=dict)
    clean: dict[Key, int] = field(default_factory=dict)
    #: The status last told (None: never; a caller may set the one it told before a restart).
    status: Literal["ok", "fault"] | None = None
    since: float = 0.0
    #: The configured sample rate (Hz), see :meth:`configure`.
    expected_fs_hz: float | None = None

    def on_reading(self, ts: float, values: Mapping[str, float]) -> bool:
        """Take one reading; True when the status changed (an unknown status counts as ``ok``)."""
        self.readings = self.readings or StreamMonitor(self.params)
        return self._update("reading", ts, self.readings.update(ts, values))

    def configure(self, full_scale_g: float | None, sample_rate_hz: float | None) -> None:
        """Apply the asset config's sensor block: the accelerometer's full scale (g) and the rate it
        is set to (Hz); None: not stated (the detectors keep their state)."""
        self.params = replace(self.params, full_scale_g=full_scale_g)
        self.expected_fs_hz = sample_rate_hz
        for stream in (self.readings, self.windows):
            if stream is not None:
                stream.params = self.params
        if self.windows is not None:
            self.windows.expected_fs_hz = sample_rate_hz

    def on_window(self, ts: float, fs_hz: float, samples: ArrayLike, axes: Sequence[str]) -> bool:
        """Take one window; True when the status changed (an unknown status counts as ``ok``)."""
        self.windows = self.windows or WindowStream(self.params, expected_fs_hz=self.expected_fs_hz)
        return self._update("window", ts, self.windows.update(ts, fs_hz, samples, axes))

    @property
    def findings(self) -> list[SensorFinding]:
        return sorted(self.active.values(), key=lambda f: (f.since, f.kind, f.signal))

    def _update(self, stream: Stream, ts: float, found: list[SensorFinding]) -> bool:
        before = set(self.active)
        now = {(stream, f.kind, f.signal): f for f in found}
        for key, f in now.items():
            kept = self.active.get(key)
            self.active[key] = (
                f if kept is None else SensorFinding(f.kind, f.signal, kept.since, f.reason, f.values)
            )
            self.clean[key] = 0
        for key in [k for k in self.active if k[0] == stream and k not in now]:
            self.clean[key] = self.clean.get(key, 0) + 1
            if self.clean[key] >= self.params.clear_after:
                del self.active[key], self.clean[key]
        status: Literal["ok", "fault"] = "fault" if self.active else "ok"
        changed = status != (self.status or "ok") or set(self.active) != before
        if self.active:
            self.since = min(f.since for f in self.active.values())
        elif status != self.status:
            self.since = finite_time(ts)
        self.status = status
        return changed
