#!/usr/bin/env python
"""Replay (backfill) recorded vibration snapshots or simple readings through the live Rotorwatch
pipeline, with their original timestamps and sample rates, a bounded number of windows in flight per
asset, each acknowledged end to end.

Vibration recordings are cut into windows, each stamped with the **original time of its first
sample** and the **original sample rate**, and sent as ``VibrationBatchIn`` JSON ``{"motor_id", "ts",
"x"/"y"/"z" (the asset's 1 to 3 axes), "fs_hz", "event_id"}`` to MQTT ``rotorwatch/v1/raw/<asset>/vibration``
(QoS 1, default) or ``POST {api}/api/v1/data/batch``. Simple-reading CSVs (``--kind simple``) go one
row per reading to ``rotorwatch/v1/raw/<asset>/simple`` or ``POST {api}/api/v1/data/simple``.

Input
-----
``PATH [PATH ...]``: files, directories (recursive) and ``.zip``/``.tar``/``.tar.gz`` archives of
snapshot files, read by :mod:`shared.recordings`: ``.npz`` (CWRU ``<label>__<channel>`` +
``meta_json``: ``--key`` or ``--label``; generic ``x``[,``y``,``z``] + ``fs_hz``; FEMTO), ``.csv``
(numeric columns, optional time column ``t``: a gap in it splits the file into snapshots), ``.wav``
(integer WAVs need ``--scale``) and the header-less ASCII layout of bearing test rigs (NASA/IMS, 4 or
8 columns; ``--fs`` required). Each snapshot gets its start time from ``--time-from``: its absolute
time column (``column``), the file name (``name`` with ``--name-pattern``, e.g. ``%Y.%m.%d.%H.%M.%S``),
a fixed interval (``interval``: ``--start`` + k x ``--interval`` s for the k-th file in name order),
the file's modification time (``mtime``); ``auto`` (default) takes the first that applies, in that
order (``--start`` alone for a single file). ``--channel`` maps channels to assets: ``0=bearing1``
(repeat it for several assets in one call), ``DE`` (to ``--asset_id``), ``0,1=bearing1`` (two channels
of one sensor: x, y), ``0,1,2=fan`` (x, y, z), ``0:y,1:z=pump`` (each channel names its axis); signals
named ``x``, ``y`` and/or ``z`` or a single signal need none. Without ``--channel``, ``--label`` takes
channel ``DE`` (as before).

Window ``i`` of a snapshot starts at sample ``offset = i * hop`` and is stamped ``ts = start +
offset / fs``; a trailing part shorter than a window is not sent. Each window carries a deterministic
``event_id`` (UUID5 of asset, snapshot source and first-sample time), so replaying the same files again
sends the same ids. Samples are rounded to 1e-7 g. ``--kind simple``: CSV files with ``timestamp``,
``voltage_v``, ``current_a``, ``power_factor``, ``vibration_g`` [, ``is_faulty``], for ``--asset_id``.

Back-pressure and acknowledgement
---------------------------------
At most ``--in-flight`` windows (default 16) of each asset are unacknowledged at any time. Over MQTT
(``--ack pipeline``, the default) the replay subscribes, before sending, to ``features/<a>/+``,
``scores/<a>/+`` and the retained ``models/<a>/+`` of its assets (``events/<a>/reading`` for readings)
and a window is acknowledged when its feature vector arrived and, for each announced model that scores
that vector's kind, its score (rule and its corner cases: ``scripts/replay_flow.py``). So ``--speed
max`` runs as fast as the pipeline processes. A window not acknowledged within ``--ack-timeout`` s
fails with what is missing; when ``--in-flight`` windows of an asset in a row failed that way, the rest
of that asset is not sent (reported). The broker user must read those topics: ``make run``'s
development user ``replay`` is used by default (``python -m deploy.mqtt_auth`` creates it for
Mosquitto). ``--ack broker`` waits only for the broker's QoS-1 PUBACK (for a user that may only
publish; no bound on the pipeline's backlog).

``--via http`` is bounded by the gateway's answers only: one request per asset at a time, each window
acknowledged by its 202 (HTTP 503/429 and connection errors are retried 3 times, 0.2/0.4/0.8 s apart).
The gateway's event stream (``/api/v1/stream``) carries no feature vectors, no window events and no
models and drops events for a slow client, so it cannot acknowledge windows end to end.

Pacing
------
``--speed max`` (default) sends as fast as acknowledgements allow; ``--speed 10`` replays at 10x real
time across all files and assets: the window with data time ``ts`` is due ``(ts - ts_first) / 10`` s
after the first. Each asset's windows go in ``ts`` order; several assets are interleaved by ``ts``.

Resume and progress
-------------------
``--resume`` asks the gateway (``--api``, ``--api-key``) for the vibration feature vectors (readings:
the readings) stored for each asset in the replay's time range (``GET /api/v1/assets/{a}/features``,
``from``/``to`` pages) and skips the windows whose vector is stored, by event id; they are counted as
skipped. Without it, windows replayed before are not processed again by the pipeline (it drops what it
handled before) and end as failed.
Progress: one updating line on a terminal, else a ``[PROGRESS]`` line every 5 s (acknowledged/total,
windows/s, ETA, per asset); ``--verbose`` adds one ``[OK]`` line per acknowledged window. Failures are
always printed. The summary: sent, acknowledged, failed, skipped, the most windows in flight.

Examples (from the repository root)::

    python scripts/replay.py ../shared/datasets/cwru/cwru_0hp_1797rpm.npz --key IR007_12k__DE
    python scripts/replay.py ../shared/datasets/femto_pronostia/femto_Bearing1_1.npz \\
        --channel 0,1=bearing1_1 --window 2560 --start 2010-12-01T09:39:39Z
    python scripts/replay.py ims/2nd_test --fs 20000 --name-pattern %Y.%m.%d.%H.%M.%S \\
        --channel 0=bearing1 --channel 1=bearing2 --window 4096 --resume
    python scripts/replay.py rec.csv --fs 25600 --via http --api http://localhost:8000 --speed 10
    python scripts/replay.py readings.csv --kind simple --asset_id motor_02

Exit code: 0 when every window/reading was acknowledged (or skipped), 1 when some failed, 2 for bad
arguments or unreadable input, 130 on Ctrl+C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import math
import os
import signal
import ssl
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import aiomqtt
import httpx
import numpy as np
from pydantic import ValidationError

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.replay_flow import (  # noqa: E402
    Counts,
    Outcome,
    Stored,
    Tracker,
    add_counts,
    already_stored,
    due_offset_s,
    progress_line,
)
from shared import topics  # noqa: E402
from shared.apikey import API_KEY_HELP, auth_headers, script_api_key  # noqa: E402
from shared.messages import MAX_WINDOW, MIN_WINDOW, SimpleReadingIn, VibrationBatchIn  # noqa: E402
from shared.recordings import TIME_FROM, Snapshot, channel_map, load_snapshots, windows  # noqa: E402
from shared.secrets import with_replay_login  # noqa: E402
from shared.settings import BrokerAddress, Settings, parse_mqtt_url  # noqa: E402

BATCH_PATH = "/api/v1/data/batch"
SIMPLE_PATH = "/api/v1/data/simple"
HTTP_TIMEOUT_S = 10.0
MQTT_TIMEOUT_S = 10.0
HTTP_RETRIES = 3
HTTP_BACKOFF_S = 0.2
#: Default window: 4096 samples at fs >= 5 kHz, else 256.
LONG_WINDOW, SHORT_WINDOW, LONG_WINDOW_MIN_FS_HZ = 4096, 256, 5000.0
#: Samples are rounded to this many decimals of g in the JSON payload.
DECIMALS = 7
#: ``--label`` without ``--channel`` takes this CWRU channel (drive end).
DEFAULT_CHANNEL = "DE"
SIMPLE_COLUMNS = ("timestamp", "voltage_v", "current_a", "power_factor", "vibration_g")
DEFAULT_IN_FLIGHT = 16
DEFAULT_ACK_TIMEOUT_S = 60.0
#: Seconds between ``[PROGRESS]`` lines when stdout is not a terminal (a terminal: updated each tick).
PROGRESS_EVERY_S = 5.0
TICK_S = 0.2
#: Items per page when ``--resume`` reads what is stored.
RESUME_PAGE = 10_000
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
_NAMESPACE = uuid.UUID("6f1c5e0a-9a55-4e8a-8f0d-7b1f3c2a9e41")


def say(line: str) -> None:
    print(line, flush=True)


# ---------------------------------------------------------------------------------------------
# What to send
# ---------------------------------------------------------------------------------------------
def default_window(fs_hz: float) -> int:
    """Default window length in samples: 4096 when ``fs_hz >= 5000`` Hz, else 256."""
    return LONG_WINDOW if fs_hz >= LONG_WINDOW_MIN_FS_HZ else SHORT_WINDOW


def event_id(asset_id: str, source: str, ts: datetime) -> str:
    """Deterministic 32-hex id: UUID5 of ``asset|source|ts`` (replaying a file twice gives the same ids)."""
    return uuid.uuid5(_NAMESPACE, f"{asset_id}|{source}|{ts.isoformat()}").hex


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


@dataclass
class Item:
    """One window or reading to send: its asset, 0-based index among the asset's items (ts order),
    data time, event id, and either window samples (``data``, g, at ``fs_hz``, from ``source``) or a
    ready ``body`` (a reading)."""

    asset: str
    ts: datetime
    event_id: str
    source: str
    fs_hz: float = 0.0
    data: dict[str, np.ndarray] | None = None
    body: dict[str, Any] | None = None
    index: int = 0


def batch_payload(
    asset_id: str, ts: datetime, data: dict[str, np.ndarray], fs_hz: float, source: str
) -> dict[str, Any]:
    """The validated ``VibrationBatchIn`` body for one window (samples rounded to 1e-7 g)."""
    body: dict[str, Any] = {"motor_id": asset_id, "ts": ts.isoformat()}
    for a, arr in data.items():
        body[a] = np.round(arr, DECIMALS).tolist()
    body["fs_hz"] = fs_hz
    body["event_id"] = event_id(asset_id, source, ts)
    VibrationBatchIn.model_validate(body)
    return body


def item_body(item: Item) -> dict[str, Any]:
    """The JSON body of ``item`` (a window's is built, and validated, when it is sent)."""
    if item.body is not None:
        return item.body
    assert item.data is not None
    return batch_payload(item.asset, item.ts, item.data, item.fs_hz, item.source)


def choose_window(snapshots: Sequence[Snapshot], window: int | None) -> int:
    """``--window``, else the default of the lowest sample rate among the snapshots."""
    return window or default_window(min(s.fs_hz for s in snapshots))


def plan_windows(
    snapshots: Sequence[Snapshot],
    specs: Sequence[str],
    default_asset: str,
    window: int,
    hop: int,
    limit: int | None = None,
) -> tuple[dict[str, list[Item]], list[str]]:
    """``({asset: [windows in ts order]}, [notes on snapshots shorter than a window])``.

    Every snapshot's channels are mapped to assets (:func:`channel_map`); each asset's windows are
    sorted by ``(ts, source)``; ``limit`` keeps the first ``limit`` of each asset."""
    plan: dict[str, list[Item]] = {}
    short: list[str] = []
    for snap in snapshots:
        if snap.n < window:
            short.append(f"{snap.source}: {snap.n} samples is shorter than one window of {window}")
            continue
        for asset, axes in channel_map(specs, snap, default_asset).items():
            items = plan.setdefault(asset, [])
            for w in windows(snap, window=window, hop=hop, axes=axes):
                eid = event_id(asset, snap.source, w.ts)
                items.append(Item(asset, w.ts, eid, snap.source, fs_hz=snap.fs_hz, data=w.data))
    for items in plan.values():
        items.sort(key=lambda it: (it.ts, it.source))
        del items[limit or len(items) :]
        for i, it in enumerate(items):
            it.index = i
    return plan, short


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path}: cannot read as CSV ({exc})") from None
    if not rows:
        raise ValueError(f"{path}: empty file")
    header = [c.strip().lower() for c in rows[0]]
    if len(set(header)) != len(header):
        raise ValueError(f"{path}: duplicate column names in header {header}")
    body = rows[1:]
    for i, r in enumerate(body, start=2):
        if len(r) != len(header):
            raise ValueError(f"{path}: line {i} has {len(r)} fields, the header has {len(header)}")
    if not body:
        raise ValueError(f"{path}: no data rows after the header")
    return header, body


def _reading(r: list[str], idx: dict[str, int], asset_id: str) -> dict[str, Any]:
    raw_ts = r[idx["timestamp"]].strip()
    try:
        ts_val: Any = float(raw_ts)
    except ValueError:
        ts_val = raw_ts
    item: dict[str, Any] = {"asset_id": asset_id, "timestamp": ts_val}
    for c in SIMPLE_COLUMNS[1:]:
        item[c] = float(r[idx[c]])
    if "is_faulty" in idx and r[idx["is_faulty"]].strip():
        flag = r[idx["is_faulty"]].strip().lower()
        if flag not in ("true", "false", "1", "0"):
            raise ValueError(f"is_faulty must be true/false/1/0, got {flag!r}")
        item["is_faulty"] = flag in ("true", "1")
    return item


def load_simple_csv(path: Path, asset_id: str) -> list[tuple[int, dict[str, Any] | str]]:
    """Rows of a simple-reading CSV as ``(line, body)`` (a ``SimpleReadingIn`` body) or ``(line, reason)``.

    The header must hold ``timestamp, voltage_v, current_a, power_factor, vibration_g`` (``is_faulty``
    optional). A row that fails validation is returned with its reason, so it is reported, not sent.
    """
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if path.suffix.lower() != ".csv":
        raise ValueError(f"{path}: --kind simple needs a .csv file")
    header, body = _read_csv(path)
    missing = [c for c in SIMPLE_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; simple CSVs need {list(SIMPLE_COLUMNS)}")
    idx = {c: header.index(c) for c in (*SIMPLE_COLUMNS, "is_faulty") if c in header}
    out: list[tuple[int, dict[str, Any] | str]] = []
    for line, r in enumerate(body, start=2):
        try:
            item = _reading(r, idx, asset_id)
            msg = SimpleReadingIn.model_validate(item)
        except (ValueError, ValidationError) as exc:
            out.append((line, _reason(exc)))
            continue
        assert msg.timestamp is not None
        item["timestamp"] = msg.timestamp.isoformat()
        item["event_id"] = event_id(asset_id, path.name, msg.timestamp)
        out.append((line, item))
    return out


def plan_readings(
    paths: Sequence[Path], asset_id: str, limit: int | None = None
) -> tuple[dict[str, list[Item]], list[str]]:
    """``({asset: [readings in ts order]}, [reasons of rows that are not sent])`` from CSV files."""
    items: list[Item] = []
    bad: list[str] = []
    for path in paths:
        for line, row in load_simple_csv(path, asset_id):
            if isinstance(row, str):
                bad.append(f"{path.name} line {line}: {row}")
                continue
            ts = datetime.fromisoformat(row["timestamp"])
            items.append(Item(asset_id, ts, row["event_id"], path.name, body=row))
    items.sort(key=lambda it: (it.ts, it.source))
    del items[limit or len(items) :]
    for i, it in enumerate(items):
        it.index = i
    return ({asset_id: items} if items else {}), bad


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
    return str(exc)


# ---------------------------------------------------------------------------------------------
# Links: MQTT (publish + acknowledgements) and HTTP
# ---------------------------------------------------------------------------------------------
class SendError(Exception):
    pass


class SetupError(Exception):
    """The replay cannot start (e.g. the broker refuses the acknowledgement subscriptions)."""


Handler = Callable[[str, bytes, bool], None]


class MqttLink:
    """One MQTT connection: publishes with QoS 1 (waits for the broker's PUBACK) and, when
    ``subscriptions`` are given, subscribes to them before the first publish and hands every message
    to ``on_message(topic, payload, retained)``. A lost connection is opened again on the next send
    (subscribing again); messages published meanwhile are lost to the replay (their windows time out)."""

    def __init__(
        self, broker: BrokerAddress, subscriptions: Sequence[str] = (), on_message: Handler | None = None
    ) -> None:
        self.broker = broker
        self.subscriptions = list(subscriptions)
        self.on_message = on_message
        self.client: aiomqtt.Client | None = None
        self.listener: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Connect and subscribe; :class:`SetupError` when the broker refuses a subscription."""
        fresh = aiomqtt.Client(
            self.broker.host,
            self.broker.port,
            username=self.broker.username,
            password=self.broker.password,
            keepalive=30,
            timeout=MQTT_TIMEOUT_S,
            tls_context=ssl.create_default_context() if self.broker.tls else None,
        )
        await fresh.__aenter__()  # a failed connect needs no __aexit__
        self.client = fresh
        try:
            for flt in self.subscriptions:
                granted = await fresh.subscribe(flt, qos=1)
                if any(int(getattr(g, "value", g)) >= 0x80 for g in granted):
                    who = self.broker.username or "anonymous"
                    raise SetupError(
                        f"the broker refused the subscription to {flt} for user {who!r}: the replay reads "
                        "features, scores and models to acknowledge windows end to end; log in as the "
                        "'replay' user (python -m deploy.mqtt_auth creates it) or use --ack broker"
                    )
        except BaseException:
            await self.close()
            raise
        if self.on_message is not None:
            self.listener = asyncio.create_task(self._listen(fresh))

    async def _listen(self, client: aiomqtt.Client) -> None:
        assert self.on_message is not None
        with contextlib.suppress(aiomqtt.MqttError):
            async for m in client.messages:
                try:
                    self.on_message(m.topic.value, bytes(m.payload or b""), bool(m.retain))
                except Exception as exc:  # a bug here must not stop the acknowledgements silently
                    say(f"[ERROR] acknowledgement of {m.topic.value}: {type(exc).__name__}: {exc}")

    async def send(self, topic: str, path: str, body: dict[str, Any]) -> None:
        del path
        try:
            if self.client is None:
                await self.open()
            assert self.client is not None
            await self.client.publish(topic, json.dumps(body, allow_nan=False), qos=1)
        except aiomqtt.MqttError as exc:
            await self.close()
            raise SendError(f"MQTT {self.broker.host}:{self.broker.port}: {exc}") from None

    async def close(self) -> None:
        if self.listener is not None:
            self.listener.cancel()
            await asyncio.gather(self.listener, return_exceptions=True)
            self.listener = None
        if self.client is not None:
            client, self.client = self.client, None
            with contextlib.suppress(Exception):
                async with asyncio.timeout(MQTT_TIMEOUT_S):
                    await client.__aexit__(None, None, None)


class HttpLink:
    """POSTs to the gateway; retries HTTP 429/503 and connection errors (0.2, 0.4, 0.8 s back-off)."""

    def __init__(
        self, api: str, transport: httpx.AsyncBaseTransport | None = None, api_key: str | None = None
    ) -> None:
        self.api = api.rstrip("/")
        self.client = httpx.AsyncClient(
            timeout=HTTP_TIMEOUT_S, transport=transport, headers=auth_headers(api_key)
        )

    async def open(self) -> None:
        return None

    async def send(self, topic: str, path: str, body: dict[str, Any]) -> None:
        del topic
        url = self.api + path
        err = ""
        for attempt in range(HTTP_RETRIES + 1):
            if attempt:
                await asyncio.sleep(HTTP_BACKOFF_S * 2 ** (attempt - 1))
            try:
                resp = await self.client.post(url, json=body)
            except httpx.HTTPError as exc:
                err = f"{type(exc).__name__}: {exc or 'no detail'} ({url})"
                continue
            if resp.is_success:
                return
            err = f"HTTP {resp.status_code}: {' '.join(resp.text.split())[:200]}"
            if resp.status_code not in (429, 503):
                break
        raise SendError(err)

    async def close(self) -> None:
        await self.client.aclose()


def ack_subscriptions(assets: Sequence[str], kind: str) -> list[str]:
    """Topic filters that acknowledge the replay's items: each asset's retained models first (so they
    are in before any vector), then its feature vectors and scores (and reading events for readings)."""
    subs = [f"{topics.ROOT}/models/{a}/+" for a in assets]
    for a in assets:
        subs += [f"{topics.ROOT}/features/{a}/+", f"{topics.ROOT}/scores/{a}/+"]
        if kind == "simple":
            subs.append(topics.reading(a))
    return subs


# ---------------------------------------------------------------------------------------------
# Resume: what the store already holds
# ---------------------------------------------------------------------------------------------
async def _stored_items(
    client: httpx.AsyncClient, api: str, asset: str, family: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every item of ``GET /api/v1/assets/{asset}/{family}`` for ``params``, following ``next``."""
    url = f"{api}/api/v1/assets/{asset}/{family}"
    query: dict[str, Any] = {**params, "limit": RESUME_PAGE}
    out: list[dict[str, Any]] = []
    while True:
        try:
            r = await client.get(url, params=query)
        except httpx.HTTPError as exc:
            raise ValueError(f"--resume: GET {url}: {type(exc).__name__}: {exc}") from None
        if r.status_code == 404 and "unknown asset" in r.text:
            return out  # nothing stored for it yet
        if r.status_code != 200:
            raise ValueError(f"--resume: GET {url}: HTTP {r.status_code}: {' '.join(r.text.split())[:200]}")
        body = r.json()
        out += next((body[k] for k in (family, "history", "items") if isinstance(body.get(k), list)), [])
        if not body.get("next"):
            return out
        query["after"] = body["next"]


async def stored_for(
    client: httpx.AsyncClient, api: str, asset: str, kind: str, first: datetime, last: datetime
) -> Stored:
    """What the store holds for ``asset`` between ``first`` and ``last`` (data time, 1 s margin):
    stored vibration vectors (windows) or readings, by event id."""
    span = {"from": iso(first - timedelta(seconds=1)), "to": iso(last + timedelta(seconds=1))}
    if kind == "vibration":
        got = await _stored_items(client, api, asset, "features", {**span, "kind": "vibration"})
    else:
        got = await _stored_items(client, api, asset, "readings", span)
    return Stored(present={x["event_id"] for x in got if isinstance(x.get("event_id"), str)})


async def resume_filter(
    plan: dict[str, list[Item]],
    kind: str,
    api: str,
    api_key: str | None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, set[str]]:
    """``{asset: event ids already complete in the store}`` (:func:`already_stored`)."""
    out: dict[str, set[str]] = {}
    async with httpx.AsyncClient(timeout=60.0, transport=transport, headers=auth_headers(api_key)) as client:
        for asset, items in plan.items():
            if not items:
                continue
            st = await stored_for(client, api.rstrip("/"), asset, kind, items[0].ts, items[-1].ts)
            out[asset] = {it.event_id for it in items if already_stored(it.event_id, st)}
    return out


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------
class Progress:
    """The progress line: rewritten in place on a terminal, else a ``[PROGRESS]`` line every
    ``every_s`` s; other lines go through :meth:`say` so they do not mix with it."""

    def __init__(
        self, stream: TextIO, unit: str, every_s: float = PROGRESS_EVERY_S, tty: bool | None = None
    ) -> None:
        self.stream, self.unit, self.every_s = stream, unit, every_s
        self.tty = stream.isatty() if tty is None else tty
        self.last = -math.inf
        self.shown = False

    def say(self, line: str) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.shown = False
        self.stream.write(line + "\n")
        self.stream.flush()

    def tick(self, counts: dict[str, Counts], elapsed_s: float, now: float, *, force: bool = False) -> None:
        if not (force or self.tty) and now - self.last < self.every_s:
            return
        self.last = now
        line = progress_line(counts, elapsed_s, self.unit)
        if self.tty:
            self.stream.write("\r\x1b[K" + line)
            self.shown = True
        else:
            self.stream.write(f"[PROGRESS] {line}\n")
        self.stream.flush()

    def end(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()
            self.shown = False


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------
@dataclass
class Replay:
    """Sends the planned items of every asset (one task per asset), paced by data time, at most
    ``tracker.in_flight`` unacknowledged per asset, and settles each as acknowledged or failed."""

    plan: dict[str, list[Item]]
    tracker: Tracker
    kind: str
    factor: float | None
    progress: Progress
    verbose: bool = False
    skip: dict[str, set[str]] = field(default_factory=dict)
    #: Said when an asset is given up: what to check.
    stall_hint: str = "is the pipeline running? were they replayed before? then use --resume"
    counts: dict[str, Counts] = field(default_factory=dict)
    unscored: dict[str, int] = field(default_factory=dict)
    by_id: dict[tuple[str, str], Item] = field(default_factory=dict)
    link: MqttLink | HttpLink | None = None

    def __post_init__(self) -> None:
        self.changed = asyncio.Event()
        self.t0 = time.monotonic()
        for asset, items in self.plan.items():
            self.counts[asset] = Counts(total=len(items))
            for it in items:
                self.by_id[(asset, it.event_id)] = it
        firsts = [items[0].ts for items in self.plan.values() if items]
        self.ts_first = min(firsts) if firsts else datetime.now(UTC)

    @property
    def unit(self) -> str:
        return "readings" if self.kind == "simple" else "windows"

    # --- acknowledgements ------------------------------------------------------------------------
    def on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        """A message of an acknowledgement subscription (called by the MQTT link)."""
        parts = topic.removeprefix(topics.ROOT + "/").split("/")
        if len(parts) < 2:
            return
        family, asset, sub = parts[0], parts[1], (parts[2] if len(parts) > 2 else "")
        now = time.monotonic()
        if family == "models":
            self.record(self.tracker.on_model(asset, sub, announced=bool(payload)))
            return
        try:
            eid = json.loads(payload).get("event_id") if payload else None
        except (ValueError, AttributeError):
            eid = None
        if not isinstance(eid, str):
            return
        if family == "features":
            self.record(self.tracker.on_features(asset, sub, eid, now))
        elif family == "scores":
            self.record(self.tracker.on_score(asset, sub, eid, now))
        elif family == "events" and sub == "reading":
            self.record(self.tracker.on_reading(asset, eid, now))

    def record(self, outcomes: list[Outcome]) -> None:
        for o in outcomes:
            c = self.counts[o.asset]
            item = self.by_id.get((o.asset, o.event_id))
            if o.ok:
                c.acked += 1
                for m in o.unscored:
                    self.unscored[m] = self.unscored.get(m, 0) + 1
                if self.verbose and item is not None:
                    self.progress.say(self.ok_line(item, o))
            else:
                c.failed += 1
                what = self.describe(item, o.asset)
                self.progress.say(f"[FAIL] {what} | {o.reason}")
        if outcomes:
            self.changed.set()

    async def wait_until(self, done: Callable[[], bool]) -> None:
        """Wait until ``done()`` (checked again after every settled item; every waiter is woken)."""
        while not done():
            self.changed.clear()
            await self.changed.wait()

    def describe(self, item: Item | None, asset: str) -> str:
        if item is None:
            return f"{asset} (unknown event)"
        total = self.counts[asset].total
        word = "reading" if self.kind == "simple" else "window"
        where = f" asset={asset}" if len(self.plan) > 1 else ""
        return f"{word} {item.index + 1}/{total} ts={iso(item.ts)}{where}"

    def ok_line(self, item: Item, o: Outcome) -> str:
        head = f"[OK] {self.describe(item, o.asset)}"
        if item.data is not None:
            r = [float(np.sqrt(np.mean(v * v))) for v in item.data.values()]
            rms = f"{r[0]:.3f}g" if len(r) == 1 else "(" + ", ".join(f"{v:.3f}" for v in r) + ")g"
            head += f" fs={item.fs_hz:g}Hz rms={rms}"
        elif item.body is not None:
            b = item.body
            head += (
                f" V={b['voltage_v']:.1f}V I={b['current_a']:.2f}A PF={b['power_factor']:.2f} "
                f"vib={b['vibration_g']:.3f}g"
            )
        if o.unscored:
            head += f" (not scored by {', '.join(o.unscored)})"
        return head

    # --- sending ---------------------------------------------------------------------------------
    async def send_asset(self, asset: str, items: list[Item]) -> None:
        skip = self.skip.get(asset, set())
        c = self.counts[asset]
        topic = topics.raw_simple(asset) if self.kind == "simple" else topics.raw_vibration(asset)
        path = SIMPLE_PATH if self.kind == "simple" else BATCH_PATH
        for k, item in enumerate(items):
            if item.event_id in skip:
                c.skipped += 1
                continue
            due = self.t0 + due_offset_s(item.ts, self.ts_first, self.factor)
            if (wait := due - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            await self.wait_until(lambda: self.tracker.can_send(asset) or self.tracker.stalled(asset))
            if self.tracker.stalled(asset):
                self.give_up(asset, items[k:], skip)
                return
            await self.send_one(asset, item, topic, path)

    async def send_one(self, asset: str, item: Item, topic: str, path: str) -> None:
        c = self.counts[asset]
        try:
            body = item_body(item)
        except (ValueError, ValidationError) as exc:
            c.failed += 1
            self.progress.say(f"[FAIL] {self.describe(item, asset)} | {_reason(exc)}")
            return
        assert self.link is not None
        self.tracker.sent(asset, item.event_id, time.monotonic())
        try:
            await self.link.send(topic, path, body)
        except SendError as exc:
            self.record([self.tracker.send_failed(asset, item.event_id, str(exc))])
            return
        c.sent += 1
        self.record(self.tracker.settle_sent(asset, item.event_id, time.monotonic()))

    def give_up(self, asset: str, rest: list[Item], skip: set[str]) -> None:
        c = self.counts[asset]
        left = [it for it in rest if it.event_id not in skip]
        c.skipped += len(rest) - len(left)
        c.failed += len(left)
        self.progress.say(
            f"[FAIL] {asset}: {self.tracker.in_flight} {self.unit} in a row were not acknowledged within "
            f"{self.tracker.ack_timeout_s:g} s; the other {len(left)} {self.unit} of {asset} are not sent "
            f"({self.stall_hint})"
        )

    async def ticker(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            self.record(self.tracker.expire(now))
            self.progress.tick(self.counts, now - self.t0, now)

    async def run(self) -> None:
        ticker = asyncio.create_task(self.ticker())
        try:
            await asyncio.gather(*(self.send_asset(a, items) for a, items in self.plan.items()))
            await self.wait_until(lambda: all(not f.pending for f in self.tracker.assets.values()))
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            self.progress.end()

    def summary(self, *, stopped: bool = False) -> list[str]:
        t = add_counts(self.counts.values())
        elapsed = time.monotonic() - self.t0
        rate = t.acked / elapsed if elapsed > 0 else 0.0
        most = max((f.max_in_flight for f in self.tracker.assets.values()), default=0)
        head = "[STOPPED]" if stopped else "[COMPLETE]"
        lines = [
            f"{head} Sent {t.sent} {self.unit}, {t.acked} acknowledged, {t.failed} failed, "
            f"{t.skipped} skipped (already stored) of {t.total} in {elapsed:.1f} s "
            f"({rate:.1f} {self.unit}/s acknowledged); "
            f"at most {most} in flight per asset (limit {self.tracker.in_flight})"
        ]
        if len(self.counts) > 1:
            for a, c in self.counts.items():
                f = self.tracker.flow(a)
                lines.append(
                    f"[ASSET] {a}: {c.sent} sent, {c.acked} acknowledged, {c.failed} failed, "
                    f"{c.skipped} skipped of {c.total}; at most {f.max_in_flight} in flight"
                )
        if self.unscored:
            named = ", ".join(f"{m} {n}" for m, n in sorted(self.unscored.items()))
            lines.append(
                f"[NOTE] acknowledged without a score of an announced model (the scorer skipped them: "
                f"no model loaded yet, or scored before): {named}"
            )
        if stopped or t.failed:
            lines.append("[NOTE] run it again with --resume to send only what is not stored yet")
        return lines


# ---------------------------------------------------------------------------------------------
# Arguments and main
# ---------------------------------------------------------------------------------------------
class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """The module docstring as written, and each option's default."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="replay.py", description=__doc__, formatter_class=_HelpFormatter)
    p.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="files, directories, .zip/.tar(.gz) archives"
    )
    p.add_argument("--kind", choices=("vibration", "simple"), default="vibration")
    p.add_argument(
        "--channel",
        action="append",
        default=[],
        metavar="SPEC",
        help="channel to asset, repeatable: CH=ASSET, CH (to --asset_id), C1,C2[,C3]=ASSET (the x, y[, z] "
        "axes of one asset), CH:AXIS[,CH:AXIS]=ASSET (e.g. 0:y,1:z=pump); "
        f"--label without --channel takes {DEFAULT_CHANNEL}",
    )
    p.add_argument("--key", default=None, help="CWRU npz: one array <label>__<channel>, e.g. IR007_12k__DE")
    p.add_argument("--label", default=None, help="CWRU npz: one label, e.g. IR007_12k (all its channels)")
    p.add_argument("--fs", type=float, default=None, help="sample rate, Hz, where the files do not give it")
    p.add_argument("--scale", type=float, default=None, help="g at integer full scale (.wav files)")
    p.add_argument(
        "--time-from", choices=TIME_FROM, default="auto", help="where each file's start time comes from"
    )
    p.add_argument(
        "--name-pattern",
        default=None,
        help="strptime pattern of the file names, e.g. %%Y.%%m.%%d.%%H.%%M.%%S",
    )
    p.add_argument(
        "--interval", type=float, default=None, help="seconds between the starts of consecutive files"
    )
    p.add_argument("--start", default=None, help="ISO-8601 UTC time of the first sample (of the first file)")
    p.add_argument(
        "--window", type=int, default=None, help="samples per window (default 4096 at >= 5 kHz, else 256)"
    )
    p.add_argument("--hop", type=int, default=None, help="samples between window starts (default: --window)")
    _sending_arguments(p)
    return p


def _sending_arguments(p: argparse.ArgumentParser) -> None:
    """Where and how to send: transport, pacing, back-pressure, resume, output."""
    p.add_argument("--via", choices=("mqtt", "http"), default="mqtt")
    p.add_argument("--mqtt", default=os.environ.get("MQTT_URL") or "mqtt://localhost:1883", help="broker URL")
    p.add_argument("--api", default="http://localhost:8000", help="gateway base URL (--via http, --resume)")
    p.add_argument("--api-key", default=None, help=API_KEY_HELP)
    p.add_argument("--speed", default="max", help="'max' or a real-time factor, e.g. 10")
    p.add_argument(
        "--asset_id", "--asset", dest="asset_id", default="motor_01", help="asset of unmapped data"
    )
    p.add_argument("--limit", type=int, default=None, help="send at most N windows/readings per asset")
    p.add_argument(
        "--in-flight",
        type=int,
        default=DEFAULT_IN_FLIGHT,
        help="windows per asset sent and not yet acknowledged (--via http: one request at a time)",
    )
    p.add_argument(
        "--ack-timeout",
        type=float,
        default=DEFAULT_ACK_TIMEOUT_S,
        help="seconds before an unacknowledged window fails",
    )
    p.add_argument(
        "--ack",
        choices=("pipeline", "broker"),
        default="pipeline",
        help="MQTT: acknowledged by its feature vector and scores (pipeline) or by the broker's PUBACK only; "
        "--via http: by the gateway's 202 answer (its event stream carries no feature vectors)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="skip windows whose feature vector (readings: the reading) is stored (asks --api)",
    )
    p.add_argument("--verbose", action="store_true", help="one [OK] line per acknowledged window")


def _speed(p: argparse.ArgumentParser, speed: str) -> float | None:
    if speed == "max":
        return None
    try:
        factor = float(speed)
    except ValueError:
        factor = -1.0
    if not (math.isfinite(factor) and factor > 0):
        p.error(f"--speed must be 'max' or a number > 0, got {speed!r}")
    return factor


def _start(p: argparse.ArgumentParser, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        start = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        p.error(f"--start {text!r} is not an ISO-8601 time")
    return start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)


def _check_simple(p: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    vibration_only = (a.key, a.label, a.channel, a.window, a.hop, a.fs, a.scale, a.name_pattern, a.interval)
    if a.kind == "simple" and (any(v for v in vibration_only) or a.time_from != "auto"):
        p.error(
            "--key/--label/--channel/--window/--hop/--fs/--scale/--time-from/--name-pattern/--interval "
            "apply to --kind vibration only"
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse and cross-check arguments (exit 2 with a precise message on bad input)."""
    p = build_parser()
    a = p.parse_args(argv)
    if not topics.valid_asset_id(a.asset_id):
        p.error(f"--asset_id {a.asset_id!r} must match {topics.ASSET_ID_PATTERN}")
    a.factor = _speed(p, a.speed)
    a.start = _start(p, a.start)
    for name, value, low in (("--limit", a.limit, 1), ("--hop", a.hop, 1), ("--in-flight", a.in_flight, 1)):
        if value is not None and value < low:
            p.error(f"{name} must be >= {low}, got {value}")
    if not (math.isfinite(a.ack_timeout) and a.ack_timeout > 0):
        p.error(f"--ack-timeout must be a number of seconds > 0, got {a.ack_timeout}")
    if a.window is not None and not MIN_WINDOW <= a.window <= MAX_WINDOW:
        p.error(f"--window must be in {MIN_WINDOW}..{MAX_WINDOW}, got {a.window}")
    if a.interval is not None and not (math.isfinite(a.interval) and a.interval > 0):
        p.error(f"--interval must be a number of seconds > 0, got {a.interval}")
    _check_simple(p, a)
    if (a.via == "http" or a.resume) and not a.api.startswith(("http://", "https://")):
        p.error(f"--api must be an http:// or https:// URL, got {a.api!r}")
    if a.via == "mqtt":
        try:
            # No user in the URL: MQTT_USERNAME/MQTT_PASSWORD, else make run's development replay user.
            a.broker = with_replay_login(parse_mqtt_url(a.mqtt), Settings().data_dir)
        except ValueError as exc:
            p.error(f"--mqtt: {exc}")
    return a


def load_plan(a: argparse.Namespace) -> tuple[dict[str, list[Item]], list[str], str]:
    """``(plan, notes, description)`` for the arguments; ``ValueError`` with the reason on bad input."""
    if a.kind == "simple":
        plan, bad = plan_readings(a.paths, a.asset_id, a.limit)
        n = sum(len(v) for v in plan.values())
        return plan, [f"[FAIL] not sent: {b}" for b in bad], f"{n} readings in {len(a.paths)} file(s)"
    missing = [str(p) for p in a.paths if not p.exists()]
    if missing:
        raise ValueError(f"{missing[0]}: no such file")
    snaps = load_snapshots(
        a.paths,
        fs_hz=a.fs,
        time_from=a.time_from,
        name_pattern=a.name_pattern,
        interval_s=a.interval,
        start=a.start,
        key=a.key,
        label=a.label,
        scale_g=a.scale,
    )
    if not snaps:
        raise ValueError(f"{', '.join(map(str, a.paths))}: no recording files found")
    window = choose_window(snaps, a.window)
    specs = a.channel or ([DEFAULT_CHANNEL] if a.label else [])
    plan, short = plan_windows(snaps, specs, a.asset_id, window, a.hop or window, a.limit)
    if not plan:
        raise ValueError(f"{short[0]}; use a smaller --window")
    fs = sorted({s.fs_hz for s in snaps})
    n = sum(len(v) for v in plan.values())
    desc = (
        f"{len(snaps)} snapshot(s) at {'/'.join(f'{f:g}' for f in fs)} Hz, {n} windows of {window} "
        f"for {len(plan)} asset(s) ({', '.join(plan)})"
    )
    return plan, [f"[WARN] not sent: {s}" for s in short], desc


def make_link(
    a: argparse.Namespace, replay: Replay, transport: httpx.AsyncBaseTransport | None
) -> MqttLink | HttpLink:
    """HTTP to the gateway, or MQTT with the acknowledgement subscriptions (none for ``--ack broker``)."""
    if a.via == "http":
        return HttpLink(a.api, transport, script_api_key(a.api_key))
    if a.ack == "broker":
        return MqttLink(a.broker)
    return MqttLink(a.broker, ack_subscriptions(list(replay.plan), a.kind), replay.on_message)


def new_replay(
    a: argparse.Namespace, plan: dict[str, list[Item]], bad_rows: int, skip: dict[str, set[str]]
) -> Replay:
    """The run for the arguments: end to end over MQTT unless ``--ack broker``; one request per asset
    at a time over HTTP; rows of a simple CSV that failed validation counted as failed."""
    end_to_end = a.via == "mqtt" and a.ack == "pipeline"
    tracker = Tracker(a.kind, a.in_flight if a.via == "mqtt" else 1, a.ack_timeout, end_to_end=end_to_end)
    unit = "readings" if a.kind == "simple" else "windows"
    replay = Replay(plan, tracker, a.kind, a.factor, Progress(sys.stdout, unit), a.verbose, skip)
    if a.via == "mqtt":
        user = a.broker.username or "anonymous"
        replay.stall_hint = (
            f"is the pipeline running? may broker user {user!r} read features/scores/models (the 'replay' "
            "user may)? were they replayed before? then use --resume"
        )
    if bad_rows:
        c = replay.counts.setdefault(a.asset_id, Counts())
        c.total += bad_rows
        c.failed += bad_rows
    return replay


async def amain(
    argv: Sequence[str] | None = None, *, http_transport: httpx.AsyncBaseTransport | None = None
) -> int:
    """Run the replay inside an existing event loop (tests); returns the exit code."""
    try:
        a = parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        plan, notes, desc = load_plan(a)
        key = script_api_key(a.api_key)
        skip = await resume_filter(plan, a.kind, a.api, key, http_transport) if a.resume else {}
    except ValueError as exc:
        say(f"[ERROR] {exc}")
        return EXIT_BAD_INPUT
    replay = new_replay(a, plan, sum(n.startswith("[FAIL]") for n in notes), skip)
    replay.link = link = make_link(a, replay, http_transport)
    for line in notes:
        say(line)
    target = a.api if a.via == "http" else a.mqtt
    ack = (
        "gateway 202" if a.via == "http" else ("end to end" if replay.tracker.end_to_end else "broker PUBACK")
    )
    say(
        f"[START] {desc} -> {a.via} {target}, speed {a.speed}, at most {replay.tracker.in_flight} in flight "
        f"per asset ({ack}), {sum(len(s) for s in skip.values())} already stored"
    )
    stopped = True
    try:
        try:
            await link.open()
        except (aiomqtt.MqttError, OSError) as exc:
            say(f"[ERROR] cannot connect to {target}: {exc}")
            for asset, c in replay.counts.items():
                c.skipped = len(skip.get(asset, ()))
                c.failed = c.total - c.skipped
            stopped = False
            return EXIT_FAILED
        await replay.run()
        stopped = False
    except SetupError as exc:
        say(f"[ERROR] {exc}")
        return EXIT_BAD_INPUT
    finally:
        await link.close()
        for line in replay.summary(stopped=stopped):
            say(line)
    return EXIT_FAILED if add_counts(replay.counts.values()).failed else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return asyncio.run(amain(argv))
    except KeyboardInterrupt:
        say("[INTERRUPTED] stopped by Ctrl+C")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
