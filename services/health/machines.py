"""Machines with several sensors in the health service: before each assessment, the asset's change is
attributed among the sensors of its machine (:func:`shared.health.machine.attribute`), from the open
machine-fault alarms of its neighbours' assessors and the changes already judged transmitted.

The membership comes from the asset configs' ``machine``; the transmitted changes are kept in memory
(after a restart they are judged again on each asset's next window)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from shared.health.assessor import HealthAssessor
from shared.health.machine import Attribution, Change, attribute
from shared.messages import AssetConfig


@dataclass
class MachineGroups:
    """Which assets share a machine, and which of them carry a neighbour's change."""

    #: asset → its machine.
    machine_of: dict[str, str] = field(default_factory=dict)
    #: machine → its assets (the index each assessment looks its neighbours up in).
    members: dict[str, set[str]] = field(default_factory=dict)
    #: asset → its change while judged transmitted (``since``: when that began).
    transmitted: dict[str, Change] = field(default_factory=dict)

    def configure(self, asset: str, machine: str | None) -> None:
        """The asset's machine from its config (None: not grouped, or the config was cleared)."""
        before = self.machine_of.get(asset)
        if before == machine:
            return
        if before is not None:
            self.members[before].discard(asset)
            if not self.members[before]:
                del self.members[before]
        self.transmitted.pop(asset, None)
        if machine is None:
            self.machine_of.pop(asset, None)
        else:
            self.machine_of[asset] = machine
            self.members.setdefault(machine, set()).add(asset)

    def attribution(
        self, asset: str, ts: float, assessors: Mapping[str, HealthAssessor]
    ) -> Attribution | None:
        """The role of ``asset``'s change at data time ``ts`` (s) in its machine; None when it is not
        grouped or its change has no size yet (no calibration, no model ratio)."""
        machine = self.machine_of.get(asset)
        own = assessors.get(asset)
        level = None if machine is None or own is None else own.change_level()
        if machine is None or own is None or level is None:
            return None
        neighbours = []
        for other in sorted(self.members[machine]):
            if other == asset or other not in assessors:
                continue
            change = assessors[other].change() or self.transmitted.get(other)
            if change is not None:
                neighbours.append(change)
        result = replace(attribute(asset, level[0], own.change(), neighbours, ts), machine=machine)
        if result.role == "transmitted":
            before = self.transmitted.get(asset)
            self.transmitted[asset] = Change(asset, ts if before is None else before.since, *level)
        else:
            self.transmitted.pop(asset, None)
        return result


def machine_key(configs: Mapping[str, AssetConfig], asset: str) -> str:
    """What the health stage's replicas partition ``asset`` by (shared.partition.owns): its configured
    machine, so the assets of one machine are assessed together on one replica; else the asset itself."""
    cfg = configs.get(asset)
    return (cfg.machine if cfg is not None else None) or asset
