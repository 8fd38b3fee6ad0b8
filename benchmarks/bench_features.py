"""Throughput of the feature maths: vectorised code vs straightforward per-window loops.

Run: ``PYTHONPATH=. .venv/bin/python -m benchmarks.bench_features [--repeat 3] [--seed 0]``

Prints windows per second (best of ``--repeat`` runs, wall clock) for

* the 33 time-domain vibration features (3 axes x 11) on 2,000 windows of 3 x 256 and 200 windows
  of 3 x 4096: :func:`shared.features.vibration_features` on the whole batch, vs a per-window
  numpy loop (one numpy call per feature, per axis, per window: how the features are usually
  first written), vs a pure-Python loop (``math`` per sample) on a subset of the windows;
* the spectral + order + envelope features, whole batch vs one :func:`spectral_features` call
  per window.

Both reference implementations are checked against the vectorised result before timing (the max
absolute difference is printed). Input is Gaussian noise with a 1x tone; numbers depend on the
machine and its load, so they are printed, never asserted.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from shared.features import defect_orders, spectral_features, vibration_features

RPM = 1797.0
ORDERS = defect_orders(9, 0.3126, 1.537, 0.0)


# ---------------------------------------------------------------------------------------------
# Straightforward references (same definitions as shared.features.vibration)
# ---------------------------------------------------------------------------------------------
def _axis_numpy(x: NDArray[np.float64]) -> list[float]:
    """11 features of one axis, one numpy call per feature."""
    rms = float(np.sqrt(np.mean(x**2)))
    peak = float(np.max(np.abs(x)))
    ptp = float(np.max(x) - np.min(x))
    var = float(np.var(x))
    std = float(np.std(x))
    d = x - np.mean(x)
    m2, m3, m4 = float(np.mean(d**2)), float(np.mean(d**3)), float(np.mean(d**4))
    skew = m3 / m2**1.5 if m2 > 0 else 0.0
    kurt = m4 / m2**2 - 3.0 if m2 > 0 else 0.0
    mean_abs = float(np.mean(np.abs(x)))
    mean_sqrt = float(np.mean(np.sqrt(np.abs(x))))
    if peak == 0:
        return [0.0] * 11
    return [rms, peak, ptp, peak / rms, var, std, skew, kurt, rms / mean_abs, peak / mean_abs,
            peak / mean_sqrt**2]  # fmt: skip


def reference_numpy_loop(windows: NDArray[np.float64]) -> NDArray[np.float64]:
    """[w, 3, n] -> [w, 33] with a Python loop over windows and axes."""
    return np.array([[v for axis in win for v in _axis_numpy(axis)] for win in windows])


def _axis_python(xs: list[float]) -> list[float]:
    """11 features of one axis in pure Python (math module, loops over samples)."""
    n = len(xs)
    mean = sum(xs) / n
    sq = sum(v * v for v in xs)
    rms = math.sqrt(sq / n)
    peak = max(abs(v) for v in xs)
    ptp = max(xs) - min(xs)
    m2 = m3 = m4 = 0.0
    for v in xs:
        d = v - mean
        d2 = d * d
        m2 += d2
        m3 += d2 * d
        m4 += d2 * d2
    m2, m3, m4 = m2 / n, m3 / n, m4 / n
    skew = m3 / m2**1.5 if m2 > 0 else 0.0
    kurt = m4 / m2**2 - 3.0 if m2 > 0 else 0.0
    mean_abs = sum(abs(v) for v in xs) / n
    mean_sqrt = sum(math.sqrt(abs(v)) for v in xs) / n
    if peak == 0:
        return [0.0] * 11
    return [rms, peak, ptp, peak / rms, m2, math.sqrt(m2), skew, kurt, rms / mean_abs,
            peak / mean_abs, peak / mean_sqrt**2]  # fmt: skip


def reference_python_loop(windows: NDArray[np.float64]) -> NDArray[np.float64]:
    lists = windows.tolist()
    return np.array([[v for axis in win for v in _axis_python(axis)] for win in lists])


# ---------------------------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------------------------
def best_seconds(fn: Callable[[], object], repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def make_windows(rng: np.random.Generator, count: int, axes: int, n: int, fs: float) -> NDArray[np.float64]:
    t = np.arange(n) / fs
    tone = 0.3 * np.sin(2 * np.pi * RPM / 60.0 * t)
    return rng.standard_normal((count, axes, n)) * 0.1 + tone


def row(case: str, windows: int, fast: float, slow: float | None, slow_name: str) -> str:
    fast_s = f"{windows / fast:12,.0f}"
    if slow is None:
        return f"{case:<34} {windows:>7} {fast_s} {'':>12} {'':>8}  {slow_name}"
    return f"{case:<34} {windows:>7} {fast_s} {windows / slow:12,.0f} {slow / fast:7.1f}x  {slow_name}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best is kept")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)

    print(f"numpy {np.__version__}; best of {args.repeat}; windows/s (higher is better)")
    header = f"{'case':<34} {'windows':>7} {'vectorised':>12} {'loop':>12} {'ratio':>8}  loop kind"
    print(header)
    print("-" * len(header))

    for count, n, py_count in ((2000, 256, 200), (200, 4096, 20)):
        w = make_windows(rng, count, 3, n, 12_000.0)
        fast_out = vibration_features(w).reshape(count, 33)
        ref_np = reference_numpy_loop(w)
        ref_py = reference_python_loop(w[:py_count])
        err_np = float(np.max(np.abs(ref_np - fast_out)))
        err_py = float(np.max(np.abs(ref_py - fast_out[:py_count])))
        fast = best_seconds(lambda w=w: vibration_features(w), args.repeat)
        slow_np = best_seconds(lambda w=w: reference_numpy_loop(w), args.repeat)
        wp = w[:py_count]
        slow_py = best_seconds(lambda wp=wp: reference_python_loop(wp), args.repeat)
        fast_py = fast * py_count / count  # same per-window cost, scaled to the subset
        case = f"vibration 33 feats, 3x{n}"
        print(row(case, count, fast, slow_np, f"numpy per window (max |diff| {err_np:.1e})"))
        print(row(case, py_count, fast_py, slow_py, f"pure Python (max |diff| {err_py:.1e})"))

    spectral_cases = (
        ("spectral+orders+env, 1x256 @500Hz", 2000, 256, 500.0),
        ("spectral+orders+env, 1x4096 @12kHz", 200, 4096, 12_000.0),
        ("spectral+orders+env, 3x4096 @12kHz", 200, 4096, 12_000.0),
    )
    for case, count, n, fs in spectral_cases:
        axes = 3 if case.startswith("spectral+orders+env, 3x") else 1
        w = make_windows(rng, count, axes, n, fs)
        flat = w.reshape(count * axes, n)

        def batch(flat: NDArray[np.float64] = flat, fs: float = fs) -> object:
            return spectral_features(flat, fs, rpm=RPM, bearing_orders=ORDERS)

        def loop(flat: NDArray[np.float64] = flat, fs: float = fs) -> object:
            return [spectral_features(x, fs, rpm=RPM, bearing_orders=ORDERS) for x in flat]

        fast = best_seconds(batch, args.repeat)
        slow = best_seconds(loop, args.repeat)
        print(row(case, count, fast, slow, "one spectral_features call per window"))


if __name__ == "__main__":
    main()
