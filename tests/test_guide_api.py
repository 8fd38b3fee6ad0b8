"""The calibration guide's API shapes on the gateway (in-memory bus): the top-level monitoring status
(fleet rule, the subject asset, the flat baseline summary, calibration progress), ``GET
/monitoring/baseline`` without an asset id, and JSON bodies whatever their Content-Type."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.gateway.routers.monitoring import guide_batch_name, version_time
from shared import topics
from shared.features import BATCH_FEATURE_NAMES
from shared.messages import (
    CalibrationProgress,
    CalibrationReply,
    FeatureBaseline,
    FeatureStat,
    ModelAnnouncement,
    SignalStat,
    StateChange,
)
from tests.support.gateway import MemoryGateway, manifest, memory_gateway, memory_settings, poll, responder
from tests.support.signing import signed

#: The guide's status fields, in its order.
GUIDE_STATUS = [
    "system_state",
    "calibration_active",
    "baseline_established",
    "models_loaded",
    "baseline_summary",
]


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def mgw(tmp_path: Path) -> AsyncIterator[MemoryGateway]:
    async with memory_gateway(memory_settings(tmp_path)) as gw:
        yield gw


def signals(voltage: float) -> dict[str, SignalStat]:
    stats = {"voltage_v": (voltage, 2.8), "current_a": (15.1, 0.4), "power_factor": (0.92, 0.01)}
    stats["vibration_g"] = (0.15, 0.02)
    return {k: SignalStat(mean=m, std=s, min=m - 3 * s, max=m + 3 * s) for k, (m, s) in stats.items()}


async def announce(gw: MemoryGateway, asset: str, version: str, voltage: float) -> None:
    """Legacy + batch models of ``version`` whose signal baseline has ``voltage`` as its mean."""
    for kind in ("legacy", "batch"):
        ann = ModelAnnouncement(
            asset_id=asset,
            model=kind,  # type: ignore[arg-type]
            version=version,
            path=f"/models/{asset}/{kind}.onnx",
            created_at=datetime(2024, 5, 1, 12, tzinfo=UTC),
            manifest=manifest(kind, signal_baseline=signals(voltage)),
            onnx_b64="AAAA" * 10,
        )
        await gw.retain(topics.model_announce(asset, kind), signed(ann))
    await poll(lambda: len(gw.view.models.get(asset, {})) == 2)


async def status(gw: MemoryGateway) -> dict[str, Any]:
    r = await gw.api.get("/monitoring/status")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_fresh_status_is_idle_in_the_guides_order(mgw: MemoryGateway) -> None:
    st = await status(mgw)
    assert list(st)[: len(GUIDE_STATUS)] == GUIDE_STATUS
    assert (st["system_state"], st["calibration_active"], st["baseline_established"]) == (
        "IDLE",
        False,
        False,
    )
    assert st["models_loaded"] == {"legacy_model": False, "batch_model": False, "autoencoder": False}
    assert (st["baseline_summary"], st["asset_id"], st["calibration"], st["calibrations"]) == (
        None,
        None,
        None,
        {},
    )
    r = await mgw.api.get("/monitoring/baseline")
    assert r.status_code == 404 and "no asset is calibrated yet" in r.json()["detail"]


async def test_top_level_fields_describe_the_asset_calibrated_last(mgw: MemoryGateway) -> None:
    old, new, busy = uid("old"), uid("new"), uid("busy")
    await announce(mgw, old, "v20240501T120000Z-aaaaaa", 228.0)
    await announce(mgw, new, "v20240601T120000Z-bbbbbb", 230.2)
    for a in (old, new):
        await mgw.retain(topics.state(a), StateChange(asset_id=a, state="CALIBRATED"))
    await poll(lambda: old in mgw.view.states and new in mgw.view.states)

    st = await status(mgw)
    assert (st["system_state"], st["calibration_active"], st["asset_id"]) == ("CALIBRATED", False, new)
    assert st["baseline_established"] is True
    assert st["models_loaded"] == {"legacy_model": True, "batch_model": True, "autoencoder": False}
    assert st["baseline_summary"] == {
        "voltage_mean": 230.2,
        "current_mean": 15.1,
        "power_factor_mean": 0.92,
        "vibration_mean": 0.15,
        "voltage_std": 2.8,
        "current_std": 0.4,
        "power_factor_std": 0.01,
        "vibration_std": 0.02,
    }
    assert st["state_counts"] == {"CALIBRATED": 2}
    assert st["assets"][old]["baseline_summary"]["voltage"] == {"mean": 228.0, "std": 2.8}  # per asset kept

    # Without an asset id the baseline is the newest model version's asset, named in the answer.
    r = await mgw.api.get("/monitoring/baseline")
    assert r.status_code == 200 and r.json()["asset_id"] == new
    assert list(r.json())[:3] == ["baseline", "batch_baseline", "asset_id"]

    # A calibration asked for later makes its asset the subject; its progress is shown.
    started = datetime.now(UTC) - timedelta(seconds=2)
    progress = CalibrationProgress(
        phase="training", step=4, steps=5, percent=60.0, started_at=started, data_points_collected=300
    )
    calibrating = StateChange(asset_id=busy, state="CALIBRATING", reason="Training...", calibration=progress)
    await mgw.retain(topics.state(busy), calibrating)
    await poll(lambda: busy in mgw.view.states)
    st = await status(mgw)
    assert (st["system_state"], st["calibration_active"], st["asset_id"]) == ("CALIBRATING", True, busy)
    assert (st["baseline_established"], st["baseline_summary"]) == (False, None)
    assert st["calibration"]["phase"] == "training" and st["calibration"]["percent"] == 60.0
    assert st["calibration"]["data_points_collected"] == 300
    assert list(st["calibrations"]) == [busy] and st["assets"][busy]["calibration_active"] is True
    assert st["state_counts"] == {"CALIBRATED": 2, "CALIBRATING": 1}
    r = await mgw.api.get("/monitoring/baseline")  # the baseline stays the one of a calibrated asset
    assert r.json()["asset_id"] == new


async def test_one_monitoring_asset_among_calibrated_ones_makes_the_fleet_monitoring(
    mgw: MemoryGateway,
) -> None:
    a, b = uid("a"), uid("b")
    await mgw.retain(topics.state(a), StateChange(asset_id=a, state="MONITORING"))
    await mgw.retain(topics.state(b), StateChange(asset_id=b, state="IDLE"))
    await poll(lambda: a in mgw.view.states and b in mgw.view.states)
    st = await status(mgw)
    assert (st["system_state"], st["calibration_active"], st["asset_id"]) == ("MONITORING", False, None)


def test_version_time_reads_registry_ids_only() -> None:
    assert version_time("v20240601T120000Z-bbbbbb") == datetime(2024, 6, 1, 12, tzinfo=UTC)
    assert version_time("imported-1") is None


# ---------------------------------------------------------------------------------------------
# JSON bodies whatever the Content-Type
# ---------------------------------------------------------------------------------------------
def accepted(req: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"asset_id": req["asset_id"], "status": "accepted", "data_points_collected": 300}]


@pytest.mark.parametrize(
    "content_type",
    [None, "application/x-www-form-urlencoded", "text/plain; charset=utf-8", "application/json"],
)
async def test_a_json_body_is_read_whatever_its_content_type(
    mgw: MemoryGateway, content_type: str | None
) -> None:
    """``curl -d '{...}'`` without a header sends form-urlencoded: still the guide's 202."""
    body = b'{"asset_id": "motor_01"}'
    headers = {"content-type": content_type} if content_type else {}
    async with responder(mgw.bus, "calibrate", accepted, CalibrationReply) as seen:
        r = await mgw.api.post("/calibration/start", content=body, headers=headers)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "calibration_started" and seen[0]["asset_id"] == "motor_01"
    log = b'{"asset_id": "motor_01", "event_type": "observation", "description": "from curl"}'
    r = await mgw.api.post("/logs", content=log, headers=headers)
    assert r.status_code == 202, r.text


async def test_a_body_that_is_not_json_is_a_clear_422(mgw: MemoryGateway) -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    r = await mgw.api.post("/calibration/start", content=b"asset_id=motor_01", headers=form)
    assert r.status_code == 422 and r.json()["detail"].startswith("malformed JSON: Expecting value")
    r = await mgw.api.post("/calibration/start", content=b'["motor_01"]', headers=form)
    assert r.status_code == 422 and "valid dictionary" in r.json()["detail"]
    assert mgw.bus.on(topics.command("calibrate")) == []


def test_batch_features_take_the_guides_names() -> None:
    assert [guide_batch_name(n) for n in BATCH_FEATURE_NAMES[:4]] == [
        "voltage_mean",
        "voltage_std",
        "voltage_peak_to_peak",
        "voltage_rms",
    ]
    assert len({guide_batch_name(n) for n in BATCH_FEATURE_NAMES}) == 16
    assert guide_batch_name("power_factor_v_ptp") == "power_factor_v_ptp"  # not one of ours: unchanged


async def test_baseline_answers_in_the_guides_shape(mgw: MemoryGateway) -> None:
    asset = uid("m")
    stats = FeatureBaseline(
        n=300,
        features=[
            FeatureStat(name=f, mean=1.0 + i, std=0.5, min=0.0, max=3.0 + i, median=1.0, mad=0.2)
            for i, f in enumerate(BATCH_FEATURE_NAMES)
        ],
    )
    ann = ModelAnnouncement(
        asset_id=asset,
        model="batch",
        version="v20240601T120000Z-cccccc",
        path=f"/models/{asset}/batch.onnx",
        created_at=datetime(2024, 6, 1, 12, tzinfo=UTC),
        manifest=manifest("batch", list(BATCH_FEATURE_NAMES), baseline=stats),
        onnx_b64="AAAA",
    )
    await mgw.retain(topics.model_announce(asset, "batch"), signed(ann))
    await poll(lambda: asset in mgw.view.models)
    body = (await mgw.api.get("/monitoring/baseline")).json()
    assert body["asset_id"] == asset and body["baseline"] is None
    batch = body["batch_baseline"]
    assert list(batch)[:4] == ["voltage_mean", "voltage_std", "voltage_peak_to_peak", "voltage_rms"]
    assert batch["voltage_peak_to_peak"]["mean"] == 3.0 and batch["vibration_rms"]["std"] == 0.5
    assert body["batch_feature_names"]["current_peak_to_peak"] == "current_a_ptp"
