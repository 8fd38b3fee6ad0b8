"""Text recordings: ``.csv`` with a header, and the header-less ASCII layout of classic test rigs.

**CSV**: a header row, then one row per sample. Every column except ``t`` is a signal in g:
``x`` [``y``, ``z``] for one sensor's axes, or any other names (``DE``, ``FE``, ``bearing1`` ...).
The optional time column ``t`` holds ISO-8601 times or numbers in seconds (>= 1e9: Unix epoch,
smaller: relative). With ``t`` the sample rate is ``1 / mean interval`` and the file is split into
one part per segment at gaps (an interval > ``gap_factor`` × the median interval); without ``t``
the caller's ``fs_hz`` is required.

**ASCII rig layout** (NASA/IMS bearing data, files named like ``2003.10.22.12.06.24``): numbers
separated by spaces or tabs, no header, one column per channel (4 or 8 for IMS), one row per sample.
Channels are named ``"0"``, ``"1"``, ... The file holds no rate: ``fs_hz`` is required (IMS: 20 kHz).
"""

from __future__ import annotations

import csv
import io
import warnings
from datetime import datetime, timedelta

import numpy as np

from shared.recordings.model import Part, check_signals, rate
from shared.recordings.times import EPOCH, parse_time, segments

#: Column names read case-insensitively: the time column and the axes.
RESERVED = ("t", "x", "y", "z")


def _text(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{source}: not a text file ({exc})") from None


def _csv_rows(data: bytes, source: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and ``(line number, fields)`` of every non-blank data row.

    Header names ``t``, ``x``, ``y``, ``z`` are read in lower case, others as written.
    """
    try:
        rows = [(i, r) for i, r in enumerate(csv.reader(io.StringIO(_text(data, source))), start=1)]
    except csv.Error as exc:
        raise ValueError(f"{source}: cannot read as CSV ({exc})") from None
    rows = [(i, r) for i, r in rows if r and any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f"{source}: empty file")
    header = [c.strip().lower() if c.strip().lower() in RESERVED else c.strip() for c in rows[0][1]]
    if len(set(header)) != len(header) or "" in header:
        raise ValueError(f"{source}: empty or duplicate column names in header {header}")
    body = rows[1:]
    for line, r in body:
        if len(r) != len(header):
            raise ValueError(f"{source}: line {line} has {len(r)} fields, the header has {len(header)}")
    if not body:
        raise ValueError(f"{source}: no data rows after the header")
    return header, body


def _column(body: list[tuple[int, list[str]]], j: int, name: str, source: str) -> np.ndarray:
    out = np.empty(len(body), dtype=np.float64)
    for i, (line, r) in enumerate(body):
        try:
            out[i] = float(r[j])
        except ValueError:
            raise ValueError(f"{source}: line {line}, column {name}: {r[j]!r} is not a number") from None
    return out


def _times(body: list[tuple[int, list[str]]], j: int, source: str) -> tuple[np.ndarray, datetime | None]:
    """Column ``t`` as seconds after its first value, and the UTC time of that value if absolute."""
    values, kinds = [], set()
    for line, r in body:
        try:
            micro, absolute = parse_time(r[j])
        except ValueError as exc:
            raise ValueError(f"{source}: line {line}, column t: {exc}") from None
        values.append(micro)
        kinds.add(absolute)
    if len(kinds) > 1:
        raise ValueError(f"{source}: column t mixes absolute times and relative seconds")
    first = EPOCH + timedelta(microseconds=values[0]) if kinds == {True} else None
    return (np.asarray(values, dtype=np.int64) - values[0]) / 1e6, first


def read_csv(data: bytes, source: str, *, fs_hz: float | None, gap_factor: float) -> list[Part]:
    """Parts of a CSV recording: one, or one per gap-free segment of its time column."""
    header, body = _csv_rows(data, source)
    names = [h for h in header if h != "t"]
    if not names:
        raise ValueError(f"{source}: no signal columns besides t (header: {header})")
    signals = check_signals({n: _column(body, header.index(n), n, source) for n in names}, source)
    if "t" not in header:
        if fs_hz is None:
            raise ValueError(f"{source}: no time column 't'; give the sample rate with --fs")
        return [Part(signals, fs_hz)]
    t, first = _times(body, header.index("t"), source)
    cuts, mean_dt = segments(t, gap_factor, source, body[0][0])
    fs = rate(1.0 / mean_dt, fs_hz, source, "rate of the time column")
    parts = []
    for seg in cuts:
        tag = "" if len(cuts) == 1 else f"[lines {body[seg.start][0]}-{body[seg.stop - 1][0]}]"
        t0 = float(t[seg.start])
        when = None if first is None else first + timedelta(seconds=t0)
        parts.append(Part({n: s[seg] for n, s in signals.items()}, fs, tag=tag, rel_s=t0, absolute=when))
    return parts


def _ascii_error(text: str, source: str) -> None:
    """Raise the precise error (line and column) for a text file that ``numpy.loadtxt`` refused."""
    rows = [(i, line.split()) for i, line in enumerate(text.splitlines(), start=1)]
    rows = [(i, r) for i, r in rows if r]
    if not rows:
        raise ValueError(f"{source}: empty file")
    width = len(rows[0][1])
    for line, r in rows:
        if len(r) != width:
            raise ValueError(f"{source}: line {line} has {len(r)} columns, line {rows[0][0]} has {width}")
    for c in range(width):
        _column(rows, c, str(c), source)
    raise ValueError(f"{source}: not a whitespace-separated table of numbers")


def read_ascii(data: bytes, source: str, *, fs_hz: float | None) -> list[Part]:
    """The single part of a header-less, whitespace-separated numeric file (channels ``"0"``, ...)."""
    if fs_hz is None:
        raise ValueError(f"{source}: a text file without header gives no sample rate; give it with --fs")
    text = _text(data, source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an empty file warns; make it an error like the rest
            values = np.loadtxt(io.StringIO(text), dtype=np.float64, ndmin=2, comments=None)
    except (ValueError, UserWarning):
        _ascii_error(text, source)
        raise
    width = values.shape[1]
    return [Part(check_signals({str(c): values[:, c] for c in range(width)}, source), fs_hz)]
