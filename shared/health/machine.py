"""Machines with several sensors: which sensor's change leads, and which neighbours only carry it (pure).

Assets that measure the same machine (the asset config's ``machine``: two bearings on one shaft, the
drive and non-drive ends of a motor) see each other's vibration: when one bearing fails, its neighbour's
RMS rises too (the FEMTO/IMS control bearings do), and a detector per sensor would open a second fault
on a healthy part. The rule here keeps one fault per cause:

* each asset's **change** is summarised as :class:`Change`: the data time it began (``since``, s: when
  its machine-fault alarm opened) and its size against the asset's *own* calibration (``level``,
  dimensionless: e.g. RMS / calibrated RMS, or the anomaly score / its threshold);
* an asset whose own change is absent or began later than a neighbour's, and is no larger than that
  neighbour's (``level <= neighbour.level``), is **transmitted** from the earliest such neighbour: its
  change is reported as carried through the machine, and no fault alarm of its own opens;
* an asset whose change began first is **leading**; the others are listed as its followers;
* a neighbour whose change is larger than the asset's is what the asset follows; a neighbour whose
  change is *smaller* is not a cause (a second, larger change on the later sensor is a fault of its
  own, and keeps its alarm).

The rule rests on the attenuation of structure-borne vibration away from its source (the defect's
impulses are largest at the bearing that makes them; see e.g. Randall, *Vibration-based Condition
Monitoring*, Wiley 2011, §1.2 on transmission paths) and on time order.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from shared.health.policy import SOURCE_ISO, SOURCE_MODELS, SOURCE_TREND, Condition
from shared.topics import valid_asset_id

__all__ = ["MACHINE_FAULT_SOURCES", "Attribution", "Change", "attribute", "change_level", "hold_transmitted"]

#: Alarm sources that stand for a fault of the machine (not of its sensor).
MACHINE_FAULT_SOURCES = (SOURCE_MODELS, SOURCE_TREND, SOURCE_ISO)

Role = Literal["alone", "leading", "transmitted"]


@dataclass(frozen=True)
class Change:
    """One asset's current machine-level change: since ``since`` (data time, s), of size ``level``
    (times the asset's own normal, > 0; what it is measured on: ``basis``)."""

    asset_id: str
    since: float
    level: float
    basis: str = ""

    def __post_init__(self) -> None:
        if not valid_asset_id(self.asset_id):
            raise ValueError(f"invalid asset id {self.asset_id!r}")
        if not math.isfinite(self.since):
            raise ValueError(f"since must be a finite data time (s), got {self.since!r}")
        if not math.isfinite(self.level) or self.level <= 0:
            raise ValueError(f"level must be a finite ratio > 0, got {self.level!r}")


@dataclass(frozen=True)
class Attribution:
    """What an asset's change is within its machine: ``alone`` (no neighbour has a change),
    ``leading`` (it began first; ``followers`` came later), or ``transmitted`` from ``source`` (which
    began ``lag_s`` seconds earlier and is larger); ``reason`` says so with the numbers."""

    role: Role
    reason: str = ""
    source: str | None = None
    lag_s: float | None = None
    followers: tuple[str, ...] = field(default_factory=tuple)
    #: The machine (asset config ``machine``), when the caller knows it.
    machine: str | None = None


def attribute(
    asset_id: str,
    level: float,
    own: Change | None,
    neighbours: Iterable[Change],
    now: float,
) -> Attribution:
    """The role of ``asset_id``'s vibration change among its machine's sensors (module doc).

    Parameters
    ----------
    asset_id : str
        The asset assessed.
    level : float
        Its change now, times its own normal (> 0; 1 = as calibrated).
    own : Change or None
        Its open machine-fault change (None: no fault alarm open).
    neighbours : iterable of Change
        The open changes of the other assets of the same machine (its own entry is ignored).
    now : float
        Data time of the assessment (s): the lag of a transmitted change without an alarm of its own
        is counted to it.
    """
    if not math.isfinite(level) or level <= 0:
        raise ValueError(f"level must be a finite ratio > 0, got {level!r}")
    if not math.isfinite(now):
        raise ValueError(f"now must be a finite data time (s), got {now!r}")
    others = sorted((n for n in neighbours if n.asset_id != asset_id), key=lambda n: (n.since, n.asset_id))
    start = now if own is None else own.since
    causes = [n for n in others if n.since < start and n.level >= level]
    if causes:
        lead = causes[0]
        lag = start - lead.since
        basis = f" ({lead.basis})" if lead.basis else ""
        reason = (
            f"{asset_id}'s change follows {lead.asset_id}: {lead.asset_id} changed {lag:.0f} s earlier "
            f"and more ({lead.level:.2f}× its normal{basis} against {level:.2f}× here): carried through "
            "the machine, not a second fault"
        )
        return Attribution("transmitted", reason, source=lead.asset_id, lag_s=lag)
    if own is None or not others:
        return Attribution("alone")
    followers = tuple(n.asset_id for n in others if n.since >= own.since and n.level <= level)
    if not followers:
        return Attribution("alone")
    return Attribution(
        "leading",
        f"{asset_id} changed first; {', '.join(followers)} followed (transmitted through the machine)",
        followers=followers,
    )


def change_level(
    indicators: Mapping[str, float], model_ratios: Mapping[str, float]
) -> tuple[float, str] | None:
    """An asset's change now, times its own normal, and its basis: ``exp(rms_log)`` (RMS / calibrated
    RMS) when the trend indicator is known, else the largest smoothed model ratio (score / threshold);
    None when neither is."""
    rms_log = indicators.get("rms_log")
    if rms_log is not None and math.isfinite(rms_log):
        level = math.exp(rms_log)
        return level, f"RMS {level:.2f}× calibrated"
    ratios = [r for r in model_ratios.values() if math.isfinite(r) and r > 0]
    if not ratios:
        return None
    return max(ratios), f"anomaly score {max(ratios):.2f}× its threshold"


def hold_transmitted(
    conditions: Iterable[Condition], open_sources: Collection[str], attribution: Attribution | None
) -> list[Condition]:
    """The alarm conditions of an asset whose change is ``transmitted``: a machine-fault source that is
    not already open stays off (no second fault opens; one already open runs its course)."""
    if attribution is None or attribution.role != "transmitted":
        return list(conditions)
    return [
        replace(c, active=False)
        if c.active and c.source in MACHINE_FAULT_SOURCES and c.source not in open_sources
        else c
        for c in conditions
    ]
