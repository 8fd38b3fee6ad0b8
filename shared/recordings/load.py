"""Load snapshots from files, directories and archives, each with its UTC start time."""

from __future__ import annotations

import contextlib
import math
import tarfile
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from shared.recordings.archive import Entry, entries, format_of
from shared.recordings.formats import ReadOptions, read_parts
from shared.recordings.model import Snapshot, check_fs
from shared.recordings.times import DEFAULT_GAP_FACTOR, TimeRule, base_time, time_rule


def _options(
    fs_hz: float | None, key: str | None, label: str | None, scale_g: float | None, gap_factor: float
) -> ReadOptions:
    if fs_hz is not None:
        fs_hz = check_fs(fs_hz, "--fs")
    if scale_g is not None and not (math.isfinite(scale_g) and scale_g > 0):
        raise ValueError(f"--scale must be a number of g > 0, got {scale_g!r}")
    if not (math.isfinite(gap_factor) and gap_factor > 1):
        raise ValueError(f"gap_factor must be a number > 1 (median sample intervals), got {gap_factor!r}")
    return ReadOptions(fs_hz=fs_hz, key=key, label=label, scale_g=scale_g, gap_factor=gap_factor)


def _read(entry: Entry) -> bytes:
    try:
        return entry.read()
    except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, zlib.error) as exc:
        raise ValueError(f"{entry.source}: cannot read the file ({exc})") from None


def file_snapshots(entry: Entry, k: int, rule: TimeRule, opts: ReadOptions) -> list[Snapshot]:
    """The snapshots of file number ``k`` (0-based, in file order).

    Each part starts at ``base + (rel_s - rel_s of the file's first part)`` seconds, where ``base``
    is the UTC time of the file's first sample (:func:`~shared.recordings.times.base_time`).
    """
    kind = format_of(entry.name)
    if kind is None or kind == "archive":
        raise ValueError(f"{entry.source}: not a recording file")
    parts = read_parts(kind, _read(entry), entry.source, opts)
    base = base_time(rule, entry, k, parts[0].absolute)
    rel0 = parts[0].rel_s or 0.0
    return [
        Snapshot(
            source=entry.source + p.tag,
            start=base + timedelta(seconds=0.0 if p.rel_s is None else p.rel_s - rel0),
            fs_hz=p.fs_hz,
            signals=p.signals,
        )
        for p in parts
    ]


def iter_snapshots(
    paths: Sequence[Path],
    *,
    fs_hz: float | None = None,
    time_from: str = "auto",
    name_pattern: str | None = None,
    interval_s: float | None = None,
    start: datetime | None = None,
    key: str | None = None,
    label: str | None = None,
    scale_g: float | None = None,
    gap_factor: float = DEFAULT_GAP_FACTOR,
) -> Iterator[Snapshot]:
    """Snapshots file by file, in file order (sorted by source), one file in memory at a time.

    Same arguments as :func:`load_snapshots`; unlike it, the result is not sorted by start time
    across files. Archives stay open until the iterator is exhausted or closed.
    """
    opts = _options(fs_hz, key, label, scale_g, gap_factor)
    with contextlib.ExitStack() as stack:
        found = entries(paths, stack)
        rule = time_rule(time_from, name_pattern, interval_s, start, len(found))
        for k, entry in enumerate(found):
            yield from file_snapshots(entry, k, rule, opts)


def load_snapshots(
    paths: Sequence[Path],
    *,
    fs_hz: float | None = None,
    time_from: str = "auto",
    name_pattern: str | None = None,
    interval_s: float | None = None,
    start: datetime | None = None,
    key: str | None = None,
    label: str | None = None,
    scale_g: float | None = None,
    gap_factor: float = DEFAULT_GAP_FACTOR,
) -> list[Snapshot]:
    """Every snapshot under ``paths``, sorted by ``(start, source)``.

    Parameters
    ----------
    paths : sequence of Path
        Files, directories (read recursively) and archives (.zip, .tar, .tar.gz).
    fs_hz : float, optional
        Sample rate, Hz: required where the file gives none (CSV without ``t``, text rig files);
        elsewhere it must agree with the file's own rate to 1 %.
    time_from : {"auto", "column", "name", "interval", "mtime"}
        Where each file's start time comes from (see :mod:`shared.recordings.times`).
    name_pattern : str, optional
        ``strptime`` pattern for the file name without its format suffix, e.g. ``%Y.%m.%d.%H.%M.%S``.
    interval_s : float, optional
        Seconds between the starts of consecutive files (with ``start``).
    start : datetime, optional
        UTC time of the first file's first sample (naive = UTC).
    key, label : str, optional
        CWRU-layout npz: one array ``<label>__<channel>`` or all channels of one label.
    scale_g : float, optional
        g at integer full scale for .wav files (required for integer WAVs), multiplier for float
        WAVs; for a FEMTO npz it must equal the file's own ``scale_g`` (g per count).
    gap_factor : float
        A CSV time-column interval longer than this many median intervals starts a new snapshot.

    Raises
    ------
    ValueError
        For any bad input, with the file (and line/column) and the reason.
    """
    found = iter_snapshots(
        paths,
        fs_hz=fs_hz,
        time_from=time_from,
        name_pattern=name_pattern,
        interval_s=interval_s,
        start=start,
        key=key,
        label=label,
        scale_g=scale_g,
        gap_factor=gap_factor,
    )
    return sorted(found, key=lambda s: (s.start, s.source))
