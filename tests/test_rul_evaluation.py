"""scripts/evaluate_rtf.py end to end on six short synthetic run-to-failure records in the FEMTO layout."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("evaluate_rtf_script", ROOT / "scripts" / "evaluate_rtf.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["evaluate_rtf_script"] = mod
    spec.loader.exec_module(mod)
    return mod


rtf = _load()


def _write_run(path: Path, name: str, n: int, onset: float, rng: np.random.Generator) -> None:
    """``n`` snapshots 10 s apart; noise of 0.5 g whose amplitude grows as exp(3 (f - onset) / (1 - onset))
    after the fraction ``onset`` of life (so the RMS ends about 20x its start)."""
    t = 10.0 * np.arange(n)
    life = float(t[-1])
    frac = t / life
    gain = np.where(frac > onset, np.exp(3.0 * (frac - onset) / (1.0 - onset)), 1.0)
    acc = rng.normal(0.0, 0.5, size=(n, 2560, 2)) * gain[:, None, None]
    meta = {"bearing": name, "fs_hz": 25600, "rpm": 1800, "life_s": life}
    np.savez(
        path / f"femto_{name}.npz",
        acc=np.round(acc / 0.002).clip(-32767, 32767).astype(np.int16),
        scale_g=np.float64(0.002),
        t_s=t,
        meta_json=json.dumps(meta),
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("femto")
    rng = np.random.default_rng(7)
    for i, name in enumerate(rtf.BEARINGS):
        _write_run(d, name, 120 + 10 * i, 0.55 + 0.03 * i, rng)
    return d


def test_evaluation_runs_end_to_end_and_writes_its_section(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "EVALUATION.md"
    out.write_text("# page\n\nkept text\n", encoding="utf-8")
    plots = tmp_path / "plots"
    argv = ["--data", str(data), "--out", str(out), "--plots", str(plots), "--calibrate-s", "200"]
    assert rtf.main([*argv, "--also-calibrate", "300", "--sweep-persist", "30"]) == 0
    text = out.read_text(encoding="utf-8")
    assert "| 300 | " in text and "| 200 | " in text  # the sensitivity table, one row per span
    assert text.count("| 30 | 0.1, ") == 2  # the early-warning sweep: one span, both k grids
    assert "through `shared.health.prognostics.PrognosticsTracker`" in text
    assert text.startswith("# page\n\nkept text\n")
    assert text.count(rtf.RTF_BEGIN) == 1 and text.count(rtf.RTF_END) == 1
    assert "## Run to failure (FEMTO/PRONOSTIA learning set)" in text
    for name in rtf.BEARINGS:
        assert f"| {name} |" in text
        assert (plots / f"{name}.png").stat().st_size > 0
    # writing again replaces the section instead of appending another
    rtf.write_section(out, f"{rtf.RTF_BEGIN}\nnew numbers\n{rtf.RTF_END}\n")
    again = out.read_text(encoding="utf-8")
    assert again == f"# page\n\nkept text\n\n{rtf.RTF_BEGIN}\nnew numbers\n{rtf.RTF_END}\n"


def test_every_synthetic_run_alarms_late_and_gets_estimates(data: Path) -> None:
    runs = [rtf.load_run(data / f"femto_{b}.npz") for b in rtf.BEARINGS]
    folds = rtf.evaluate(runs, 200.0, say=lambda _: None)
    for f in folds:
        assert f.tracker_checked, f.run.name  # the service's tracker alarms exactly as warning.alarm_times
        assert f.early == 0, f.run.name  # nothing changes in the first half
        assert f.lead_s is not None and 0 < f.lead_s < f.run.life_s / 2, f.run.name
        assert any(e is not None for e in f.estimates), f.run.name
    assert rtf.summary(folds)["score"] > rtf.summary(folds)["base_score"]


def test_missing_data_exits_2(tmp_path: Path) -> None:
    assert rtf.main(["--data", str(tmp_path), "--out", str(tmp_path / "x.md")]) == 2


def test_the_cwru_page_generator_keeps_the_run_to_failure_block(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("evaluate_script_rtf", ROOT / "scripts" / "evaluate.py")
    assert spec and spec.loader
    ev = importlib.util.module_from_spec(spec)
    sys.modules["evaluate_script_rtf"] = ev
    spec.loader.exec_module(ev)
    page = tmp_path / "EVALUATION.md"
    block = f"{rtf.RTF_BEGIN}\n## Run to failure\n\nnumbers\n{rtf.RTF_END}"
    page.write_text(f"old CWRU text\n\n{block}\n", encoding="utf-8")
    assert ev.read_rtf(page) == ["", block]
    assert ev.read_rtf(tmp_path / "missing.md") == []
    assert ev.build_parser().parse_args(["--data", "x", "--rtf", "y"]).rtf == Path("y")
