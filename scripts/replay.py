#!/usr/bin/env python
"""Replay (backfill) a recorded vibration or simple-reading file through the live Rotorwatch pipeline.

Vibration recordings are cut into windows, each stamped with the **original time of its first
sample** and the **original sample rate**, and sent as ``VibrationBatchIn`` JSON
``{"motor_id", "ts", "x"[, "y", "z"], "fs_hz", "event_id"}`` to MQTT ``rotorwatch/v1/raw/<asset>/vibration``
(QoS 1, default) or ``POST {api}/api/v1/data/batch``. Simple-reading CSVs (``--kind simple``) go one
row per reading to ``rotorwatch/v1/raw/<asset>/simple`` or ``POST {api}/api/v1/data/simple``.

Input files
-----------
``.npz``, CWRU layout (``../shared/datasets/cwru``): arrays ``<label>__<channel>`` (e.g.
``IR007_12k__DE``) plus ``meta_json`` with ``fs_hz`` per label. Select one array with ``--key
IR007_12k__DE`` or ``--label IR007_12k [--channel DE]`` (channel default ``DE``). Each channel is a
single-axis sensor, so only ``x`` is sent.

``.npz``, generic: arrays ``x`` [``y``, ``z``] (g, 1-D, equal length) and ``fs_hz`` (scalar), or ``--fs``.

``.csv`` (vibration): header row with ``x`` [``y``, ``z``] in g and an optional time column ``t``:
ISO-8601 times, or numbers in seconds (values >= 1e9 are Unix epoch seconds, smaller ones are
seconds relative to the start time). With a time column the sample rate is
``fs = (n - 1) / (t[-1] - t[0])`` and every sample interval must be within 10 % of ``1/fs`` (a gap in
the recording is an error, not silently bridged); without one, ``--fs`` is required.

``.csv`` (``--kind simple``): columns ``timestamp`` (ISO-8601 or epoch seconds/ms),
``voltage_v``, ``current_a``, ``power_factor``, ``vibration_g`` and optional ``is_faulty``.

Timestamps
----------
Window ``i`` starts at sample ``offset = i * hop`` and is stamped ``ts = start + offset / fs``
(with a time column: ``start + (t[offset] - t[0])``). ``start`` is ``--start`` when given; else the
file's own absolute time (ISO or epoch time column); else **the file's modification time (UTC)**,
taken as the time of the first sample (``+ t[0]`` for a relative time column). Times are sent as
ISO-8601 UTC with microsecond resolution. Each window also carries a deterministic ``event_id``
(UUID5 of asset, source and first-sample time), so replaying the same file twice sends the same
ids. A trailing part shorter than one window is not sent. Samples are rounded to 1e-7 g.

Pacing
------
``--speed max`` (default) sends as fast as the pipeline accepts: each MQTT publish waits for the
broker's QoS-1 acknowledgement, each HTTP request for the gateway's answer (HTTP 503/429 and
connection errors are retried up to 3 times with 0.2/0.4/0.8 s back-off). ``--speed 10`` replays
at 10x real time (window ``i`` is due ``(ts_i - ts_0) / 10`` seconds after the first).

Examples (from the repository root)::

    python scripts/replay.py ../shared/datasets/cwru/cwru_0hp_1797rpm.npz --key IR007_12k__DE
    python scripts/replay.py rec.csv --fs 25600 --via http --api http://localhost:8000 --speed 10
    python scripts/replay.py readings.csv --kind simple --asset_id motor_02

Exit code: 0 when every window/reading was sent, 1 when some failed, 2 for bad arguments or an
unreadable file, 130 on Ctrl+C.
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
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import numpy as np
from pydantic import ValidationError

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from shared import topics  # noqa: E402
from shared.apikey import API_KEY_HELP, auth_headers, script_api_key  # noqa: E402
from shared.messages import (  # noqa: E402
    FS_MAX_HZ,
    FS_MIN_HZ,
    MAX_WINDOW,
    MIN_WINDOW,
    SimpleReadingIn,
    VibrationBatchIn,
)
from shared.secrets import with_device_login  # noqa: E402
from shared.settings import BrokerAddress, Settings, parse_mqtt_url  # noqa: E402

BATCH_PATH = "/api/v1/data/batch"
SIMPLE_PATH = "/api/v1/data/simple"
HTTP_TIMEOUT_S = 10.0
MQTT_TIMEOUT_S = 10.0
HTTP_RETRIES = 3
HTTP_BACKOFF_S = 0.2
#: Default window: 4096 samples at fs >= 5 kHz, else 256.
LONG_WINDOW, SHORT_WINDOW, LONG_WINDOW_MIN_FS_HZ = 4096, 256, 5000.0
#: Numeric time values at or above this are Unix epoch seconds (2001-09-09); below: relative seconds.
EPOCH_MIN_S = 1e9
#: Every sample interval of a time column must lie within this fraction of the mean interval.
SAMPLE_JITTER_TOL = 0.10
#: ``--fs`` and the rate implied by a time column or the file's metadata must agree to this fraction.
FS_AGREE_TOL = 0.01
#: Samples are rounded to this many decimals of g in the JSON payload.
DECIMALS = 7
DEFAULT_CHANNEL = "DE"
SIMPLE_COLUMNS = ("timestamp", "voltage_v", "current_a", "power_factor", "vibration_g")
AXES = ("x", "y", "z")
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
_NAMESPACE = uuid.UUID("6f1c5e0a-9a55-4e8a-8f0d-7b1f3c2a9e41")


def say(line: str) -> None:
    print(line, flush=True)


# ---------------------------------------------------------------------------------------------
# Recordings
# ---------------------------------------------------------------------------------------------
@dataclass
class Recording:
    """A uniformly sampled vibration recording.

    ``axes``: ``{"x": array}`` or ``{"x", "y", "z"}``, float64 in g, equal length ``n``;
    ``fs_hz``: sample rate in Hz; ``t_rel_s``: per-sample times in seconds relative to the first
    sample when the file had a time column (else ``None``: sample ``i`` is at ``i / fs_hz``);
    ``t0``: the file's own absolute time of the first sample, if it had one; ``source``: a short
    description used in messages and event ids.
    """

    axes: dict[str, np.ndarray]
    fs_hz: float
    source: str
    t_rel_s: np.ndarray | None = None
    t0: datetime | None = None
    t0_rel_s: float = 0.0  # first value of a relative time column (seconds)

    @property
    def n(self) -> int:
        return int(self.axes["x"].shape[0])


def _check_fs(fs: float, what: str) -> float:
    if not (isinstance(fs, int | float) and math.isfinite(fs) and FS_MIN_HZ <= fs <= FS_MAX_HZ):
        raise ValueError(f"{what}: sample rate must be in {FS_MIN_HZ:g}..{FS_MAX_HZ:g} Hz, got {fs!r}")
    return float(fs)


def _agree(fs_file: float, fs_arg: float | None, what: str) -> float:
    """The file's sample rate, checked against ``--fs`` when both are given (1 % tolerance)."""
    if fs_arg is not None and abs(fs_arg - fs_file) > FS_AGREE_TOL * fs_file:
        raise ValueError(f"--fs {fs_arg:g} Hz contradicts the {what} ({fs_file:g} Hz)")
    return fs_file


def _axes_from(arrays: dict[str, Any], source: str) -> dict[str, np.ndarray]:
    """Validate axis arrays: 1-D, numeric, finite, equal length, x alone or x/y/z together."""
    if "x" not in arrays:
        raise ValueError(f"{source}: no 'x' data")
    present = [a for a in AXES if a in arrays]
    if present not in (["x"], ["x", "y", "z"]):
        raise ValueError(f"{source}: give x alone (single-axis) or x, y and z together, found {present}")
    out: dict[str, np.ndarray] = {}
    for name in present:
        try:
            arr = np.asarray(arrays[name], dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{source}: axis {name} is not numeric") from None
        if arr.ndim != 1:
            raise ValueError(f"{source}: axis {name} must be 1-D, has shape {arr.shape}")
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise ValueError(f"{source}: axis {name} has a non-finite value at sample {int(bad[0])}")
        out[name] = arr
    n = out["x"].shape[0]
    for name, arr in out.items():
        if arr.shape[0] != n:
            raise ValueError(f"{source}: axis lengths differ: x has {n} samples, {name} has {arr.shape[0]}")
    if n == 0:
        raise ValueError(f"{source}: the recording is empty")
    return out


def load_npz(
    path: Path,
    *,
    key: str | None = None,
    label: str | None = None,
    channel: str | None = None,
    fs: float | None = None,
) -> Recording:
    """Read a CWRU-layout (``<label>__<channel>`` + ``meta_json``) or generic (``x``[,y,z], ``fs_hz``) npz."""
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not a readable .npz file ({exc})") from None
    with z:
        names = list(z.files)
        keyed = sorted(k for k in names if "__" in k)
        if keyed and "x" not in names:
            return _load_keyed(path, z, keyed, key=key, label=label, channel=channel, fs=fs)
        if key or label or channel:
            raise ValueError(f"{path}: --key/--label/--channel need <label>__<channel> arrays; found {names}")
        if "x" not in names:
            raise ValueError(f"{path}: no 'x' array and no <label>__<channel> arrays (found {names})")
        axes = _axes_from({a: z[a] for a in AXES if a in names}, str(path))
        if "fs_hz" in names:
            try:
                fs_file = float(np.asarray(z["fs_hz"]).reshape(()))
            except (TypeError, ValueError):
                raise ValueError(f"{path}: fs_hz must be a single number") from None
            rate = _agree(_check_fs(fs_file, f"{path} fs_hz"), fs, "file's fs_hz")
        elif fs is not None:
            rate = fs
        else:
            raise ValueError(f"{path}: no fs_hz array; give the sample rate with --fs")
        return Recording(axes=axes, fs_hz=rate, source=path.name)


def _load_keyed(
    path: Path,
    z: Any,
    keyed: list[str],
    *,
    key: str | None,
    label: str | None,
    channel: str | None,
    fs: float | None,
) -> Recording:
    shown = ", ".join(keyed[:60]) + (" ..." if len(keyed) > 60 else "")
    if key is not None:
        if label is not None or channel is not None:
            raise ValueError("give --key or --label/--channel, not both")
        if key not in keyed:
            raise ValueError(f"{path}: no array {key!r}; available: {shown}")
        chosen = key
    elif label is not None:
        channels = [k.split("__", 1)[1] for k in keyed if k.split("__", 1)[0] == label]
        if not channels:
            labels = sorted({k.split("__", 1)[0] for k in keyed})
            raise ValueError(f"{path}: no label {label!r}; available: {', '.join(labels)}")
        ch = channel or (DEFAULT_CHANNEL if DEFAULT_CHANNEL in channels or len(channels) > 1 else channels[0])
        if ch not in channels:
            raise ValueError(
                f"{path}: label {label!r} has no channel {ch!r}; available: {', '.join(channels)}"
            )
        chosen = f"{label}__{ch}"
    elif len(keyed) == 1 and channel is None:
        chosen = keyed[0]
    else:
        raise ValueError(f"{path}: holds {len(keyed)} recordings; choose one with --key (available: {shown})")
    lab = chosen.split("__", 1)[0]
    axes = _axes_from({"x": z[chosen]}, f"{path}[{chosen}]")
    fs_meta: float | None = None
    if "meta_json" in z.files:
        try:
            meta = json.loads(str(z["meta_json"]))
        except (ValueError, TypeError):
            raise ValueError(f"{path}: meta_json is not valid JSON") from None
        entry = meta.get(lab) if isinstance(meta, dict) else None
        if isinstance(entry, dict) and "fs_hz" in entry:
            try:
                fs_meta = _check_fs(float(entry["fs_hz"]), f"{path} meta_json[{lab!r}].fs_hz")
            except (TypeError, ValueError) as exc:
                raise ValueError(str(exc)) from None
    if fs_meta is not None:
        rate = _agree(fs_meta, fs, f"meta_json sample rate of {lab!r}")
    elif fs is not None:
        rate = fs
    else:
        raise ValueError(f"{path}: meta_json gives no fs_hz for {lab!r}; give the sample rate with --fs")
    return Recording(axes=axes, fs_hz=rate, source=f"{path.name}[{chosen}]")


def _parse_time(value: str) -> tuple[float, bool]:
    """``(seconds, absolute)``: ISO-8601 -> Unix seconds (absolute); a number -> itself (absolute >= 1e9)."""
    v = value.strip()
    try:
        num = float(v)
    except ValueError:
        num = None
    if num is not None:
        if not math.isfinite(num):
            raise ValueError(f"time value {value!r} is not finite")
        return num, num >= EPOCH_MIN_S
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"time value {value!r} is neither a number of seconds nor ISO-8601") from None
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt
    return dt.timestamp(), True


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


def load_csv(path: Path, *, fs: float | None = None) -> Recording:
    """Read a vibration CSV with columns ``x``[,``y``,``z``] and an optional time column ``t``."""
    header, body = _read_csv(path)
    if "x" not in header:
        raise ValueError(f"{path}: no 'x' column (header: {header}); vibration CSVs need x[,y,z] in g")
    cols = {name: header.index(name) for name in AXES if name in header}
    arrays: dict[str, list[float]] = {name: [] for name in cols}
    for line, r in enumerate(body, start=2):
        for name, j in cols.items():
            try:
                arrays[name].append(float(r[j]))
            except ValueError:
                raise ValueError(f"{path}: line {line}, column {name}: {r[j]!r} is not a number") from None
    axes = _axes_from(arrays, str(path))
    if "t" not in header:
        if fs is None:
            raise ValueError(f"{path}: no time column 't'; give the sample rate with --fs")
        return Recording(axes=axes, fs_hz=fs, source=path.name)
    j = header.index("t")
    times, absolute = [], []
    for line, r in enumerate(body, start=2):
        try:
            sec, ab = _parse_time(r[j])
        except ValueError as exc:
            raise ValueError(f"{path}: line {line}, column t: {exc}") from None
        times.append(sec)
        absolute.append(ab)
    if len(set(absolute)) > 1:
        raise ValueError(f"{path}: column t mixes absolute times and relative seconds")
    t = np.asarray(times, dtype=np.float64)
    if t.size < 2:
        raise ValueError(f"{path}: a time column needs at least 2 samples to give the sample rate")
    dt = np.diff(t)
    mean_dt = (t[-1] - t[0]) / (t.size - 1)
    if mean_dt <= 0 or np.any(dt <= 0):
        k = int(np.flatnonzero(dt <= 0)[0]) if np.any(dt <= 0) else 0
        raise ValueError(f"{path}: column t must increase; it does not at line {k + 3}")
    off = np.flatnonzero(np.abs(dt - mean_dt) > SAMPLE_JITTER_TOL * mean_dt)
    if off.size:
        k = int(off[0])
        raise ValueError(
            f"{path}: non-uniform sampling: interval {dt[k]:.6g} s before line {k + 3} differs from the "
            f"mean {mean_dt:.6g} s by more than {SAMPLE_JITTER_TOL:.0%} (a gap or jitter in the recording)"
        )
    rate = _agree(_check_fs(1.0 / mean_dt, f"{path} time column"), fs, "rate of the time column")
    t0 = datetime.fromtimestamp(t[0], UTC) if absolute[0] else None
    return Recording(
        axes=axes,
        fs_hz=rate,
        source=path.name,
        t_rel_s=t - t[0],
        t0=t0,
        t0_rel_s=0.0 if absolute[0] else float(t[0]),
    )


def load_recording(
    path: Path,
    *,
    key: str | None = None,
    label: str | None = None,
    channel: str | None = None,
    fs: float | None = None,
) -> Recording:
    """Load a ``.npz`` or ``.csv`` vibration recording; ``ValueError`` with the reason otherwise."""
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if fs is not None:
        fs = _check_fs(fs, "--fs")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return load_npz(path, key=key, label=label, channel=channel, fs=fs)
    if suffix == ".csv":
        if key or label or channel:
            raise ValueError("--key/--label/--channel apply to .npz files only")
        return load_csv(path, fs=fs)
    raise ValueError(f"{path}: unsupported file type {suffix or '(none)'!r}; expected .npz or .csv")


# ---------------------------------------------------------------------------------------------
# Windows
# ---------------------------------------------------------------------------------------------
def default_window(fs_hz: float) -> int:
    """Default window length in samples: 4096 when ``fs_hz >= 5000`` Hz, else 256."""
    return LONG_WINDOW if fs_hz >= LONG_WINDOW_MIN_FS_HZ else SHORT_WINDOW


@dataclass(frozen=True)
class WindowOut:
    """One window: its index, first-sample offset, UTC time of the first sample and axis data (g)."""

    index: int
    offset: int
    ts: datetime
    data: dict[str, np.ndarray]


def window_count(n: int, window: int, hop: int) -> int:
    """Number of full windows: ``floor((n - window) / hop) + 1`` for ``n >= window``, else 0."""
    return 0 if n < window else (n - window) // hop + 1


def iter_windows(
    rec: Recording, window: int, hop: int, start: datetime, limit: int | None = None
) -> Iterator[WindowOut]:
    """Windows ``[offset, offset + window)`` with ``offset = i * hop``, stamped
    ``ts = start + offset / fs`` s (time column: ``start + t_rel[offset]`` s)."""
    if not MIN_WINDOW <= window <= MAX_WINDOW:
        raise ValueError(f"window must be {MIN_WINDOW}..{MAX_WINDOW} samples, got {window}")
    if hop < 1:
        raise ValueError(f"hop must be >= 1 sample, got {hop}")
    count = window_count(rec.n, window, hop)
    if count == 0:
        raise ValueError(
            f"{rec.source}: {rec.n} samples is shorter than one window of {window}; use a smaller --window"
        )
    if limit is not None:
        count = min(count, limit)
    for i in range(count):
        off = i * hop
        sec = float(rec.t_rel_s[off]) if rec.t_rel_s is not None else off / rec.fs_hz
        data = {a: arr[off : off + window] for a, arr in rec.axes.items()}
        yield WindowOut(index=i, offset=off, ts=start + timedelta(seconds=sec), data=data)


def event_id(asset_id: str, source: str, ts: datetime) -> str:
    """Deterministic 32-hex id: UUID5 of ``asset|source|ts`` (replaying a file twice gives the same ids)."""
    return uuid.uuid5(_NAMESPACE, f"{asset_id}|{source}|{ts.isoformat()}").hex


def batch_payload(asset_id: str, w: WindowOut, fs_hz: float, source: str) -> dict[str, Any]:
    """The validated ``VibrationBatchIn`` body for one window (samples rounded to 1e-7 g)."""
    body: dict[str, Any] = {"motor_id": asset_id, "ts": w.ts.isoformat()}
    for a, arr in w.data.items():
        body[a] = np.round(arr, DECIMALS).tolist()
    body["fs_hz"] = fs_hz
    body["event_id"] = event_id(asset_id, source, w.ts)
    VibrationBatchIn.model_validate(body)
    return body


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
            msg = SimpleReadingIn.model_validate(item)
        except (ValueError, ValidationError) as exc:
            out.append((line, _reason(exc)))
            continue
        assert msg.timestamp is not None
        item["timestamp"] = msg.timestamp.isoformat()
        item["event_id"] = event_id(asset_id, path.name, msg.timestamp)
        out.append((line, item))
    return out


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
    return str(exc)


# ---------------------------------------------------------------------------------------------
# Senders
# ---------------------------------------------------------------------------------------------
class SendError(Exception):
    pass


class MqttSender:
    """Publishes with QoS 1 (waits for the broker's PUBACK); reconnects on the next send after a failure."""

    def __init__(self, broker: BrokerAddress) -> None:
        self.broker = broker
        self.client: aiomqtt.Client | None = None

    async def send(self, topic: str, path: str, body: dict[str, Any]) -> None:
        del path
        try:
            if self.client is None:
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
            await self.client.publish(topic, json.dumps(body, allow_nan=False), qos=1)
        except aiomqtt.MqttError as exc:
            await self.close()
            raise SendError(f"MQTT {self.broker.host}:{self.broker.port}: {exc}") from None

    async def close(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.__aexit__(None, None, None), MQTT_TIMEOUT_S)


class HttpSender:
    """POSTs to the gateway; retries HTTP 429/503 and connection errors (0.2, 0.4, 0.8 s back-off)."""

    def __init__(
        self, api: str, transport: httpx.AsyncBaseTransport | None = None, api_key: str | None = None
    ) -> None:
        self.api = api.rstrip("/")
        self.client = httpx.AsyncClient(
            timeout=HTTP_TIMEOUT_S, transport=transport, headers=auth_headers(api_key)
        )

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


# ---------------------------------------------------------------------------------------------
# Arguments and main loop
# ---------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="replay.py",
        description="Replay a recorded .npz/.csv file through the live pipeline with its original "
        "timestamps and sample rate.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("file", type=Path, help=".npz or .csv recording")
    p.add_argument("--kind", choices=("vibration", "simple"), default="vibration")
    p.add_argument("--key", default=None, help="npz array <label>__<channel>, e.g. IR007_12k__DE")
    p.add_argument("--label", default=None, help="npz label, e.g. IR007_12k (with --channel)")
    p.add_argument("--channel", default=None, help=f"npz channel (default {DEFAULT_CHANNEL})")
    p.add_argument("--fs", type=float, default=None, help="sample rate, Hz, when the file does not give it")
    p.add_argument(
        "--window", type=int, default=None, help="samples per window (default 4096 at >= 5 kHz, else 256)"
    )
    p.add_argument("--hop", type=int, default=None, help="samples between window starts (default: --window)")
    p.add_argument(
        "--start",
        default=None,
        help="ISO-8601 time of the first sample (default: the file's own time column, else its mtime)",
    )
    p.add_argument("--via", choices=("mqtt", "http"), default="mqtt")
    p.add_argument("--mqtt", default=os.environ.get("MQTT_URL") or "mqtt://localhost:1883", help="broker URL")
    p.add_argument("--api", default="http://localhost:8000", help="gateway base URL (--via http)")
    p.add_argument("--api-key", default=None, help=API_KEY_HELP)
    p.add_argument("--speed", default="max", help="'max' or a real-time factor, e.g. 10")
    p.add_argument("--asset_id", default="motor_01")
    p.add_argument("--limit", type=int, default=None, help="send at most N windows/readings")
    return p


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse and cross-check arguments (exit 2 with a precise message on bad input)."""
    p = build_parser()
    a = p.parse_args(argv)
    if not topics.valid_asset_id(a.asset_id):
        p.error(f"--asset_id {a.asset_id!r} must match {topics.ASSET_ID_PATTERN}")
    if a.speed == "max":
        a.factor = None
    else:
        try:
            a.factor = float(a.speed)
        except ValueError:
            a.factor = -1.0
        if not (math.isfinite(a.factor) and a.factor > 0):
            p.error(f"--speed must be 'max' or a number > 0, got {a.speed!r}")
    if a.limit is not None and a.limit < 1:
        p.error(f"--limit must be >= 1, got {a.limit}")
    if a.window is not None and not MIN_WINDOW <= a.window <= MAX_WINDOW:
        p.error(f"--window must be in {MIN_WINDOW}..{MAX_WINDOW}, got {a.window}")
    if a.hop is not None and a.hop < 1:
        p.error(f"--hop must be >= 1, got {a.hop}")
    if a.start is not None:
        try:
            start = datetime.fromisoformat(a.start.replace("Z", "+00:00"))
        except ValueError:
            p.error(f"--start {a.start!r} is not an ISO-8601 time")
        a.start = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
    if a.via == "http":
        if not a.api.startswith(("http://", "https://")):
            p.error(f"--api must be an http:// or https:// URL, got {a.api!r}")
    else:
        try:
            # No user in the URL: MQTT_USERNAME/MQTT_PASSWORD, else make run's development device user.
            a.broker = with_device_login(parse_mqtt_url(a.mqtt), Settings().data_dir)
        except ValueError as exc:
            p.error(f"--mqtt: {exc}")
    if a.kind == "simple" and (a.key or a.label or a.channel or a.window or a.hop or a.fs):
        p.error("--key/--label/--channel/--window/--hop/--fs apply to --kind vibration only")
    return a


def file_start(path: Path) -> datetime:
    """Default time of the first sample: the file's modification time, UTC (microseconds dropped)."""
    return datetime.fromtimestamp(int(path.stat().st_mtime), UTC)


@dataclass
class Stats:
    total: int
    sent: int = 0
    failed: int = 0
    lines: list[str] = field(default_factory=list)


class Pacer:
    """``--speed``: item with data time ``ts`` is due ``(ts - ts_first) / factor`` s after the first."""

    def __init__(self, factor: float | None) -> None:
        self.factor = factor
        self.t_first: datetime | None = None
        self.mono0 = 0.0

    async def wait(self, ts: datetime) -> None:
        if self.factor is None:
            return
        if self.t_first is None:
            self.t_first, self.mono0 = ts, time.monotonic()
            return
        due = self.mono0 + (ts - self.t_first).total_seconds() / self.factor
        if (d := due - time.monotonic()) > 0:
            await asyncio.sleep(d)


def _rms_text(data: dict[str, np.ndarray]) -> str:
    r = [float(np.sqrt(np.mean(v * v))) for v in data.values()]
    return f"{r[0]:.3f}g" if len(r) == 1 else "(" + ", ".join(f"{v:.3f}" for v in r) + ")g"


async def replay_vibration(
    a: argparse.Namespace, rec: Recording, sender: MqttSender | HttpSender, stats: Stats
) -> None:
    window = a.window or default_window(rec.fs_hz)
    hop = a.hop or window
    start = a.start or rec.t0 or (file_start(a.file) + timedelta(seconds=rec.t0_rel_s))
    stats.total = min(window_count(rec.n, window, hop), a.limit or 10**12)
    topic = topics.raw_vibration(a.asset_id)
    pacer = Pacer(a.factor)
    for w in iter_windows(rec, window, hop, start, a.limit):
        await pacer.wait(w.ts)
        ts_txt = w.ts.isoformat().replace("+00:00", "Z")
        try:
            body = batch_payload(a.asset_id, w, rec.fs_hz, rec.source)
            await sender.send(topic, BATCH_PATH, body)
        except (ValueError, ValidationError, SendError) as exc:
            stats.failed += 1
            say(f"[FAIL] window {w.index + 1}/{stats.total} ts={ts_txt} | {_reason(exc)}")
            continue
        stats.sent += 1
        say(f"[OK] window {w.index + 1}/{stats.total} ts={ts_txt} fs={rec.fs_hz:g}Hz rms={_rms_text(w.data)}")


async def replay_simple(
    a: argparse.Namespace,
    rows: list[tuple[int, dict[str, Any] | str]],
    sender: MqttSender | HttpSender,
    stats: Stats,
) -> None:
    rows = rows[: a.limit] if a.limit else rows
    stats.total = len(rows)
    topic = topics.raw_simple(a.asset_id)
    pacer = Pacer(a.factor)
    for i, (line, item) in enumerate(rows, start=1):
        if isinstance(item, str):
            stats.failed += 1
            say(f"[FAIL] reading {i}/{stats.total} (line {line}) | {item}")
            continue
        ts = datetime.fromisoformat(item["timestamp"])
        await pacer.wait(ts)
        try:
            await sender.send(topic, SIMPLE_PATH, item)
        except SendError as exc:
            stats.failed += 1
            say(f"[FAIL] reading {i}/{stats.total} (line {line}) | {exc}")
            continue
        stats.sent += 1
        say(
            f"[OK] reading {i}/{stats.total} ts={item['timestamp'].replace('+00:00', 'Z')} "
            f"V={item['voltage_v']:.1f}V I={item['current_a']:.2f}A PF={item['power_factor']:.2f} "
            f"vib={item['vibration_g']:.3f}g"
        )


async def amain(
    argv: Sequence[str] | None = None, *, http_transport: httpx.AsyncBaseTransport | None = None
) -> int:
    """Run the replay inside an existing event loop (tests); returns the exit code."""
    try:
        a = parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        if a.kind == "simple":
            rows = load_simple_csv(a.file, a.asset_id)
            rec = None
        else:
            rec = load_recording(a.file, key=a.key, label=a.label, channel=a.channel, fs=a.fs)
            window = a.window or default_window(rec.fs_hz)
            if rec.n < window:
                raise ValueError(
                    f"{rec.source}: {rec.n} samples is shorter than one window of {window}; "
                    "use a smaller --window"
                )
    except ValueError as exc:
        say(f"[ERROR] {exc}")
        return EXIT_BAD_INPUT
    target = f"{a.api}" if a.via == "http" else f"{a.mqtt}"
    sender: MqttSender | HttpSender = (
        HttpSender(a.api, http_transport, script_api_key(a.api_key))
        if a.via == "http"
        else MqttSender(a.broker)
    )
    stats = Stats(total=0)
    unit = "readings" if a.kind == "simple" else "windows"
    if rec is not None:
        axes = "".join(rec.axes)
        say(
            f"[START] {rec.source}: {rec.n} samples ({axes}) at {rec.fs_hz:g} Hz, "
            f"window {a.window or default_window(rec.fs_hz)}, asset {a.asset_id} -> {a.via} {target}, "
            f"speed {a.speed}"
        )
    else:
        say(
            f"[START] {a.file.name}: {len(rows)} readings, asset {a.asset_id} -> {a.via} {target}, "
            f"speed {a.speed}"
        )
    try:
        if rec is not None:
            await replay_vibration(a, rec, sender, stats)
        else:
            await replay_simple(a, rows, sender, stats)
    finally:
        await sender.close()
        say(f"[COMPLETE] Sent {stats.sent} {unit}, {stats.failed} failed")
    return EXIT_FAILED if stats.failed else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return asyncio.run(amain(argv))
    except KeyboardInterrupt:
        say("[INTERRUPTED] stopped by Ctrl+C")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
