"""Replay throughput at ``--speed max``: windows per second processed end to end by the whole pipeline.

Run: ``PYTHONPATH=. .venv/bin/python -m benchmarks.bench_replay [--quick] [--windows256 400]
[--windows4096 200] [--in-flight N]``

Starts Mosquitto (:class:`tests.support.servers.MosquittoServer`) and every service through the real
launcher (:class:`tests.support.stack.Stack`, SQLite store), all in a temporary directory deleted
afterwards. Two cases, each on its own asset: 256-sample windows at 500 Hz and 4,096-sample windows at
20 kHz (3 axes, healthy synthetic vibration, :func:`shared.synth.vibration_window`). For each case,
untimed: ``scripts/replay.py`` sends :data:`CAL_WINDOWS` windows, the asset is calibrated through the
API (``POST /calibration/start``; the autoencoder must be among the models), the bench waits until the
autoencoder scorer reports the model loaded (``models_loaded`` on its ``status/`` topic) and
:data:`WARM_WINDOWS` windows were scored.
Then, timed, ``scripts/replay.py --speed max`` sends a recording of ``W`` windows with its defaults
otherwise (a replay with ``--in-flight``: at most that many windows per asset unacknowledged, each
acknowledged by its feature vector and scores; the bench's ``--in-flight N`` passes another value):

- **processed** (windows/s) = ``W / (t_stored - t_first)``: ``t_first`` is when the bench's subscriber
  sees the first raw window of the run (``raw/<a>/vibration``), ``t_stored`` when the store holds the
  autoencoder score of every window of the run (polled every 0.25 s); ``visible`` (``t_visible``: the
  last score seen on ``scores/<a>/autoencoder``) is printed beside it;
- ``features`` (s): until the last feature vector of the run (``features/<a>/vibration``), to show where
  the time goes;
- **broker accept** (windows/s) = ``W / (t_last_raw - t_first)``: how fast the broker took the replay's
  windows (with back-pressure this follows the processing; without it, the broker's pace);
- **raw broker** (the baseline, as in ``bench_pipeline``): the same windows published the same way (QoS 1,
  the replay's number in flight) to ``rwbench/raw/<a>/vibration``, which no service reads, with
  one QoS 1 subscriber counting them: ``W / (t_last_received - t_first_publish)``; ratio = processed /
  raw broker.

The replay's own summary line and wall time (including its start-up) are printed too. The bench's
subscriber (every raw window, feature vector and score) adds load to the broker and the machine; it is
the same in every run. Numbers depend on the machine and its load: they are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import numpy as np

from shared import topics
from shared.settings import Settings, parse_mqtt_url
from shared.store import Store, open_store
from shared.synth import vibration_window
from tests.support.servers import MosquittoServer
from tests.support.stack import ROOT, Stack

#: Windows replayed before calibrating (the calibrator needs 300 vibration windows) and after it.
CAL_WINDOWS = 320
WARM_WINDOWS = 10
RAW_ROOT = "rwbench/raw"
REPLAY = ROOT / "scripts" / "replay.py"
#: Seconds any one phase may take before the bench gives up.
PHASE_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Case:
    name: str
    fs_hz: float
    samples: int
    windows: int

    @property
    def asset(self) -> str:
        return f"bench_replay_{self.samples}"

    @property
    def window_s(self) -> float:
        return self.samples / self.fs_hz


def log(msg: str) -> None:
    print(f"  [replay {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def replay_in_flight() -> int | None:
    """The replay's default ``--in-flight`` (windows unacknowledged per asset), or ``None`` when this
    ``scripts/replay.py`` has no such option (each publish waits for its PUBACK)."""
    env = {**os.environ, "COLUMNS": "400"}  # argparse: one line per option
    out = subprocess.run(
        [sys.executable, str(REPLAY), "--help"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    ).stdout
    m = re.search(r"--in-flight IN_FLIGHT\s.*?\(default:\s+(\d+)\)", out, re.S)
    return int(m.group(1)) if m else None


def recording(path: Path, case: Case, n: int, seed: int, t0_s: float) -> Path:
    """``n`` continuous healthy windows (x, y, z in g) at ``case.fs_hz`` as a generic ``.npz``."""
    rng = np.random.default_rng(seed)
    parts = [
        vibration_window(rng, case.fs_hz, case.samples, rpm=1800, t0_s=t0_s + i * case.window_s)
        for i in range(n)
    ]
    data = np.concatenate(parts, axis=1)
    np.savez(path, x=data[0], y=data[1], z=data[2], fs_hz=np.float64(case.fs_hz))
    return path


def raw_bodies(path: Path, case: Case, start: datetime) -> list[bytes]:
    """The recording's windows as the replay sends them (``VibrationBatchIn`` JSON, samples rounded to
    1e-7 g), for the raw broker baseline."""
    d = np.load(path)
    out = []
    for i in range(len(d["x"]) // case.samples):
        sl = slice(i * case.samples, (i + 1) * case.samples)
        body: dict[str, Any] = {
            "motor_id": case.asset,
            "ts": (start + timedelta(seconds=i * case.window_s)).isoformat(),
        }
        for axis in ("x", "y", "z"):
            body[axis] = np.round(d[axis][sl], 7).tolist()
        body["fs_hz"] = case.fs_hz
        body["event_id"] = f"{i:032x}"
        out.append(json.dumps(body).encode())
    return out


# ---------------------------------------------------------------------------------------------
# watching the pipeline
# ---------------------------------------------------------------------------------------------
@dataclass
class Seen:
    """What the bench's subscriber saw of one asset since :meth:`Monitor.reset` (loop times, s)."""

    raw: int = 0
    first_raw: float | None = None
    last_raw: float | None = None
    features: int = 0
    last_features: float | None = None
    scores: int = 0
    last_score: float | None = None


@dataclass
class Monitor:
    """One subscriber on the raw windows, the autoencoder scores and the states of every asset."""

    url: str
    seen: dict[str, Seen] = field(default_factory=dict)
    #: Assets with an autoencoder model loaded, as the autoencoder scorer reports on its status topic.
    models_loaded: int = 0

    async def __aenter__(self) -> Monitor:
        self._ready = asyncio.Event()
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._ready.wait(), 15)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def of(self, asset: str) -> Seen:
        return self.seen.setdefault(asset, Seen())

    def reset(self, asset: str) -> None:
        self.seen[asset] = Seen()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        b = parse_mqtt_url(self.url)
        async with aiomqtt.Client(b.host, b.port, max_queued_outgoing_messages=None) as c:
            scorer = topics.service_status("scorer-autoencoder")
            for f in (
                topics.RAW_VIBRATION_FILTER,
                topics.features_filter("vibration"),
                topics.SCORE_FILTER,
                scorer,
            ):
                await c.subscribe(f, qos=1)
            self._ready.set()
            async for m in c.messages:
                at = loop.time()
                if m.topic.value == scorer:
                    detail = json.loads(m.payload or b"{}").get("detail") or {}
                    self.models_loaded = detail.get("models_loaded") or 0
                    continue
                family, asset, *kind = m.topic.value.split("/")[2:]
                s = self.of(asset)
                if family == "raw":
                    s.raw += 1
                    s.first_raw = at if s.first_raw is None else s.first_raw
                    s.last_raw = at
                elif family == "features":
                    s.features += 1
                    s.last_features = at
                elif family == "scores" and kind == ["autoencoder"]:
                    s.scores += 1
                    s.last_score = at

    async def until(self, pred: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise TimeoutError(f"replay bench: {what} not within {timeout:.0f} s")
            await asyncio.sleep(0.02)


# ---------------------------------------------------------------------------------------------
# the bench
# ---------------------------------------------------------------------------------------------
@dataclass
class CaseResult:
    case: Case
    in_flight: int | None
    replay_s: float  # wall time of the replay process, start-up included
    accept_s: float  # first raw window seen -> last raw window seen
    features_s: float  # first raw window seen -> last feature vector seen
    visible_s: float  # first raw window seen -> last autoencoder score seen
    stored_s: float  # first raw window seen -> every score of the run stored
    raw_s: float  # baseline: first publish -> last message received, nothing processing it
    replay_summary: str

    @property
    def processed_rate(self) -> float:
        """Windows per second processed end to end: W / (t_stored - t_first)."""
        return self.case.windows / self.stored_s

    @property
    def accept_rate(self) -> float:
        """Windows per second the broker took from the replay: W / (t_last_raw - t_first)."""
        return self.case.windows / self.accept_s

    @property
    def raw_rate(self) -> float:
        """Windows per second through the bare broker (baseline): W / (t_last_received - t_first_publish)."""
        return self.case.windows / self.raw_s


class Bench:
    def __init__(
        self, stack: Stack, store: Store, mon: Monitor, workdir: Path, t0: datetime, in_flight: int | None
    ) -> None:
        self.stack, self.store, self.mon, self.workdir = stack, store, mon, workdir
        self.next_ts: dict[str, datetime] = {}
        self.t0 = t0
        default = replay_in_flight()
        if in_flight is not None and default is None:
            raise ValueError("this scripts/replay.py has no --in-flight option")
        #: Windows in flight in the timed replays (``None``: the replay has no such option).
        self.in_flight = in_flight or default
        #: ``--in-flight`` passed to the timed replays (only when not the default).
        self.flight_args = ["--in-flight", str(in_flight)] if in_flight is not None else []
        self.calibrated = 0

    def take(self, case: Case, n: int, tag: str, seed: int) -> tuple[Path, datetime]:
        """A recording of ``n`` windows continuing the asset's data time, and its start time."""
        start = self.next_ts.get(case.asset, self.t0)
        path = recording(self.workdir / f"{case.asset}_{tag}.npz", case, n, seed, start.timestamp())
        self.next_ts[case.asset] = start + timedelta(seconds=n * case.window_s)
        return path, start

    async def replay(self, case: Case, path: Path, start: datetime, *extra: str) -> tuple[float, str]:
        """``scripts/replay.py --speed max`` (otherwise its defaults); (wall seconds, summary line)."""
        argv = [str(REPLAY), str(path), "--asset_id", case.asset, "--mqtt", self.stack.broker_url, *extra]
        argv += ["--start", start.isoformat(), "--window", str(case.samples), "--speed", "max"]
        t = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *argv,
            cwd=ROOT,
            env=self.stack.script_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), PHASE_TIMEOUT_S)
        secs = time.perf_counter() - t
        lines = out.decode(errors="replace").splitlines()
        if proc.returncode != 0:
            raise RuntimeError(f"replay.py exited {proc.returncode}:\n" + "\n".join(lines[-20:]))
        summary = next(
            (ln for ln in reversed(lines) if ln.startswith("[COMPLETE]")), lines[-1] if lines else ""
        )
        return secs, summary

    async def calibrate(self, case: Case) -> None:
        """Untimed: calibration windows, the calibration, the scorer's model, scored warm-up windows."""
        a = case.asset
        path, start = self.take(case, CAL_WINDOWS, "cal", seed=1)
        await self.replay(case, path, start)
        end = self.next_ts[a]
        lookback = math.ceil(CAL_WINDOWS * case.window_s / 60 + 1)
        body = {"asset_id": a, "lookback_minutes": lookback, "end": end.isoformat()}
        t = time.perf_counter()
        async with httpx.AsyncClient(base_url=f"{self.stack.api}/api/v1", headers=self.stack.headers) as c:
            r = await c.post("/calibration/start?wait=true", json=body, timeout=PHASE_TIMEOUT_S)
        if r.status_code != 200 or "autoencoder" not in r.json().get("models", {}):
            raise RuntimeError(f"calibration of {a}: {r.status_code} {r.text}")
        log(f"{case.name}: calibrated {a} on {CAL_WINDOWS} windows in {time.perf_counter() - t:.1f} s")
        self.calibrated += 1
        loaded = self.calibrated
        await self.mon.until(lambda: self.mon.models_loaded >= loaded, 60, "the autoencoder scorer's model")
        self.mon.reset(a)
        path, start = self.take(case, WARM_WINDOWS, "warm", seed=2)
        await self.replay(case, path, start)
        await self.mon.until(lambda: self.mon.of(a).scores >= WARM_WINDOWS, 60, f"{a} warm-up scores")

    def stored_scores(self, asset: str, since: datetime) -> int:
        return self.store.count("scores", asset, start_ns=int(since.timestamp() * 1e9))

    async def measure(self, case: Case) -> CaseResult:
        a, w = case.asset, case.windows
        path, start = self.take(case, w, "run", seed=3)
        self.mon.reset(a)
        loop = asyncio.get_running_loop()
        stored_at: float | None = None

        async def poll_store() -> None:
            nonlocal stored_at
            while await asyncio.to_thread(self.stored_scores, a, start) < w:
                await asyncio.sleep(0.25)
            stored_at = loop.time()

        poller = asyncio.create_task(poll_store())
        replay_s, summary = await self.replay(case, path, start, *self.flight_args)
        s = self.mon.of(a)
        await self.mon.until(lambda: s.scores >= w, PHASE_TIMEOUT_S, f"{a}: {w} scores")
        await asyncio.wait_for(poller, PHASE_TIMEOUT_S)
        assert s.first_raw is not None and s.last_raw is not None and s.last_score is not None
        assert stored_at is not None
        raw_s = await self.raw_rate(case, raw_bodies(path, case, start))
        return CaseResult(
            case,
            self.in_flight,
            replay_s,
            s.last_raw - s.first_raw,
            (s.last_features or s.first_raw) - s.first_raw,
            s.last_score - s.first_raw,
            stored_at - s.first_raw,
            raw_s,
            summary,
        )

    async def raw_rate(self, case: Case, bodies: Sequence[bytes]) -> float:
        """Seconds from the first publish until one QoS 1 subscriber received every window (the same
        windows, QoS 1, the replay's number in flight, on a topic no service reads)."""
        b = parse_mqtt_url(self.stack.broker_url)
        topic = f"{RAW_ROOT}/{case.asset}/vibration"
        loop = asyncio.get_running_loop()
        got, last = 0, 0.0
        done = asyncio.Event()
        in_flight = self.in_flight or 1
        pub = aiomqtt.Client(b.host, b.port, max_queued_outgoing_messages=None)
        pub.pending_calls_threshold = in_flight * 4  # aiomqtt warns above this many unacknowledged
        async with aiomqtt.Client(b.host, b.port, max_queued_outgoing_messages=None) as sub, pub:
            await sub.subscribe(topic, qos=1)

            async def count() -> None:
                nonlocal got, last
                async for _ in sub.messages:
                    got += 1
                    if got >= len(bodies):
                        last = loop.time()
                        done.set()

            counter = asyncio.create_task(count())
            slots = asyncio.Semaphore(in_flight)

            async def one(body: bytes) -> None:
                async with slots:
                    await pub.publish(topic, body, qos=1)

            t0 = loop.time()
            await asyncio.gather(*(one(body) for body in bodies))
            await asyncio.wait_for(done.wait(), PHASE_TIMEOUT_S)
            counter.cancel()
            await asyncio.gather(counter, return_exceptions=True)
        return last - t0


async def run_async(workdir: Path, cases: Sequence[Case], in_flight: int | None) -> list[CaseResult]:
    mosq = MosquittoServer(workdir / "mosquitto").start()
    stack: Stack | None = None
    try:
        stack = Stack(workdir / "stack", mqtt_url=mosq.url)
        log(f"starting the stack (SQLite store) on mosquitto {mosq.url}")
        t = time.perf_counter()
        await asyncio.to_thread(stack.start, 120.0)
        log(f"stack online in {time.perf_counter() - t:.1f} s")
        store = open_store(Settings(data_dir=stack.data_dir))
        data_s = sum((CAL_WINDOWS + WARM_WINDOWS + c.windows) * c.window_s for c in cases)
        t0 = datetime.fromtimestamp(math.floor(time.time() - data_s - 3600), UTC)
        results = []
        async with Monitor(stack.broker_url) as mon:
            bench = Bench(stack, store, mon, workdir, t0, in_flight)
            flight = f"--in-flight {bench.in_flight}" if bench.in_flight else "no --in-flight"
            log(f"scripts/replay.py: {flight}")
            for case in cases:
                await bench.calibrate(case)
                res = await bench.measure(case)
                log(
                    f"{case.name}: {case.windows} windows processed at {res.processed_rate:,.1f}/s, broker "
                    f"accept {res.accept_rate:,.1f}/s, raw broker {res.raw_rate:,.1f}/s "
                    f"(ratio {res.processed_rate / res.raw_rate:.3f})"
                )
                log(f"{case.name}: replay.py: {res.replay_summary}")
                results.append(res)
        store.close()
        return results
    except BaseException:
        if stack is not None:
            print(f"--- stack log tail ---\n{stack.tail(40)}", flush=True)
        raise
    finally:
        if stack is not None:
            await asyncio.to_thread(stack.stop)
        mosq.stop()


def cases_for(quick: bool, windows256: int | None = None, windows4096: int | None = None) -> list[Case]:
    return [
        Case("256 samples @ 500 Hz", 500.0, 256, windows256 or (200 if quick else 400)),
        Case("4096 samples @ 20 kHz", 20_000.0, 4096, windows4096 or (100 if quick else 200)),
    ]


def run(
    *,
    quick: bool = False,
    windows256: int | None = None,
    windows4096: int | None = None,
    in_flight: int | None = None,
) -> list[CaseResult]:
    """Run the benchmark in a temporary directory (deleted afterwards) and return the numbers."""
    cases = cases_for(quick, windows256, windows4096)
    if min(c.windows for c in cases) < 1 or (in_flight is not None and in_flight < 1):
        raise ValueError("window counts and --in-flight must be >= 1")
    workdir = Path(tempfile.mkdtemp(prefix="rotorwatch-bench-replay-"))
    try:
        return asyncio.run(run_async(workdir, cases, in_flight))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def report(results: Sequence[CaseResult]) -> str:
    flight = results[0].in_flight if results else None
    lines = [
        "replay --speed max, broker: Mosquitto, store: SQLite; "
        + (f"--in-flight {flight}" if flight else "replay without --in-flight (PUBACK only)"),
        f"  {'case':<22} {'windows':>7} {'replay s':>8} {'accept s':>8} {'features s':>10} {'visible s':>9} "
        f"{'stored s':>8} "
        f"{'processed/s':>11} {'accept/s':>9} {'raw/s':>8} {'ratio':>6}",
    ]
    for r in results:
        cols = (r.replay_s, r.accept_s, r.features_s, r.visible_s, r.stored_s)
        lines.append(
            f"  {r.case.name:<22} {r.case.windows:>7} "
            + " ".join(f"{v:{w}.2f}" for v, w in zip(cols, (8, 8, 10, 9, 8), strict=True))
            + f" {r.processed_rate:11,.1f} {r.accept_rate:9,.1f} {r.raw_rate:8,.1f}"
            f" {r.processed_rate / r.raw_rate:6.3f}"
        )
    lines += [
        "  seconds from the first raw window at the broker: accept = its last raw window, features = the",
        "  last feature vector, visible = the last autoencoder score on MQTT, stored = every score stored;",
        "  processed/s = windows / stored s; accept/s = windows / accept s; raw/s = the same windows through",
        "  the bare broker (baseline); ratio = processed / raw; replay s = replay.py's wall time",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="200 and 100 windows")
    p.add_argument("--windows256", type=int, default=None, help="256-sample windows (default 400, quick 200)")
    p.add_argument(
        "--windows4096", type=int, default=None, help="4096-sample windows (default 200, quick 100)"
    )
    p.add_argument("--in-flight", type=int, default=None, help="replay.py --in-flight (default: its own)")
    a = p.parse_args(argv)
    res = run(quick=a.quick, windows256=a.windows256, windows4096=a.windows4096, in_flight=a.in_flight)
    print(report(res), flush=True)


if __name__ == "__main__":
    main()
