"""Build time and peak memory of each report for 24 h and 7 days of 1 Hz readings (issue 13).

Run: ``PYTHONPATH=. .venv/bin/python -m benchmarks.bench_reports [--sizes 24 168] [--kinds excel
executive industrial] [--repeat 1]`` (``make bench`` section ``reports``; ``--quick``: 24 h only).

Each report kind is built by its pure builder (:func:`shared.reports.excel.build_workbook`,
:func:`shared.reports.executive.build_executive`, :func:`shared.reports.industrial.build_industrial`)
from the same synthetic :class:`~shared.reports.data.ReportData` (:func:`make_data`): one asset, N hours
of 1 Hz readings (4 signals, an event ID each) every one scored by the legacy model, batch scores every
10 s, a vibration window a minute (autoencoder score, features, health update), an alarm (opened,
acknowledged, resolved) every 4 h and an operator log every 5 h, models with baselines. Uncapped: the
builders get every reading, as when ``REPORT_MAX_ROWS`` (default 100,000) is above the period's count;
the reporter's default cap thins 7 days to every 7th reading.

Each case runs in a fresh process (``--case KIND:HOURS``): the data is made, then the peak resident
set (Linux ``VmHWM``) is reset (``/proc/self/clear_refs``) and the build timed; memory = peak RSS during
the build minus RSS before it, so native allocations (WeasyPrint, cairo, matplotlib) count too; the
data itself and the interpreter do not. Time: best of ``--repeat`` builds (memory of the first).
Ratios: a 24 h case against the Excel 24 h build of the same run; a 7-day case against the same
report's 24 h build (7x the data). Lines ``ROW|case|value|baseline|ratio`` feed the ``make bench``
summary. Numbers depend on the machine and its load: printed, never asserted.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from shared.messages import AlarmEvent, AssetConfig, HealthUpdate, OperatorLog
from shared.reports.data import ModelInfo, ReportData, Series

ROOT = Path(__file__).resolve().parent.parent
BUILDERS = {
    "excel": ("shared.reports.excel", "build_workbook"),
    "executive": ("shared.reports.executive", "build_executive"),
    "industrial": ("shared.reports.industrial", "build_industrial"),
}
ASSET = "bench-pump"
T0 = datetime(2026, 3, 2, tzinfo=UTC)
VERSION = "20260301-0800"


def _scores(ts: np.ndarray, ids: list[str], score: np.ndarray, threshold: float) -> Series:
    n = len(ids)
    return Series(
        ts,
        {
            "anomaly_score": score,
            "raw_score": score,
            "threshold": np.full(n, threshold),
            "is_anomaly": (score > threshold) * 1.0,
        },
        {"event_id": ids, "severity": ["NORMAL"] * n, "model_version": [VERSION] * n},
    )


def _vibration(fault: np.ndarray) -> dict[str, np.ndarray]:
    m = fault.shape[0]
    cols = {
        "x_rms": 0.2 + 0.3 * fault,
        "y_rms": 0.18 + 0.2 * fault,
        "x_kurtosis": 0.3 + 4.0 * fault,
        "velocity_rms_mm_s": 1.1 + 2.4 * fault,
        "dominant_freq_hz": np.full(m, 24.7),
        "order1_amp_g": np.full(m, 0.05),
        "order2_amp_g": np.full(m, 0.02),
        "env_bpfo_amp": 0.002 + 0.03 * fault,
        "env_bpfo_snr": 1.5 + 5.0 * fault,
        "env_bpfi_amp": np.full(m, 0.002),
        "env_bpfi_snr": np.full(m, 1.4),
    }
    return cols | {
        f"band_{i}_energy": np.full(m, 0.004 / (i + 1)) + 0.02 * fault * (i == 3) for i in range(8)
    }


def _models() -> list[ModelInfo]:
    signals = {
        k: {"mean": m, "std": s, "min": m - 3 * s, "max": m + 3 * s, "n": 300}
        for k, m, s in (
            ("voltage_v", 400.0, 2.0),
            ("current_a", 52.0, 1.5),
            ("power_factor", 0.86, 0.01),
            ("vibration_g", 0.2, 0.02),
        )
    }
    stat = {"mean": 0.2, "std": 0.01, "min": 0.17, "max": 0.23, "median": 0.2, "mad": 0.007}
    feats = {"n": 57, "features": [{"name": "x_rms", **stat}, {"name": "y_rms", **stat}]}
    created = T0 - timedelta(days=3)
    return [
        ModelInfo(
            "autoencoder",
            VERSION,
            created,
            0.042,
            ["x_rms", "y_rms"],
            {},
            {"signals": signals, "features": feats},
        ),
        ModelInfo("batch", VERSION, created, 0.11, ["voltage_v_mean"], {}, {"signals": signals}),
        ModelInfo("legacy", VERSION, created, 0.5, ["voltage_v"], {}, {"signals": signals}),
    ]


def _events(hours: int) -> tuple[list[AlarmEvent], list[OperatorLog]]:
    alarms: list[AlarmEvent] = []
    for k in range(hours // 4):
        t = T0 + timedelta(hours=4 * k, minutes=30)
        common: dict[str, Any] = {
            "alarm_id": f"al{k:06d}",
            "asset_id": ASSET,
            "source": "bearing",
            "severity": "CRITICAL",
        }
        common |= {"reason": "Envelope peak at BPFO 88.4 Hz: outer-race defect likely", "opened_at": t}
        alarms += [
            AlarmEvent(state="ACTIVE", ts=t, **common),
            AlarmEvent(
                state="ACKNOWLEDGED", previous="ACTIVE", ts=t + timedelta(minutes=5), who="maria", **common
            ),
            AlarmEvent(
                state="RESOLVED",
                previous="ACKNOWLEDGED",
                ts=t + timedelta(hours=1),
                action_code="lubricated",
                **common,
            ),
        ]
    logs = [
        OperatorLog(
            log_id=f"l{k}",
            asset_id=ASSET,
            event_type="observation",
            description="Listened to the drive end",
            ts=T0 + timedelta(hours=5 * k, minutes=10),
        )
        for k in range(hours // 5)
    ]
    return alarms, logs


def make_data(hours: int) -> ReportData:
    """``hours`` of 1 Hz readings and what the pipeline stores with them (module doc)."""
    n = hours * 3600
    ts = T0.timestamp() + np.arange(n, dtype=np.float64)
    rng = np.random.default_rng(0)
    ramp = np.linspace(0.0, 1.0, n) ** 4
    ids = [f"r{i:07d}" for i in range(n)]
    cols = {"voltage_v": 400 + 2 * rng.standard_normal(n), "current_a": 52 + 1.5 * rng.standard_normal(n)}
    cols |= {
        "power_factor": 0.86 + 0.01 * rng.standard_normal(n),
        "vibration_g": 0.2 + 0.02 * rng.standard_normal(n) + 0.3 * ramp,
    }
    wts, fault = ts[::60], ramp[::60]
    m = wts.shape[0]
    wids = [f"w{i:06d}" for i in range(m)]
    alarms, logs = _events(hours)
    zones = ["A" if f < 0.1 else "B" if f < 0.4 else "C" for f in fault]
    health = Series(
        wts,
        {
            "health_score": 95 - 60 * fault,
            "degradation_index": 0.5 * fault,
            "maintenance_window_days": 30 - 28 * fault,
            "velocity_rms_mm_s": 1.1 + 2.4 * fault,
        },
        {"risk_level": ["LOW"] * m, "grade": ["A"] * m, "iso_zone": zones, "zone_basis": ["information"] * m},
    )
    latest = HealthUpdate(
        asset_id=ASSET,
        ts=T0 + timedelta(seconds=float(wts[-1] - ts[0])),
        health_score=float(health.columns["health_score"][-1]),
        risk_level="HIGH",
        grade="D",
        degradation_index=0.5,
        maintenance_window_days=2.0,
        maintenance_reason="HIGH risk",
        iso_zone="C",
        velocity_rms_mm_s=3.5,
        zone_basis="information",
        active_alarms=0,
    )
    return ReportData(
        asset_id=ASSET,
        start=T0,
        end=T0 + timedelta(hours=hours),
        generated_at=T0 + timedelta(hours=hours, minutes=1),
        config=AssetConfig(asset_id=ASSET, name="Bench pump", type="pump", rpm=1480.0),
        models=_models(),
        readings=Series(ts, cols, {"event_id": ids}),
        readings_total=n,
        scores={
            "legacy": _scores(ts, ids, 0.2 + 0.05 * rng.standard_normal(n) + 0.4 * ramp, 0.5),
            "batch": _scores(ts[9::10], ids[9::10], 0.05 + 0.1 * ramp[9::10], 0.11),
            "autoencoder": _scores(wts, wids, 0.03 + 0.06 * fault, 0.042),
        },
        health=health,
        latest_health=latest,
        windows=Series(
            wts,
            {
                "fs_hz": np.full(m, 25600.0),
                "n": np.full(m, 2560.0),
                "rms_x": 0.2 + 0.3 * fault,
                "rms_y": 0.18 + 0.2 * fault,
            },
            {"axes": ["x,y"] * m},
        ),
        vibration=Series(wts, _vibration(fault)),
        alarms=alarms,
        logs=logs,
    )


def _status_kb(key: str) -> int:
    m = re.search(rf"^{key}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return int(m[1]) if m else -1


def run_case(kind: str, hours: int, repeat: int) -> dict[str, Any]:
    """One case in this process: build ``repeat`` times; time (best), RSS growth during the first."""
    mod, fn = BUILDERS[kind]
    build = getattr(importlib.import_module(mod), fn)
    data = make_data(hours)
    gc.collect()
    before = _status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    times, size = [], 0
    for i in range(repeat):
        t = time.perf_counter()
        blob = build(data)
        times.append(time.perf_counter() - t)
        if i == 0:
            peak, size = _status_kb("VmHWM"), len(blob)
        del blob
    return {
        "kind": kind,
        "hours": hours,
        "readings": len(data.readings),
        "s": min(times),
        "mib": (peak - before) / 1024,
        "bytes": size,
    }


def importable(kind: str) -> str:
    """ "" when the builder imports, else the reason it does not."""
    mod, fn = BUILDERS[kind]
    try:
        getattr(importlib.import_module(mod), fn)
    except (ImportError, AttributeError) as exc:
        return f"{mod}.{fn} not available ({type(exc).__name__}: {exc})"
    return ""


def spawn(kind: str, hours: int, repeat: int) -> dict[str, Any]:
    argv = [
        sys.executable,
        "-m",
        "benchmarks.bench_reports",
        "--case",
        f"{kind}:{hours}",
        "--repeat",
        str(repeat),
    ]
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"{kind} {hours} h failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _label(hours: int) -> str:
    return f"{hours} h" if hours < 48 or hours % 24 else f"{hours // 24} days"


def rows(results: list[dict[str, Any]]) -> list[str]:
    """``ROW|`` lines: per case its time and memory, with the ratio to its baseline (module doc)."""
    by = {(r["kind"], r["hours"]): r for r in results}
    small = min(r["hours"] for r in results)
    out = []
    for r in results:
        base = by.get(("excel", small) if r["hours"] == small else (r["kind"], small))
        name = f"{r['kind']} {_label(r['hours'])} ({r['readings']:,} readings, file {_size(r['bytes'])})"
        for what, key, fmt in (("time", "s", "{:.2f} s"), ("memory", "mib", "{:.0f} MiB")):
            value = fmt.format(r[key])
            if base is None or base is r:
                out.append(f"ROW|{name}: {what}|{value}||")
                continue
            bval = f"{base['kind']} {_label(base['hours'])}: {fmt.format(base[key])}"
            ratio = f"{r[key] / base[key]:.2f}x" if base[key] > 0 else "n/a"
            out.append(f"ROW|{name}: {what}|{value}|{bval}|{ratio}")
    return out


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"


def describe(r: dict[str, Any]) -> str:
    return (
        f"{r['kind']:<11} {_label(r['hours']):>7} {r['readings']:>9,} readings  {r['s']:8.2f} s"
        f"  {r['mib']:7.0f} MiB  file {_size(r['bytes'])}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[24, 168], help="hours of 1 Hz readings")
    p.add_argument("--kinds", nargs="+", choices=list(BUILDERS), default=list(BUILDERS))
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="24 h only")
    p.add_argument("--case", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.case:
        kind, hours = a.case.split(":")
        print(json.dumps(run_case(kind, int(hours), a.repeat)))
        return 0
    sizes = [24] if a.quick else sorted(a.sizes)
    results = []
    for kind in a.kinds:
        if why := importable(kind):
            print(f"ROW|{kind}: skipped|{why}||", flush=True)
            continue
        for hours in sizes:
            r = spawn(kind, hours, a.repeat)
            results.append(r)
            print(describe(r), flush=True)
    for line in rows(results):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
