"""Bearing-defect diagnosis against the asset's own calibrated envelope spectrum (issue 15).

The calibration stores, per envelope indicator, its healthy distribution
(:func:`shared.learning.baseline.envelope_baseline`); the manifest carries it to the health stage
(``ModelManifest.envelope_baseline``); a component is named only when its envelope amplitude rose
above ``ENVELOPE_RISE_FACTOR`` × the calibrated p95 with an SNR of at least ``envelope_snr_min`` in
``ENVELOPE_K`` of the last ``ENVELOPE_N`` windows (:mod:`shared.health.insights.envelope`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from services.health.messages import baseline_from_manifest
from shared import topics
from shared.bus import MemoryBus
from shared.features.engine import FeatureEngine
from shared.health.assessor import Assessment, HealthAssessor
from shared.health.insights import MachineInfo, build_insights
from shared.learning import registry
from shared.learning.baseline import envelope_baseline
from shared.learning.forest import export_forest_onnx, train_forest
from shared.learning.scoring import OnnxModel
from shared.messages import (
    AssetConfig,
    BearingGeometry,
    FeatureVector,
    HealthUpdate,
    InsightItem,
    ModelManifest,
    Window,
)
from shared.messages.learning import EnvelopeStat
from shared.records import features_to_point, window_to_point
from shared.reports.findings import insight_action
from tests.support.signing import signed


# ---------------------------------------------------------------------------------------------
# Calibration: the envelope baseline from hand-made extras
# ---------------------------------------------------------------------------------------------
def test_envelope_baseline_from_hand_made_extras() -> None:
    amp = np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.10, np.nan])
    extras = {
        "env_bpfo_amp": amp,
        "env_bpfo_snr": np.full(11, 1.5),
        "env_ftf_amp": np.zeros(11),  # the band cannot carry FTF: not a baseline
        "env_bsf_amp": np.full(11, np.nan),  # no window carries it
        "order1_amp_g": np.ones(11),  # not an envelope indicator
    }
    b = envelope_baseline(extras)
    assert set(b) == {"env_bpfo_amp", "env_bpfo_snr"}
    s = b["env_bpfo_amp"]
    assert s["n"] == 10  # the NaN window is left out
    assert s["median"] == pytest.approx(0.055)
    assert s["mean"] == pytest.approx(0.055)
    assert s["mad"] == pytest.approx(0.025)  # |x - 0.055|: 0.005, 0.015, ..., 0.045 -> median 0.025
    assert s["p95"] == pytest.approx(0.0955)  # linear: 0.09 + 0.55 * 0.01
    assert s["max"] == pytest.approx(0.10)
    assert s["std"] == pytest.approx(float(np.std(amp[:10])))
    flat = {"n": 11.0, "mean": 1.5, "std": 0.0, "median": 1.5, "mad": 0.0, "p95": 1.5, "max": 1.5}
    assert b["env_bpfo_snr"] == flat


def test_envelope_baseline_needs_enough_windows_and_a_mapping() -> None:
    assert envelope_baseline({"env_bpfi_amp": np.full(9, 0.02)}) == {}
    assert set(envelope_baseline({"env_bpfi_amp": np.full(9, 0.02)}, min_windows=9)) == {"env_bpfi_amp"}
    with pytest.raises(ValueError, match="extras"):
        envelope_baseline([0.1, 0.2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="min_windows"):
        envelope_baseline({}, min_windows=0)


def test_manifest_carries_the_envelope_baseline_to_the_health_stage(tmp_path) -> None:
    rng = np.random.default_rng(0)
    model = train_forest(rng.normal(size=(60, 3)), ["a", "b", "c"], n_estimators=5)
    env = envelope_baseline({"env_bpfo_amp": np.linspace(0.01, 0.03, 40), "env_bpfo_snr": np.full(40, 1.4)})
    info = {"legacy": {"ok": True}, "signal_baseline": {}, "envelope_baseline": env}
    models = {"legacy": (export_forest_onnx(model), {**model.entry(), "kind": "legacy"})}
    v = registry.save_version(tmp_path, "m1", models, info, {})
    entry = registry.model_entries(registry.load_manifest(tmp_path, "m1", v))["legacy"]
    assert entry.envelope_baseline is not None
    assert entry.envelope_baseline["env_bpfo_amp"].p95 == pytest.approx(env["env_bpfo_amp"]["p95"])
    assert "envelope_baseline" in entry.entry()  # signed with the entry
    base = baseline_from_manifest(entry)
    assert base["env_bpfo_amp"]["p95"] == pytest.approx(0.029)  # 0.01 + 0.95 * 0.02
    assert base["env_bpfo_amp"]["median"] == pytest.approx(0.02)
    assert base["env_bpfo_snr"]["mean"] == pytest.approx(1.4)


def test_old_manifest_without_envelope_baseline_keeps_its_entry(tmp_path) -> None:
    rng = np.random.default_rng(1)
    model = train_forest(rng.normal(size=(60, 3)), ["a", "b", "c"], n_estimators=5)
    models = {"legacy": (export_forest_onnx(model), {**model.entry(), "kind": "legacy"})}
    v = registry.save_version(tmp_path, "m1", models, {"legacy": {"ok": True}}, {})
    entry = registry.model_entries(registry.load_manifest(tmp_path, "m1", v))["legacy"]
    assert entry.envelope_baseline is None
    assert "envelope_baseline" not in entry.entry()  # old signatures stay valid
    assert not any(k.startswith("env_") for k in baseline_from_manifest(entry))
    assert ModelManifest.model_validate(entry.entry()).envelope_baseline is None


async def test_calibration_stores_the_envelope_baseline_of_its_windows(tmp_path: Path) -> None:
    """Through the calibrator (in-memory bus, SQLite store, the features engine with rpm and bearing
    orders): the manifest keeps the envelope baseline of the calibration windows, and the announced
    entries carry it."""
    from tests.test_learning_services import T0, make_calibrator
    from tests.test_real_calibration_acceptance import calibrate

    rng = np.random.default_rng(3)
    eng = FeatureEngine()
    eng.configs["m1"] = AssetConfig(
        asset_id="m1", rpm=1800.0, bearing=BearingGeometry(n_balls=13, ball_diameter=3.5, pitch_diameter=25.6)
    )  # FEMTO's test bearing: BPFO 168.3 Hz, BPFI 221.7 Hz, ball defect line 215.4 Hz (2 x spin), FTF 12.9 Hz
    windows = [
        Window(
            event_id=f"w{i}",
            asset_id="m1",
            ts=T0 + timedelta(seconds=10.0 * i),
            fs_hz=25_600.0,
            n=2560,
            axes=["x"],
            x=(0.3 * rng.standard_normal(2560)).tolist(),
        )
        for i in range(60)
    ]
    cal, store = make_calibrator(tmp_path)
    store.write([p for w in windows for p in (window_to_point(w), features_to_point(eng.on_window(w)))])
    reply = await calibrate(cal)
    assert reply["status"] == "completed", reply
    manifest = registry.load_manifest(tmp_path / "models", "m1", reply["models"]["autoencoder"])
    env = manifest["baseline"]["envelope_baseline"]
    kinds = ("amp", "snr", "harm_amp", "harm_snr")
    # With 10 Hz bins (2,560 samples at 25.6 kHz) every harmonic of the ball defect line (215.4 Hz)
    # shares its search window with BPFI's (221.7 Hz): neither has harmonic evidence to keep.
    ambiguous = {f"env_{d}_{k}" for d in ("bpfi", "bsf") for k in ("harm_amp", "harm_snr")}
    assert set(env) == {f"env_{d}_{k}" for d in ("bpfo", "bpfi", "bsf", "ftf") for k in kinds} - ambiguous
    assert 0.95 * 60 <= env["env_bpfo_amp"]["n"] <= 60  # the screening may exclude a few windows
    assert 0 < env["env_bpfo_amp"]["median"] < env["env_bpfo_amp"]["p95"] <= env["env_bpfo_amp"]["max"]
    entry = registry.model_entries(manifest)["autoencoder"]
    assert entry.envelope_baseline is not None and set(entry.envelope_baseline) == set(env)
    # the scorer builds the model from the announced entry, envelope baseline included
    onnx = registry.model_path(tmp_path / "models", "m1", reply["models"]["autoencoder"], "autoencoder")
    assert OnnxModel.from_bytes(onnx.read_bytes(), entry.entry()).threshold == entry.threshold


# ---------------------------------------------------------------------------------------------
# Health stage: a component is named only when its envelope evidence rose, persistently
# ---------------------------------------------------------------------------------------------
CFG = AssetConfig(asset_id="m1", rpm=1800.0, bearing=BearingGeometry(bpfo_order=3.5667, bpfi_order=5.4333))
#: Calibrated envelope level of a healthy asset: BPFO amplitude median 0.012 g, p95 0.020 g.
ENV_BASE = {
    "env_bpfo_amp": {"n": 100, "mean": 0.013, "std": 0.004, "median": 0.012, "mad": 0.002, "p95": 0.02},
    "env_bpfi_amp": {"n": 100, "mean": 0.010, "std": 0.003, "median": 0.010, "mad": 0.002, "p95": 0.016},
}
T0 = 1_700_000_000.0


def window(amp: float, snr: float, bpfi: tuple[float, float] = (0.01, 1.2)) -> dict[str, float]:
    return {"env_bpfo_amp": amp, "env_bpfo_snr": snr, "env_bpfi_amp": bpfi[0], "env_bpfi_snr": bpfi[1]}


def bearing_texts(r: Assessment) -> list[str]:
    return [i.text for i in r.insights if i.signal.startswith(("env_", "envelope:"))]


def run(a: HealthAssessor, windows: list[dict[str, float]], start: float = 0.0) -> list[Assessment]:
    return [a.update(T0 + start + 10.0 * i, features=w) for i, w in enumerate(windows)]


def test_a_component_is_named_only_after_the_amplitude_rose_in_4_of_6_windows() -> None:
    a = HealthAssessor("m1", config=CFG, baseline=ENV_BASE)
    # 0.050 g = 4.2x the median 0.012 g and 2.5x the p95 0.020 g, SNR 6.1 >= 3
    rs = run(a, [window(0.05, 6.1)] * 4)
    assert [bearing_texts(r) for r in rs[:3]] == [[], [], []]
    assert bearing_texts(rs[3]) == [
        "Envelope amplitude at BPFO (107 Hz) 4.2× its calibrated level (0.012 g → 0.05 g) in 4 of the last "
        "4 windows: outer-race defect likely (SNR 6.1)"
    ]
    ins = rs[3].insights[0]
    assert ins.signal == "env_bpfo_amp" and ins.value == 0.05
    # two healthy windows: 4 of the last 6 still; a third: 4 of 6 -> 3 of 6, gone
    rs = run(a, [window(0.012, 1.3)] * 3, start=40.0)
    assert "in 4 of the last 6 windows" in bearing_texts(rs[1])[0]
    assert bearing_texts(rs[2]) == []


def test_severity_is_critical_only_when_rise_and_snr_both_double() -> None:
    a = HealthAssessor("m1", config=CFG, baseline=ENV_BASE)
    warn = run(a, [window(0.05, 6.1)] * 4)[-1].insights[0]  # rise 0.05/0.04 = 1.25, SNR 6.1/3 = 2.03
    assert warn.severity == "WARNING"
    b = HealthAssessor("m1", config=CFG, baseline=ENV_BASE)
    crit = run(b, [window(0.09, 6.1)] * 4)[-1].insights[0]  # rise 2.25, SNR 2.03
    assert crit.severity == "CRITICAL" and crit.text.startswith("Envelope amplitude at BPFO (107 Hz) 7.5×")


def test_a_peak_present_at_calibration_names_no_component() -> None:
    """A healthy asset whose envelope always shows a BPFO peak (SNR 6, e.g. a neighbour's bearing): the
    calibration saw it, so the same peak later is its normal level, however high its SNR."""
    rng = np.random.default_rng(7)
    amp = 0.05 * (1.0 + 0.1 * rng.standard_normal(200))
    snr = 6.0 + 0.5 * rng.standard_normal(200)
    base = envelope_baseline({"env_bpfo_amp": amp[:100], "env_bpfo_snr": snr[:100]})
    a = HealthAssessor("m1", config=CFG, baseline=base)
    rs = run(
        a,
        [
            {"env_bpfo_amp": float(x), "env_bpfo_snr": float(s)}
            for x, s in zip(amp[100:], snr[100:], strict=True)
        ],
    )
    assert all(bearing_texts(r) == [] for r in rs)
    # the old rule (SNR >= 3 alone) would have named the outer race on every window
    assert all(s >= 3.0 for s in snr[100:])


def test_a_broadband_rise_without_a_peak_names_no_component() -> None:
    """Every envelope amplitude 5x higher (a failing neighbour, looseness) but no peak at BPFO (SNR 1.4)."""
    a = HealthAssessor("m1", config=CFG, baseline=ENV_BASE)
    rs = run(a, [window(0.1, 1.4, bpfi=(0.08, 1.3))] * 8)
    assert all(bearing_texts(r) == [] for r in rs)


def test_old_manifest_without_an_envelope_level_names_no_component() -> None:
    a = HealthAssessor("m1", config=CFG, baseline={"x_rms": {"mean": 0.3, "std": 0.01}})
    rs = run(a, [window(0.05, 6.1)] * 4)
    assert bearing_texts(rs[2]) == []
    assert bearing_texts(rs[3]) == [
        "Envelope peak at the BPFO (107 Hz) frequency: SNR 6.1 in 4 of the last 4 windows; not compared "
        "with a calibrated envelope level, no component named (recalibrate to diagnose)"
    ]
    assert rs[3].insights[0].signal == "envelope:bpfo_snr"
    # reports recommend a bearing inspection for a named component only
    item = InsightItem(text=rs[3].insights[0].text, severity="warning", signal="envelope:bpfo_snr")
    assert insight_action(item, None) is None
    named = item.model_copy(update={"signal": "env_bpfo_amp"})
    assert insight_action(named, None) == "Inspect the bearing outer race; replace the bearing if confirmed"


def test_duplicates_are_not_counted_and_state_and_maintenance_keep_or_clear_the_flags() -> None:
    a = HealthAssessor("m1", config=CFG, baseline=ENV_BASE)
    run(a, [window(0.05, 6.1)] * 3)
    again = a.update(T0 + 20.0, features=window(0.05, 6.1))  # the third window delivered twice
    assert bearing_texts(again) == []
    b = HealthAssessor.from_dict(a.to_dict(), config=CFG, baseline=ENV_BASE)
    assert bearing_texts(b.update(T0 + 30.0, features=window(0.05, 6.1)))[0].endswith(
        "in 4 of the last 4 windows: outer-race defect likely (SNR 6.1)"
    )
    b.record_maintenance("bearing_replaced", T0 + 35.0)
    assert bearing_texts(b.update(T0 + 40.0, features=window(0.05, 6.1))) == []
    state = a.to_dict()
    del state["envelope"]  # a state saved before issue 15
    assert HealthAssessor.from_dict(state, config=CFG, baseline=ENV_BASE).to_dict()["envelope"]["flags"] == {}


def test_one_window_at_a_time_without_counts() -> None:
    """A caller without state (``envelope_counts`` None) judges the current window alone; a baseline with
    only mean/std (a caller's own training statistics) keeps the SNR-and-z rule."""
    machine = MachineInfo.from_config(CFG)
    out = build_insights(window(0.05, 6.1), ENV_BASE, machine=machine)
    assert [i.text for i in out] == [
        "Envelope amplitude at BPFO (107 Hz) 4.2× its calibrated level (0.012 g → 0.05 g): outer-race defect "
        "likely (SNR 6.1)"
    ]
    assert build_insights(window(0.039, 6.1), ENV_BASE, machine=machine) == []  # below 2 x p95 = 0.04 g
    assert build_insights(window(0.05, 2.9), ENV_BASE, machine=machine) == []  # no peak at BPFO
    z_base = {"env_bpfo_amp": {"mean": 0.01, "std": 0.005}}
    out = build_insights({"env_bpfo_amp": 0.06, "env_bpfo_snr": 6.2}, z_base, machine=machine)
    assert [i.text for i in out] == ["Envelope peak at BPFO 107 Hz: outer-race defect likely (SNR 6.2)"]
    with pytest.raises(ValueError, match="p95"):
        build_insights(
            window(0.05, 6.1), {"env_bpfo_amp": {"mean": 0.01, "std": 0.0, "median": 0.01, "p95": -1}}
        )


async def test_the_health_service_names_the_component_from_an_announced_envelope_baseline(
    tmp_path: Path,
) -> None:
    """On the in-memory bus: a signed announcement whose manifest carries the envelope baseline, the asset
    config's speed and bearing, then vibration vectors whose BPFO amplitude rose 4.2× with a peak: the
    retained health update names the outer race from the 4th window on."""
    from tests.test_health_service import announcement, deliver, score, service

    bus = MemoryBus()
    svc = service(tmp_path)
    ann = announcement()
    env = {k: EnvelopeStat(**v, max=2 * v["p95"]) for k, v in ENV_BASE.items()}
    manifest = ann.manifest.model_copy(update={"envelope_baseline": env})
    ann = signed(ann.model_copy(update={"manifest": manifest}))  # signed as the calibrator would
    await deliver(svc, bus, topics.model_announce("p1", "legacy"), ann, retain=True)
    await deliver(svc, bus, topics.asset_config("p1"), CFG.model_copy(update={"asset_id": "p1"}))
    texts = []
    for i in range(5):
        fv = FeatureVector(
            event_id=f"v{i}",
            asset_id="p1",
            ts=datetime(2026, 3, 1, tzinfo=UTC) + timedelta(seconds=10 * i),
            kind="vibration",
            names=["x_rms"],
            values=[0.3],
            extras={**window(0.05, 6.1), "velocity_rms_mm_s": 1.0},
        )
        sc = score(0, 0.3, model="autoencoder").model_copy(update={"event_id": fv.event_id, "ts": fv.ts})
        await deliver(svc, bus, topics.score("p1", "autoencoder"), sc)  # health publishes on scores
        await deliver(svc, bus, topics.features("p1", "vibration"), fv)
        hu = HealthUpdate.model_validate_json(bus.retained[topics.health("p1")].payload)
        texts.append([it.text for it in hu.insights if it.signal.startswith("env_")])
    assert texts[:3] == [[], [], []]
    assert texts[3] == [
        "Envelope amplitude at BPFO (107 Hz) 4.2× its calibrated level (0.012 g → 0.05 g) in 4 of the last "
        "4 windows: outer-race defect likely (SNR 6.1)"
    ]
    assert texts[4][0].endswith("in 5 of the last 5 windows: outer-race defect likely (SNR 6.1)")
