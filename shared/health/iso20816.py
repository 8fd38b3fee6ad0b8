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

**Basis** (:class:`ZoneBasis`, from an asset's ``iso`` config by :func:`basis_of`): the limits a
zone is judged against, and whether it may alarm. ``iso20816-3``: the user confirmed the standard
applies (group and foundation above); ``custom``: the user's own A/B, B/C, C/D limits; both raise
alarms and cap the health. ``information``: applicability not confirmed (the default, and every
config that predates the ``iso`` block): the zone of the configured group/foundation is shown, never
an alarm nor a health penalty — a small test-rig bearing in "zone D" of group-2 limits is healthy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from shared.messages import IsoSettings

Zone = Literal["A", "B", "C", "D"]
Foundation = Literal["rigid", "flexible"]
BasisKind = Literal["iso20816-3", "custom", "information"]
#: The basis kinds whose zones raise alarms and cap the health.
ALARMING_BASES: tuple[str, ...] = ("iso20816-3", "custom")

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
class ZoneBasis:
    """What a velocity's zone is judged against (module doc): the kind, the (A/B, B/C, C/D) limits
    in mm/s, and the ISO group/foundation they come from (None for custom limits)."""

    kind: BasisKind
    limits: tuple[float, float, float]
    group: int | None = None
    foundation: str | None = None

    @property
    def alarming(self) -> bool:
        """The zone may raise the ISO alarm and cap the health (confirmed standard or custom limits)."""
        return self.kind in ALARMING_BASES

    @property
    def text(self) -> str:
        """For people: ``ISO 20816-3 group 2, rigid``, ``custom limits 1/2/3 mm/s`` or ``information
        only: ISO applicability not confirmed (ISO 20816-3 group 2, rigid limits)``."""
        if self.kind == "custom":
            return "custom limits " + "/".join(f"{v:g}" for v in self.limits) + " mm/s"
        standard = f"ISO 20816-3 group {self.group}, {self.foundation}"
        if self.kind == "information":
            return f"information only: ISO applicability not confirmed ({standard} limits)"
        return standard

    @classmethod
    def standard(cls, group: int, foundation: str, confirmed: bool) -> ZoneBasis:
        """The standard's limits of ``group``/``foundation``; ``confirmed``: the user said it applies."""
        kind: BasisKind = "iso20816-3" if confirmed else "information"
        return cls(kind, zone_limits(group, foundation), int(group), foundation)

    @classmethod
    def custom(cls, limits: Sequence[float]) -> ZoneBasis:
        """The user's own (A/B, B/C, C/D) limits in mm/s (finite, > 0, increasing)."""
        lim = tuple(float(v) for v in limits)
        if len(lim) != 3 or not all(math.isfinite(v) and v > 0 for v in lim) or not lim[0] < lim[1] < lim[2]:
            raise ValueError(f"custom zone limits must be three increasing velocities > 0 mm/s, got {limits}")
        return cls("custom", (lim[0], lim[1], lim[2]))


@dataclass(frozen=True)
class ZoneResult:
    """The zone of one velocity value against a :class:`ZoneBasis`."""

    zone: Zone
    velocity_mm_s: float
    limits: tuple[float, float, float]  # (A/B, B/C, C/D) in mm/s
    group: int | None
    foundation: str | None
    description: str
    basis: BasisKind = "iso20816-3"
    basis_text: str = ""

    @property
    def alarming(self) -> bool:
        """The zone may raise the ISO alarm and cap the health (see :class:`ZoneBasis`)."""
        return self.basis in ALARMING_BASES

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["limits"] = list(self.limits)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ZoneResult:
        group, foundation = d.get("group"), d.get("foundation")
        return cls(
            zone=d["zone"],
            velocity_mm_s=float(d["velocity_mm_s"]),
            limits=(float(d["limits"][0]), float(d["limits"][1]), float(d["limits"][2])),
            group=None if group is None else int(group),
            foundation=None if foundation is None else str(foundation),
            description=str(d["description"]),
            basis=d.get("basis", "iso20816-3"),
            basis_text=str(d.get("basis_text", "")),
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
    """Classify broadband velocity RMS ``velocity_mm_s`` (mm/s, 10..1000 Hz) into zone A..D of the
    standard's ``group``/``foundation`` limits (basis ``iso20816-3``; see :func:`classify`)."""
    return classify(velocity_mm_s, ZoneBasis.standard(group, foundation, confirmed=True))


def classify(velocity_mm_s: float, basis: ZoneBasis) -> ZoneResult:
    """Zone of velocity RMS ``velocity_mm_s`` (mm/s) against ``basis``'s (A/B, B/C, C/D) limits:
    ``zone = A if v <= A/B, B if v <= B/C, C if v <= C/D, else D`` (equal to a boundary = the better
    zone)."""
    v = _check_velocity(velocity_mm_s)
    idx = int(np.searchsorted(np.asarray(basis.limits), v, side="left"))
    zone = ZONES[idx]
    return ZoneResult(
        zone=zone,
        velocity_mm_s=v,
        limits=basis.limits,
        group=basis.group,
        foundation=basis.foundation,
        description=ZONE_DESCRIPTIONS[zone],
        basis=basis.kind,
        basis_text=basis.text,
    )


def basis_of(iso: IsoSettings | None) -> ZoneBasis:
    """The basis of an asset's ``iso`` config: its ``zone_limits_mm_s`` (custom) when given, else the
    standard's limits of its group/foundation, confirmed when ``applies``; no config: information
    only, group 2 rigid."""
    if iso is None:
        return ZoneBasis.standard(2, "rigid", confirmed=False)
    if iso.zone_limits_mm_s is not None:
        return ZoneBasis.custom(iso.zone_limits_mm_s)
    return ZoneBasis.standard(iso.effective_group, iso.foundation, confirmed=iso.applies)


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
