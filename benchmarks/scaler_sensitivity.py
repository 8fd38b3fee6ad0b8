"""Autoencoder sensitivity on real run-to-failure bearings: relative vs absolute scaler floor (issue 15).

Run: ``PYTHONPATH=. .venv/bin/python -m benchmarks.scaler_sensitivity [--data ../shared/datasets]
[--floor absolute --floor relative:0.02 ...] [--bearing 1_1 ...]`` (about 1-2 minutes for the 6
bearings and 4 floors on 2 shared cores; not part of ``make bench``: it reports detection, not speed).

Offline, pure functions, no services, the same steps as the calibrator and the scorer:

* **data**: each FEMTO/PRONOSTIA learning-set bearing as one 2-axis asset (``x`` = horizontal,
  ``y`` = vertical), 2,560-sample snapshots at 25.6 kHz, each split into 20 frames of 128 samples
  (:func:`shared.features.frames.split_frames`); 11 time-domain features per axis and frame
  (:func:`shared.features.vibration.axes_features`);
* **calibration** on the first min(300, kept snapshots within the first 10 % of life) snapshots (as
  ``tests/test_real_calibration_acceptance.py``): the frames screened as the calibrator screens them
  (:func:`shared.learning.screening.screen_windows`, flagged frames excluded), then
  :func:`shared.learning.calibration.calibrate` with the calibrator's training configuration (its own
  validation off, the minimum at the rows kept) and the autoencoder's scaler floor under test;
* **scoring** every later snapshot through ONNX Runtime (:class:`shared.learning.scoring.OnnxModel`): a
  snapshot's raw score is the mean of its frames' scores (the scorer's rule for frames), then the live
  alarm rule (:func:`shared.evaluation.alarm_sequence`: rolling mean of 10 > threshold, 3 of the last 5).

Printed per bearing and floor: snapshots scored, the first persistently flagged snapshot (count of
snapshots after calibration, and hours before the end of the record = end of life), alarm-on snapshots
and alarm episodes (off → on) in the first half of life (false alarms: the organisers' bearings are
healthy early on), the threshold and how many of the 22 divisors the floor raised above the feature's
own std. FEMTO keeps every other snapshot before 70 % of life (20 s apart), every one after (10 s).
``--seed`` (repeatable) trains with other weight/shuffle seeds, to see how much of a difference
between floors is the network's random fit; the summary then pools the seeds. Numbers are printed,
never asserted.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import structlog
from numpy.typing import NDArray

from shared.evaluation import alarm_sequence, first_true
from shared.features.frames import split_frames
from shared.features.vibration import axes_features
from shared.learning.autoencoder import AutoencoderConfig
from shared.learning.calibration import CalibrationConfig, calibrate
from shared.learning.scoring import OnnxModel
from shared.learning.screening import screen_windows

ROOT = Path(__file__).resolve().parent.parent
BEARINGS = ("1_1", "1_2", "2_1", "2_2", "3_1", "3_2")
FLOORS = ("absolute", "relative:0.02", "relative", "relative:0.1", "relative:0.2")  # "relative": the default
ROLLING, PERSIST_K, PERSIST_N = 10, 3, 5


@dataclass
class Run:
    """One bearing's frames ``[snapshots, 20, 22]``, feature names, snapshot times (s) and life (s)."""

    bearing: str
    frames: NDArray[np.float64]
    names: list[str]
    t_s: NDArray[np.float64]
    life_s: float

    @property
    def n_cal(self) -> int:
        """Calibration snapshots: min(300, those within the first 10 % of life)."""
        return min(300, int(np.count_nonzero(self.t_s < 0.1 * self.life_s)))


def load(data: Path, bearing: str) -> Run:
    with np.load(data / "femto_pronostia" / f"femto_Bearing{bearing}.npz") as z:
        acc = z["acc"].astype(np.float64) * float(z["scale_g"])
        t_s = np.asarray(z["t_s"], dtype=np.float64)
        life = float(json.loads(str(z["meta_json"]))["life_s"])
    fr = {a: split_frames(acc[:, :, i]) for i, a in enumerate(("x", "y"))}  # [n, 20, 128]
    names, F = axes_features(fr)
    return Run(bearing, F, names, t_s, life)


def parse_floor(text: str, seed: int = 0) -> AutoencoderConfig:
    """``absolute`` or ``relative[:rel_floor]`` → the autoencoder configuration under test."""
    kind, _, rel = text.partition(":")
    if kind == "absolute" and not rel:
        return AutoencoderConfig(scaler_floor="absolute", seed=seed)
    if kind == "relative":
        extra = {"rel_floor": float(rel)} if rel else {}
        return AutoencoderConfig(scaler_floor="relative", seed=seed, **extra)  # type: ignore[arg-type]
    raise SystemExit(f"--floor: expected absolute or relative[:REL], got {text!r}")


def calibrated(run: Run, ae: AutoencoderConfig) -> tuple[OnnxModel, dict[str, object], int]:
    """Screen and calibrate on the calibration snapshots' frames; the model, its entry, frames excluded."""
    k, per = run.n_cal, run.frames.shape[1]
    rows = run.frames[:k].reshape(-1, run.frames.shape[-1])
    res = screen_windows(rows, run.names, what="vibration frames", frames_per_window=per)
    if not res.ok:
        print(f"  [note] {run.bearing}: screening would reject: {res.message}", flush=True)
    kept = rows[~res.flagged] if res.ok else rows
    base = CalibrationConfig()
    cfg = replace(base, validate=False, min_windows=min(base.min_windows, len(kept)), autoencoder=ae)
    blob, entry = calibrate({"autoencoder": (kept, run.names)}, cfg).models["autoencoder"]
    return OnnxModel.from_bytes(blob, entry), entry, int(res.n_flagged) if res.ok else 0


def measure(run: Run, floor: str, seed: int = 0) -> dict[str, object]:
    model, entry, excluded = calibrated(run, parse_floor(floor, seed))
    k, (n, per, d) = run.n_cal, run.frames.shape
    scores = model.raw_scores(run.frames[k:].reshape(-1, d)).reshape(n - k, per).mean(axis=1)
    on = alarm_sequence({"ae": scores}, {"ae": model.threshold}, rolling=ROLLING, k=PERSIST_K, n=PERSIST_N)
    t = run.t_s[k:]
    first = first_true(on)
    half = t < 0.5 * run.life_s
    late = first_true(on & ~half)
    onsets = on & ~np.concatenate([[False], on[:-1]])
    scaler = entry["scaler"]
    raised = int(np.sum(np.asarray(scaler["std"]) > np.asarray(scaler["raw_std"])))  # type: ignore[index]
    return {
        "bearing": run.bearing,
        "floor": floor,
        "cal": k,
        "excluded": excluded,
        "scored": n - k,
        "first": first,
        "lead_h": None if first is None else (run.life_s - float(t[first])) / 3600,
        "first_pct": None if first is None else 100 * float(t[first]) / run.life_s,
        "late_h": None if late is None else (run.life_s - float(t[late])) / 3600,
        "fa_on": int(np.sum(on & half)),
        "fa_episodes": int(np.sum(onsets & half)),
        "half_n": int(np.sum(half)),
        "threshold": model.threshold,
        "raised": raised,
    }


def row(m: dict[str, object]) -> str:
    first = "never" if m["first"] is None else f"{m['first']} ({m['lead_h']:.2f} h, {m['first_pct']:.0f}%)"
    late = "never" if m["late_h"] is None else f"{m['late_h']:.2f} h"
    return (
        f"| Bearing{m['bearing']} | {m['floor']} | {m['cal']} | {m['scored']} | {first} | {late} | "
        f"{m['fa_on']}/{m['half_n']} ({m['fa_episodes']} ep.) | {m['threshold']:.4g} | {m['raised']}/22 |"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets")
    p.add_argument("--bearing", action="append", choices=BEARINGS, help="default: all six")
    p.add_argument("--floor", action="append", help=f"default: {' '.join(FLOORS)}")
    p.add_argument("--seed", type=int, action="append", help="training seed(s) (default: 0)")
    a = p.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    floors, bearings, seeds = a.floor or list(FLOORS), a.bearing or list(BEARINGS), a.seed or [0]
    print(
        "| bearing | floor | cal. snapshots | scored | first persistent flag: snapshots after cal. "
        "(h before end, % of life) | first in 2nd half (h before end) | alarm on in 1st half (episodes) | "
        "threshold | divisors raised |"
    )
    print("|---|---|---:|---:|---|---|---|---:|---:|")
    out = []
    t0 = time.perf_counter()
    for b in bearings:
        run = load(a.data, b)
        for f in floors:
            for seed in seeds:
                m = measure(run, f, seed)
                out.append(m)
                print(row(m) + ("" if seeds == [0] else f" seed {seed}"), flush=True)
    print(f"\n{len(out)} runs in {time.perf_counter() - t0:.0f} s")
    for f in floors:
        ms = [m for m in out if m["floor"] == f]
        leads = [float(m["lead_h"]) for m in ms if m["lead_h"] is not None]  # type: ignore[arg-type]
        lates = [float(m["late_h"]) for m in ms if m["late_h"] is not None]  # type: ignore[arg-type]
        med = f"{np.median(leads):.2f} h" if leads else "-"
        med_late = f"{np.median(lates):.2f} h" if lates else "-"
        fa = sum(int(m["fa_episodes"]) for m in ms)  # type: ignore[call-overload]
        clean = sum(1 for m in ms if m["fa_episodes"] == 0 and m["first"] is not None)
        print(
            f"SUMMARY| {f}: flagged {len(leads)}/{len(ms)}, median lead of the first flag {med}, of the "
            f"first flag in the second half {med_late} ({len(lates)}/{len(ms)}); false-alarm episodes in the "
            f"first half {fa}, bearings flagged with none in the first half {clean}/{len(ms)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
