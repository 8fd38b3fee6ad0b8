"""Wall-clock time of a full :func:`shared.learning.calibration.calibrate`, per stage.

Run: ``PYTHONPATH=. .venv/bin/python -m benchmarks.bench_calibration [--sizes 300 1000 10000]
[--repeat 3] [--seed 0]``

For each size n it calibrates the legacy forest (6 features), the batch forest (16 features) and the
vibration autoencoder (33 features, default 200 epochs) on n rows each, and prints the seconds of
every stage (validate, train, ONNX export, ONNX-vs-native check) and the total, best of
``--repeat`` runs. The first (cold) run in the process is printed separately: it includes one-time
costs such as the first ONNX Runtime session and torch's first autograd pass (library imports are
done before timing and reported on their own).

Input: correlated Gaussian features (4 latent factors + independent noise per feature, in arbitrary
units), generated here from ``--seed``; the timing does not depend on the values. Numbers depend on
the machine and its load, so they are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

T_IMPORT = time.perf_counter()
from shared.learning.calibration import CalibrationConfig, calibrate  # noqa: E402

T_IMPORT = time.perf_counter() - T_IMPORT

DIMS = {"legacy": 6, "batch": 16, "autoencoder": 33}


def make_data(rng: np.random.Generator, n: int) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Healthy-looking data: X = F·W + 0.5·E with F [n, 4], W [4, d], E [n, d] standard normal."""
    out = {}
    for kind, d in DIMS.items():
        F = rng.normal(size=(n, 4))
        W = rng.normal(size=(4, d)) / 2.0
        X = F @ W + 0.5 * rng.normal(size=(n, d))
        out[kind] = (X, [f"{kind}_{j}" for j in range(d)])
    return out


def stage_table(timings: dict[str, float]) -> str:
    keys = ["validate"] + [f"{k}_{s}" for k in DIMS for s in ("train", "export", "check")] + ["total"]
    return "  ".join(f"{k}={timings.get(k, float('nan')):.3f}" for k in keys)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[300, 1000, 10000])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    cfg = CalibrationConfig()
    print(f"cores={os.cpu_count()} load={os.getloadavg()[0]:.2f} import_seconds={T_IMPORT:.2f}")
    print(
        f"config: n_estimators={cfg.n_estimators} contamination={cfg.contamination} "
        f"ae_epochs={cfg.autoencoder.epochs} ae_threads={cfg.autoencoder.threads}"
    )
    rng = np.random.default_rng(a.seed)
    cold = True
    for n in a.sizes:
        data = make_data(rng, n)
        best: dict[str, float] | None = None
        for _ in range(a.repeat):
            res = calibrate(data, cfg)
            if cold:
                print(f"n={n:>6} cold  {stage_table(res.timings)}")
                cold = False
                continue
            if best is None or res.timings["total"] < best["total"]:
                best = res.timings
        if best is not None:
            print(f"n={n:>6} best  {stage_table(best)}")
    print(f"load_after={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
