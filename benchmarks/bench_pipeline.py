"""End-to-end latency and throughput of the whole pipeline on a real Mosquitto broker.

Run: ``PYTHONPATH=. .venv/bin/python -m benchmarks.bench_pipeline [--quick] [--reps 10]
[--assets 1 5 20] [--readings 500] [--store sqlite|influx] [--seed 0]``

Starts Mosquitto (:class:`tests.support.servers.MosquittoServer`) and every service through the real
launcher (:class:`tests.support.stack.Stack`, ``BATCH_WINDOW=10``) with the SQLite store (or a real
``influxd`` with ``--store influx``), all in a temporary directory that is deleted afterwards.
Readings carry accelerated data timestamps, 1 data second apart.

**Latency** (one asset, calibrated on 600 healthy readings): ``--reps`` times, 60 healthy readings
(published at once, then waited for), then 30 severe faults (``voltage_spike``) paced like a live
device, 10 readings per wall second; the latency is the wall time from publishing the first faulty
reading until a ``HealthUpdate`` with ``health_score < 75`` (for data at or after the fault) arrives
on ``health/<asset>``; the time until the alarm opens (``alarms/<asset>`` ACTIVE) is printed beside
it. Then healthy readings in chunks of 300 data seconds until the alarm was auto-cleared and every
health update of a whole chunk is ``>= 90`` with no alarm open (the legacy model's
``voltage_rolling_mean_1h`` feature keeps a fault for 3600 data seconds, so this takes about an hour
of data time; the alarms that open again meanwhile are counted). Of those, the alarms that opened
after the fault's own alarm auto-cleared are its chatter, printed as "re-opens after the fault cleared"
per repetition (issue 16: 0 in every one); each repetition's line also names, per model, the last data
second after the fault at which its smoothed ratio was still >= 0.8 (``LAG_RATIO``: what held the health
down). Prints n, p50, p99 (linear interpolation between order statistics), min and max in ms. Only
health and alarms are subscribed to in this phase.

**Throughput** (N assets, each calibrated on 400 healthy readings first, so that the legacy and batch
scorers and the health stage do real work): every asset publishes M readings as fast as its own MQTT
connection allows (QoS 1, up to 64 unacknowledged publishes in flight, payloads encoded beforehand).
The pipeline rate is ``N * M / (t_health - t0)``: from the first publish until the health of every
asset has reached its last data timestamp. The *raw broker rate* publishes the same payloads the same
way to ``rwbench/raw/<asset>/simple`` (no service subscribes to it) with one QoS 1 subscriber counting
them: ``N * M / (t_last_received - t0)``. The ratio pipeline/raw is printed, plus each stage's count
and the seconds until its last message (ingest events, features, scores of each model, health; the
historian's stored readings and scores, polled from the store every 0.25 s), so a bottleneck shows.

In the throughput phase the benchmark's own subscriber (counting every stage) adds load to the
broker and to the machine; it is the same in every run. Data time starts far enough in the past for
every reading. Numbers depend on the machine and its load: they are printed,
never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import numpy as np

from shared import topics
from shared.settings import Settings, parse_mqtt_url
from shared.store import Store, open_store
from tests.support.pipeline import simple_payloads
from tests.support.servers import InfluxServer, MosquittoServer
from tests.support.stack import Stack

#: Health score below which the asset counts as "detected" (latency), and the recovery level.
DETECT_BELOW = 75.0
RECOVER_AT = 90.0
#: A model whose smoothed ratio is at or above this after the fault still holds the health down.
LAG_RATIO = 0.8
#: Readings per wall second while the fault is streamed (a live device), data time 1 s apart.
FAULT_RATE_HZ = 10.0
FAULT_READINGS = 30
HEALTHY_BEFORE = 60
#: The legacy ``voltage_rolling_mean_1h`` feature spans 3600 data seconds: it is filled with healthy
#: readings before the first repetition, and a fault stays in it for an hour of data time.
FILL_READINGS = 3600
RECOVERY_CHUNK = 300
MAX_RECOVERY_CHUNKS = 20
LATENCY_CAL_READINGS = 600
THROUGHPUT_CAL_READINGS = 400
IN_FLIGHT = 64
WARM_READINGS = 20
RAW_ROOT = "rwbench/raw"
LAT_ASSET = "bench_latency"
STAGES = ("reading", "features_legacy", "features_batch", "score_legacy", "score_batch", "health")


def client(url: str) -> aiomqtt.Client:
    """An MQTT client that queues any number of outgoing messages without warning about them."""
    b = parse_mqtt_url(url)
    c = aiomqtt.Client(b.host, b.port, max_queued_outgoing_messages=None)
    c.pending_calls_threshold = IN_FLIGHT * 4  # aiomqtt warns above this many unacknowledged publishes
    return c


def log(msg: str) -> None:
    print(f"  [pipeline {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation between order statistics (numpy's
    default): for sorted ``x`` of length n it is ``x[floor(h)] + (h - floor(h)) * (x[ceil(h)] -
    x[floor(h)])`` with ``h = (n - 1) * q / 100``. Same unit as ``values``."""
    if not values:
        raise ValueError("percentile of an empty sequence")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be in [0, 100], got {q}")
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def data_ts(iso: str) -> float:
    """A message's ISO-8601 data time as Unix seconds (s)."""
    return datetime.fromisoformat(iso).timestamp()


# ---------------------------------------------------------------------------------------------
# watching the pipeline
# ---------------------------------------------------------------------------------------------
@dataclass
class Monitor:
    """One subscriber on the health and alarm topics, plus (``stages=True``) on every stage's topics.

    Keeps counts per (stage, asset), the loop time of each stage's last message per asset, the newest
    health data time and payload per asset, and the full health and alarm history of the ``watch``
    assets (topic kind, asset, payload, arrival loop time). The latency phase runs without the stage
    topics, so that the benchmark's own subscriber does not load the machine it measures."""

    url: str
    watch: set[str]
    stages: bool = False
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    last_at: dict[tuple[str, str], float] = field(default_factory=dict)
    health_ts: dict[str, float] = field(default_factory=dict)
    last_health: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: list[tuple[str, str, dict[str, Any], float]] = field(default_factory=list)

    STAGE_FILTERS = (topics.READING_FILTER, topics.features_filter(), topics.SCORE_FILTER)

    async def __aenter__(self) -> Monitor:
        self._ready = asyncio.Event()
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._ready.wait(), 15)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        async with client(self.url) as c:
            filters = (topics.HEALTH_FILTER, topics.ALARM_FILTER) + (
                self.STAGE_FILTERS if self.stages else ()
            )
            for f in filters:
                await c.subscribe(f, qos=1)
            self._ready.set()
            async for m in c.messages:
                at = loop.time()
                parts = m.topic.value.split("/")  # rotorwatch/v1/<family>/<asset>[/<kind>]
                family, asset = parts[2], parts[3]
                if family == "events":
                    stage = "reading"
                elif family == "features":
                    stage = f"features_{parts[4]}"
                elif family == "scores":
                    stage = f"score_{parts[4]}"
                elif family == "health":
                    stage = "health"
                else:
                    stage = "alarm"
                if stage in ("health", "alarm") and m.payload:
                    p = json.loads(m.payload)
                    if stage == "health":
                        ts = data_ts(p["ts"])
                        if ts >= self.health_ts.get(asset, 0.0):
                            self.health_ts[asset], self.last_health[asset] = ts, p
                    if asset in self.watch:
                        self.history.append((stage, asset, p, at))
                self.counts[(stage, asset)] += 1
                self.last_at[(stage, asset)] = at

    def total(self, stage: str, assets: Sequence[str]) -> int:
        return sum(self.counts[(stage, a)] for a in assets)

    def last(self, stage: str, assets: Sequence[str]) -> float | None:
        times = [self.last_at[(stage, a)] for a in assets if (stage, a) in self.last_at]
        return max(times) if times else None

    async def until(self, pred: Any, timeout: float, what: str, detail: Any = None) -> None:
        """Poll ``pred()`` every 20 ms; after ``timeout`` s raise TimeoutError with ``what``, ``detail()``."""
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                extra = f": {detail()}" if detail else ""
                raise TimeoutError(f"pipeline: {what} not reached within {timeout:.0f} s{extra}")
            await asyncio.sleep(0.02)

    async def quiet(self, seconds: float = 1.0, timeout: float = 120.0) -> None:
        """Wait until no monitored message arrives for ``seconds`` (the pipeline is idle)."""
        deadline = time.monotonic() + timeout
        last = sum(self.counts.values())
        since = time.monotonic()
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            now = sum(self.counts.values())
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= seconds:
                return
        raise TimeoutError(f"pipeline did not go quiet within {timeout:.0f} s")


async def publish_windowed(c: aiomqtt.Client, topic: str, payloads: Sequence[bytes]) -> None:
    """Publish in order with QoS 1 and up to :data:`IN_FLIGHT` unacknowledged messages.

    Each publish task hands its message to the MQTT client synchronously when it first runs, and tasks
    run in creation order, so the broker receives the messages in order."""
    pending: set[asyncio.Task[None]] = set()
    for p in payloads:
        pending.add(asyncio.create_task(c.publish(topic, p, qos=1)))
        if len(pending) >= IN_FLIGHT:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for d in done:
                d.result()
    if pending:
        await asyncio.gather(*pending)


def encode(payloads: Sequence[dict[str, Any]]) -> list[bytes]:
    return [json.dumps(p).encode() for p in payloads]


def reopens_after_clear(
    history: Sequence[tuple[str, str, dict[str, Any], float]], alarm_id: str | None
) -> list[float]:
    """Data times (s) at which an alarm other than ``alarm_id`` opened after ``alarm_id`` auto-cleared,
    in ``history`` (the monitor's messages from the fault on): the fault's alarm chattering. An
    escalation (an ACTIVE event of an alarm already open) is not an opening; none when ``alarm_id``
    (the fault's alarm) is None or never auto-cleared."""
    cleared = False
    seen: set[str] = set()
    out: list[float] = []
    for kind, _, p, _ in history:
        if kind != "alarm":
            continue
        if p["alarm_id"] == alarm_id and p["state"] == "RESOLVED" and p["auto_cleared"]:
            cleared = True
        elif cleared and p["state"] == "ACTIVE" and p["alarm_id"] not in seen | {alarm_id}:
            seen.add(p["alarm_id"])
            out.append(data_ts(p["ts"]))
    return out


def lagging_models(
    history: Sequence[tuple[str, str, dict[str, Any], float]], start: float
) -> dict[str, float]:
    """Per model, the last data second after ``start`` (s) of a health update with its smoothed ratio
    >= :data:`LAG_RATIO` in ``history`` (models that never were: left out), largest first."""
    last: dict[str, float] = {}
    for kind, _, p, _ in history:
        if kind == "health":
            for m, r in p.get("model_ratios", {}).items():
                if r >= LAG_RATIO:
                    last[m] = data_ts(p["ts"]) - start
    return dict(sorted(last.items(), key=lambda kv: -kv[1]))


# ---------------------------------------------------------------------------------------------
# the bench
# ---------------------------------------------------------------------------------------------
@dataclass
class LatencyResult:
    health_ms: list[float] = field(default_factory=list)
    alarm_ms: list[float] = field(default_factory=list)
    recovery_data_s: list[float] = field(default_factory=list)
    undetected: int = 0
    min_health: list[float] = field(default_factory=list)
    #: Alarms opened again during the healthy recovery data (a flapping condition), per repetition.
    reopened: list[int] = field(default_factory=list)
    #: Of those, the alarms opened after the fault's own alarm auto-cleared (chatter), per repetition,
    #: and the data seconds after the fault's end at which each opened.
    reopened_after_clear: list[int] = field(default_factory=list)
    reopen_data_s: list[list[float]] = field(default_factory=list)
    #: Per repetition, per model: the last data second after the fault's end at which its smoothed
    #: ratio was still >= LAG_RATIO (what kept the health from recovering).
    lagging: list[dict[str, float]] = field(default_factory=list)


@dataclass
class StageRow:
    stage: str
    count: int
    expected: int
    seconds: float | None  # from t0 to the stage's last message (or the poll that saw it complete)


@dataclass
class ThroughputResult:
    assets: int
    readings_per_asset: int
    pipeline_s: float
    raw_s: float
    publish_s: float
    stages: list[StageRow]

    @property
    def total(self) -> int:
        return self.assets * self.readings_per_asset

    @property
    def pipeline_rate(self) -> float:
        """Readings per second through the whole pipeline: N·M / (t_health − t0)."""
        return self.total / self.pipeline_s

    @property
    def raw_rate(self) -> float:
        """Readings per second through the bare broker: N·M / (t_last_received − t0)."""
        return self.total / self.raw_s

    def added_seconds(self) -> dict[str, float]:
        """Seconds each processing stage adds after its upstream stage finished (s): ingest from t0,
        features after ingest, scores after features, health after scores (a stage's finish time is its
        last message; features and scores take the later of their two kinds). The largest is the
        bottleneck: every later stage can only finish after it."""
        done = {r.stage: r.seconds for r in self.stages}
        chain = {
            "ingest": [done.get("reading")],
            "features": [done.get("features_legacy"), done.get("features_batch")],
            "scorers": [done.get("score_legacy"), done.get("score_batch")],
            "health": [done.get("health")],
        }
        out: dict[str, float] = {}
        prev = 0.0
        for name, times in chain.items():
            if any(t is None for t in times):
                break
            finish = max(t for t in times if t is not None)
            out[name] = finish - prev
            prev = finish
        return out

    def bottleneck(self) -> str | None:
        added = self.added_seconds()
        return max(added, key=lambda k: added[k]) if added else None


@dataclass
class PipelineResult:
    store: str
    latency: LatencyResult
    throughput: list[ThroughputResult]


class Bench:
    def __init__(self, stack: Stack, store: Store, monitor: Monitor, t0: float, seed: int) -> None:
        self.stack = stack
        self.store = store
        self.mon = monitor
        self.url = stack.broker_url
        self.next_ts: dict[str, float] = {}
        self.published: Counter[str] = Counter()
        self.t0 = t0
        self.seed = seed

    def take(self, asset: str, n: int, *, fault: str | None = None) -> list[dict[str, Any]]:
        """``n`` payloads continuing the asset's data time (1 s apart); counted as published."""
        t = self.next_ts.get(asset, self.t0)
        self.seed += 1
        out = simple_payloads(asset, n, t, 1.0, faulty=fault is not None, fault=fault, seed=self.seed)
        self.next_ts[asset] = t + n
        self.published[asset] += n
        if self.next_ts[asset] > time.time():
            raise RuntimeError("data time would run into the future; start further in the past")
        return out

    async def stored(self, assets: Sequence[str], timeout: float = 300.0) -> None:
        """Wait until the historian stored every reading published so far and the stored feature
        vectors stopped changing for 1 s (the calibrator reads both from the store)."""

        def counts() -> list[int]:
            return [self.store.count(m, a) for a in assets for m in ("features_legacy", "features_batch")]

        def readings_done() -> bool:
            return all(self.store.count("readings", a) >= self.published[a] for a in assets)

        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(readings_done):
            if time.monotonic() > deadline:
                raise TimeoutError("historian did not store the calibration readings in time")
            await asyncio.sleep(0.25)
        before = await asyncio.to_thread(counts)
        while True:
            await asyncio.sleep(1.0)
            now = await asyncio.to_thread(counts)
            if now == before:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("historian did not store the calibration features in time")
            before = now

    async def calibrate(self, assets: Sequence[str], n: int) -> None:
        async def one(a: str) -> None:
            async with client(self.url) as c:
                await publish_windowed(c, topics.raw_simple(a), encode(self.take(a, n)))

        await asyncio.gather(*(one(a) for a in assets))
        await self.stored(assets)
        api = f"{self.stack.api}/api/v1"
        async with httpx.AsyncClient(base_url=api, headers=self.stack.headers, timeout=300) as http:
            for a in assets:
                t = time.perf_counter()
                r = await http.post(
                    "/calibration/start?wait=true", json={"asset_id": a, "lookback_minutes": (n + 60) / 60}
                )
                if r.status_code != 200:
                    raise RuntimeError(f"calibration of {a} failed: {r.status_code} {r.text}")
                secs = time.perf_counter() - t
                log(f"calibrated {a} on {n} readings in {secs:.2f} s: models {sorted(r.json()['models'])}")

    async def warm(self, assets: Sequence[str], n: int = WARM_READINGS) -> None:
        """Untimed: a few healthy readings per asset until the health of each is current and carries
        the ratios of both models (the scorers have loaded the new models)."""

        async def one(a: str) -> None:
            async with client(self.url) as c:
                await publish_windowed(c, topics.raw_simple(a), encode(self.take(a, n)))

        await asyncio.gather(*(one(a) for a in assets))

        def ready() -> bool:
            return all(
                self.mon.health_ts.get(a, 0.0) >= self.next_ts[a] - 1.5
                and {"legacy", "batch"} <= set(self.mon.last_health[a].get("model_ratios", {}))
                for a in assets
            )

        def state() -> str:
            return "; ".join(
                f"{a}: health at data {self.mon.health_ts.get(a, 0.0) - self.next_ts[a]:+.0f} s, ratios "
                f"{self.mon.last_health.get(a, {}).get('model_ratios')}"
                for a in assets
            )

        await self.mon.until(ready, 120, "warm-up scores and health", state)
        await self.mon.quiet(1.0)

    async def caught_up(self, asset: str, timeout: float = 120.0) -> None:
        target = self.next_ts[asset] - 1.5
        await self.mon.until(
            lambda: self.mon.health_ts.get(asset, 0.0) >= target,
            timeout,
            f"{asset} health at data time {target}",
            lambda: f"health at {self.mon.health_ts.get(asset)}",
        )

    # -- latency ------------------------------------------------------------------------------------
    async def latency(self, reps: int) -> LatencyResult:
        a, raw = LAT_ASSET, topics.raw_simple(LAT_ASSET)
        res = LatencyResult()
        loop = asyncio.get_running_loop()
        log(f"latency: calibrating {a} on {LATENCY_CAL_READINGS} healthy readings")
        await self.calibrate([a], LATENCY_CAL_READINGS)
        await self.warm([a])
        async with client(self.url) as c:
            t = time.perf_counter()
            await publish_windowed(c, raw, encode(self.take(a, FILL_READINGS)))
            await self.caught_up(a)
            secs = time.perf_counter() - t
            log(f"latency: {FILL_READINGS} healthy readings (to fill the 1 h window) in {secs:.1f} s")
            for rep in range(reps):
                await publish_windowed(c, raw, encode(self.take(a, HEALTHY_BEFORE)))
                await self.caught_up(a)
                await self.mon.quiet(0.5)
                fault_t0 = self.next_ts[a]
                payloads = encode(self.take(a, FAULT_READINGS, fault="voltage_spike"))
                n_hist = len(self.mon.history)
                sent_at = loop.time()

                async def paced(start: float = sent_at, payloads: list[bytes] = payloads) -> None:
                    for i, p in enumerate(payloads):
                        delay = start + i / FAULT_RATE_HZ - loop.time()
                        if delay > 0:
                            await asyncio.sleep(delay)
                        await c.publish(raw, p, qos=1)

                pub = asyncio.create_task(paced())
                detected: float | None = None
                opened: float | None = None
                alarm_id: str | None = None
                deadline = sent_at + FAULT_READINGS / FAULT_RATE_HZ + 10.0
                while loop.time() < deadline and (detected is None or opened is None):
                    for kind, _, p, at in self.mon.history[n_hist:]:
                        if kind == "health" and detected is None and data_ts(p["ts"]) >= fault_t0 - 0.5:
                            if p["health_score"] < DETECT_BELOW:
                                detected = at
                        if kind == "alarm" and opened is None and p["state"] == "ACTIVE":
                            opened, alarm_id = at, p["alarm_id"]
                    await asyncio.sleep(0.005)
                await pub
                await self.caught_up(a)
                lows = [p["health_score"] for k, _, p, _ in self.mon.history[n_hist:] if k == "health"]
                res.min_health.append(min(lows) if lows else math.nan)
                if detected is None:
                    res.undetected += 1
                    for k, _, p, at in self.mon.history[n_hist:][:40]:
                        what = (
                            f"health {p['health_score']:.1f} at data +{data_ts(p['ts']) - fault_t0:.0f} s "
                            f"{p['model_ratios']}" if k == "health" else f"alarm {p['state']}"
                        )  # fmt: skip
                        log(f"    not detected: +{(at - sent_at) * 1000:.0f} ms {what}")
                else:
                    res.health_ms.append((detected - sent_at) * 1000)
                if opened is not None:
                    res.alarm_ms.append((opened - sent_at) * 1000)

                # healthy data until health >= RECOVER_AT, no alarm open and the fault's alarm auto-cleared
                # for a whole chunk (a single update >= 90 can be a passing dip of a flapping model)
                rec_start, n_rec = self.next_ts[a], len(self.mon.history)
                for _ in range(MAX_RECOVERY_CHUNKS):
                    n_chunk = len(self.mon.history)
                    await publish_windowed(c, raw, encode(self.take(a, RECOVERY_CHUNK)))
                    await self.caught_up(a)
                    chunk = self.mon.history[n_chunk:]
                    last = self.mon.last_health[a]
                    cleared = alarm_id is None or any(
                        k == "alarm" and p["alarm_id"] == alarm_id and p["state"] == "RESOLVED"
                        and p["auto_cleared"]
                        for k, _, p, _ in self.mon.history[n_hist:]
                    )  # fmt: skip
                    steady = all(
                        p["health_score"] >= RECOVER_AT and p["active_alarms"] == 0
                        for k, _, p, _ in chunk
                        if k == "health"
                    ) and not any(k == "alarm" for k, _, _, _ in chunk)
                    if steady and cleared:
                        break
                else:
                    raise RuntimeError(
                        f"latency rep {rep + 1}: health did not recover to >= {RECOVER_AT} with no alarm "
                        f"open after {MAX_RECOVERY_CHUNKS * RECOVERY_CHUNK} healthy readings; last health "
                        f"{last['health_score']} (active alarms {last['active_alarms']}, model ratios "
                        f"{last['model_ratios']})"
                    )
                res.recovery_data_s.append(self.next_ts[a] - rec_start)
                res.reopened.append(
                    len({p["alarm_id"] for k, _, p, _ in self.mon.history[n_rec:]
                         if k == "alarm" and p["state"] == "ACTIVE" and p["alarm_id"] != alarm_id})
                )  # fmt: skip
                after = reopens_after_clear(self.mon.history[n_hist:], alarm_id)
                res.reopened_after_clear.append(len(after))
                res.reopen_data_s.append([t - rec_start for t in after])
                res.lagging.append(lagging_models(self.mon.history[n_rec:], rec_start))
                h_ms = f"{res.health_ms[-1]:.0f} ms" if detected is not None else "not detected"
                a_ms = f"{res.alarm_ms[-1]:.0f} ms" if opened is not None else "no alarm"
                when = ", +".join(f"{x:.0f}" for x in res.reopen_data_s[-1])
                when = f", at data +{when} s after the fault" if when else ""
                log(
                    f"latency rep {rep + 1}/{reps}: health<{DETECT_BELOW:g} after {h_ms}, alarm after "
                    f"{a_ms}, min health {res.min_health[-1]:.1f}; recovered after "
                    f"{res.recovery_data_s[-1]:.0f} data s of healthy readings "
                    f"({res.reopened[-1]} alarm(s) opened meanwhile; re-opens after the fault cleared: "
                    f"{res.reopened_after_clear[-1]}{when}; smoothed ratio >= {LAG_RATIO:g} until data "
                    + (", ".join(f"{m} +{x:.0f} s" for m, x in res.lagging[-1].items()) or "-")
                    + ")"
                )
        return res

    # -- throughput -----------------------------------------------------------------------------------
    async def raw_rate(self, assets: Sequence[str], payloads: dict[str, list[bytes]]) -> float:
        """Seconds from the first publish until one QoS 1 subscriber received every message."""
        total = sum(len(p) for p in payloads.values())
        got = 0
        done = asyncio.Event()
        ready = asyncio.Event()
        last = 0.0
        loop = asyncio.get_running_loop()

        async def count() -> None:
            nonlocal got, last
            async with client(self.url) as sub:
                await sub.subscribe(f"{RAW_ROOT}/+/simple", qos=1)
                ready.set()
                async for _ in sub.messages:
                    got += 1
                    if got >= total:
                        last = loop.time()
                        done.set()

        counter = asyncio.create_task(count())
        await asyncio.wait_for(ready.wait(), 15)
        clients = [client(self.url) for _ in assets]
        for c in clients:
            await c.__aenter__()
        try:
            t0 = loop.time()
            pairs = zip(clients, assets, strict=True)
            await asyncio.gather(
                *(publish_windowed(c, f"{RAW_ROOT}/{a}/simple", payloads[a]) for c, a in pairs)
            )
            await asyncio.wait_for(done.wait(), 300)
        finally:
            for c in clients:
                await c.__aexit__(None, None, None)
            counter.cancel()
            await asyncio.gather(counter, return_exceptions=True)
        return last - t0

    async def throughput(self, n_assets: int, m: int) -> ThroughputResult:
        assets = [f"bench_tp_{i:02d}" for i in range(n_assets)]
        await self.warm(assets)
        payload_docs = {a: self.take(a, m) for a in assets}
        payloads = {a: encode(p) for a, p in payload_docs.items()}
        last_ts = {a: float(p[-1]["timestamp"]) for a, p in payload_docs.items()}
        first_ns = {a: int(float(p[0]["timestamp"]) * 1e9) - 1 for a, p in payload_docs.items()}

        raw_s = await self.raw_rate(assets, payloads)
        log(f"throughput N={n_assets}: raw broker {n_assets * m / raw_s:,.0f} msg/s")
        await self.mon.quiet(1.0)

        loop = asyncio.get_running_loop()
        base = {s: self.mon.total(s, assets) for s in STAGES}
        clients = [client(self.url) for _ in assets]
        for c in clients:
            await c.__aenter__()
        store_done: dict[str, float] = {}
        expected = n_assets * m

        def store_counts() -> tuple[int, int]:
            r = sum(self.store.count("readings", a, start_ns=first_ns[a]) for a in assets)
            s = sum(self.store.count("scores", a, start_ns=first_ns[a]) for a in assets)
            return r, s

        stored = (0, 0)

        async def poll_store(t0: float) -> None:
            nonlocal stored
            while True:
                stored = await asyncio.to_thread(store_counts)
                now = loop.time() - t0
                if stored[0] >= expected:
                    store_done.setdefault("readings", now)
                if stored[1] >= 2 * expected:
                    store_done.setdefault("scores", now)
                if len(store_done) == 2:
                    return
                await asyncio.sleep(0.25)

        try:
            t0 = loop.time()
            poller = asyncio.create_task(poll_store(t0))
            pairs = zip(clients, assets, strict=True)
            await asyncio.gather(*(publish_windowed(c, topics.raw_simple(a), payloads[a]) for c, a in pairs))
            publish_s = loop.time() - t0
            await self.mon.until(
                lambda: all(self.mon.health_ts.get(a, 0.0) >= last_ts[a] - 0.5 for a in assets),
                600,
                f"health of {n_assets} assets at the last data time",
            )
            health_s = loop.time() - t0
            try:
                await self.mon.until(
                    lambda: all(self.mon.total(s, assets) - base[s] >= expected for s in STAGES[:5]), 120,
                    "every stage complete",
                )  # fmt: skip
                await asyncio.wait_for(poller, 300)
            except TimeoutError as exc:
                log(f"throughput N={n_assets}: {exc} (partial counts below)")
                poller.cancel()
        finally:
            for c in clients:
                await c.__aexit__(None, None, None)

        rows = []
        for s in STAGES:
            last = self.mon.last(s, assets)
            rows.append(
                StageRow(
                    s,
                    self.mon.total(s, assets) - base[s],
                    expected,
                    None if last is None or last < t0 else last - t0,
                )
            )
        rows.append(StageRow("stored readings", stored[0], expected, store_done.get("readings")))
        rows.append(StageRow("stored scores", stored[1], 2 * expected, store_done.get("scores")))
        res = ThroughputResult(n_assets, m, health_s, raw_s, publish_s, rows)
        log(
            f"throughput N={n_assets}: pipeline {res.pipeline_rate:,.0f} readings/s, "
            f"raw {res.raw_rate:,.0f}/s, ratio {res.pipeline_rate / res.raw_rate:.3f}"
        )
        await self.mon.quiet(1.0)
        return res


async def run_async(
    workdir: Path, *, reps: int, asset_counts: Sequence[int], readings: int, store: str, seed: int
) -> PipelineResult:
    mosq = MosquittoServer(workdir / "mosquitto").start()
    influx: InfluxServer | None = None
    stack: Stack | None = None
    try:
        if store == "influx":
            influx = InfluxServer(workdir / "influxd").start()
        stack = Stack(
            workdir / "stack",
            mqtt_url=mosq.url,
            influx_url=influx.url if influx else None,
            extra_env={"BATCH_WINDOW": "10"},
        )
        log(f"starting the stack (store: {store}) on mosquitto {mosq.url}")
        t = time.perf_counter()
        await asyncio.to_thread(stack.start, 120.0)
        log(f"stack online in {time.perf_counter() - t:.1f} s")
        settings = Settings(
            data_dir=workdir / "stack" / "data",
            influx_url=influx.url if influx else None,
            influx_bucket=stack.bucket,
        )
        st = open_store(settings)
        # data time starts far enough in the past for every reading (1 data second each), plus 1 h
        per_rep = HEALTHY_BEFORE + FAULT_READINGS + MAX_RECOVERY_CHUNKS * RECOVERY_CHUNK
        latency_s = LATENCY_CAL_READINGS + WARM_READINGS + FILL_READINGS + reps * per_rep
        throughput_s = THROUGHPUT_CAL_READINGS + len(asset_counts) * (WARM_READINGS + readings)
        t0 = float(math.floor(time.time() - max(latency_s, throughput_s) - 3600))
        async with Monitor(stack.broker_url, {LAT_ASSET}) as mon:
            bench = Bench(stack, st, mon, t0, seed)
            lat = await bench.latency(reps)
        async with Monitor(stack.broker_url, set(), stages=True) as mon:
            bench.mon = mon
            tp_assets = [f"bench_tp_{i:02d}" for i in range(max(asset_counts))]
            log(f"throughput: calibrating {len(tp_assets)} assets on {THROUGHPUT_CAL_READINGS} readings each")
            await bench.calibrate(tp_assets, THROUGHPUT_CAL_READINGS)
            tps = [await bench.throughput(n, readings) for n in asset_counts]
        st.close()
        return PipelineResult(store, lat, tps)
    except BaseException:
        if stack is not None:
            print(f"--- stack log tail ---\n{stack.tail(40)}", flush=True)
        raise
    finally:
        if stack is not None:
            await asyncio.to_thread(stack.stop)
        if influx is not None:
            influx.stop()
        mosq.stop()


def run(
    *,
    quick: bool = False,
    reps: int | None = None,
    asset_counts: Sequence[int] | None = None,
    readings: int | None = None,
    store: str = "sqlite",
    seed: int = 0,
) -> PipelineResult:
    """Run the whole benchmark in a temporary directory (deleted afterwards) and return the numbers."""
    reps = reps if reps is not None else (3 if quick else 10)
    asset_counts = list(asset_counts or ((1, 5) if quick else (1, 5, 20)))
    readings = readings if readings is not None else (200 if quick else 500)
    if reps < 1 or readings < 1 or not asset_counts or min(asset_counts) < 1:
        raise ValueError("reps, readings and every asset count must be >= 1")
    if store not in ("sqlite", "influx"):
        raise ValueError(f"store must be sqlite or influx, got {store!r}")
    workdir = Path(tempfile.mkdtemp(prefix="rotorwatch-bench-"))
    try:
        coro = run_async(
            workdir, reps=reps, asset_counts=asset_counts, readings=readings, store=store, seed=seed
        )
        return asyncio.run(coro)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def report(res: PipelineResult) -> str:
    lines = [f"store: {res.store}; broker: Mosquitto; BATCH_WINDOW=10; data 1 s apart"]
    lat = res.latency
    lines.append(
        f"latency, first faulty reading -> health < {DETECT_BELOW:g} "
        f"(fault paced at {FAULT_RATE_HZ:g} readings/s):"
    )
    hdr = f"  {'measure':<26} {'n':>3} {'p50 ms':>8} {'p99 ms':>8} {'min ms':>8} {'max ms':>8}"
    lines.append(hdr)
    for name, vals in (("health < 75", lat.health_ms), ("alarm ACTIVE", lat.alarm_ms)):
        if vals:
            lines.append(
                f"  {name:<26} {len(vals):>3} {percentile(vals, 50):8.0f} {percentile(vals, 99):8.0f} "
                f"{min(vals):8.0f} {max(vals):8.0f}"
            )
        else:
            lines.append(f"  {name:<26} {0:>3}  (never reached)")
    if lat.undetected:
        lines.append(f"  not detected within the fault + 10 s: {lat.undetected} repetition(s)")
    if lat.recovery_data_s:
        lines.append(
            f"  recovery to health >= {RECOVER_AT:g} with the alarm auto-cleared: "
            f"{min(lat.recovery_data_s):.0f}..{max(lat.recovery_data_s):.0f} data s of healthy readings; "
            f"min health during faults {min(lat.min_health):.1f}..{max(lat.min_health):.1f}"
        )
        lines.append(f"  other alarms opened during the recovery data, per repetition: {lat.reopened}")
        lines.append(f"  re-opens after the fault cleared: {lat.reopened_after_clear}")
    lines.append(
        "throughput (readings/s; pipeline = first publish -> every asset's health at its last data time):"
    )
    lines.append(
        f"  {'assets':>6} {'readings':>8} {'publish s':>9} {'pipeline s':>10} {'pipeline/s':>10} "
        f"{'raw/s':>9} {'ratio':>7}"
    )
    for t in res.throughput:
        lines.append(
            f"  {t.assets:>6} {t.total:>8} {t.publish_s:9.2f} {t.pipeline_s:10.2f} {t.pipeline_rate:10,.0f} "
            f"{t.raw_rate:9,.0f} {t.pipeline_rate / t.raw_rate:7.3f}"
        )
    for t in res.throughput:
        lines.append(
            f"  stages, N={t.assets} (count / expected; s from the first publish to the stage's last message)"
        )
        for row in t.stages:
            secs = f"{row.seconds:7.2f} s" if row.seconds is not None else "     — "
            rate = f"{row.count / row.seconds:9,.0f}/s" if row.seconds else ""
            lines.append(f"    {row.stage:<16} {row.count:>7} / {row.expected:<7} {secs} {rate}")
        added = t.added_seconds()
        if added:
            lines.append(
                "    seconds added per stage after its upstream finished: "
                + ", ".join(f"{k} {v:.2f}" for k, v in added.items())
                + f" -> bottleneck: {t.bottleneck()}"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="3 repetitions, 1 and 5 assets, 200 readings each")
    p.add_argument("--reps", type=int, default=None, help="latency repetitions (default 10, quick 3)")
    p.add_argument("--assets", type=int, nargs="+", default=None, help="asset counts (default 1 5 20)")
    p.add_argument("--readings", type=int, default=None, help="readings per asset (default 500, quick 200)")
    p.add_argument("--store", choices=("sqlite", "influx"), default="sqlite")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    res = run(
        quick=a.quick, reps=a.reps, asset_counts=a.assets, readings=a.readings, store=a.store, seed=a.seed
    )
    print(report(res), flush=True)


if __name__ == "__main__":
    main()
