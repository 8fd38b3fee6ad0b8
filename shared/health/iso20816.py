"""ISO 20816-3 vibration severity zones from broadband velocity RMS (pure, no I/O).

ISO 20816-3:2022 (which replaced ISO 10816-3) classifies the broadband RMS vibration *velocity*
measured on the bearing housings of industrial machines (> 15 kW, 120 .. 30 000 r/min) in the
10 .. 1000 Hz band (2 .. 1000 Hz for machines below 600 r/min) into four evaluation zones:

* **A**: vibration of newly commissioned machines normally falls within this zone;
* **B**: machines with vibration within this zone are normally considered acceptable for
  unrestricted long-term operation;
* **C**: machines with vibration within this zone are normally considered unsatisfactory for
  long-term continuous operation; the machine may be operated for a limited period until a
  suitable opportunity arises for remedial action;
* **D**: vibration values within this zone are normally considered to be of sufficient severity
  to cause damage to the machine.

Zone boundaries (velocity RMS in mm/s, boundaries A/B, B/C, C/D) used here:

===========  ==========  ====  ====  ====
group        foundation  A/B   B/C   C/D
===========  ==========  ====  ====  ====
1 (large)    rigid       2.3   4.5   7.1
1 (large)    flexible    3.5   7.1   11.0
2 (medium)   rigid       1.4   2.8   4.5
2 (medium)   flexible    2.3   4.5   7.1
===========  ==========  ====  ====  ====

Group 1: large machines, rated power above 300 kW, or electrical machines with shaft height
H >= 315 mm. Group 2: medium machines, 15 kW .. 300 kW, or shaft height 160 mm <= H < 315 mm.

Boundary convention: a value *equal* to a boundary belongs to the lower (better) zone, i.e.
``v <= A/B`` is A, ``A/B < v <= B/C`` is B, ``B/C < v <= C/D`` is C, ``v > C/D`` is D.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

Zone = Literal["A", "B", "C", "D"]
Foundation = Literal["rigid", "flexible"]

#: (group, foundation) -> (A/B, B/C, C/D) boundaries, velocity RMS in mm/s.
ZONE_LIMITS_MM_S: dict[tuple[int, str], tuple[float, float, float]] = {
    (1, "rigid"): (2.3, 4.5, 7.1),
    (1, "flexible"): (3.5, 7.1, 11.0),
    (2, "rigid"): (1.4, 2.8, 4.5),
    (2, "flexible"): (2.3, 4.5, 7.1),
}

ZONES: tuple[Zone, ...] = ("A", "B", "C", "D")
#: Zones the standard calls unsatisfactory for long-term operation (C) or damaging (D).
UNSATISFACTORY_ZONES: tuple[Zone, ...] = ("C", "D")
#: The zone in which vibration is severe enough to cause damage.
DAMAGE_ZONE: Zone = "D"
#: Name of the feature carrying a window's broadband velocity RMS (mm/s).
VELOCITY_FEATURE = "velocity_rms_mm_s"

#: The standard's meaning of each zone (ISO 20816-3, clause 6.2.2).
ZONE_DESCRIPTIONS: dict[str, str] = {
    "A": "Zone A: vibration typical of newly commissioned machines",
    "B": "Zone B: acceptable for unrestricted long-term operation",
    "C": "Zone C: unsatisfactory for long-term continuous operation; "
    "operate for a limited period only and plan remedial action",
    "D": "Zone D: vibration severe enough to cause damage to the machine",
}


@dataclass(frozen=True)
class ZoneResult:
    """An ISO 20816-3 evaluation of one velocity value."""

    zone: Zone
    velocity_mm_s: float
    limits: tuple[float, float, float]  # (A/B, B/C, C/D) in mm/s
    group: int
    foundation: str
    description: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["limits"] = list(self.limits)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ZoneResult:
        return cls(
            zone=d["zone"],
            velocity_mm_s=float(d["velocity_mm_s"]),
            limits=(float(d["limits"][0]), float(d["limits"][1]), float(d["limits"][2])),
            group=int(d["group"]),
            foundation=str(d["foundation"]),
            description=str(d["description"]),
        )


def zone_limits(group: int, foundation: str) -> tuple[float, float, float]:
    """Return the (A/B, B/C, C/D) velocity RMS boundaries in mm/s for ``group`` (1|2) and
    ``foundation`` ("rigid"|"flexible"); see the module table."""
    if isinstance(group, bool) or group not in (1, 2):
        raise ValueError(f"iso group must be 1 (large machines) or 2 (medium machines), got {group!r}")
    if foundation not in ("rigid", "flexible"):
        raise ValueError(f"foundation must be 'rigid' or 'flexible', got {foundation!r}")
    return ZONE_LIMITS_MM_S[(int(group), foundation)]


def _check_velocity(v: float) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"velocity must be a number in mm/s, got {type(v).__name__}")
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"velocity must be finite, got {v}")
    if v < 0:
        raise ValueError(f"velocity RMS cannot be negative, got {v} mm/s")
    return v


def iso_zone(velocity_mm_s: float, group: int = 2, foundation: str = "rigid") -> ZoneResult:
    """Classify broadband velocity RMS ``velocity_mm_s`` (mm/s, 10..1000 Hz) into zone A..D.

    ``zone = A if v <= A/B, B if v <= B/C, C if v <= C/D, else D`` with the boundaries of
    :func:`zone_limits` (equal to a boundary = the better zone).
    """
    v = _check_velocity(velocity_mm_s)
    limits = zone_limits(group, foundation)
    idx = int(np.searchsorted(np.asarray(limits), v, side="left"))
    zone = ZONES[idx]
    return ZoneResult(
        zone=zone,
        velocity_mm_s=v,
        limits=limits,
        group=int(group),
        foundation=foundation,
        description=ZONE_DESCRIPTIONS[zone],
    )


def iso_zone_index(velocity_mm_s: ArrayLike, group: int = 2, foundation: str = "rigid") -> NDArray[np.int64]:
    """Vectorised zone index (0=A, 1=B, 2=C, 3=D) of an array of velocities (mm/s), same rule as
    :func:`iso_zone`; works element-wise on any shape."""
    v = np.asarray(velocity_mm_s, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise ValueError("velocities must be finite")
    if np.any(v < 0):
        raise ValueError("velocity RMS cannot be negative")
    limits = np.asarray(zone_limits(group, foundation))
    return np.searchsorted(limits, v, side="left").astype(np.int64)
