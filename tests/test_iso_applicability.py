"""Issue 17: ISO 20816-3 zones alarm only where the standard's limits were confirmed (or the user gave
custom limits); everywhere else the zone is information — shown with its basis, never an alarm, never
a health penalty. Config validation (contract and ``PUT /assets/{id}/config`` → 422 with the reason)
and configs that predate the ``iso`` block."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.health.messages import to_health_message
from shared import topics
from shared.health import HealthAssessor, ModelScore
from shared.health.assessor import Assessment
from shared.health.iso20816 import ZoneBasis, basis_of, classify
from shared.messages import AssetConfig, IsoSettings
from tests.support.gateway import MemoryGateway, memory_gateway, memory_settings
from tests.support.ids import Ids

T0 = 1_700_000_000.0
#: Zone D of group 2 rigid (C/D 4.5 mm/s) and of group 1 rigid (C/D 7.1 mm/s): a small test-rig
#: bearing's healthy broadband velocity can read like this.
HIGH_MM_S = 8.0
CONFIRMED = {"applies": True, "group": 2, "foundation": "rigid", "power_kw": 75, "machine_type": "pump"}


def normal_scores() -> list[ModelScore]:
    """Every model well under its threshold (ratio 0.2): a healthy machine by its own baseline."""
    return [ModelScore(m, 0.1, 0.5, False, "NORMAL") for m in ("legacy", "batch", "autoencoder")]


def feed(a: HealthAssessor, velocity: float, seconds: int = 60) -> list[Assessment]:
    """One update per second of data time: normal model scores and the broadband velocity (mm/s)."""
    return [
        a.update(T0 + i, normal_scores(), features={"velocity_rms_mm_s": velocity}) for i in range(seconds)
    ]


def opened(res: list[Assessment]) -> list[dict[str, Any]]:
    return [e.alarm for r in res for e in r.alarm_events if e.kind == "opened"]


# ---------------------------------------------------------------------------------------------
# Assessor: information only vs confirmed vs custom limits
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "config",
    [
        None,  # no config at all
        {"asset_id": "rig1"},  # a config without an iso block
        {"asset_id": "rig1", "iso_group": 2, "foundation": "rigid"},  # predates the iso block
        {"asset_id": "rig1", "iso": {"applies": False, "power_kw": 0.4}},  # said not to apply
    ],
)
def test_unconfirmed_high_velocity_is_information_no_alarm_no_penalty(config: dict[str, Any] | None) -> None:
    cfg = None if config is None else AssetConfig.model_validate_json(json.dumps(config))
    a = HealthAssessor("rig1", config=cfg, id_factory=Ids())
    res = feed(a, HIGH_MM_S)
    last = res[-1]
    assert (
        last.iso is not None and last.iso.zone == "D" and last.iso.velocity_mm_s == pytest.approx(HIGH_MM_S)
    )
    assert (last.iso.basis, last.iso.alarming) == ("information", False)
    assert (
        last.iso.basis_text
        == "information only: ISO applicability not confirmed (ISO 20816-3 group 2, rigid limits)"
    )
    assert opened(res) == [] and a.alarms.alarms() == []
    # no health penalty: the same health as without any velocity at all (zone D would cap it at 20)
    reference = HealthAssessor("rig1", id_factory=Ids())
    ref = [reference.update(T0 + i, normal_scores()) for i in range(60)][-1]
    assert last.health_score == ref.health_score and last.health_score is not None and last.health_score > 90
    assert last.degradation_index == 0.0 and last.risk_level == "LOW"
    assert all("ISO" not in i.text for i in last.insights)
    hu = to_health_message("rig1", last)
    assert hu is not None and (hu.iso_zone, hu.zone_basis) == ("D", "information")
    assert hu.velocity_rms_mm_s == pytest.approx(HIGH_MM_S) and hu.active_alarms == 0
    assert hu.zone_basis_text is not None and hu.zone_basis_text.startswith("information only")


def test_unconfirmed_velocity_alone_gives_no_health() -> None:
    """Before calibration an information-only zone is no evidence of health (a confirmed zone is)."""
    a = HealthAssessor("rig1", id_factory=Ids())
    last = [a.update(T0 + i, features={"velocity_rms_mm_s": 1.0}) for i in range(5)][-1]
    assert last.iso is not None and last.iso.zone == "A" and last.health_score is None
    assert to_health_message("rig1", last) is None


def test_confirmed_applicability_alarms_and_caps_health() -> None:
    cfg = AssetConfig(asset_id="p1", rpm=1480, iso=IsoSettings.model_validate(CONFIRMED))
    a = HealthAssessor("p1", config=cfg, id_factory=Ids())
    res = feed(a, HIGH_MM_S)
    [alarm] = opened(res)
    assert (alarm["source"], alarm["severity"]) == ("iso20816", "CRITICAL")
    assert "8.0 mm/s (zone D, ISO 20816-3 group 2, rigid)" in alarm["reason"]
    last = res[-1]
    assert (last.iso.basis, last.iso.zone) == ("iso20816-3", "D")  # type: ignore[union-attr]
    assert last.health_score == 20.0  # zone D caps the health at 20
    assert last.insights[0].text.startswith("Vibration in ISO 20816 zone D: ")
    hu = to_health_message("p1", last)
    assert hu is not None and (hu.zone_basis, hu.zone_basis_text) == (
        "iso20816-3",
        "ISO 20816-3 group 2, rigid",
    )


def test_custom_limits_alarm_on_their_own_boundaries() -> None:
    """Custom limits make zone alarms valid without the standard: 8 mm/s is zone B of 5/10/20 mm/s
    (no alarm although group-2 limits would say D); 25 mm/s is their zone D."""
    iso = IsoSettings(zone_limits_mm_s=[5.0, 10.0, 20.0])
    a = HealthAssessor("rig2", config=AssetConfig(asset_id="rig2", iso=iso), id_factory=Ids())
    calm = feed(a, HIGH_MM_S)
    assert opened(calm) == [] and calm[-1].iso is not None and calm[-1].iso.zone == "B"
    assert calm[-1].iso.basis == "custom" and calm[-1].iso.basis_text == "custom limits 5/10/20 mm/s"
    loud = [a.update(T0 + 60 + i, normal_scores(), features={"velocity_rms_mm_s": 25.0}) for i in range(60)]
    [alarm] = opened(loud)
    assert alarm["source"] == "iso20816" and "zone D, custom limits 5/10/20 mm/s" in alarm["reason"]
    assert loud[-1].health_score == 20.0
    assert loud[-1].insights[0].text.startswith("Vibration in zone D of the custom limits 5/10/20 mm/s")


def test_withdrawing_applicability_clears_an_open_iso_alarm() -> None:
    """A confirmed asset's ISO alarm auto-clears once its config says the standard does not apply."""
    cfg = AssetConfig(asset_id="p1", iso=IsoSettings.model_validate(CONFIRMED))
    a = HealthAssessor("p1", config=cfg, id_factory=Ids())
    assert len(opened(feed(a, HIGH_MM_S))) == 1
    a.set_config(AssetConfig(asset_id="p1", iso=IsoSettings(applies=False)))
    res = [
        a.update(T0 + 60 + i, normal_scores(), features={"velocity_rms_mm_s": HIGH_MM_S}) for i in range(60)
    ]
    resolved = [e for r in res for e in r.alarm_events if e.kind == "resolved"]
    assert len(resolved) == 1 and resolved[0].auto_cleared
    assert res[-1].open_alarms == [] and res[-1].health_score is not None and res[-1].health_score > 90


# ---------------------------------------------------------------------------------------------
# Basis
# ---------------------------------------------------------------------------------------------
def test_basis_of_configs() -> None:
    assert basis_of(None) == ZoneBasis("information", (1.4, 2.8, 4.5), 2, "rigid")
    big = IsoSettings(applies=True, power_kw=400, foundation="flexible")  # group from power: 1
    assert basis_of(big) == ZoneBasis("iso20816-3", (3.5, 7.1, 11.0), 1, "flexible")
    assert basis_of(big).text == "ISO 20816-3 group 1, flexible"
    both = IsoSettings(applies=True, power_kw=400, zone_limits_mm_s=[1, 2, 3])  # custom limits win
    assert basis_of(both) == ZoneBasis("custom", (1.0, 2.0, 3.0))
    # equal to a boundary = the better zone, on custom limits too
    assert [classify(v, basis_of(both)).zone for v in (1.0, 1.5, 2.0, 3.0, 3.01)] == ["A", "B", "B", "C", "D"]
    with pytest.raises(ValueError, match="increasing"):
        ZoneBasis.custom([3.0, 2.0, 1.0])


# ---------------------------------------------------------------------------------------------
# Config validation: contract and API
# ---------------------------------------------------------------------------------------------
BAD_ISO: list[tuple[dict[str, Any], str]] = [
    ({"iso": {"applies": True}}, "iso.applies needs iso.power_kw"),
    ({"iso": {"applies": True, "power_kw": 0.75}}, "ISO 20816-3 does not apply to a 0.75 kW machine"),
    ({"iso": {"applies": True, "power_kw": 15}}, "its scope is above 15 kW up to 40 MW"),
    ({"iso": {"applies": True, "power_kw": 60_000}}, "does not apply to a 60000 kW machine"),
    ({"rpm": 60, "iso": {"applies": True, "power_kw": 75}}, "ISO 20816-3 does not apply at 60 r/min"),
    (
        {"iso": {"applies": True, "power_kw": 75, "machine_type": "reciprocating"}},
        "ISO 20816-3 does not cover machine_type reciprocating: see ISO 10816-6",
    ),
    (
        {"iso": {"applies": True, "power_kw": 75, "group": 1}},
        "iso.group 1 does not match power_kw 75 (group 2",
    ),
    (
        {"iso": {"applies": True, "power_kw": 500, "group": 2}},
        "iso.group 2 does not match power_kw 500 (group 1",
    ),
    (
        {"iso": {"zone_limits_mm_s": [4.5, 2.8, 1.4]}},
        "iso.zone_limits_mm_s must be three increasing velocities",
    ),
    (
        {"iso": {"zone_limits_mm_s": [0, 2.8, 4.5]}},
        "iso.zone_limits_mm_s must be three increasing velocities",
    ),
    ({"iso": {"zone_limits_mm_s": [1.4, 2.8]}}, "List should have at least 3 items"),
    ({"iso": {"group": 3}}, "Input should be 1 or 2"),
    ({"iso": {"applies": True, "power_kw": 75}, "iso_group": 2}, "give the iso block or the older top-level"),
]


@pytest.mark.parametrize(("patch", "reason"), BAD_ISO)
def test_invalid_iso_config_is_refused_with_its_reason(patch: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(reason)):
        AssetConfig.model_validate({"asset_id": "p1", **patch})


def test_valid_iso_configs() -> None:
    # a 200 kW machine of group 1 by its shaft height (H >= 315 mm)
    tall = IsoSettings(applies=True, power_kw=200, group=1, shaft_height_mm=355)
    assert tall.effective_group == 1
    # the standard's speed range with a confirmed iso block; any speed with custom limits
    AssetConfig(asset_id="p1", rpm=29_000, iso=IsoSettings.model_validate(CONFIRMED))
    AssetConfig(asset_id="p1", rpm=60, iso=IsoSettings(zone_limits_mm_s=[1.0, 2.0, 3.0]))
    # not applying: no power needed, any group
    assert AssetConfig(asset_id="p1", iso=IsoSettings(group=1)).iso.applies is False


def test_old_configs_load_unconfirmed_and_round_trip() -> None:
    old = AssetConfig.model_validate_json('{"asset_id": "f9", "iso_group": 1, "foundation": "flexible"}')
    assert (old.iso.applies, old.iso.group, old.iso.foundation) == (False, 1, "flexible")
    assert (old.iso_group, old.foundation) == (None, None)
    dumped = json.loads(old.model_dump_json())
    assert "iso_group" not in dumped and "foundation" not in dumped and dumped["iso"]["group"] == 1
    assert AssetConfig.model_validate(dumped) == old
    assert (
        basis_of(old.iso).text
        == "information only: ISO applicability not confirmed (ISO 20816-3 group 1, flexible limits)"
    )


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[MemoryGateway]:
    async with memory_gateway(memory_settings(tmp_path, command_timeout_s=5, calibration_timeout_s=5)) as g:
        yield g


@pytest.mark.parametrize(("patch", "reason"), BAD_ISO)
async def test_put_config_422_names_the_reason_and_sends_nothing(
    gw: MemoryGateway, patch: dict[str, Any], reason: str
) -> None:
    asset = f"iso-{uuid.uuid4().hex[:8]}"
    r = await gw.api.put(f"/assets/{asset}/config", json={"name": "rig", "rpm": 1480, **patch})
    assert r.status_code == 422, r.text
    assert reason in json.dumps(r.json()["detail"]), r.json()
    assert gw.bus.on(topics.command("config")) == []
