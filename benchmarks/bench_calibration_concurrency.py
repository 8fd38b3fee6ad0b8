"""Wall time of 1, 4 and 8 calibrations started at once, as the calibrator runs them (issue 17).

Run: ``PYTHONPATH=. .venv/bin/python -m benchmarks.bench_calibration_concurrency [--counts 1 4 8]
[--rows 300] [--workers N] [--repeat 2] [--no-unbounded]``

Each calibration is a full :func:`shared.learning.calibration.calibrate` (legacy and batch forests,
vibration autoencoder; default settings) on the synthetic data of :mod:`benchmarks.bench_calibration`
(``--rows`` rows per model, seed 0, the same data for every calibration), run as the service runs it:
in a thread (``asyncio.to_thread``) once a worker of a :class:`services.calibrator.workers.WorkerPool`
of ``--workers`` workers (default: ``CALIBRATION_WORKERS``' default, the number of CPUs) is free.

Printed per count N: the wall time until all N are done, its ratio to the wall time of 1 calibration
measured in the same run (N× the work: a ratio of N means no gain from running them together, below N
a gain), and per calibration the mean latency (request → done, queue included) and the mean time it
held a worker. Unless ``--no-unbounded``, the largest N is run once more with N workers (every calibration
in its own thread at once, as before the pool) for comparison. Each case runs ``--repeat`` times
(default 2); the fastest is reported. Every model is checked to be byte-identical
to the 1-calibration one (same data, same seed). Lines ``ROW|case|value|baseline|ratio`` feed the
``make bench`` summary. Numbers depend on the machine and its load: printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog

from benchmarks.bench_calibration import make_data
from services.calibrator.workers import WorkerPool, default_workers
from shared.learning.calibration import CalibrationConfig, calibrate


@dataclass
class Run:
    """N calibrations at once on a pool of ``workers``: wall time and per-calibration times (s)."""

    n: int
    workers: int
    wall_s: float
    latency_s: list[float]
    held_s: list[float]
    identical: bool

    @property
    def mean_latency_s(self) -> float:
        return float(np.mean(self.latency_s))

    @property
    def mean_held_s(self) -> float:
        return float(np.mean(self.held_s))


def _models(res: Any) -> dict[str, bytes]:
    return {kind: blob for kind, (blob, _entry) in res.models.items()}


async def _one(pool: WorkerPool, key: str, data: Any, cfg: CalibrationConfig) -> tuple[float, float, Any]:
    async def on_wait(position: int, size: int) -> None:
        return None

    t0 = time.perf_counter()
    async with pool.slot(key, on_wait):
        t1 = time.perf_counter()
        res = await asyncio.to_thread(calibrate, data, cfg)
    t2 = time.perf_counter()
    return t2 - t0, t2 - t1, res


async def run_at_once(n: int, workers: int, data: Any, cfg: CalibrationConfig, ref: dict[str, bytes]) -> Run:
    """Start ``n`` calibrations at once on a pool of ``workers``; wait for all."""
    pool = WorkerPool(workers)
    t0 = time.perf_counter()
    done = await asyncio.gather(*(_one(pool, f"a{i}", data, cfg) for i in range(n)))
    wall = time.perf_counter() - t0
    same = all(_models(res) == ref for _, _, res in done) if ref else True
    return Run(n, workers, wall, [d[0] for d in done], [d[1] for d in done], same)


def run(
    counts: tuple[int, ...] = (1, 4, 8),
    rows: int = 300,
    workers: int | None = None,
    unbounded: bool = True,
    repeat: int = 2,
) -> list[Run]:
    """Measure (see the module docstring): per case the run with the shortest wall time of ``repeat``."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    w = workers or default_workers()
    cfg = CalibrationConfig()
    data = make_data(np.random.default_rng(0), rows)
    ref = _models(calibrate(data, cfg))  # warm-up (first ONNX session, autograd) and the reference models
    plan = [(n, w) for n in counts]
    if unbounded and max(counts) > w:
        plan.append((max(counts), max(counts)))
    best = []
    for n, k in plan:
        tries = [asyncio.run(run_at_once(n, k, data, cfg, ref)) for _ in range(max(1, repeat))]
        best.append(min(tries, key=lambda r: r.wall_s))
        best[-1].identical = all(t.identical for t in tries)
    return best


def report(runs: list[Run]) -> str:
    base = next(r for r in runs if r.n == 1) if any(r.n == 1 for r in runs) else runs[0]
    lines = [f"{'N':>3} {'workers':>7} {'wall s':>7} {'ratio':>6} {'latency s':>9} {'held s':>7}  models"]
    for r in runs:
        ratio = r.wall_s / base.wall_s
        same = "identical" if r.identical else "DIFFER"
        lines.append(
            f"{r.n:>3} {r.workers:>7} {r.wall_s:>7.2f} {ratio:>6.2f} {r.mean_latency_s:>9.2f} "
            f"{r.mean_held_s:>7.2f}  {same}"
        )
    for r in runs:
        alone = " (each in its own thread)" if r.workers >= r.n > 1 else ""
        case = f"{r.n} calibration(s) at once, {r.workers} worker(s){alone}"
        value = (
            f"{r.wall_s:.2f} s wall; per calibration {r.mean_latency_s:.2f} s, {r.mean_held_s:.2f} s running"
        )
        baseline = f"1 calibration: {base.wall_s:.2f} s" if r is not base else ""
        ratio = f"{r.wall_s / base.wall_s:.2f}x the time for {r.n}x the work" if r is not base else ""
        lines.append(f"ROW|{case}|{value}|{baseline}|{ratio}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--counts", type=int, nargs="+", default=[1, 4, 8])
    p.add_argument("--rows", type=int, default=300)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--repeat", type=int, default=2, help="runs per case; the fastest is reported")
    p.add_argument("--no-unbounded", dest="unbounded", action="store_false")
    a = p.parse_args()
    print(f"cores={os.cpu_count()} load={os.getloadavg()[0]:.2f} workers={a.workers or default_workers()}")
    runs = run(tuple(a.counts), a.rows, a.workers, a.unbounded, a.repeat)
    print(report(runs))
    print(f"load_after={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
