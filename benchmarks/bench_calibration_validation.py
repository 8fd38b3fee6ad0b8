"""Calibration validation: false rejections of healthy data and silent acceptance of contaminated data.

Run: ``PYTHONPATH=. .venv/bin/python -m benchmarks.bench_calibration_validation [--quick]
[--healthy 200] [--seeds 6] [--real-seeds 5] [--real-only]``

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

* **Real data** (``--real-only`` runs just this; skipped when ``../shared/datasets`` is absent): the
  calibrator's screening (``validate_data``) of real vibration windows, each channel a single-axis asset.
  Healthy: FEMTO/PRONOSTIA early life of the six bearings (first snapshots, at most 300 and only the
  first half of each run), both channels; CWRU 0 HP normal record per channel at 48 kHz (2048- and
  4096-sample windows) and resampled to 12 kHz (2048, 512 hop). Printed: rejected (target 0), windows
  excluded, and the old per-column rule beside. Contaminated: 2/3/4/5 % of the windows replaced by faulty
  ones (FEMTO: the last 30 snapshots of the same bearing and channel; CWRU: every fault record of the same
  rate and channel) at random positions or as one block at the end, ``--real-seeds`` seeds each (5):
  rejected / excluded / silent, and faulty windows excluded / left. Then the issue's replay end to end
  (FEMTO Bearing1_1, 300 snapshots per channel: select, validate, train the autoencoder).

Numbers are printed, never asserted; summary lines start with ``ROW|`` for ``python -m benchmarks``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import structlog
from numpy.typing import NDArray
from scipy.signal import resample_poly

from services.calibrator.data import Collected, reading_features, signal_baseline
from services.calibrator.job import (
    MIN_FEATURE_ROWS,
    default_config,
    select_datasets,
    train_config,
    validate_data,
)
from shared import synth
from shared.features.engine import BATCH_WINDOW
from shared.features.vibration import window_features
from shared.learning.calibration import CalibrationError, calibrate
from shared.learning.screening import ContaminatedData, Screening, screen
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


# --- Real data: vibration windows of real bearings (FEMTO/PRONOSTIA run-to-failure, CWRU) ----------------

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
#: FEMTO healthy segment: the first snapshots of each run, at most 300 and only the first half of its life.
FEMTO_EARLY, FEMTO_EARLY_LIFE = 300, 0.5
#: FEMTO faulty snapshots: the last 30 of each run (its final 5 minutes, at 10 s per snapshot).
FEMTO_LAST = 30
FEMTO_BEARINGS = ("1_1", "1_2", "2_1", "2_2", "3_1", "3_2")


@dataclass
class RealSet:
    """One asset's healthy calibration windows (features, time order) and faulty windows to mix in."""

    name: str
    names: list[str]
    healthy: NDArray[np.float64]
    faults: dict[str, NDArray[np.float64]] = field(default_factory=dict)


def femto_sets(root: Path) -> list[RealSet]:
    """Each FEMTO bearing × channel (0 horizontal, 1 vertical) as a single-axis asset: 2560-sample
    snapshots (0.1 s at 25.6 kHz) in g, healthy = early life, faults = the last snapshots."""
    out = []
    for b in FEMTO_BEARINGS:
        z = np.load(root / "femto_pronostia" / f"femto_Bearing{b}.npz")
        life = float(json.loads(str(z["meta_json"]))["life_s"])
        n = min(FEMTO_EARLY, int((z["t_s"] < FEMTO_EARLY_LIFE * life).sum()))
        g = float(z["scale_g"])
        for ch in (0, 1):
            names, healthy = window_features(z["acc"][:n, :, ch] * g)
            last = window_features(z["acc"][-FEMTO_LAST:, :, ch] * g)[1]
            out.append(RealSet(f"FEMTO {b} {'hv'[ch]}", names, healthy, {"last 5 min": last}))
    return out


def _cut(x: NDArray[np.float64], win: int, hop: int) -> NDArray[np.float64]:
    return np.stack([x[i : i + win] for i in range(0, x.shape[0] - win + 1, hop)])


def cwru_sets(root: Path) -> list[RealSet]:
    """CWRU 0 HP: the normal record (48 kHz, 5 s) per channel (DE, FE) as a single-axis asset, cut into
    2048-sample windows (and 4096, healthy only); at 12 kHz the normal record is resampled by 1/4 and cut
    with a 512-sample hop (116 windows). Faults: the same rate's fault records, 2048-sample windows."""
    z = np.load(root / "cwru" / "cwru_0hp_1797rpm.npz")
    out = []
    for ch in ("DE", "FE"):
        normal = z[f"normal__{ch}"].astype(np.float64)
        for rate, x, win, hop in (
            ("48k", normal, 2048, 2048),
            ("48k", normal, 4096, 4096),
            ("12k", resample_poly(normal, 1, 4), 2048, 512),
        ):
            names, healthy = window_features(_cut(x, win, hop))
            faults = {}
            if win == 2048:
                for key in z.files:
                    label, _, c = key.partition("__")
                    if c == ch and label.endswith(rate) and label != "normal":
                        faults[label] = window_features(_cut(z[key].astype(np.float64), win, win))[1]
            out.append(RealSet(f"CWRU {rate} {ch} {win}", names, healthy, faults))
    return out


def screen_real(X: NDArray[np.float64], names: list[str]) -> Screening:
    """The calibrator's screening of an autoencoder dataset (``validate_data`` on vibration windows only)."""
    n = X.shape[0]
    c = Collected("real", 0.0, None, counts={"vibration": n}, datasets={"autoencoder": (X, names)})
    try:
        validate_data(c, {"autoencoder": (X, names)}, default_config())
    except ContaminatedData as exc:
        return exc.screening
    return c.screenings[0]


def real_healthy(sets: list[RealSet]) -> None:
    """False rejections of each real healthy set; the old per-column rule beside, for comparison."""
    rejected, old_rejected = 0, 0
    for s in sets:
        res = screen_real(s.healthy, s.names)
        old = screen(s.healthy, s.names, what="vibration windows")
        rejected += not res.ok
        old_rejected += not old.ok
        verdict = "REJECTED" if not res.ok else f"accepted, {res.n_flagged:2d} excluded"
        print(
            f"  {s.name:18s} {res.n:3d} windows: {verdict} ({100 * res.fraction:.1f}%); old per-column rule: "
            f"{old.n_flagged:3d} flagged ({100 * old.fraction:.1f}%{', rejected' if not old.ok else ''})"
        )
    print(
        f"ROW|false rejections, {len(sets)} real healthy sets (FEMTO early life, CWRU normal)|"
        f"{rejected}/{len(sets)}|per-column rule before: {old_rejected}/{len(sets)}|target 0"
    )


def mix(
    rng: np.random.Generator, s: RealSet, bad: NDArray[np.float64], frac: float, block: bool
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """``s.healthy`` with ``max(1, round(frac·n))`` rows replaced by random faulty windows: at random
    positions, or as one block at the end (a fault that starts within the look-back)."""
    n = s.healthy.shape[0]
    k = max(1, round(frac * n))
    where = np.arange(n - k, n) if block else rng.choice(n, size=k, replace=False)
    X = s.healthy.copy()
    X[where] = bad[rng.choice(bad.shape[0], size=k, replace=bad.shape[0] < k)]
    faulty = np.zeros(n, dtype=bool)
    faulty[where] = True
    return X, faulty


def real_cases(
    sets: list[RealSet], seeds: int
) -> Iterator[tuple[str, NDArray[np.float64], bool, int, RealSet]]:
    """Every (set, fault, placement, seed): its name, the faulty windows, end block?, seed, the set."""
    for s in sets:
        for label, bad in s.faults.items():
            for block in (False, True):
                for seed in range(seeds):
                    yield f"{s.name} {label} {'end' if block else 'random'} seed {seed}", bad, block, seed, s


def real_fraction(sets: list[RealSet], frac: float, seeds: int) -> None:
    """Outcome of every case at ``frac`` faulty windows: rejected / excluded / silent."""
    tot = {"rejected": 0, "excluded": 0, "silent": 0}
    caught, left, silent_cases = 0, 0, []
    for case, bad, block, seed, s in real_cases(sets, seeds):
        X, faulty = mix(np.random.default_rng(seed), s, bad, frac, block)
        res = screen_real(X, s.names)
        kind = "rejected" if not res.ok else "excluded" if res.n_flagged else "silent"
        tot[kind] += 1
        if res.ok:
            caught += int((res.flagged & faulty).sum())
            left += int((~res.flagged & faulty).sum())
        if kind == "silent":
            silent_cases.append(case)
    runs = sum(tot.values())
    print(
        f"  {100 * frac:.0f}% faulty windows: rejected {tot['rejected']}, excluded {tot['excluded']}, "
        f"silent {tot['silent']} of {runs}; accepted ones: faulty windows excluded {caught}, left {left}"
    )
    by_fault = Counter(case.rsplit(" ", 3)[0] for case in silent_cases)
    for fault, k in sorted(by_fault.items()):
        print(f"    silent: {fault} ({k} of its cases)")
    what = f"{100 * frac:.0f}% faulty real windows (FEMTO last 5 min, CWRU faults; random or end block)"
    outcome = f"rejected {tot['rejected']}, excluded {tot['excluded']}"
    print(f"ROW|{what}|silent {tot['silent']}/{runs}|{outcome}|target 0 silent")


def real_calibration(root: Path) -> None:
    """The issue's replay: FEMTO Bearing1_1, the first 300 snapshots per channel, through
    ``select_datasets`` → ``validate_data`` → ``calibrate`` (autoencoder) with the calibrator's settings."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    z = np.load(root / "femto_pronostia" / "femto_Bearing1_1.npz")
    for ch in (0, 1):
        names, X = window_features(z["acc"][:300, :, ch] * float(z["scale_g"]))
        c = Collected("femto", 60.0, None, counts={"vibration": 300}, datasets={"autoencoder": (X, names)})
        cfg = default_config()
        datasets, _ = select_datasets(c)
        try:
            notes = validate_data(c, datasets, cfg)
            calibrate(datasets, train_config(cfg))
            text = "calibrated" + "".join(f"; {n}" for n in notes)
        except CalibrationError as exc:
            text = f"FAILED: {exc}"
        print(f"  FEMTO 1_1 {'hv'[ch]} (300 windows): {text}")


def real_data(seeds: int) -> None:
    root = DATA
    if not (root / "femto_pronostia").is_dir() or not (root / "cwru").is_dir():
        print(f"real data: {root} not found, section skipped")
        return
    t = time.perf_counter()
    sets = femto_sets(root) + cwru_sets(root)
    print("real healthy vibration windows (screening of the autoencoder's calibration data):")
    real_healthy(sets)
    print(f"real contaminated windows ({seeds} seeds per set, fault, fraction and placement):")
    for frac in FRACTIONS:
        real_fraction([s for s in sets if s.faults], frac, seeds)
    print("end to end (select, validate, train the autoencoder):")
    real_calibration(root)
    print(f"real data: {time.perf_counter() - t:.0f} s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="50 healthy seeds, 2 seeds per contaminated case")
    p.add_argument("--healthy", type=int, default=None, help="healthy calibrations per generator (200)")
    p.add_argument("--seeds", type=int, default=None, help="seeds per fault mode and fraction (6)")
    p.add_argument("--real-seeds", type=int, default=None, help="seeds per real contaminated case (5)")
    p.add_argument("--real-only", action="store_true", help="only the real-data section")
    a = p.parse_args()
    if a.real_only:
        real_data(a.real_seeds or (2 if a.quick else 5))
        return
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
    real_data(a.real_seeds or (2 if a.quick else 5))
    print(f"total {time.perf_counter() - t:.0f} s")


if __name__ == "__main__":
    main()
