"""Legacy features: 6 per-reading indicators of one asset, from its recent simple readings.

Pure and stateful: :class:`LegacyFeatureState` keeps bounded deques of one asset's recent readings
and returns the 6 features after each new reading. No I/O and no clock: time is the reading's own
timestamp (``ts_seconds``, data time), so replaying old data gives the same features as live.

Definitions (``t`` = timestamp of the newest reading; the *recent* set is the newest ``recent_n``
readings, default 10, including the newest; fewer at start-up; population statistics, ddof=0):

``voltage_rolling_mean_1h`` (V)
    Mean voltage over the readings with ``t - horizon_s < ts <= t`` (default ``horizon_s`` = 3600 s:
    a reading exactly 3600 s older than the newest one is dropped). At most
    ``max_horizon_readings`` (default 36,000 = 10 readings/s for an hour) are kept; beyond that the
    oldest ones are dropped first, so the mean then covers the newest ``max_horizon_readings``.
``current_spike_count`` (count, 0..recent_n)
    Number of recent currents ``c_i`` with ``c_i > mu + k*sigma`` where ``mu`` and ``sigma`` are the
    mean and population standard deviation of those same recent currents and ``k = spike_k``
    (default 2). 0 when ``sigma <= 1e-12 * max|c|`` (a flat current has no spikes).
``power_factor_efficiency_score`` (%, 0..100)
    ``100 * min(PF / nominal_pf, 1)`` of the newest reading, default ``nominal_pf`` = 0.92 (a typical
    rated induction-motor PF): 100 at or above nominal, proportionally lower below it.
``vibration_intensity_rms`` (g)
    ``sqrt(mean(v_i**2))`` over the recent vibration readings.
``voltage_stability`` (dimensionless, 0..1)
    ``clip(1 - sigma_V / mu_V, 0, 1)`` over the recent voltages (1 = perfectly steady). Defined as
    0 when ``mu_V == 0`` (no supply is not stable operation).
``power_vibration_ratio`` (kW/g)
    Real power of the newest reading divided by its vibration with a floor:
    ``P / max(vibration_g, vibration_floor_g)``, default floor 0.01 g. ``P`` in kW is
    ``sqrt(3) * V * I * PF / 1000`` for ``phases=3`` (V = RMS line-to-line voltage, as in the
    reading schema) or ``V * I * PF / 1000`` for ``phases=1``.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shared.features._checks import as_count, as_finite_float, as_positive_float

#: Output order of :meth:`LegacyFeatureState.update`.
LEGACY_FEATURE_NAMES: tuple[str, ...] = (
    "voltage_rolling_mean_1h",
    "current_spike_count",
    "power_factor_efficiency_score",
    "vibration_intensity_rms",
    "voltage_stability",
    "power_vibration_ratio",
)

#: Unit of each legacy feature (``"1"`` = dimensionless).
LEGACY_UNITS: dict[str, str] = {
    "voltage_rolling_mean_1h": "V",
    "current_spike_count": "count",
    "power_factor_efficiency_score": "%",
    "vibration_intensity_rms": "g",
    "voltage_stability": "1",
    "power_vibration_ratio": "kW/g",
}

DEFAULT_HORIZON_S = 3600.0
DEFAULT_RECENT_N = 10
DEFAULT_SPIKE_K = 2.0
DEFAULT_NOMINAL_PF = 0.92
DEFAULT_VIBRATION_FLOOR_G = 0.01
DEFAULT_MAX_HORIZON_READINGS = 36_000

_FLAT_REL = 1e-12


class LegacyFeatureState:
    """Rolling state of one asset; :meth:`update` adds a reading and returns the 6 features.

    Readings must arrive in non-decreasing timestamp order (equal timestamps are allowed); an
    out-of-order or invalid reading raises ``ValueError`` and leaves the state unchanged.
    Memory is bounded by ``max_horizon_readings + 3 * recent_n`` readings.
    """

    def __init__(
        self,
        *,
        horizon_s: float = DEFAULT_HORIZON_S,
        recent_n: int = DEFAULT_RECENT_N,
        spike_k: float = DEFAULT_SPIKE_K,
        nominal_pf: float = DEFAULT_NOMINAL_PF,
        vibration_floor_g: float = DEFAULT_VIBRATION_FLOOR_G,
        phases: int = 3,
        max_horizon_readings: int = DEFAULT_MAX_HORIZON_READINGS,
    ) -> None:
        self.horizon_s = as_positive_float(horizon_s, "horizon_s")
        self.recent_n = as_count(recent_n, "recent_n", minimum=1)
        self.spike_k = as_finite_float(spike_k, "spike_k")
        if self.spike_k < 0:
            raise ValueError(f"spike_k: must be >= 0, got {self.spike_k}")
        self.nominal_pf = as_positive_float(nominal_pf, "nominal_pf")
        if self.nominal_pf > 1.0:
            raise ValueError(f"nominal_pf: must be in (0, 1], got {self.nominal_pf}")
        self.vibration_floor_g = as_positive_float(vibration_floor_g, "vibration_floor_g")
        if isinstance(phases, bool) or phases not in (1, 3):
            raise ValueError(f"phases: must be 1 or 3, got {phases!r}")
        self.phases = int(phases)
        self.max_horizon_readings = as_count(max_horizon_readings, "max_horizon_readings", minimum=1)
        self.reset()

    def reset(self) -> None:
        """Forget every reading."""
        self._horizon: deque[tuple[float, float]] = deque()
        self._vsum = 0.0
        self._evictions = 0
        self._voltages: deque[float] = deque(maxlen=self.recent_n)
        self._currents: deque[float] = deque(maxlen=self.recent_n)
        self._vibrations: deque[float] = deque(maxlen=self.recent_n)
        self._last_ts: float | None = None

    @property
    def last_ts(self) -> float | None:
        """Timestamp (s) of the newest reading, or ``None`` before the first one."""
        return self._last_ts

    @property
    def n_horizon(self) -> int:
        """Number of readings currently inside the rolling-mean horizon."""
        return len(self._horizon)

    def update(
        self,
        ts_seconds: float,
        voltage_v: float,
        current_a: float,
        power_factor: float,
        vibration_g: float,
    ) -> NDArray[np.float64]:
        """Add one reading; return the 6 features (float64, :data:`LEGACY_FEATURE_NAMES` order).

        ``ts_seconds``: data timestamp, s (e.g. Unix epoch), finite and >= the previous one.
        ``voltage_v`` (V, >= 0), ``current_a`` (A, >= 0), ``power_factor`` (0..1), ``vibration_g``
        (g, >= 0): finite. Raises ``ValueError`` naming the argument otherwise.
        """
        ts, v, c, pf, g = self._checked(ts_seconds, voltage_v, current_a, power_factor, vibration_g)
        self._push(ts, v, c, g)  # all inputs valid from here on
        return np.array(
            [
                self._vsum / len(self._horizon),  # voltage_rolling_mean_1h
                spike_count(_array(self._currents), self.spike_k),
                100.0 * min(pf / self.nominal_pf, 1.0),  # power_factor_efficiency_score
                rms(_array(self._vibrations)),
                voltage_stability(_array(self._voltages)),
                power_kw(v, c, pf, self.phases) / max(g, self.vibration_floor_g),
            ],
            dtype=np.float64,
        )

    def _checked(
        self, ts_seconds: Any, voltage_v: Any, current_a: Any, power_factor: Any, vibration_g: Any
    ) -> tuple[float, float, float, float, float]:
        """The reading as floats ``(ts, V, A, PF, g)``, or ``ValueError`` naming the bad argument."""
        ts = as_finite_float(ts_seconds, "ts_seconds")
        if self._last_ts is not None and ts < self._last_ts:
            raise ValueError(
                f"ts_seconds: {ts} is earlier than the previous reading's {self._last_ts} "
                "(readings must be in time order)"
            )
        v = _non_negative(voltage_v, "voltage_v")
        c = _non_negative(current_a, "current_a")
        pf = _non_negative(power_factor, "power_factor")
        if pf > 1.0:
            raise ValueError(f"power_factor: must be in [0, 1], got {pf}")
        g = _non_negative(vibration_g, "vibration_g")
        return ts, v, c, pf, g

    def _push(self, ts: float, v: float, c: float, g: float) -> None:
        """Store a valid reading in the horizon and the recent deques.

        The horizon drops its oldest reading when full and every reading at or before
        ``ts - horizon_s``; the running voltage sum follows.
        """
        self._last_ts = ts
        if len(self._horizon) >= self.max_horizon_readings:
            self._evict()
        self._horizon.append((ts, v))
        self._vsum += v
        while self._horizon and self._horizon[0][0] <= ts - self.horizon_s:
            self._evict()
        self._voltages.append(v)
        self._currents.append(c)
        self._vibrations.append(g)

    def _evict(self) -> None:
        _, old_v = self._horizon.popleft()
        self._vsum -= old_v
        self._evictions += 1
        if not self._horizon:
            self._vsum = 0.0
            self._evictions = 0
        elif self._evictions >= self.max_horizon_readings:
            # bound floating-point drift of the running sum: recompute exactly now and then
            self._vsum = math.fsum(val for _, val in self._horizon)
            self._evictions = 0


def _non_negative(value: Any, name: str) -> float:
    v = as_finite_float(value, name)
    if v < 0.0:
        raise ValueError(f"{name}: must be >= 0, got {v}")
    return v


def spike_count(currents: NDArray[np.float64], k: float) -> float:
    """Number of currents ``c_i > mu + k sigma`` (count; ``mu``, ``sigma`` of the same currents, ddof=0).

    0 when ``sigma <= 1e-12 * max|c|``: a flat current has no spikes.
    """
    mu = float(np.mean(currents))
    sd = float(np.sqrt(np.mean((currents - mu) ** 2)))
    if sd <= _FLAT_REL * float(np.max(np.abs(currents))):
        return 0.0
    return float(np.count_nonzero(currents > mu + k * sd))


def rms(values: NDArray[np.float64]) -> float:
    """``sqrt(mean(v**2))``, same unit as ``values``."""
    return float(np.sqrt(np.mean(values * values)))


def voltage_stability(voltages: NDArray[np.float64]) -> float:
    """``clip(1 - sigma_V / mu_V, 0, 1)`` (dimensionless, ddof=0); 0.0 when ``mu_V <= 0``."""
    mu = float(np.mean(voltages))
    if mu <= 0.0:
        return 0.0
    sd = float(np.sqrt(np.mean((voltages - mu) ** 2)))
    return min(max(1.0 - sd / mu, 0.0), 1.0)


def power_kw(voltage_v: float, current_a: float, power_factor: float, phases: int) -> float:
    """Real power, kW: ``sqrt(3) V I PF / 1000`` (3-phase, V line-to-line) or ``V I PF / 1000``."""
    factor = math.sqrt(3.0) if phases == 3 else 1.0
    return factor * voltage_v * current_a * power_factor / 1000.0


def _array(values: deque[float]) -> NDArray[np.float64]:
    """The deque's values as a float64 array."""
    return np.fromiter(values, dtype=np.float64, count=len(values))
