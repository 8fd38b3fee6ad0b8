"""Insights: right signal, right number, empty when healthy."""

from __future__ import annotations

import pytest

from shared.health.insights import (
    MachineInfo,
    ModelStatus,
    bearing_orders,
    build_insights,
    fmt_num,
    z_score,
)
from shared.health.iso20816 import iso_zone
from shared.messages import AssetConfig, BearingGeometry, Score

BASELINE = {
    "voltage_v": {"mean": 230.0, "std": 26.625, "min": 180.0, "max": 280.0},
    "voltage_v_mean": {"mean": 230.0, "std": 2.0},
    "current_a": {"mean": 12.0, "std": 0.5},
    "power_factor": {"mean": 0.92, "std": 0.01},
    "vibration_g": {"mean": 0.25, "std": 0.05},
    "vibration_g_std": {"mean": 0.02, "std": 0.005},
    "x_kurtosis": {"mean": 0.1, "std": 0.3},
    "order1_amp_g": {"mean": 0.10, "std": 0.02},
    "order2_amp_g": {"mean": 0.05, "std": 0.02},
    "order3_amp_g": {"mean": 0.02, "std": 0.01},
    "env_bpfo_amp": {"mean": 0.01, "std": 0.005},
}
HEALTHY = {
    "voltage_v": 236.0,
    "voltage_v_mean": 231.0,
    "current_a": 12.3,
    "power_factor": 0.925,
    "vibration_g": 0.27,
    "vibration_g_std": 0.021,
    "x_kurtosis": 0.2,
    "order1_amp_g": 0.11,
    "order2_amp_g": 0.05,
    "order3_amp_g": 0.02,
    "env_bpfo_amp": 0.011,
    "env_bpfo_snr": 1.3,
    "env_bpfi_snr": 0.9,
}
MACHINE = MachineInfo(rpm=1800.0, orders={"bpfo": 3.5667, "bpfi": 5.4333})


def texts(items: list) -> list[str]:
    return [i.text for i in items]


def test_empty_when_everything_is_normal() -> None:
    scores = [ModelStatus("batch", 0.3, False), ModelStatus("legacy", 0.6, False)]
    assert build_insights(HEALTHY, BASELINE, scores, iso_zone(1.0, 2, "rigid"), MACHINE) == []
    assert build_insights({}, None) == []
    assert build_insights(HEALTHY, None, scores, iso_zone(2.0, 2, "rigid"), MACHINE) == []  # zone B


def test_voltage_spike() -> None:
    out = build_insights({**HEALTHY, "voltage_v": 315.2}, BASELINE)
    assert texts(out) == ["Voltage spike detected: 315.2V (3.2σ above normal)"]
    assert out[0].signal == "voltage_v" and out[0].value == 315.2 and out[0].severity == "WARNING"


def test_voltage_sag_and_grouping() -> None:
    # raw voltage and the window mean are both low: one "voltage" insight, the stronger one
    # (window mean: std 2.0 is below the 1 % floor 2.3 -> z = -30 / 2.3 = -13.0; raw: -4.9)
    out = build_insights({**HEALTHY, "voltage_v": 100.0, "voltage_v_mean": 200.0}, BASELINE)
    assert texts(out) == ["Low voltage: window mean 200.0V (13.0σ below normal)"]
    assert out[0].severity == "CRITICAL"


def test_vibration_jump() -> None:
    out = build_insights({**HEALTHY, "vibration_g": 0.85}, BASELINE)
    assert texts(out) == ["Vibration jump: 0.85g (12.0σ above normal, baseline 0.25g)"]
    assert out[0].signal == "vibration_g"


def test_power_factor_drop_and_rise_ignored() -> None:
    out = build_insights({**HEALTHY, "power_factor": 0.62}, BASELINE)
    assert texts(out) == ["Power factor drop: 0.62 (baseline 0.92 ±0.01)"]
    assert out[0].signal == "power_factor" and out[0].severity == "CRITICAL"
    assert build_insights({**HEALTHY, "power_factor": 0.99}, BASELINE) == []  # a better PF is no fault


def test_vibration_jitter() -> None:
    out = build_insights({**HEALTHY, "vibration_g_std": 0.17}, BASELINE)
    assert texts(out) == ["High vibration variance: σ=0.17g (baseline: 0.02g)"]
    assert out[0].signal == "vibration_g_std"
    base = {
        **BASELINE,
        "voltage_v_std": {"mean": 0.8, "std": 0.2},
        "current_a_std": {"mean": 0.1, "std": 0.1},
    }
    out = build_insights({**HEALTHY, "voltage_v_std": 4.1, "current_a_std": 0.12}, base)
    assert texts(out) == ["Voltage jitter: σ=4.10V (baseline: 0.80V)"]


def test_iso_zone_c_and_d() -> None:
    out = build_insights({}, None, iso=iso_zone(5.1, 1, "rigid"))
    assert texts(out) == [
        "Vibration in ISO 20816 zone C: 5.1 mm/s (above 4.5 mm/s: not for long-term operation)"
    ]
    assert out[0].severity == "WARNING" and out[0].value == 5.1
    out = build_insights({}, None, iso=iso_zone(12.3, 1, "flexible"))
    assert texts(out) == ["Vibration in ISO 20816 zone D: 12.3 mm/s (above 11 mm/s: damage likely)"]
    assert out[0].severity == "CRITICAL"


def test_bpfo_envelope_peak_with_frequency() -> None:
    cur = {**HEALTHY, "env_bpfo_amp": 0.06, "env_bpfo_snr": 6.2}
    out = build_insights(cur, BASELINE, machine=MACHINE)
    # 1800 rpm = 30 Hz; 30 * 3.5667 = 107.0 Hz
    assert texts(out) == ["Envelope peak at BPFO 107 Hz: outer-race defect likely (SNR 6.2)"]
    assert out[0].signal == "env_bpfo_snr" and out[0].severity == "CRITICAL"
    # unknown speed: no frequency, still named
    out = build_insights(cur, BASELINE)
    assert texts(out) == ["Envelope peak at BPFO: outer-race defect likely (SNR 6.2)"]
    # high SNR but amplitude at its baseline level: not reported
    assert build_insights({**HEALTHY, "env_bpfo_snr": 6.2}, BASELINE, machine=MACHINE) == []
    # inner race without any baseline, SNR just at the threshold: a peak, not compared, no component
    out = build_insights({"env_bpfi_snr": 3.0}, None, machine=MACHINE)
    assert texts(out) == [
        "Envelope peak at the BPFI (163 Hz) frequency: SNR 3.0; not compared with a calibrated envelope "
        "level, no component named (recalibrate to diagnose)"
    ]
    assert out[0].signal == "envelope:bpfi_snr" and out[0].severity == "WARNING"


def test_running_speed_orders() -> None:
    out = build_insights({**HEALTHY, "order1_amp_g": 0.41}, BASELINE, machine=MACHINE)
    assert texts(out) == [
        "1× running speed (30.0 Hz) amplitude 4.1× baseline: imbalance likely (0.41g vs 0.10g)"
    ]
    out = build_insights({**HEALTHY, "order2_amp_g": 0.25, "order1_amp_g": 0.11}, BASELINE, machine=MACHINE)
    assert texts(out) == [
        "Strong 2× running-speed component (60.0 Hz): misalignment likely (0.25g, 2.3× the 1× amplitude)"
    ]
    # 2x elevated but far below 1x: not a misalignment pattern
    assert build_insights({**HEALTHY, "order2_amp_g": 0.25, "order1_amp_g": 0.6}, BASELINE)[0].signal != (
        "order2_amp_g"
    )
    out = build_insights({**HEALTHY, "order3_amp_g": 0.09}, BASELINE, machine=MACHINE)
    assert texts(out) == [
        "Strong 3× running-speed component (90.0 Hz): mechanical looseness likely (0.09g, baseline 0.02g)"
    ]


def test_ranking_order_and_max_items() -> None:
    cur = {
        **HEALTHY,
        "voltage_v": 315.2,  # z 3.2 -> 3.84
        "power_factor": 0.62,  # z 30 -> 36
        "vibration_g": 0.85,  # z 12 -> 14.4
        "vibration_g_std": 0.17,  # z 30 -> 36
        "env_bpfo_amp": 0.06,
        "env_bpfo_snr": 4.5,  # 1.5 * 3 * 1.5 = 6.75
    }
    scores = [ModelStatus("batch", 3.1, True, "CRITICAL")]  # 1.55
    out = build_insights(cur, BASELINE, scores, iso_zone(12.3, 1, "flexible"), MACHINE, max_items=4)
    assert [i.signal for i in out] == ["velocity_rms_mm_s", "power_factor", "vibration_g_std", "vibration_g"]
    ranks = [i.score_for_ranking for i in out]
    assert ranks == sorted(ranks, reverse=True)
    everything = build_insights(cur, BASELINE, scores, iso_zone(12.3, 1, "flexible"), MACHINE, max_items=10)
    assert [i.signal for i in everything][4:] == ["env_bpfo_snr", "voltage_v", "model:batch"]
    assert build_insights(cur, BASELINE, max_items=0) == []


def test_model_insight_and_generic_feature() -> None:
    scores = [
        ModelStatus("batch", 3.1, True, "CRITICAL"),
        ModelStatus("legacy", 1.4, True, "WARNING"),
        ModelStatus("autoencoder", 0.3, False),
    ]
    out = build_insights({}, None, scores)
    assert texts(out) == ["Anomaly on 2 models: batch 3.1×, legacy 1.4× threshold"]
    assert out[0].severity == "CRITICAL"
    out = build_insights({}, None, [ModelStatus("autoencoder", 1.26, True)])
    assert texts(out) == ["Autoencoder model anomaly: score 1.3× threshold"]
    assert out[0].severity == "WARNING"
    # a feature without a text template still gets an insight with its name and numbers
    out = build_insights({"power_vibration_ratio": 9.0}, {"power_vibration_ratio": {"mean": 5.0, "std": 1.0}})
    assert texts(out) == ["power_vibration_ratio = 9.00 (4.0σ above baseline 5.00)"]


def test_model_status_from_score() -> None:
    s = Score(
        event_id="e" * 32,
        asset_id="m1",
        ts=1_700_000_000,
        model="batch",
        model_version="1",
        anomaly_score=0.6,
        raw_score=0.7,
        threshold=0.2,
        is_anomaly=True,
        severity="CRITICAL",
    )
    st = ModelStatus.from_score(s)
    assert st.ratio == pytest.approx(3.0) and st.is_anomaly and st.severity == "CRITICAL"


def test_bearing_orders_from_geometry() -> None:
    # SKF 6205: 9 balls, d = 7.94 mm, D = 39.04 mm, 0° -> BPFO 3.585, BPFI 5.415, ball spin 2.357, so the
    # ball defect line BSF 4.713 (twice the spin: the CWRU table's BSF), FTF 0.398
    o = bearing_orders(BearingGeometry(n_balls=9, ball_diameter_mm=7.94, pitch_diameter_mm=39.04))
    assert o["bpfo"] == pytest.approx(3.585, abs=1e-3)
    assert o["bpfi"] == pytest.approx(5.415, abs=1e-3)
    assert o["bsf"] == pytest.approx(4.713, abs=1e-3)
    assert o["ftf"] == pytest.approx(0.398, abs=1e-3)
    geom = BearingGeometry(n_balls=9, ball_diameter_mm=7.94, pitch_diameter_mm=39.04, bpfo_order=3.6)
    o = bearing_orders(geom)
    assert o["bpfo"] == 3.6
    assert bearing_orders(None) == {}
    with pytest.raises(ValueError, match="smaller"):
        bearing_orders(BearingGeometry(n_balls=9, ball_diameter_mm=40, pitch_diameter_mm=39.04))
    cfg = AssetConfig(asset_id="m1", rpm=1800, bearing=BearingGeometry(bpfo_order=3.5667))
    m = MachineInfo.from_config(cfg)
    assert m.shaft_hz == 30.0 and m.orders == {"bpfo": 3.5667}


def test_helpers() -> None:
    assert [fmt_num(v) for v in (315.24, 12.345, 0.17, 0.02, 0.0234, 0.005, 0.0, -0.62)] == [
        "315.2",
        "12.35",
        "0.17",
        "0.02",
        "0.023",
        "0.005",
        "0",
        "-0.62",
    ]
    assert z_score(0.62, 0.92, 0.01) == pytest.approx(-30.0)
    assert z_score(1.0, 1.0, 0.0) == 0.0
    assert z_score(1.1, 1.0, 0.0) == pytest.approx(10.0)  # std floor 1 % of mean


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"current": {"voltage_v": float("nan")}}, "voltage_v"),
        ({"current": {"voltage_v": 1.0}, "baseline": {"voltage_v": {"mean": 1.0}}}, "std"),
        ({"current": {"voltage_v": 1.0}, "baseline": {"voltage_v": {"mean": 1.0, "std": -1}}}, ">= 0"),
        ({"current": {}, "max_items": -1}, "max_items"),
        ({"current": {}, "z_min": 0}, "z_min"),
    ],
)
def test_rejects_bad_input(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_insights(**kwargs)
