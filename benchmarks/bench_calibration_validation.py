"""Calibration validation: false rejections of healthy data and silent acceptance of contaminated data.

Run: ``PYTHONPATH=. .venv/bin/python -m benchmarks.bench_calibration_validation [--quick]
[--healthy 200] [--seeds 6]``

Every case runs the calibrator's own steps on synthetic 1 Hz readings, without broker or store: the
features service's legacy and batch features of all readings (``BATCH_WINDOW`` 8, legacy warm-up 30),
``select_datasets``, ``validate_data`` (the robust 3σ screening: reject above 5 % flagged, else exclude
the flagged readings and recompute the features) and ``calibrate`` (both Isolation Forests, ONNX export
and self-check) with the calibrator's default configuration.

* **Healthy**: ``--healthy`` seeds (default 200) of the guide's standard calibration, 300 readings
  (5 minutes at 1 Hz), for two generator models: the guide's generator (V ~ N(230, 3²) V,
  I ~ N(15, 1²) A, PF ~ U(0.88, 0.95), g ~ N(0.15, 0.02²) g) and ours (:func:`shared.synth.simple_reading`).
  Printed: how many calibrations were rejected (the target is 0) and the readings excluded.
* **Contaminated**: 600 readings (the issue's 10-minute look-back) of our generator, of which 2, 3, 4
  or 5 % (12..30 readings, at random positions) are faulty, for each fault mode: the generator's
  ``voltage_spike``, ``vibration_jump``, ``pf_drop``, ``jitter`` and a current surge
  (I ~ U(25, 40) A, the other signals healthy), ``--seeds`` seeds each (6). Each calibration ends
  *rejected* (with its reason), *excluded* (accepted, the reply names the excluded readings), or
  *silent* (accepted with nothing excluded: the target is 0). Printed beside: faulty readings excluded
  / left in the training data, healthy readings excluded, and the voltage σ of the stored baseline.

Numbers are printed, never asserted; summary lines start with ``ROW|`` for ``python -m benchmarks``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from services.calibrator.data import Collected, reading_features, signal_baseline
from services.calibrator.job import MIN_FEATURE_ROWS, default_config, select_datasets, validate_data
from shared import synth
from shared.features.engine import BATCH_WINDOW
from shared.learning.calibration import CalibrationError, calibrate
from shared.messages import SIGNALS

FRACTIONS = (0.02, 0.03, 0.04, 0.05)
MODES = ("voltage_spike", "vibration_jump", "pf_drop", "jitter", "current_surge")
T0 = 1_700_000_000.0
Generator = Callable[[np.random.Generator, int], NDArray[np.float64]]


def guide_healthy(rng: np.random.Generator, n: int) -> NDArray[np.float64]:
    """The guide's generator: [n, 4] readings (V, A, PF, g)."""
    return np.stack(
        [rng.normal(230, 3, n), rng.normal(15, 1, n), rng.uniform(0.88, 0.95, n), rng.normal(0.15, 0.02, n)],
        axis=1,
    )


def synth_readings(rng: np.random.Generator, n: int, fault: str | None = None) -> NDArray[np.float64]:
    """Our generator: ``n`` healthy readings, or faulty ones of ``fault`` (``current_surge``: healthy
    readings with the current drawn from U(25, 40) A)."""
    if fault == "current_surge":
        out = synth_readings(rng, n)
        out[:, 1] = rng.uniform(25.0, 40.0, n)
        return out
    rows = (synth.simple_reading(rng, fault is not None, fault) for _ in range(n))
    return np.asarray([[d[s] for s in SIGNALS] for d in rows], dtype=np.float64)


@dataclass
class Outcome:
    rejected: bool
    message: str
    excluded: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    voltage_std: float = float("nan")


def run_calibration(readings: NDArray[np.float64]) -> Outcome:
    """The calibrator's steps (see the module docstring) on readings 1 s apart."""
    n = readings.shape[0]
    ts = T0 + np.arange(n, dtype=np.float64)
    c = Collected("bench", n / 60.0, int(ts[-1] * 1e9), signals=readings.copy(), reading_ts=ts.copy())
    c.datasets = reading_features(ts, readings, BATCH_WINDOW, 30)
    c.counts = {"readings": n, **{k: int(v[0].shape[0]) for k, v in c.datasets.items()}}
    c.reading_span_s = float(ts[-1] - ts[0])
    c.signal_baseline = signal_baseline(readings)
    cfg = default_config()
    datasets, _ = select_datasets(c, BATCH_WINDOW)
    try:
        notes = validate_data(c, datasets, cfg, BATCH_WINDOW)
        calibrate(datasets, replace(cfg, validate=False, min_readings=MIN_FEATURE_ROWS))
    except CalibrationError as exc:
        return Outcome(True, str(exc))
    res = c.screenings[0]
    excluded = res.flagged if res.ok else np.zeros(n, dtype=bool)
    return Outcome(False, "; ".join(notes), excluded, c.signal_baseline["voltage_v"]["std"])


def healthy(name: str, gen: Generator, seeds: int) -> None:
    t = time.perf_counter()
    rejected, excluded, reasons = 0, [], []
    for seed in range(seeds):
        out = run_calibration(gen(np.random.default_rng(seed), 300))
        rejected += out.rejected
        excluded.append(int(out.excluded.sum()))
        if out.rejected:
            reasons.append(f"seed {seed}: {out.message}")
    ex = np.asarray(excluded)
    print(
        f"healthy {name:6s}: {rejected}/{seeds} rejected ({100 * rejected / seeds:.1f}%); readings excluded "
        f"per calibration mean {ex.mean():.2f}, max {ex.max()} of 300 ({time.perf_counter() - t:.0f} s)"
    )
    for r in reasons[:5]:
        print(f"    {r}")
    case = f"false rejections, {seeds} healthy calibrations ({name} generator)"
    print(f"ROW|{case}|{rejected}/{seeds}|target 0|")


def contaminated(mode: str, frac: float, seeds: int) -> tuple[int, int, int]:
    """(rejected, excluded, silent) over ``seeds`` calibrations of 600 readings with ``frac`` faulty."""
    n, k = 600, round(frac * 600)
    counts = {"rejected": 0, "excluded": 0, "silent": 0}
    caught, left, healthy_out, vstd, clean_std = 0, 0, 0, [], []
    for seed in range(seeds):
        rng = np.random.default_rng(10_000 + seed)
        readings = synth_readings(rng, n)
        where = rng.choice(n, size=k, replace=False)
        readings[where] = synth_readings(rng, k, mode)
        faulty = np.zeros(n, dtype=bool)
        faulty[where] = True
        out = run_calibration(readings)
        if out.rejected:
            counts["rejected"] += 1
            continue
        counts["excluded" if out.excluded.any() else "silent"] += 1
        caught += int((out.excluded & faulty).sum())
        left += int((~out.excluded & faulty).sum())
        healthy_out += int((out.excluded & ~faulty).sum())
        vstd.append(out.voltage_std)
        clean_std.append(float(readings[~faulty, 0].std()))
    accepted = counts["excluded"] + counts["silent"]
    detail = (
        f"faulty excluded {caught}, left {left}, healthy excluded {healthy_out}, "
        f"voltage σ {np.mean(vstd):.2f} V (healthy readings alone {np.mean(clean_std):.2f} V)"
        if accepted
        else ""
    )
    print(
        f"  {mode:15s} {100 * frac:3.0f}% ({k:2d} of {n}): rejected {counts['rejected']:2d}, "
        f"excluded {counts['excluded']:2d}, silent {counts['silent']:2d}  {detail}"
    )
    return counts["rejected"], counts["excluded"], counts["silent"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="50 healthy seeds, 2 seeds per contaminated case")
    p.add_argument("--healthy", type=int, default=None, help="healthy calibrations per generator (200)")
    p.add_argument("--seeds", type=int, default=None, help="seeds per fault mode and fraction (6)")
    a = p.parse_args()
    n_healthy = a.healthy or (50 if a.quick else 200)
    seeds = a.seeds or (2 if a.quick else 6)
    t = time.perf_counter()
    print(f"batch window {BATCH_WINDOW}, {n_healthy} healthy seeds per generator, {seeds} seeds per case")
    healthy("guide", guide_healthy, n_healthy)
    healthy("ours", synth_readings, n_healthy)
    print("contaminated windows (600 readings of our generator):")
    for frac in FRACTIONS:
        tot = np.zeros(3, dtype=int)
        for mode in MODES:
            tot += contaminated(mode, frac, seeds)
        runs = int(tot.sum())
        case = f"{100 * frac:.0f}% faulty readings, {len(MODES)} fault modes x {seeds}"
        print(f"ROW|{case}|silent {tot[2]}/{runs}|rejected {tot[0]}, excluded {tot[1]}|target 0 silent")
    print(f"total {time.perf_counter() - t:.0f} s")


if __name__ == "__main__":
    main()
