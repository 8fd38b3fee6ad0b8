"""Which of a calibration's readings and windows were taken while the asset ran (issue 16): the
operating-state classifier (:func:`shared.health.operating_state.classify_series`, the rule the features
service marks vectors with) over the stored data, and what was left out and why
(:class:`OperatingExclusion`); :func:`.data.collect` keeps only the running rows."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shared.health.operating_state import START_SETTLE_S, Levels, classify_series
from shared.messages import SIGNALS
from shared.messages.operating import OperatingSettings
from shared.records import point_to_features
from shared.store import Point


@dataclass(frozen=True)
class OperatingExclusion:
    """The ``what`` (readings, vibration windows) of a calibration left out because the asset was not
    running: ``n`` collected, ``stopped`` and ``starting`` of them excluded; ``basis`` what the state was
    told from; ``levels`` the stopped/running levels (signal units; ``None``: not from a level)."""

    what: str
    n: int
    stopped: int
    starting: int
    basis: str
    levels: Levels | None = None
    start_settle_s: float | None = None

    @property
    def excluded(self) -> int:
        return self.stopped + self.starting

    def message(self) -> str:
        """``excluded 120 of 1000 readings while not running (100 stopped, 20 starting; ...)``."""
        return (
            f"excluded {self.excluded} of {self.n} {self.what} while not running ({self.stopped} stopped, "
            f"{self.starting} starting; {self.basis})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary for the manifest (levels in the signal's unit, seconds)."""
        return {
            "rule": "stopped below stopped_below, running from running_from (hysteresis between), "
            "starting for start_settle_s after a start; stopped and starting rows are excluded",
            "what": self.what,
            "n": self.n,
            "excluded": self.excluded,
            "stopped": self.stopped,
            "starting": self.starting,
            "basis": self.basis,
            "stopped_below": None if self.levels is None else self.levels.stopped_below,
            "running_from": None if self.levels is None else self.levels.running_from,
            "start_settle_s": self.start_settle_s,
            "message": self.message(),
        }


def _basis(settings: OperatingSettings, signal: str, levels: Levels | None, n: int) -> str:
    """What a state rests on, as the messages say it."""
    if settings.source == "given":
        return f"operating state given as {settings.state}"
    unit = "A" if signal == "current_a" else "g"
    if levels is None:
        return f"{signal}: too few values to learn the running level from ({n}); all taken as running"
    how = (
        "configured"
        if (settings.stopped_below_a if signal == "current_a" else settings.stopped_below_g) is not None
        else "10 % of the running median"
    )
    return (
        f"{signal} stopped below {levels.stopped_below:.4g} {unit} ({how}), running from "
        f"{levels.running_from:.4g} {unit}"
    )


def _exclusion(
    what: str, states: NDArray[np.str_], settings: OperatingSettings, signal: str, levels: Levels | None
) -> OperatingExclusion:
    settle = settings.start_settle_s
    return OperatingExclusion(
        what=what,
        n=int(states.shape[0]),
        stopped=int((states == "stopped").sum()),
        starting=int((states == "starting").sum()),
        basis=_basis(settings, signal, levels, int(states.shape[0])),
        levels=levels,
        start_settle_s=START_SETTLE_S if settle is None else settle,
    )


def reading_states(
    noted: list[OperatingExclusion],
    signals: NDArray[np.float64],
    ts: NDArray[np.float64],
    operating: OperatingSettings | None,
) -> NDArray[np.str_]:
    """The operating state of each reading (rows of ``signals`` in :data:`SIGNALS` order, times ``ts``
    in s): by its current (``vibration_g`` for ``source: vibration``); the exclusion is appended to
    ``noted``."""
    settings = operating or OperatingSettings()
    if signals.shape[0] == 0:
        return np.asarray([], dtype="<U8")
    signal = "vibration_g" if settings.source == "vibration" else "current_a"
    values = signals[:, SIGNALS.index(signal)]
    states, levels = classify_series(ts, values, settings, signal=signal)
    noted.append(_exclusion("readings", states, settings, signal, levels))
    return states


def window_level(point: Point) -> float:
    """A stored vibration vector's level: its largest ``{axis}_std`` (AC RMS, g; NaN: none)."""
    names, values, _ = point_to_features(point)
    stds = [v for n, v in zip(names, values, strict=True) if n.endswith("_std")]
    return max(stds) if stds else float("nan")


def running_windows(
    noted: list[OperatingExclusion],
    points: list[Point],
    reading_ts: NDArray[np.float64],
    reading_states: NDArray[np.str_],
    operating: OperatingSettings | None,
) -> list[Point]:
    """The vibration vectors taken while the asset ran. With readings (``auto``, ``current``) a window
    has the state of the newest reading at or before it (none before: running); else (``vibration``,
    or ``auto`` without readings) its own level, :func:`window_level` (``current`` without readings:
    all kept). The exclusion is appended to ``noted``."""
    settings = operating or OperatingSettings()
    if not points:
        return points
    ts = np.asarray([p.ts_ns / 1e9 for p in points], dtype=np.float64)
    levels: Levels | None = None
    if settings.source == "given":
        states = np.full(ts.shape, settings.state or "running", dtype="<U8")
        basis_signal = "given"
    elif settings.source == "current" or (settings.source == "auto" and reading_ts.size):
        if not reading_ts.size:
            return points
        at = np.searchsorted(reading_ts, ts, side="right") - 1
        states = np.where(at >= 0, reading_states[np.maximum(at, 0)], "running")
        basis_signal = "current_a"
        prior = next((e for e in noted if e.what == "readings"), None)
        levels = None if prior is None else prior.levels
    else:
        values = np.asarray([window_level(p) for p in points], dtype=np.float64)
        states, levels = classify_series(ts, values, settings, signal="window_std_g")
        basis_signal = "window_std_g"
    ex = _exclusion("vibration windows", states, settings, basis_signal, levels)
    if basis_signal == "current_a":  # told by the readings: say so
        ex = replace(ex, basis=f"the state of the newest reading at or before each window ({ex.basis})")
    noted.append(ex)
    return [p for p, s in zip(points, states, strict=True) if s == "running"]
