"""Run every benchmark and print a summary: ``python -m benchmarks [--quick] [--only NAME ...]``.

``make bench`` calls this. Sections, in order:

* ``features``: :mod:`benchmarks.bench_features` (subprocess): windows/s of the vectorised feature code
  vs per-window loops, and the ratio.
* ``calibration``: :mod:`benchmarks.bench_calibration` (subprocess): seconds per full calibration
  for 300, 1,000 and 10,000 rows; the ratio is the time relative to the smallest size.
* ``concurrency``: :mod:`benchmarks.bench_calibration_concurrency` (subprocess): wall time of 1, 4 and
  8 calibrations started at once through the calibrator's worker pool, as ratios to 1 in the same run,
  and the time per calibration.
* ``validation``: :mod:`benchmarks.bench_calibration_validation` (subprocess): false rejections of
  healthy calibrations and silent acceptance of contaminated ones (2-5 % faulty readings).
* ``real``: :mod:`benchmarks.bench_calibration_real` (subprocess): real bearings offered as calibration
  data — FEMTO early life and the CWRU normal record accepted, CWRU fault records refused (screening +
  fault signature), per set.
* ``reports``: :mod:`benchmarks.bench_reports` (subprocess, each case in its own process): build time
  and peak memory of the Excel, executive and industrial reports for 24 h and 7 days of 1 Hz readings,
  as ratios to the Excel 24 h build (24 h) and to the same report's 24 h build (7 days).
* ``pipeline``: :mod:`benchmarks.bench_pipeline` (in this process; it starts Mosquitto and every
  service): fault-to-health latency and end-to-end throughput vs the raw broker rate.
* ``replay``: :mod:`benchmarks.bench_replay` (in this process; Mosquitto and every service again):
  ``scripts/replay.py --speed max`` windows/s processed end to end (256- and 4096-sample windows) and
  the broker's accept rate, vs the raw broker rate of the same windows.
* ``ingest_http``: :mod:`benchmarks.bench_ingest_http` (subprocess; Mosquitto, every service and a bare
  FastAPI reference): ``POST /data/simple`` at 1 and 16 clients vs the reference, bulk
  ``/data/simple/batch`` readings/s, CPU per reading by service, and a cProfile of the gateway's stages.

Each section's own output is streamed as it runs; a summary table follows. The exit status is 1
only when a benchmark crashed (non-zero exit or exception), never because of a number: benchmarks
print, tests assert. ``--quick`` runs smaller sizes for a smoke run (about 5-6 minutes on 2 cores;
the full run about 12-13).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAMES = (
    "features",
    "calibration",
    "concurrency",
    "validation",
    "real",
    "reports",
    "pipeline",
    "replay",
    "ingest_http",
)


@dataclass
class Row:
    """One summary line: what was measured, its value, the baseline it is compared with, the ratio."""

    case: str
    value: str
    baseline: str = ""
    ratio: str = ""


@dataclass
class Section:
    name: str
    ok: bool = True
    seconds: float = 0.0
    rows: list[Row] = field(default_factory=list)
    error: str = ""


def banner(text: str) -> None:
    print(f"\n{'=' * 100}\n== {text}\n{'=' * 100}", flush=True)


def stream(argv: Sequence[str]) -> tuple[int, list[str]]:
    """Run ``argv`` from the repo root, echo its output line by line (indented), return (rc, lines)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    print(f"  $ {' '.join(argv)}", flush=True)
    lines: list[str] = []
    with subprocess.Popen(
        list(argv), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            lines.append(line)
            print(f"  {line}", flush=True)
        rc = proc.wait()
    return rc, lines


# ---------------------------------------------------------------------------------------------
# sections
# ---------------------------------------------------------------------------------------------
_FEATURE_ROW = re.compile(
    r"^(?P<case>(?:vibration|spectral).*?)\s+(?P<n>\d+)\s+(?P<fast>[\d,]+)\s+(?P<slow>[\d,]+)\s+"
    r"(?P<ratio>[\d.]+)x\s+(?P<kind>.*)$"
)


def parse_features(lines: Sequence[str]) -> list[Row]:
    rows = []
    for line in lines:
        m = _FEATURE_ROW.match(line.strip())
        if m:
            kind = m["kind"].split(" (")[0]
            kind = {"numpy per window": "numpy loop", "pure Python": "pure-Python loop"}.get(kind, kind)
            kind = "per-window calls" if kind.startswith("one spectral_features call") else kind
            rows.append(
                Row(
                    f"{m['case']} ({m['n']} windows)",
                    f"{m['fast']} windows/s",
                    f"{m['slow']} windows/s ({kind})",
                    f"{m['ratio']}x",
                )
            )
    return rows


_CAL_ROW = re.compile(r"^n=\s*(?P<n>\d+)\s+(?P<which>cold|best)\s+.*\btotal=(?P<total>[\d.]+)")


def parse_calibration(lines: Sequence[str], repeat: int) -> list[Row]:
    found: dict[tuple[int, str], float] = {}
    for line in lines:
        m = _CAL_ROW.match(line.strip())
        if m:
            found[(int(m["n"]), m["which"])] = float(m["total"])
    best = {n: t for (n, which), t in found.items() if which == "best"}
    cold = {n: t for (n, which), t in found.items() if which == "cold"}
    rows = [Row(f"calibrate n={n:,} rows, first run (cold start)", f"{t:.2f} s") for n, t in cold.items()]
    if best:
        n0 = min(best)
        for n, t in sorted(best.items()):
            runs = repeat - 1 if n in cold else repeat  # the cold run is not part of the best-of
            base = f"n={n0:,}: {best[n0]:.2f} s" if n != n0 else ""
            ratio = f"{t / best[n0]:.1f}x the time for {n / n0:.1f}x the rows" if n != n0 else ""
            rows.append(Row(f"calibrate n={n:,} rows (best of {runs})", f"{t:.2f} s", base, ratio))
    return rows


def run_features(quick: bool) -> Section:
    sec = Section("features")
    rc, lines = stream([sys.executable, "-m", "benchmarks.bench_features", "--repeat", "1" if quick else "3"])
    sec.ok, sec.rows = rc == 0, parse_features(lines)
    if rc:
        sec.error = f"exit status {rc}"
    return sec


def run_calibration(quick: bool) -> Section:
    sec = Section("calibration")
    sizes, repeat = (["300", "1000"], 2) if quick else (["300", "1000", "10000"], 3)
    rc, lines = stream(
        [sys.executable, "-m", "benchmarks.bench_calibration", "--sizes", *sizes, "--repeat", str(repeat)]
    )
    sec.ok, sec.rows = rc == 0, parse_calibration(lines, repeat)
    if rc:
        sec.error = f"exit status {rc}"
    return sec


def run_concurrency(quick: bool) -> Section:
    """:mod:`benchmarks.bench_calibration_concurrency` (subprocess); its ``ROW|...`` lines are the rows."""
    sec = Section("concurrency")
    rc, lines = stream([sys.executable, "-m", "benchmarks.bench_calibration_concurrency"])
    sec.ok, sec.rows = rc == 0, [Row(*ln.split("|")[1:5]) for ln in lines if ln.startswith("ROW|")]
    if rc:
        sec.error = f"exit status {rc}"
    return sec


def run_validation(quick: bool) -> Section:
    """:mod:`benchmarks.bench_calibration_validation` (subprocess); its ``ROW|case|value|baseline|ratio``
    lines become the summary rows."""
    sec = Section("validation")
    argv = [sys.executable, "-m", "benchmarks.bench_calibration_validation", *(["--quick"] if quick else [])]
    rc, lines = stream(argv)
    sec.ok, sec.rows = rc == 0, [Row(*ln.split("|")[1:5]) for ln in lines if ln.startswith("ROW|")]
    if rc:
        sec.error = f"exit status {rc}"
    return sec


def run_real(quick: bool) -> Section:
    """:mod:`benchmarks.bench_calibration_real` (subprocess, a few seconds; ``quick`` changes nothing);
    its ``ROW|`` lines become the summary rows."""
    sec = Section("real")
    rc, lines = stream([sys.executable, "-m", "benchmarks.bench_calibration_real"])
    sec.ok, sec.rows = rc == 0, [Row(*ln.split("|")[1:5]) for ln in lines if ln.startswith("ROW|")]
    if rc:
        sec.error = f"exit status {rc}"
    return sec


def run_reports(quick: bool) -> Section:
    """:mod:`benchmarks.bench_reports` (subprocess; ``quick``: 24 h only); its ``ROW|`` lines are the rows."""
    sec = Section("reports")
    rc, lines = stream([sys.executable, "-m", "benchmarks.bench_reports", *(["--quick"] if quick else [])])
    sec.ok, sec.rows = rc == 0, [Row(*ln.split("|")[1:5]) for ln in lines if ln.startswith("ROW|")]
    if rc:
        sec.error = f"exit status {rc}"
    return sec


def run_pipeline(quick: bool) -> Section:
    from benchmarks import bench_pipeline as bp

    sec = Section("pipeline")
    res = bp.run(quick=quick)
    print(bp.report(res), flush=True)
    lat = res.latency
    for name, vals in (
        (f"fault -> health < {bp.DETECT_BELOW:g}", lat.health_ms),
        ("fault -> alarm", lat.alarm_ms),
    ):
        if vals:
            sec.rows.append(
                Row(
                    f"latency {name}, {len(vals)} reps ({res.store})",
                    f"p50 {bp.percentile(vals, 50):.0f} ms, p99 {bp.percentile(vals, 99):.0f} ms",
                    f"min {min(vals):.0f}, max {max(vals):.0f} ms",
                )
            )
        else:
            sec.rows.append(Row(f"latency {name}", "never reached"))
    for t in res.throughput:
        neck = t.bottleneck()
        sec.rows.append(
            Row(
                f"throughput {t.assets} asset(s) x {t.readings_per_asset} readings",
                f"{t.pipeline_rate:,.0f} readings/s",
                f"{t.raw_rate:,.0f} msg/s raw broker",
                f"{t.pipeline_rate / t.raw_rate:.3f}" + (f" (bottleneck: {neck})" if neck else ""),
            )
        )
    return sec


def run_replay(quick: bool) -> Section:
    from benchmarks import bench_replay as br

    sec = Section("replay")
    results = br.run(quick=quick)
    print(br.report(results), flush=True)
    for r in results:
        flight = f"in flight {r.in_flight}" if r.in_flight else "PUBACK only"
        sec.rows.append(
            Row(
                f"replay --speed max, {r.case.windows} windows of {r.case.name} ({flight})",
                f"{r.processed_rate:,.1f} windows/s processed",
                f"{r.raw_rate:,.0f} windows/s raw broker",
                f"{r.processed_rate / r.raw_rate:.3f}",
            )
        )
        sec.rows.append(
            Row(
                f"  broker accepted the replay's windows ({r.case.samples} samples)",
                f"{r.accept_rate:,.1f} windows/s",
                f"{r.raw_rate:,.0f} windows/s raw broker",
                f"{r.accept_rate / r.raw_rate:.3f}",
            )
        )
    return sec


def run_ingest_http(quick: bool) -> Section:
    """:mod:`benchmarks.bench_ingest_http` (subprocess; it starts Mosquitto, every service and a bare
    FastAPI reference); its ``ROW|`` lines become the summary rows."""
    sec = Section("ingest_http")
    argv = [sys.executable, "-m", "benchmarks.bench_ingest_http", *(["--quick"] if quick else [])]
    rc, lines = stream(argv)
    sec.ok, sec.rows = rc == 0, [Row(*ln.split("|")[1:5]) for ln in lines if ln.startswith("ROW|")]
    if rc:
        sec.error = f"exit status {rc}"
    return sec


RUNNERS: dict[str, Callable[[bool], Section]] = {
    "features": run_features,
    "calibration": run_calibration,
    "concurrency": run_concurrency,
    "validation": run_validation,
    "real": run_real,
    "reports": run_reports,
    "pipeline": run_pipeline,
    "replay": run_replay,
    "ingest_http": run_ingest_http,
}


def summary(sections: Sequence[Section], total_s: float) -> str:
    rows = [("benchmark", "case", "value", "baseline", "ratio")]
    for s in sections:
        if not s.ok:
            rows.append((s.name, f"CRASHED: {s.error}", "", "", ""))
        if not s.rows and s.ok:
            rows.append((s.name, "(no numbers recognised; see its output above)", "", "", ""))
        rows += [(s.name, r.case, r.value, r.baseline, r.ratio) for r in s.rows]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    out = [
        f"summary (total {total_s / 60:.1f} min; "
        + ", ".join(f"{s.name} {s.seconds:.0f} s" for s in sections)
        + ")"
    ]
    for i, r in enumerate(rows):
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    p.add_argument(
        "--only", choices=NAMES, nargs="+", metavar="NAME", help=f"run only these ({', '.join(NAMES)})"
    )
    a = p.parse_args(argv)
    names = [n for n in NAMES if not a.only or n in a.only]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"Rotorwatch benchmarks ({'quick' if a.quick else 'full'}): {', '.join(names)}; "
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load {load:.2f}",
        flush=True,
    )
    sections: list[Section] = []
    t_all = time.perf_counter()
    for i, name in enumerate(names, 1):
        banner(f"[{i}/{len(names)}] {name}  (started {time.strftime('%H:%M:%S')})")
        t = time.perf_counter()
        try:
            sec = RUNNERS[name](a.quick)
        except Exception as exc:  # a crashed benchmark is reported, the others still run
            traceback.print_exc()
            sec = Section(name, ok=False, error=f"{type(exc).__name__}: {exc}".splitlines()[0][:200])
        sec.seconds = time.perf_counter() - t
        sections.append(sec)
        print(f"  -> {name}: {'ok' if sec.ok else 'CRASHED'} in {sec.seconds:.0f} s", flush=True)
    banner("summary")
    print(summary(sections, time.perf_counter() - t_all), flush=True)
    return 0 if all(s.ok for s in sections) else 1


if __name__ == "__main__":
    raise SystemExit(main())
