"""HTTP ingest: ``POST /data/simple`` and ``POST /data/simple/batch`` against a bare FastAPI endpoint.

``python -m benchmarks.bench_ingest_http [--quick] [--no-profile]`` (issue 14). In one run, on one
machine:

* Mosquitto (:class:`tests.support.servers.MosquittoServer`) and every service through the real
  launcher (:class:`tests.support.stack.Stack`, SQLite store), so each accepted reading is also
  ingested, stored and scored while the gateway answers;
* the **reference**: a bare FastAPI app served by uvicorn in its own process (:data:`reference_app`)
  whose ``POST /data/simple`` validates the same model (:class:`SimpleReadingIn`) and appends it to an
  in-memory list (what the reference REST system of the calibration guide does).

Measured with httpx (async, keep-alive) from this process: single-reading POSTs at 1 and 16 concurrent
clients against both (accepted/s, p50/p99 latency, ratio gateway / reference), then bulk ingest
(``/data/simple/batch``, 10,000 readings per request, 1 and 2 clients): readings/s accepted. The CPU
time of each service process during each phase is read from ``/proc`` (psutil) and printed per
accepted reading. Finally (unless ``--no-profile``) a second gateway runs under cProfile on the same
broker, takes the 16-client load, and the per-request cost of its stages is printed.

Numbers are printed, never asserted; ``ROW|case|value|baseline|ratio`` lines feed ``python -m
benchmarks``' summary.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
from fastapi import FastAPI

from shared.apikey import KEY_FILE, auth_headers
from shared.messages import SimpleReadingIn
from tests.support.servers import MosquittoServer, free_port
from tests.support.stack import ROOT, Stack

# ---------------------------------------------------------------------------------------------
# The reference: validate the model, append to a list
# ---------------------------------------------------------------------------------------------
reference_app = FastAPI()
_REFERENCE_STORE: list[SimpleReadingIn] = []


@reference_app.post("/api/v1/data/simple", status_code=202)
async def reference_post(reading: SimpleReadingIn) -> dict[str, str]:
    _REFERENCE_STORE.append(reading)
    return {"status": "accepted"}


@reference_app.get("/healthz")
async def reference_health() -> dict[str, str]:
    return {"status": "ok"}


# ---------------------------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------------------------
BATCH = 10_000
T0 = 1_764_000_000.0  # data time of the first reading (epoch s); readings 1 ms apart per asset


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def reading(i: int, asset: str) -> dict[str, Any]:
    return {
        "asset_id": asset,
        "timestamp": T0 + i / 1000,
        "voltage_v": 400.0 + i % 7,
        "current_a": 10.0 + (i % 3) * 0.1,
        "power_factor": 0.9,
        "vibration_g": 0.2 + (i % 5) * 0.01,
    }


@dataclass
class Load:
    """One measured phase."""

    case: str
    accepted: int
    refused: int
    seconds: float
    latencies_ms: list[float]
    #: CPU seconds per process name during the phase.
    cpu_s: dict[str, float]

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        xs = sorted(self.latencies_ms)
        return xs[min(len(xs) - 1, int(q / 100 * len(xs)))] if xs else float("nan")


async def hammer(
    base: str, headers: dict[str, str], clients: int, per_client: int, asset: str, start: int
) -> tuple[int, int, float, list[float]]:
    """``clients`` concurrent keep-alive clients, each POSTing ``per_client`` single readings in turn."""
    lat: list[float] = []
    ok = bad = 0

    async def one(c: int) -> None:
        nonlocal ok, bad
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as cl:
            for k in range(per_client):
                body = json.dumps(reading(start + c * per_client + k, f"{asset}-{c % 4}")).encode()
                t = time.perf_counter()
                r = await cl.post(
                    "/api/v1/data/simple", content=body, headers={"content-type": "application/json"}
                )
                lat.append((time.perf_counter() - t) * 1000)
                if r.status_code == 202:
                    ok += 1
                else:
                    bad += 1

    t = time.perf_counter()
    await asyncio.gather(*(one(c) for c in range(clients)))
    return ok, bad, time.perf_counter() - t, lat


async def bulk(
    base: str, headers: dict[str, str], clients: int, batches: int, asset: str, start: int
) -> tuple[int, int, float, list[float]]:
    """``clients`` concurrent clients, each POSTing ``batches`` JSON arrays of :data:`BATCH` readings."""
    bodies = [
        [
            json.dumps(
                [reading(start + (c * batches + b) * BATCH + i, f"{asset}-{c}") for i in range(BATCH)]
            ).encode()
            for b in range(batches)
        ]
        for c in range(clients)
    ]
    lat: list[float] = []
    ok = bad = 0

    async def one(c: int) -> None:
        nonlocal ok, bad
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as cl:
            for body in bodies[c]:
                t = time.perf_counter()
                r = await cl.post(
                    "/api/v1/data/simple/batch", content=body, headers={"content-type": "application/json"}
                )
                lat.append((time.perf_counter() - t) * 1000)
                if r.status_code == 202:
                    ok += r.json()["accepted"]
                else:
                    bad += BATCH
                    log(f"batch answered {r.status_code}: {r.text[:200]}")

    t = time.perf_counter()
    await asyncio.gather(*(one(c) for c in range(clients)))
    return ok, bad, time.perf_counter() - t, lat


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------
def service_processes(launcher_pid: int) -> dict[str, psutil.Process]:
    """The launcher's service processes by module name (``services.gateway`` -> ``gateway``)."""
    out: dict[str, psutil.Process] = {}
    for p in psutil.Process(launcher_pid).children(recursive=True):
        try:
            cmd = p.cmdline()
        except psutil.Error:
            continue
        if "-m" in cmd and (i := cmd.index("-m") + 1) < len(cmd) and cmd[i].startswith("services."):
            name = cmd[i].removeprefix("services.")
            if "--model" in cmd:
                name += "-" + cmd[cmd.index("--model") + 1]
            out[name] = p
    return out


def cpu_times(procs: dict[str, psutil.Process]) -> dict[str, float]:
    out = {}
    for name, p in procs.items():
        try:
            t = p.cpu_times()
            out[name] = t.user + t.system
        except psutil.Error:
            out[name] = float("nan")
    return out


async def measure(case: str, procs: dict[str, psutil.Process], coro: Any) -> Load:
    waited = await asyncio.to_thread(settle, procs)
    log(f"{case}: services idle after {waited:.1f} s")
    before = cpu_times(procs)
    ok, bad, seconds, lat = await coro
    after = cpu_times(procs)
    return Load(case, ok, bad, seconds, lat, {k: after[k] - before[k] for k in before})


def start_reference(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "benchmarks.bench_ingest_http:reference_app",
        "--port",
        str(port),
    ]
    out = open(workdir / "reference.log", "ab")
    proc = subprocess.Popen([*argv, "--log-level", "warning"], cwd=ROOT, env=env, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/healthz", proc)
    return proc, base


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0, **kw: Any) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited ({proc.returncode})")
        try:
            if httpx.get(url, timeout=1, **kw).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout} s")


def wait_file(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def settle(procs: dict[str, psutil.Process], timeout: float = 60.0) -> float:
    """Wait until the services are idle (under 5 % of a core in all over 0.5 s: the previous phase's
    readings are through the pipeline); the seconds waited."""
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        before = cpu_times(procs)
        time.sleep(0.5)
        busy = sum(v - before[k] for k, v in cpu_times(procs).items() if v == v and before[k] == before[k])
        if busy < 0.025:
            break
    return time.monotonic() - t


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------------------------------
# Profile: a second gateway under cProfile on the same broker
# ---------------------------------------------------------------------------------------------
#: ``(stage, file suffix, function)``: where a single-reading request's time goes in the gateway.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("uvicorn (h11): one request's ASGI cycle", "uvicorn/protocols/http/h11_impl.py", "run_asgi"),
    ("  our middlewares and everything inside", "services/gateway/app.py", "__call__"),
    ("    FastAPI dependencies (auth, context)", "fastapi/dependencies/utils.py", "solve_dependencies"),
    ("      auth: API key -> identity", "services/gateway/auth/guard.py", "authenticate"),
    ("      thread-pool hops (plain-def deps)", "starlette/concurrency.py", "run_in_threadpool"),
    ("    handler post_simple", "services/gateway/routers/data.py", "post_simple"),
    ("      parse + validate (shared.raw)", "shared/raw.py", "parse_simple"),
    ("      hand over (publish, PUBACK wait)", "services/gateway/routers/data.py", "_hand_over"),
    ("        paho publish (encode + send)", "paho/mqtt/client.py", "publish"),
    ("    response serialisation", "fastapi/routing.py", "serialize_response"),
    ("uvicorn (h11): bytes in, request parse", "uvicorn/protocols/http/h11_impl.py", "data_received"),
    ("uvicorn (h11): response out", "uvicorn/protocols/http/h11_impl.py", "send"),
    ("MQTT in: PUBACKs and subscribed traffic", "paho/mqtt/client.py", "loop_read"),
    ("bus side: the view's handlers", "shared/bus.py", "dispatch"),
)


def profiled_gateway(out: str) -> None:
    """``python -m benchmarks.bench_ingest_http --profiled-gateway OUT``: the gateway (``python -m
    services.gateway``) with a cProfile on its event-loop thread, counting that thread's CPU time
    (``time.thread_time``: not the time other processes hold the core). A first SIGUSR2 starts it, a
    second stops it and writes the stats to ``OUT``: only the measured load is in them, not the start-up."""
    from services.gateway.service import build
    from shared.service import main

    prof = cProfile.Profile(time.thread_time)
    running = False

    def toggle(*_: Any) -> None:
        nonlocal running
        running = not running
        if running:
            prof.enable()
            return
        prof.disable()
        prof.dump_stats(out + ".part")
        os.replace(out + ".part", out)  # whole, or not there

    signal.signal(signal.SIGUSR2, toggle)  # SIGUSR1 is the services' faulthandler (stack dump)
    main(build, [])


@dataclass
class Profile:
    requests: int
    seconds: float
    cpu_s: float
    #: CPU seconds of the event-loop thread in the profile (inflated by the profiler's own cost).
    profiled_s: float
    stages: list[tuple[str, float, int]]
    top: list[tuple[str, float, float]]


def _match(stats: pstats.Stats, suffix: str, func: str) -> tuple[float, int]:
    cum, calls = 0.0, 0
    for (file, _line, name), (_cc, nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if name == func and file.endswith(suffix):
            cum, calls = max(cum, ct), max(calls, nc)
    return cum, calls


async def profile(
    workdir: Path, mqtt_url: str, clients: int, per_client: int, keep: Path | None = None
) -> Profile:
    """Run a second gateway under cProfile, POST ``clients`` x ``per_client`` readings, read the profile."""
    data_dir, out = workdir / "profiled", workdir / "gateway.prof"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MQTT_", "INFLUX_"))}
    env.update(
        PYTHONPATH=str(ROOT),
        DATA_DIR=str(data_dir),
        MQTT_URL=mqtt_url,
        GATEWAY_PORT=str(port),
        ROTORWATCH_ENV="development",
        LOG_LEVEL="INFO",
        ROTORWATCH_INSTANCE="benchprof",
    )
    logf = open(workdir / "profiled.log", "ab")
    argv = [sys.executable, "-m", "benchmarks.bench_ingest_http", "--profiled-gateway", str(out)]
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=logf, stderr=logf)
    base = f"http://127.0.0.1:{port}"
    try:
        await asyncio.to_thread(wait_http, f"{base}/healthz", proc)
        headers = auth_headers((data_dir / KEY_FILE).read_text().strip())
        await asyncio.to_thread(wait_http, f"{base}/readyz", proc, 60.0)  # 200: every service seen online
        await hammer(base, headers, clients, 20, "prof-warm", 0)
        ps = psutil.Process(proc.pid)
        c0 = sum(ps.cpu_times()[:2])
        proc.send_signal(signal.SIGUSR2)
        ok, _bad, seconds, _lat = await hammer(base, headers, clients, per_client, "prof", 10_000_000)
        proc.send_signal(signal.SIGUSR2)
        cpu = sum(ps.cpu_times()[:2]) - c0
        await asyncio.to_thread(wait_file, out)
    finally:
        await asyncio.to_thread(stop, proc)
    if keep is not None:
        shutil.copy(out, keep)
    stats = pstats.Stats(str(out))
    n = ok
    stages = [(label, *_match(stats, suffix, func)) for label, suffix, func in STAGES]
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:20]  # type: ignore[attr-defined]
    top = [(f"{Path(f).name}:{ln} {fn}", tt, ct) for (f, ln, fn), (_c, _n, tt, ct, _x) in rows]
    total = float(stats.total_tt)  # type: ignore[attr-defined]
    return Profile(n, seconds, cpu, total, [(lbl, cum / n, calls) for lbl, cum, calls in stages], top)


# ---------------------------------------------------------------------------------------------
# Run and report
# ---------------------------------------------------------------------------------------------
@dataclass
class Result:
    loads: list[Load]
    profile: Profile | None


async def run_async(workdir: Path, quick: bool, with_profile: bool, keep: Path | None) -> Result:
    n1, n16, batches = (150, 40, 1) if quick else (600, 120, 3)
    mosq = MosquittoServer(workdir / "mosquitto").start()
    stack = Stack(workdir / "stack", mqtt_url=mosq.url)
    ref: subprocess.Popen[bytes] | None = None
    try:
        log(f"starting the stack on mosquitto {mosq.url}")
        await asyncio.to_thread(stack.start, 120.0)
        ref, ref_base = await asyncio.to_thread(start_reference, workdir)
        procs = service_processes(stack.proc.pid)  # type: ignore[union-attr]
        procs["reference"] = psutil.Process(ref.pid)
        gw, hdr = stack.api, stack.headers
        await hammer(gw, hdr, 4, 25, "warm", 0)
        await hammer(ref_base, {}, 4, 25, "warm", 0)
        loads = []
        for clients, per in ((1, n1), (16, n16)):
            for who, base, h in (("reference", ref_base, {}), ("gateway", gw, hdr)):
                case = f"{who} POST /data/simple, {clients} client(s)"
                log(f"{case}: {clients * per} requests")
                loads.append(
                    await measure(case, procs, hammer(base, h, clients, per, f"s{clients}", 1_000_000))
                )
        for clients in (1, 2):
            case = f"gateway POST /data/simple/batch ({BATCH:,} readings), {clients} client(s)"
            log(f"{case}: {clients * batches} batches")
            loads.append(
                await measure(case, procs, bulk(gw, hdr, clients, batches, f"b{clients}", 2_000_000))
            )
        prof = None
        if with_profile:
            await asyncio.to_thread(settle, procs)
            prof = await profile(workdir, mosq.url, 16, n16, keep)
        return Result(loads, prof)
    except BaseException:
        print(f"--- stack log tail ---\n{stack.tail(40)}", flush=True)
        raise
    finally:
        if ref is not None:
            await asyncio.to_thread(stop, ref)
        await asyncio.to_thread(stack.stop)
        mosq.stop()


def run(*, quick: bool = False, with_profile: bool = True, keep: Path | None = None) -> Result:
    """The whole benchmark in a temporary directory (deleted afterwards)."""
    workdir = Path(tempfile.mkdtemp(prefix="rotorwatch-bench-http-"))
    try:
        return asyncio.run(run_async(workdir, quick, with_profile, keep))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def report(res: Result) -> str:
    lines = [f"{'case':<62} {'accepted/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'refused':>8}"]
    for ld in res.loads:
        lines.append(f"{ld.case:<62} {ld.rate:11,.0f} {ld.pct(50):8.1f} {ld.pct(99):8.1f} {ld.refused:8d}")
    lines.append("CPU ms per accepted reading, by process, per phase:")
    for ld in res.loads:
        busy = {k: v for k, v in ld.cpu_s.items() if v == v and v > 0.05}
        per = ", ".join(f"{k} {1000 * v / max(ld.accepted, 1):.2f}" for k, v in sorted(busy.items()))
        lines.append(f"  {ld.case}: {per}")
    by = {ld.case: ld for ld in res.loads}
    for clients in (1, 16):
        g = by[f"gateway POST /data/simple, {clients} client(s)"]
        r = by[f"reference POST /data/simple, {clients} client(s)"]
        lines.append(
            f"ROW|POST /data/simple, {clients} client(s)|{g.rate:,.0f}/s, p50 {g.pct(50):.1f} ms"
            f"|{r.rate:,.0f}/s bare FastAPI|{g.rate / r.rate:.3f}"
        )
    for ld in res.loads:
        if "batch" in ld.case:
            lines.append(
                f"ROW|{ld.case.removeprefix('gateway ')}|{ld.rate:,.0f} readings/s|20,000 target|"
                f"{ld.rate / 20_000:.2f}"
            )
    if res.profile:
        lines += profile_report(res.profile)
    return "\n".join(lines)


def profile_report(p: Profile) -> list[str]:
    lines = [
        f"profiled gateway (cProfile, 16 clients): {p.requests} requests, {p.requests / p.seconds:,.0f}/s "
        f"under the profiler; process CPU {1000 * p.cpu_s / p.requests:.2f} ms per request",
        f"  event-loop thread under the profiler: {1e6 * p.profiled_s / p.requests:,.0f} us/request (100 %)",
        f"  {'stage (cumulative CPU, event-loop thread)':<48} {'us/request':>11} {'share':>6} {'calls':>8}",
    ]
    per_req = p.profiled_s / p.requests
    lines += [
        f"  {label:<48} {1e6 * per:11.0f} {100 * per / per_req:5.0f}% {calls:8d}"
        for label, per, calls in p.stages
    ]
    lines.append("  top functions by own time (us/request own, cumulative):")
    lines += [
        f"    {name:<70} {1e6 * tt / p.requests:8.1f} {1e6 * ct / p.requests:9.1f}" for name, tt, ct in p.top
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_ingest_http", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--quick", action="store_true", help="fewer requests, one batch per client")
    ap.add_argument("--no-profile", action="store_true", help="skip the cProfile run")
    ap.add_argument("--profile-out", type=Path, metavar="PATH", help="keep the gateway's pstats file here")
    ap.add_argument("--profiled-gateway", metavar="OUT", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.profiled_gateway:
        profiled_gateway(a.profiled_gateway)
        return 0
    print(report(run(quick=a.quick, with_profile=not a.no_profile, keep=a.profile_out)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
