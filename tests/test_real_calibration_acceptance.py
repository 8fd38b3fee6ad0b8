"""Issue 17's acceptance on real recordings, through the calibrator (in-memory bus, real SQLite store,
real features engine and training): every FEMTO learning-set bearing, horizontal + vertical as one 2-axis
asset, calibrates on its first 300 snapshots or on the snapshots of its first 10 % of life, whichever are
fewer, without a rejection; a CWRU fault record offered as calibration data is refused with the reason
(a bearing-fault signature), and calibrates only when the request accepts the signature explicitly.

The data sets beside the checkout (``../shared/datasets``) are part of CI: a missing file fails."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from shared import topics
from shared.bus import MemoryBus
from shared.features.engine import FeatureEngine
from shared.learning import registry
from shared.messages import CalibrationRequest, Window
from shared.records import features_to_point, window_to_point
from shared.service import Service, running_in_memory
from shared.store.sqlite import SqliteStore
from tests.test_learning_services import T0, make_calibrator

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
BEARINGS = ("1_1", "1_2", "2_1", "2_2", "3_1", "3_2")


def early_life(bearing: str) -> tuple[np.ndarray, np.ndarray, float]:
    """The first min(300, first 10 % of life) kept snapshots of a FEMTO bearing: ``acc[k, 2560, 2]`` in g,
    their start times (s) and the rate (Hz)."""
    with np.load(DATASETS / "femto_pronostia" / f"femto_Bearing{bearing}.npz") as z:
        t_s = z["t_s"]
        life = float(json.loads(str(z["meta_json"]))["life_s"])
        k = min(300, int(np.count_nonzero(t_s < 0.1 * life)))
        return z["acc"][:k].astype(np.float64) * float(z["scale_g"]), t_s[:k], float(z["fs_hz"])


def store_windows(store: SqliteStore, windows: list[Window]) -> None:
    eng = FeatureEngine()
    store.write([p for w in windows for p in (window_to_point(w), features_to_point(eng.on_window(w)))])


async def calibrate(cal: Service, *, accept_fault_signature: bool = False) -> dict:
    bus = MemoryBus()
    async with running_in_memory(cal, bus):
        q = bus.subscribe(topics.reply("t", "c1"))
        req = CalibrationRequest(
            correlation_id="c1",
            reply_to=topics.reply("t", "c1"),
            asset_id="m1",
            lookback_minutes=24 * 60,
            accept_fault_signature=accept_fault_signature,
        )
        await bus.publish(topics.command("calibrate"), req)
        return json.loads((await asyncio.wait_for(q.get(), 120)).payload)


@pytest.mark.parametrize("bearing", BEARINGS)
async def test_every_femto_bearing_calibrates_on_its_early_life_as_a_two_axis_asset(
    tmp_path: Path, bearing: str
) -> None:
    acc, t_s, fs = early_life(bearing)
    assert 26 <= len(acc) <= 300
    windows = [
        Window(
            event_id=f"b{bearing}-{i}",
            asset_id="m1",
            ts=T0 + timedelta(seconds=float(t_s[i])),
            fs_hz=fs,
            n=acc.shape[1],
            axes=["x", "y"],
            x=acc[i, :, 0].tolist(),
            y=acc[i, :, 1].tolist(),
        )
        for i in range(len(acc))
    ]
    cal, store = make_calibrator(tmp_path)
    store_windows(store, windows)
    reply = await calibrate(cal)
    assert reply["status"] == "completed", reply
    manifest = registry.load_manifest(tmp_path / "models", "m1", reply["models"]["autoencoder"])
    entry = manifest["models"]["autoencoder"]
    assert entry["frames"]["axes"] == ["x", "y"] and len(entry["features"]) == 22
    assert entry["training"]["n"] >= 0.95 * 20 * len(acc)  # frame rows, at most 5 % excluded
    signature = manifest["baseline"]["fault_signature"]
    assert signature["ok"] and not signature["accepted_on_request"]


def cwru_windows(label: str, channel: str = "DE", n: int = 2048) -> list[Window]:
    with np.load(DATASETS / "cwru" / "cwru_0hp_1797rpm.npz") as z:
        x = z[f"{label}__{channel}"].astype(np.float64)
        fs = float(json.loads(str(z["meta_json"]))[label]["fs_hz"])
    rows = x[: len(x) // n * n].reshape(-1, n)
    return [
        Window(
            event_id=f"{label}-{i}",
            asset_id="m1",
            ts=T0 + timedelta(seconds=i * n / fs),
            fs_hz=fs,
            n=n,
            axes=["x"],
            x=row.tolist(),
        )
        for i, row in enumerate(rows)
    ]


async def test_a_cwru_fault_record_offered_as_calibration_data_is_refused_with_the_reason(
    tmp_path: Path,
) -> None:
    """CWRU IR021 drive end (inner-race fault, 0.021 in): stationary, so the outlier screening alone sees
    nothing wrong; its median excess kurtosis (4.3; healthy bearings -0.3..0.5) refuses it."""
    cal, store = make_calibrator(tmp_path)
    store_windows(store, cwru_windows("IR021_12k"))
    reply = await calibrate(cal)
    assert (reply["status"], reply["code"]) == ("failed", "validation_failed"), reply
    assert "kurtosis" in reply["message"] and "accept_fault_signature" in reply["message"]
    assert not registry.list_versions(tmp_path / "models", "m1")

    accepted = await calibrate(cal, accept_fault_signature=True)
    assert accepted["status"] == "completed", accepted
    assert "kurtosis" in accepted["message"]
    manifest = registry.load_manifest(tmp_path / "models", "m1", accepted["models"]["autoencoder"])
    assert manifest["baseline"]["fault_signature"]["accepted_on_request"]


async def test_the_healthy_cwru_record_calibrates(tmp_path: Path) -> None:
    """The same path accepts CWRU's healthy record (drive end, 48 kHz, windows of 8,192)."""
    cal, store = make_calibrator(tmp_path)
    store_windows(store, cwru_windows("normal", n=8192))
    reply = await calibrate(cal)
    assert reply["status"] == "completed", reply
