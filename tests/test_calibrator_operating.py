"""Calibration uses only running data (issue 16): stopped and starting readings and windows are left out,
the reply and the manifest say how many and why, and too little running data is refused with the numbers."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from services.calibrator.data import collect
from shared.bus import MemoryBus
from shared.features.engine import FeatureEngine
from shared.learning import registry
from shared.messages import Reading, Window, new_event_id
from shared.messages.operating import OperatingSettings
from shared.records import features_to_point
from shared.store.sqlite import SqliteStore
from tests.test_learning_services import T0, calibrate_via_bus, fill_store, make_calibrator, readings

DT_S = 0.2  # seconds between readings (as tests.test_learning_services.readings)


def stopped(n: int, start_index: int) -> list[Reading]:
    """A stopped motor: mains voltage, clamp noise for current, no vibration."""
    rng = np.random.default_rng(start_index)
    return [
        Reading(
            event_id=new_event_id(),
            asset_id="m1",
            ts=T0 + timedelta(seconds=DT_S * (start_index + i)),
            voltage_v=230.0 + float(rng.normal(0, 1)),
            current_a=0.05 + float(rng.uniform(0, 0.02)),
            power_factor=0.1,
            vibration_g=0.005,
        )
        for i in range(n)
    ]


def shifted(rs: list[Reading], start_index: int, dt_s: float) -> list[Reading]:
    """The readings from reading ``start_index`` on, ``dt_s`` apart."""
    t0 = T0 + timedelta(seconds=DT_S * start_index)
    return [r.model_copy(update={"ts": t0 + timedelta(seconds=dt_s * i)}) for i, r in enumerate(rs)]


async def test_a_stop_start_cycle_is_left_out_of_the_calibration(tmp_path: Path) -> None:
    # 300 running, 150 stopped (30 s), 250 running 0.21 s apart: the first 143 after the start are
    # starting (0 .. 29.82 s of the 30 s settle; 0.21 s keeps the boundary off a reading)
    cal, store = make_calibrator(tmp_path)
    rs = readings(300) + stopped(150, 300) + shifted(readings(250, seed=1), 450, 0.21)
    fill_store(store, rs)
    reply = await calibrate_via_bus(cal, MemoryBus(), minutes=60)
    assert reply["status"] == "completed", reply
    assert reply["data_points_collected"] == 407  # 300 + 107 running readings
    want = (
        "excluded 293 of 700 readings while not running (150 stopped, 143 starting; current_a stopped below"
    )
    assert want in reply["message"]
    manifest = registry.load_manifest(tmp_path / "models", "m1", reply["models"]["legacy"])
    [op] = manifest["baseline"]["operating"]
    assert (op["n"], op["stopped"], op["starting"], op["start_settle_s"]) == (700, 150, 143, 30.0)
    assert op["stopped_below"] == pytest.approx(1.5, rel=0.05)  # 10 % of the ~15 A running median
    # the baseline is the running machine's: the stopped current did not pull its mean down
    assert manifest["baseline"]["signal_baseline"]["current_a"]["min"] > 10


async def test_the_asset_configs_operating_block_decides_what_is_running(tmp_path: Path) -> None:
    """The calibrator reads the asset's ``operating`` block: a state given as running keeps the stop
    (the user says the low current is a running state, e.g. a VFD at low speed)."""
    from services.calibrator import configs
    from shared.messages import AssetConfig

    cal, store = make_calibrator(tmp_path)
    given = OperatingSettings(source="given", state="running")
    configs.save_config(configs.config_dir(tmp_path), AssetConfig(asset_id="m1", operating=given))
    fill_store(store, readings(300) + stopped(150, 300))
    reply = await calibrate_via_bus(cal, MemoryBus(), minutes=60)
    assert reply["data_points_collected"] == 450, reply
    assert "while not running" not in reply.get("message", "")


async def test_too_little_running_data_is_refused_with_the_numbers(tmp_path: Path) -> None:
    cal, store = make_calibrator(tmp_path)
    fill_store(store, readings(80) + stopped(400, 80))
    reply = await calibrate_via_bus(cal, MemoryBus(), minutes=60)
    assert reply["status"] == "failed" and reply["code"] == "insufficient_data"
    msg = reply["message"]
    assert msg.startswith("Insufficient data for calibration: found 80 readings (need 100)")
    assert (
        "while it was running (excluded 400 of 480 readings while not running (400 stopped, 0 starting" in msg
    )


def window(i: int, amp_g: float) -> Window:
    rng = np.random.default_rng(i)
    x = [float(v) for v in 1.0 + amp_g * rng.normal(0, 1, 256)]  # gravity plus broadband vibration
    ts = T0 + timedelta(
        seconds=11 * i
    )  # 11 s apart: no window 30 s after the start (stored times jitter by ns)
    return Window(event_id=new_event_id(), asset_id="m1", ts=ts, fs_hz=2560.0, n=256, axes=["x"], x=x)


def test_windows_of_an_asset_without_readings_are_judged_by_their_own_level(tmp_path: Path) -> None:
    store, eng = SqliteStore(tmp_path / "db.sqlite"), FeatureEngine()
    amps = [0.3] * 20 + [0.002] * 10 + [0.3] * 20  # stopped 110 s, then 3 windows starting (0, 11, 22 s)
    store.write([features_to_point(eng.on_window(window(i, a))) for i, a in enumerate(amps)])
    c = collect(store, "m1", 60)
    [ex] = c.operating
    assert (ex.what, ex.n, ex.stopped, ex.starting) == ("vibration windows", 50, 10, 3)
    assert c.windows == 37 and c.datasets["autoencoder"][0].shape[0] == 37
    # a configured level in g, and a state given by the user
    c = collect(store, "m1", 60, operating=OperatingSettings(stopped_below_g=0.5))
    assert c.windows == 0 and "window_std_g stopped below 0.5 g (configured)" in c.operating[0].message()
    c = collect(store, "m1", 60, operating=OperatingSettings(source="given", state="running"))
    assert c.windows == 50 and c.operating[0].excluded == 0
