"""Sensor-fault detectors (shared/health/sensor.py, sensor_stream.py) on hand-checkable signals: a clipped
sine, a constant, a half-flat window, 30 identical readings, a gap, a one-reading spike, a changed sample
rate; and on healthy real recordings (FEMTO first halves, CWRU normal) and synthetic machine faults,
which must never read as sensor faults."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shared.health.sensor import SensorParams, longest_runs, rate_findings, window_findings
from shared.health.sensor_stream import AssetSensors, StreamMonitor
from shared.synth import FAULT_KINDS_SIMPLE, FAULT_KINDS_VIBRATION, simple_reading, vibration_window

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
FEMTO = sorted((DATASETS / "femto_pronostia").glob("femto_Bearing*.npz"))
CWRU = DATASETS / "cwru" / "cwru_0hp_1797rpm.npz"
SIGNALS = ("voltage_v", "current_a", "power_factor", "vibration_g")


def sine(f: float = 10.0, fs: float = 500.0, n: int = 256, phase: float = 0.3) -> np.ndarray:
    return np.sin(2 * np.pi * f * np.arange(n) / fs + phase)


def kinds(findings: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(f.kind, f.signal) for f in findings]


# -- one window ----------------------------------------------------------------------------------
def test_a_clean_sine_is_not_a_sensor_fault() -> None:
    # 50 samples per period: its peak value recurs exactly every period (10 peaks), never 3 in a row
    for phase in (0.0, 0.3, np.pi / 2 - np.pi * 10 / 500):
        assert window_findings([sine(phase=phase)], ["x"], 0.0) == []


def test_a_sine_clipped_at_the_rail_is_clipping() -> None:
    x = sine(n=256)
    x[12:15] = 1.5  # a flat top of 3 samples at the rail ...
    x[37:39] = -1.5  # ... and 2 more at the negative rail: 5 at the extreme
    (f,) = window_findings([x], ["x"], 7.0)
    assert (f.kind, f.signal, f.since) == ("clipping", "x", 7.0)
    assert f.values["samples_at_extreme"] == 5 and f.values["extreme_g"] == 1.5
    x[37:39] = 0.0  # 3 at the extreme: fewer than 5
    assert window_findings([x], ["x"], 7.0) == []


def test_full_scale_clipping_needs_only_three_samples_at_the_configured_rail() -> None:
    x = sine(n=256) * 2.0
    x[[10, 40, 80]] = 2.0  # 3 isolated samples at the configured full scale of 2 g
    assert window_findings([x], ["x"], 0.0) == []
    (f,) = window_findings([x], ["x"], 0.0, SensorParams(full_scale_g=2.0))
    assert f.kind == "clipping" and "3 at the full scale" in f.reason


def test_a_constant_axis_is_flat_and_names_the_axis() -> None:
    x = np.vstack([sine(), np.full(256, 0.25)])
    (f,) = window_findings(x, ["x", "y"], 3.0)
    assert (f.kind, f.signal) == ("flatline", "y")
    assert f.values == {"ptp_g": 0.0, "longest_run": 256.0, "n": 256.0}
    assert "stuck, not the machine" in f.reason


def test_a_window_half_made_of_one_repeated_sample_is_flat() -> None:
    x = sine()
    x[100:228] = x[100]  # 128 identical samples = half of 256
    assert kinds(window_findings([x], ["z"], 0.0)) == [("flatline", "z")]
    x[100:227] = x[100] + np.arange(127) * 1e-3  # 1 short of half: varying again
    assert window_findings([x], ["z"], 0.0) == []


def test_longest_runs_counts_identical_neighbours() -> None:
    x = np.array([[1.0, 1.0, 2.0, 2.0, 2.0, 1.0], [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]])
    assert longest_runs(x).tolist() == [3, 1]
    assert longest_runs(x == 2.0, of=True).tolist() == [3, 0]


def test_rate_and_length_changes_against_the_reference() -> None:
    assert rate_findings(500.0, 256, 500.0, 256, 0.0) == []
    found = rate_findings(250.0, 128, 500.0, 256, 9.0)
    assert kinds(found) == [("rate_mismatch", "window"), ("length_change", "window")]
    assert "250 Hz differs from the stream's 500 Hz" in found[0].reason


def test_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match="one row per axis"):
        window_findings(np.zeros((2, 10)), ["x"], 0.0)
    with pytest.raises(ValueError, match="finite"):
        window_findings([[0.0, np.nan]], ["x"], 0.0)
    with pytest.raises(ValueError, match="ts must be"):
        window_findings([[0.0, 1.0]], ["x"], float("nan"))
    with pytest.raises(ValueError, match="clip_min_samples"):
        SensorParams(clip_min_samples=0)
    with pytest.raises(ValueError, match="history"):
        SensorParams(history=10)


# -- streams --------------------------------------------------------------------------------------
def healthy(rng: np.random.Generator) -> dict[str, float]:
    d = simple_reading(rng, False)
    return {k: d[k] for k in SIGNALS}


def test_thirty_identical_readings_are_stuck_since_the_first_of_them() -> None:
    rng = np.random.default_rng(1)
    s = StreamMonitor(SensorParams())
    for i in range(50):
        assert s.update(float(i), healthy(rng)) == []
    stuck = healthy(rng)
    for i in range(50, 79):  # 29 identical readings: not yet
        assert s.update(float(i), stuck) == []
    found = s.update(79.0, stuck)
    assert sorted(kinds(found)) == sorted(("stuck", k) for k in SIGNALS)
    assert {f.since for f in found} == {50.0} and found[0].values["readings"] == 30


def test_a_gap_of_more_than_ten_median_intervals_is_a_dropout() -> None:
    rng = np.random.default_rng(2)
    s = StreamMonitor(SensorParams())
    for i in range(20):
        s.update(float(i), healthy(rng))
    assert s.update(19.0 + 10.0, healthy(rng)) == []  # 10 x the 1 s median: not more
    s = StreamMonitor(SensorParams())
    for i in range(20):
        s.update(float(i), healthy(rng))
    (f,) = s.update(19.0 + 10.5, healthy(rng))
    assert (f.kind, f.since, f.values["gap_s"], f.values["median_s"]) == ("dropout", 29.5, 10.5, 1.0)


def test_a_pause_between_bursts_shorter_than_the_floor_is_not_a_dropout() -> None:
    """Readings stamped on arrival come in bursts (9 ms apart): a 1 s pause is 111 x the median interval
    but below the 5 s floor; a 6 s pause is a dropout."""
    rng = np.random.default_rng(4)
    s = StreamMonitor(SensorParams())
    ts = [i * 0.009 for i in range(20)]
    for t in ts:
        assert s.update(t, healthy(rng)) == []
    assert s.update(ts[-1] + 1.0, healthy(rng)) == []
    (f,) = s.update(ts[-1] + 1.0 + 6.0, healthy(rng))
    assert (f.kind, f.values["gap_s"]) == ("dropout", pytest.approx(6.0))
    with pytest.raises(ValueError, match="dropout_min_gap_s"):
        SensorParams(dropout_min_gap_s=0.0)


def test_a_one_reading_spike_is_a_jump_a_step_that_persists_is_not() -> None:
    rng = np.random.default_rng(3)
    s = StreamMonitor(SensorParams())
    for i in range(40):
        assert s.update(float(i), healthy(rng)) == []
    spike = healthy(rng) | {"voltage_v": 400.0}
    assert s.update(40.0, spike) == []  # judged when the next reading shows whether it persisted
    (f,) = s.update(41.0, healthy(rng))
    assert (f.kind, f.signal, f.since, f.values["value"]) == ("jump", "voltage_v", 40.0, 400.0)

    s = StreamMonitor(SensorParams())
    for i in range(40):
        s.update(float(i), healthy(rng))
    for i in range(40, 60):  # the machine's voltage steps up and stays: never a jump
        assert s.update(float(i), healthy(rng) | {"voltage_v": 400.0 + i}) == []


def test_the_same_window_three_times_is_stuck_and_a_new_rate_is_reported() -> None:
    a = AssetSensors()
    x = np.vstack([sine(), sine(phase=1.0)])
    assert not a.on_window(0.0, 500.0, x, ["x", "y"]) and a.status == "ok"  # never told: ok
    assert not a.on_window(0.512, 500.0, x, ["x", "y"])
    assert a.on_window(1.024, 500.0, x, ["x", "y"]) and a.status == "fault"
    assert kinds(a.findings) == [("stuck", "window")] and a.since == 0.0
    b = AssetSensors()
    b.on_window(0.0, 500.0, x, ["x", "y"])
    assert b.on_window(0.512, 250.0, x[:, :128], ["x", "y"])
    assert sorted(kinds(b.findings)) == [("length_change", "window"), ("rate_mismatch", "window")]


def test_the_status_clears_after_clear_after_clean_updates() -> None:
    rng = np.random.default_rng(4)
    a = AssetSensors(SensorParams(clear_after=5))
    assert not a.on_reading(0.0, healthy(rng)) and a.status == "ok"
    stuck = healthy(rng)
    changes = [a.on_reading(float(i), stuck) for i in range(1, 31)]
    assert changes.index(True) == 29 and a.status == "fault" and a.since == 1.0
    changes = [a.on_reading(float(i), healthy(rng)) for i in range(31, 40)]
    assert changes == [False] * 4 + [True] + [False] * 4
    assert a.status == "ok" and a.since == 35.0 and a.findings == []


# -- healthy data and machine faults are not sensor faults ------------------------------------------
def test_healthy_real_recordings_raise_no_sensor_fault() -> None:
    # the data sets beside the checkout are part of CI: a missing one fails, it does not skip
    assert len(FEMTO) == 6 and CWRU.exists(), (DATASETS, [p.name for p in FEMTO])
    for path in FEMTO:  # the first half of each run to failure, 2 channels, every 10 s
        with np.load(path) as z:
            half = z["acc"].shape[0] // 2
            acc = z["acc"][:half].astype(np.float64) * float(z["scale_g"])
            a = AssetSensors()
            for w, t in zip(acc.transpose(0, 2, 1), z["t_s"][:half], strict=True):
                a.on_window(float(t), float(z["fs_hz"]), w, ["x", "y"])
                assert a.status == "ok", (path.name, t, a.findings)
    with np.load(CWRU) as c:
        fs = json.loads(str(c["meta_json"]))["normal"]["fs_hz"]
        x = np.vstack([c["normal__DE"], c["normal__FE"]]).astype(np.float64)
    a = AssetSensors()
    for i in range(0, x.shape[1] - 2048, 2048):
        a.on_window(i / fs, fs, x[:, i : i + 2048], ["x", "y"])
        assert a.status == "ok", (i, a.findings)


def test_synthetic_machine_faults_are_not_sensor_faults() -> None:
    rng = np.random.default_rng(5)
    for kind in FAULT_KINDS_SIMPLE:
        a = AssetSensors()
        for i in range(600):
            faulty = 200 <= i < 400
            d = simple_reading(rng, faulty, kind if faulty else None)
            a.on_reading(float(i), {k: d[k] for k in SIGNALS})
            assert a.status == "ok", (kind, i, a.findings)
    for kind in FAULT_KINDS_VIBRATION:  # looseness truncates the waveform, but noise rides on top
        a = AssetSensors()
        for i in range(60):
            w = vibration_window(rng, 500.0, 256, rpm=1800.0, fault=kind, severity="severe", t0_s=i * 0.512)
            a.on_window(i * 0.512, 500.0, w, ["x", "y", "z"])
            assert a.status == "ok", (kind, i, a.findings)
