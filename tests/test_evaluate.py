"""shared/evaluation.py metric helpers (hand-checked) and scripts/evaluate.py end to end on a small
synthetic data set in the CWRU layout (normal at 48 kHz, faults at 12 kHz)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from shared import synth
from shared.evaluation import (
    alarm_sequence,
    clopper_pearson_upper,
    detection_metrics,
    first_true,
    frame,
    split_fraction,
    zscore_max,
)

ROOT = Path(__file__).resolve().parent.parent


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("evaluate_script", ROOT / "scripts" / "evaluate.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["evaluate_script"] = mod
    spec.loader.exec_module(mod)
    return mod


evaluate = _load()


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def test_frame_and_split() -> None:
    x = np.arange(10.0)
    f = frame(x, 4, 2)
    assert f.shape == (4, 4)
    np.testing.assert_array_equal(f[:, 0], [0, 2, 4, 6])
    np.testing.assert_array_equal(f[3], [6, 7, 8, 9])
    assert frame(x, 4, 4).shape == (2, 4)  # samples 8, 9 dropped
    assert frame(x[:3], 4, 2).shape == (0, 4)
    a, b = split_fraction(x, 0.6)
    np.testing.assert_array_equal(a, np.arange(6.0))
    np.testing.assert_array_equal(b, np.arange(6.0, 10.0))
    with pytest.raises(ValueError, match="train_fraction must be in"):
        split_fraction(x, 1.0)
    with pytest.raises(ValueError, match="hop must be an integer >= 1"):
        frame(x, 4, 0)


def test_detection_metrics_by_hand() -> None:
    healthy = [0.1, 0.2, 0.9, 0.3]
    fault = [0.6, 0.4, 0.8]
    m = detection_metrics(healthy, fault, 0.5)
    assert m.false_alarm == 0.25 and m.healthy_flagged == 1 and m.n_healthy == 4
    assert m.detection == pytest.approx(2 / 3) and m.fault_flagged == 2
    # TP 2, FP 1, FN 1: F1 = 2·2 / (2·2 + 1 + 1)
    assert m.f1 == pytest.approx(4 / 6)
    # each fault score beats 3 of the 4 healthy scores: AUC = 9 / 12
    assert m.auc == pytest.approx(0.75)
    assert m.fa_upper95 == pytest.approx(clopper_pearson_upper(1, 4))


def test_detection_metrics_with_flags_and_perfect_split() -> None:
    m = detection_metrics(None, None, healthy_flags=[False] * 5, fault_flags=[True, True, False])
    assert m.auc is None and m.false_alarm == 0.0 and m.detection == pytest.approx(2 / 3)
    assert m.f1 == pytest.approx(0.8)  # TP 2, FP 0, FN 1
    m = detection_metrics([0.0, 0.1], [5.0, 6.0], 1.0)
    assert (m.auc, m.detection, m.false_alarm, m.f1) == (1.0, 1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="give a threshold"):
        detection_metrics([0.0], [1.0])


def test_clopper_pearson_upper() -> None:
    # 0 of n: 1 - 0.05^(1/n)
    assert clopper_pearson_upper(0, 22) == pytest.approx(1 - 0.05 ** (1 / 22))
    assert clopper_pearson_upper(0, 100) == pytest.approx(0.0295, abs=1e-4)
    assert clopper_pearson_upper(5, 5) == 1.0
    assert clopper_pearson_upper(1, 10) > 0.1
    with pytest.raises(ValueError):
        clopper_pearson_upper(3, 2)


def test_zscore_max() -> None:
    X = [[1.0, 10.0], [3.0, 4.0]]
    np.testing.assert_allclose(zscore_max(X, [1.0, 4.0], [1.0, 2.0]), [3.0, 2.0])
    with pytest.raises(ValueError, match="std must be > 0"):
        zscore_max(X, [0.0, 0.0], [1.0, 0.0])


def test_alarm_sequence_rolling_and_persistence() -> None:
    scores = [0.0, 0.0, 0.0, 5.0, 5.0, 5.0, 5.0]
    # rolling 1: flags from t=3; 3-of-5 persistence -> on from t=5
    on = alarm_sequence({"m": scores}, {"m": 1.0}, rolling=1, k=3, n=5)
    assert on.tolist() == [False] * 5 + [True, True]
    # rolling 4: means 0,0,0,1.25,2.5,3.75,5 -> flags from t=3 again (1.25 > 1)
    on = alarm_sequence({"m": scores}, {"m": 1.0}, rolling=4, k=3, n=5)
    assert first_true(on) == 5
    # rolling 10 (mean over all so far): 5/4=1.25 at t=3 > 1.2 threshold, so flags at 3,4,5,6
    on = alarm_sequence({"m": scores}, {"m": 1.3}, rolling=10, k=3, n=5)
    # means: t3 1.25 (no), t4 2.0, t5 2.5, t6 2.857 -> flags at 4,5,6 -> on at 6
    assert on.tolist() == [False] * 6 + [True]
    extra = alarm_sequence({}, {}, k=2, n=3, extra_flags={"iso": [True, False, True, False, False]})
    assert extra.tolist() == [False, False, True, False, False]
    assert first_true([False, False]) is None
    with pytest.raises(ValueError, match="same length"):
        alarm_sequence({"m": [1.0]}, {"m": 1.0}, extra_flags={"iso": [True, True]})


# ---------------------------------------------------------------------------------------------
# The script end to end
# ---------------------------------------------------------------------------------------------
def make_cwru_like(path: Path) -> None:
    """Normal at 48 kHz (2 s), faults at 12 kHz (1.02 s each), DE channel, meta_json like the real file."""
    rng = np.random.default_rng(11)
    arrays = {"normal__DE": synth.vibration_window(rng, 48_000, 96_000, rpm=1797)[0]}
    meta: dict = {"normal": {"fs_hz": 48000, "rpm_nominal": 1797}}
    faults = {
        "IR007_12k": ("bearing_inner", "medium"),
        "OR007@6_12k": ("bearing_outer", "medium"),
        "B007_12k": ("bearing_outer", "mild"),
    }
    for i, (label, (fault, sev)) in enumerate(faults.items()):
        w = synth.vibration_window(rng, 12_000, 12_288, rpm=1797, fault=fault, severity=sev, t0_s=10.0 * i)
        arrays[f"{label}__DE"] = w[0]
        meta[label] = {"fs_hz": 12000, "rpm_nominal": 1797}
    np.savez(
        path, meta_json=np.array(json.dumps(meta)), **{k: v.astype(np.float32) for k, v in arrays.items()}
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cwru")
    make_cwru_like(d / "cwru_0hp_1797rpm.npz")
    return d


def test_end_to_end_on_synthetic_cwru_layout(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "EVAL.md"
    out.write_text("old\n<!-- BEGIN INTRO -->\nMy own intro.\n<!-- END INTRO -->\nold tables\n")
    rc = evaluate.main(["--data", str(data_dir), "--out", str(out), "--window", "1024", "--low-window", "64"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "[1/4] loading" in printed and "[DONE] wrote" in printed
    text = out.read_text()
    assert text.startswith("<!-- BEGIN INTRO -->\nMy own intro.\n<!-- END INTRO -->")
    assert "old tables" not in text
    assert f"`python scripts/evaluate.py --data {data_dir} --out {out} --window 1024 --low-window 64`" in text
    for heading in (
        "## 12 kHz (full bandwidth)",
        "## 500 Hz (decimated",
        "## Which sample rate for which fault",
        "#### (a) Autoencoder",
        "#### (b) Isolation Forest",
        "#### (c1) Envelope rule",
        "#### (c2) Band-energy rule",
        "#### (d1) Fused",
        "#### (d2) The live alarm rule",
    ):
        assert heading in text, heading
    assert "| IR007_12k | inner race | 12 |" in text  # 12288 samples / 1024, non-overlapping
    assert "CWRU Bearing Data Center" in text and "Rigas" in text
    assert "not in the file: IR014_12k" in printed  # the records the synthetic file lacks are named
    # the table printed on stdout is the written one
    assert "| IR007_12k | inner race | 12 |" in printed
    # at 12 kHz the synthetic bearing faults ring a 3 kHz resonance: the band rule must separate them
    band = text.split("#### (c2) Band-energy rule")[1].split("####")[0]
    pooled = next(line for line in band.splitlines() if line.startswith("| **all** |"))
    auc = float(pooled.split("|")[4])
    assert auc > 0.9
    assert "skipped: (c1) Envelope rule" in text  # envelope features are 0 at 500 Hz


def test_missing_data_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = evaluate.main(["--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o.md")])
    assert rc == 2
    assert "[ERROR] data not found:" in capsys.readouterr().out
    assert not (tmp_path / "o.md").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert evaluate.main(["--data", str(empty), "--out", str(tmp_path / "o.md")]) == 2
    assert "no cwru_0hp_1797rpm.npz in" in capsys.readouterr().out


def test_file_without_the_healthy_record_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "cwru_0hp_1797rpm.npz"
    meta = np.array(json.dumps({"IR007_12k": {"fs_hz": 12000}}))
    np.savez(f, meta_json=meta, IR007_12k__DE=np.zeros(5000))
    assert evaluate.main(["--data", str(tmp_path)]) == 2
    assert "no healthy record normal__DE" in capsys.readouterr().out


def test_a_crashing_model_exits_1(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(tr: object, ho: object, fa: object) -> object:
        raise RuntimeError("kaputt")

    boom_spec = evaluate.ModelSpec("boom", "(x) Boom", boom)
    monkeypatch.setattr(evaluate, "MODELS", (*evaluate.MODELS[:1], boom_spec))
    out = tmp_path / "e.md"
    rc = evaluate.main(["--data", str(data_dir), "--out", str(out), "--window", "1024", "--low-fs", "0"])
    assert rc == 1
    assert "**CRASHED**: (x) Boom: RuntimeError: kaputt" in out.read_text()
    assert "1 model(s) CRASHED" in capsys.readouterr().out


def test_guidance_numbers_are_finite_or_na(data_dir: Path, tmp_path: Path) -> None:
    signals, fs, rpm = evaluate.load_records(data_dir / "cwru_0hp_1797rpm.npz")
    assert rpm == 1797 and fs["normal"] == 48000
    assert set(signals) == {"normal", "IR007_12k", "OR007@6_12k", "B007_12k"}
    split = evaluate.build_split(signals, fs, 12_000.0, 1024, 512, 0.6)
    # 96000 samples at 48 kHz -> 57600 | 38400 -> 14400 | 9600 at 12 kHz; hop 512
    assert split.train.shape == ((14400 - 1024) // 512 + 1, 1024)
    assert split.hold.shape == ((9600 - 1024) // 512 + 1, 1024)
    assert split.faults["IR007_12k"].shape == (12, 1024)
    assert math.isclose(split.seconds["train"], 1.2)
