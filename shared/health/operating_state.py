"""An asset's operating state (``running``, ``stopped``, ``starting``) from its current draw or its
vibration, or as the user gives it (pure: no I/O, data time passed in; issue 16).

The rule, on one level signal ``x`` (the current of the simple readings in A, or a vibration level in
g: a reading's ``vibration_g`` or a window's AC RMS, :func:`window_level_g`)::

    stopped_below = operating.stopped_below_a / _g            (configured, absolute)
                  | STOPPED_FRACTION × reference              (default, relative)
    running_from  = stopped_below × (1 + hysteresis)
    x < stopped_below            → stopped
    x ≥ running_from             → running
    in between (or x not finite) → the state holds (hysteresis)
    running, less than start_settle_s after a stopped → running change → starting

``reference`` is the asset's running median: the median of its last :data:`REFERENCE_N` values taken
while running (not starting). A value at least ``1 / STOPPED_FRACTION`` times the reference means the
reference was learned while the asset stood still (a started tracker cannot tell): it restarts from that
value. A direct-on-line inrush (5-8 × rated current) stays below that factor.

What the default rests on, and its limits: a stopped induction motor draws no current and a stopped
machine's vibration falls to the sensor noise and what neighbours transmit, far below 10 % of the
running level; a running machine at constant speed draws (and shakes) within a few tens of percent of
its median. The relative level needs the asset to have run once: until :data:`REFERENCE_MIN` values are
seen the state is unknown (``None``: treated as running), and a tracker started on a stopped machine
learns the standstill level and says ``running`` until the machine really starts (then the reference
restarts). A VFD-driven fan or pump at low speed draws a small fraction of its rated current and
vibrates little: it may read as stopped; configure ``stopped_below_a``/``_g`` (absolute) for such an
asset, or give the state. The default settle of 30 s covers a direct-on-line start's inrush (< 10 s), a
soft starter's run-up (typically 10-30 s) and an 8-reading batch window at 1 Hz; a large fan with a long
run-up needs a longer ``start_settle_s``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from shared.messages.operating import OperatingSettings, OperatingState

#: Stopped below this fraction of the running median (relative default).
STOPPED_FRACTION = 0.10
#: Running again only from ``stopped_below × (1 + HYSTERESIS)`` (15 % of the running median).
HYSTERESIS = 0.5
#: Data-time seconds a start counts as ``starting`` (inrush, run-up).
START_SETTLE_S = 30.0
#: Running values the running median spans (10 min of 1 Hz readings).
REFERENCE_N = 600
#: Values needed before a relative level exists (the state is unknown until then).
REFERENCE_MIN = 10
#: The running median is recomputed every this many running values once it spans this many.
_RECOMPUTE_EVERY = 10

_SIGN: dict[str | None, int] = {"stopped": -1, "running": 1, "starting": 1, None: 0}


@dataclass(frozen=True)
class Levels:
    """Stopped below ``stopped_below``, running from ``running_from`` (the signal's unit, A or g)."""

    stopped_below: float
    running_from: float

    @classmethod
    def of(cls, stopped_below: float, hysteresis: float = HYSTERESIS) -> Levels:
        if not stopped_below > 0 or not hysteresis >= 0:
            raise ValueError(
                f"stopped_below must be > 0 and hysteresis >= 0, got {stopped_below}, {hysteresis}"
            )
        return cls(stopped_below, stopped_below * (1.0 + hysteresis))


@dataclass(frozen=True)
class Classified:
    """States of a series (``states[i]`` one of running/stopped/starting) and the tracker state after
    it: ``phase`` (-1 stopped, 1 running) and ``started_at`` (s, the last observed start; ``None``)."""

    states: NDArray[np.str_]
    phase: int
    started_at: float | None


def _signs(values: NDArray[np.float64], levels: Levels) -> NDArray[np.int8]:
    """-1 below the stopped level, +1 at or above the running level, 0 in between or not finite."""
    out = np.zeros(values.shape, dtype=np.int8)
    finite = np.isfinite(values)
    out[finite & (values < levels.stopped_below)] = -1
    out[finite & (values >= levels.running_from)] = 1
    return out


def _states(
    ts: NDArray[np.float64],
    signs: NDArray[np.int8],
    first: int,
    start_settle_s: float,
    started_at: float | None,
) -> Classified:
    """Hysteresis and start settle over decisive signs (0 holds the previous phase); ``first`` the phase
    before the series (-1 or 1)."""
    n = signs.shape[0]
    if n == 0:
        return Classified(np.asarray([], dtype="<U8"), first, started_at)
    idx = np.where(signs != 0, np.arange(n), -1)
    last = np.maximum.accumulate(idx)  # index of the newest decisive sign so far (-1: none)
    phase = np.where(last >= 0, signs[np.maximum(last, 0)], first).astype(np.int8)
    prev = np.concatenate([[first], phase[:-1]])
    starts = (phase == 1) & (prev == -1)
    start_idx = np.maximum.accumulate(np.where(starts, np.arange(n), -1))
    start_ts = np.where(
        start_idx >= 0, ts[np.maximum(start_idx, 0)], np.nan if started_at is None else started_at
    )
    with np.errstate(invalid="ignore"):
        settling = (phase == 1) & np.isfinite(start_ts) & (ts - start_ts < start_settle_s)
    states = np.where(phase == -1, "stopped", np.where(settling, "starting", "running"))
    end_start = float(start_ts[-1]) if np.isfinite(start_ts[-1]) else None
    return Classified(states, int(phase[-1]), end_start)


def classify(
    ts: ArrayLike,
    values: ArrayLike,
    levels: Levels,
    *,
    start_settle_s: float = START_SETTLE_S,
    state: OperatingState | None = None,
    started_at: float | None = None,
) -> Classified:
    """The operating state of each value of a series at fixed levels (the module doc's rule).

    Parameters
    ----------
    ts : array_like, shape (n,)
        Data time of each value, seconds, non-decreasing.
    values : array_like, shape (n,)
        The level signal (A or g); NaN holds the state.
    levels : Levels
        Stopped below ``levels.stopped_below``, running from ``levels.running_from``.
    start_settle_s : float
        Seconds after a stopped → running change that are ``starting``.
    state, started_at : optional
        The state before the series and its last observed start (s); unknown: the first value decides.

    Returns
    -------
    Classified
        ``states`` (``"running"``, ``"stopped"``, ``"starting"``) and the state after the series.
    """
    t = np.asarray(ts, dtype=np.float64)
    x = np.asarray(values, dtype=np.float64)
    if t.shape != x.shape or t.ndim != 1:
        raise ValueError(f"ts and values must be 1-D of one length, got {t.shape} and {x.shape}")
    signs = _signs(x, levels)
    first = _SIGN[state]
    if first == 0:
        finite = x[np.isfinite(x)]
        first = 1 if finite.size == 0 or finite[0] >= levels.stopped_below else -1
    return _states(t, signs, first, start_settle_s, started_at)


def window_level_g(axes: ArrayLike) -> float:
    """A vibration window's level: the largest AC RMS (standard deviation) over its axes, g.

    ``axes``: samples in g, shape (n,) or (axes, n). The mean is removed, so gravity on an axis does
    not count as vibration."""
    a = np.atleast_2d(np.asarray(axes, dtype=np.float64))
    return float(np.max(np.std(a, axis=-1)))


@dataclass
class OperatingTracker:
    """One level signal's state over a stream in data order (the module doc's rule).

    ``stopped_below`` (absolute, the signal's unit) or ``None`` (relative to the running median);
    ``hysteresis`` and ``start_settle_s`` as in :func:`classify`. :meth:`step` takes a value,
    :meth:`give` a state the user gives; both ignore data not newer than the last taken (a re-delivery)
    and return the current state. ``to_dict``/``from_dict`` round-trip it through JSON."""

    stopped_below: float | None = None
    hysteresis: float = HYSTERESIS
    start_settle_s: float = START_SETTLE_S
    phase: int = 0
    started_at: float | None = None
    last_ts: float | None = None
    reference: float | None = None
    running: deque[float] = field(default_factory=lambda: deque(maxlen=REFERENCE_N))
    restarts: int = 0  # how often the running median restarted (a level 1 / STOPPED_FRACTION times it)
    _since: int = 0

    def configure(
        self, stopped_below: float | None, hysteresis: float | None, start_settle_s: float | None
    ) -> None:
        self.stopped_below = stopped_below
        self.hysteresis = HYSTERESIS if hysteresis is None else hysteresis
        self.start_settle_s = START_SETTLE_S if start_settle_s is None else start_settle_s

    @property
    def state(self) -> OperatingState | None:
        """The state at the last value taken (``None``: unknown)."""
        if self.phase == 0:
            return None
        if self.phase == -1:
            return "stopped"
        if self.started_at is not None and self.last_ts is not None:
            if self.last_ts - self.started_at < self.start_settle_s:
                return "starting"
        return "running"

    def levels(self) -> Levels | None:
        """The levels now: configured, or relative to the running median (``None``: not learned)."""
        if self.stopped_below is not None:
            return Levels.of(self.stopped_below, self.hysteresis)
        if self.reference is None or not self.reference > 0:
            return None
        return Levels.of(STOPPED_FRACTION * self.reference, self.hysteresis)

    def _move(self, ts: float, sign: int) -> None:
        if self.phase == 0:
            self.phase = sign
        elif sign != 0 and sign != self.phase:
            self.phase = sign
            if sign == 1:
                self.started_at = ts
        self.last_ts = ts

    def step(self, ts: float, value: float) -> OperatingState | None:
        """Take one value (A or g) at data time ``ts`` (s); the state then."""
        if self.last_ts is not None and ts <= self.last_ts:
            return self.state
        relative = self.stopped_below is None
        if not math.isfinite(value):
            self.last_ts = ts if self.phase != 0 else self.last_ts
            return self.state
        if relative and self.reference is not None and value * STOPPED_FRACTION >= self.reference:
            self.running.clear()  # the reference was learned at a standstill: restart it here
            self.reference = value
            self.restarts += 1
        levels = self.levels()
        if levels is None:  # relative, not learned yet: unknown
            self._learn(value)
            self.last_ts = ts
            return None
        sign = -1 if value < levels.stopped_below else 1 if value >= levels.running_from else 0
        if self.phase == 0:
            sign = -1 if value < levels.stopped_below else 1
        self._move(ts, sign)
        state = self.state
        if relative and state == "running":
            self._learn(value)
        return state

    def give(self, ts: float, state: Literal["running", "stopped"]) -> OperatingState | None:
        """Take the state the user gives at data time ``ts`` (s); a stopped → running change starts."""
        if self.last_ts is not None and ts <= self.last_ts:
            return self.state
        self._move(ts, -1 if state == "stopped" else 1)
        return self.state

    def _learn(self, value: float) -> None:
        self.running.append(value)
        self._since += 1
        if len(self.running) < REFERENCE_MIN:
            return
        if (
            self.reference is None
            or len(self.running) < 6 * _RECOMPUTE_EVERY
            or self._since >= _RECOMPUTE_EVERY
        ):
            self.reference = float(np.median(np.fromiter(self.running, dtype=np.float64)))
            self._since = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "stopped_below": self.stopped_below,
            "hysteresis": self.hysteresis,
            "start_settle_s": self.start_settle_s,
            "phase": self.phase,
            "started_at": self.started_at,
            "last_ts": self.last_ts,
            "reference": self.reference,
            "running": list(self.running),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OperatingTracker:
        return cls(
            stopped_below=d["stopped_below"],
            hysteresis=float(d["hysteresis"]),
            start_settle_s=float(d["start_settle_s"]),
            phase=int(d["phase"]),
            started_at=d["started_at"],
            last_ts=d["last_ts"],
            reference=d["reference"],
            running=deque((float(v) for v in d["running"]), maxlen=REFERENCE_N),
        )


@dataclass
class AssetOperating:
    """An asset's operating state from its readings and windows, per its ``operating`` settings.

    Source ``auto``/``current``: readings by ``current_a``; ``auto`` windows take the readings' state
    when the asset sends readings, else their own level (:func:`window_level_g`), ``current`` windows
    the readings' state (``None`` before a reading). ``vibration``: readings by ``vibration_g``, windows
    by their level (separate trackers, both against ``stopped_below_g``). ``given``: the user's state."""

    settings: OperatingSettings = field(default_factory=OperatingSettings)
    trackers: dict[str, OperatingTracker] = field(default_factory=dict)

    def configure(self, settings: OperatingSettings | None) -> None:
        self.settings = settings or OperatingSettings()
        for name, t in self.trackers.items():
            self._set(name, t)

    def _set(self, name: str, t: OperatingTracker) -> None:
        s = self.settings
        below = s.stopped_below_a if name == "current_a" else None if name == "given" else s.stopped_below_g
        t.configure(below, s.hysteresis, s.start_settle_s)

    def tracker(self, name: str) -> OperatingTracker:
        t = self.trackers.get(name)
        if t is None:
            t = self.trackers[name] = OperatingTracker()
            self._set(name, t)
        return t

    def on_reading(self, ts: float, current_a: float, vibration_g: float) -> OperatingState | None:
        """A simple reading at data time ``ts`` (s): the asset's state then."""
        src = self.settings.source
        if src == "given":
            return self.tracker("given").give(ts, self.settings.state or "running")
        if src == "vibration":
            return self.tracker("vibration_g").step(ts, vibration_g)
        return self.tracker("current_a").step(ts, current_a)

    def on_window(self, ts: float, level_g: float) -> OperatingState | None:
        """A vibration window of level ``level_g`` (g, :func:`window_level_g`) at ``ts`` (s)."""
        src = self.settings.source
        if src == "given":
            return self.tracker("given").give(ts, self.settings.state or "running")
        current = self.trackers.get("current_a")
        if src == "current" or (src == "auto" and current is not None):
            return None if current is None else current.state
        return self.tracker("window_g").step(ts, level_g)

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings.model_dump(mode="json"),
            "trackers": {k: t.to_dict() for k, t in self.trackers.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AssetOperating:
        return cls(
            OperatingSettings.model_validate(d["settings"]),
            {k: OperatingTracker.from_dict(v) for k, v in d["trackers"].items()},
        )


def classify_series(
    ts: ArrayLike, values: ArrayLike, settings: OperatingSettings | None = None, *, signal: str = "current_a"
) -> tuple[NDArray[np.str_], Levels | None]:
    """The states of a stored series (a calibration's readings or windows, data order), and the levels
    used (``None``: relative and too few values to learn them: all ``running``).

    Absolute levels: :func:`classify` directly. Relative: a first pass of :class:`OperatingTracker`
    learns the running values, the levels are ``STOPPED_FRACTION`` × their median (the running median
    of the whole series, not of its start), and :func:`classify` applies them to every value.
    ``signal``: ``current_a`` (``stopped_below_a``) or a vibration level (``stopped_below_g``).
    ``given`` settings: every value has the given state."""
    t = np.asarray(ts, dtype=np.float64)
    x = np.asarray(values, dtype=np.float64)
    s = settings or OperatingSettings()
    settle = START_SETTLE_S if s.start_settle_s is None else s.start_settle_s
    hyst = HYSTERESIS if s.hysteresis is None else s.hysteresis
    if s.source == "given":
        return np.full(t.shape, s.state or "running", dtype="<U8"), None
    below = s.stopped_below_a if signal == "current_a" else s.stopped_below_g
    if below is None:
        learner = OperatingTracker(hysteresis=hyst, start_settle_s=settle)
        kept: list[float] = []
        for ti, xi in zip(t.tolist(), x.tolist(), strict=True):
            restarts = learner.restarts
            state = learner.step(ti, xi)
            if learner.restarts != restarts:
                kept = []  # the reference restarted: the values before were a standstill's
            if state == "running" and math.isfinite(xi):
                kept.append(xi)
        if len(kept) < REFERENCE_MIN:
            return np.full(t.shape, "running", dtype="<U8"), None
        below = STOPPED_FRACTION * float(np.median(kept))
    levels = Levels.of(below, hyst)
    return classify(t, x, levels, start_settle_s=settle).states, levels
