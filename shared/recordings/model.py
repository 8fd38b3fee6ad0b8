"""Data model of a loaded recording and the checks every format shares.

A :class:`Part` is what a format reader returns for one piece of one file (a whole file, one segment
of a gapped CSV, one row of a FEMTO npz); the loader turns parts into :class:`Snapshot` objects by
giving each its UTC start time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from shared.messages import FS_MAX_HZ, FS_MIN_HZ

#: Axis names of one sensor (it may have any 1, 2 or 3 of them).
AXES = ("x", "y", "z")
#: A file's own sample rate and the caller's ``fs_hz`` must agree to this fraction.
FS_AGREE_TOL = 0.01


@dataclass(frozen=True, eq=False)
class Snapshot:
    """One uniformly sampled burst of a recording.

    Attributes
    ----------
    source : str
        Unique name used in messages and event ids: the file name (relative path inside a given
        directory, ``archive:member`` inside an archive) plus ``[array key]``, ``[acc k]`` or
        ``[lines a-b]`` when the file holds several snapshots or arrays.
    start : datetime
        UTC time of the first sample.
    fs_hz : float
        Sample rate, Hz.
    signals : dict[str, numpy.ndarray]
        Name -> 1-D float64 samples in g, all of equal length: ``x`` [``y``, ``z``] for axis data,
        else column or channel names, or ``"0"``, ``"1"``, ... by channel index.

    Snapshots compare by identity (their arrays have no single truth value).
    """

    source: str
    start: datetime
    fs_hz: float
    signals: dict[str, np.ndarray] = field(repr=False)

    @property
    def n(self) -> int:
        """Samples per signal."""
        return int(next(iter(self.signals.values())).shape[0])

    @property
    def duration_s(self) -> float:
        """Length of the snapshot, s: ``n / fs_hz``."""
        return self.n / self.fs_hz


@dataclass(frozen=True)
class Part:
    """One piece of a file before it has a start time.

    Attributes
    ----------
    signals : dict[str, numpy.ndarray]
        As :attr:`Snapshot.signals`.
    fs_hz : float
        Sample rate, Hz.
    tag : str
        Suffix of the snapshot's source, e.g. ``"[IR007_12k__DE]"``; ``""`` for a whole file.
    rel_s : float or None
        Time of the first sample in seconds on the file's own relative clock (a relative CSV time
        column, FEMTO ``t_s``); ``None`` when the file has no time information.
    absolute : datetime or None
        UTC time of the first sample from the file's own absolute time column, else ``None``.
    """

    signals: dict[str, np.ndarray]
    fs_hz: float
    tag: str = ""
    rel_s: float | None = None
    absolute: datetime | None = None


def check_fs(fs: Any, what: str) -> float:
    """``fs`` as float if it is a finite sample rate within ``FS_MIN_HZ..FS_MAX_HZ`` Hz, else ValueError."""
    ok = isinstance(fs, int | float | np.integer | np.floating) and not isinstance(fs, bool)
    if not (ok and math.isfinite(float(fs)) and FS_MIN_HZ <= float(fs) <= FS_MAX_HZ):
        raise ValueError(f"{what}: sample rate must be in {FS_MIN_HZ:g}..{FS_MAX_HZ:g} Hz, got {fs!r}")
    return float(fs)


def agree(fs_file: float, fs_arg: float | None, what: str) -> float:
    """The file's sample rate (Hz), checked against the caller's ``fs_arg`` (1 % tolerance)."""
    if fs_arg is not None and abs(fs_arg - fs_file) > FS_AGREE_TOL * fs_file:
        raise ValueError(f"--fs {fs_arg:g} Hz contradicts the {what} ({fs_file:g} Hz)")
    return fs_file


def rate(fs_file: float | None, fs_arg: float | None, source: str, what: str) -> float:
    """The sample rate to use (Hz): the file's own (checked against ``fs_arg``), else ``fs_arg``."""
    if fs_file is not None:
        return agree(check_fs(fs_file, f"{source} {what}"), fs_arg, what)
    if fs_arg is None:
        raise ValueError(f"{source}: the file gives no sample rate; give it with --fs")
    return fs_arg


def _as_signal(value: Any, name: str, source: str) -> np.ndarray:
    try:
        arr = np.ascontiguousarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{source}: signal {name} is not numeric") from None
    if arr.ndim != 1:
        raise ValueError(f"{source}: signal {name} must be 1-D, has shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(f"{source}: signal {name} has a non-finite value at sample {int(bad[0])}")
    return arr


def check_signals(arrays: Mapping[str, Any], source: str) -> dict[str, np.ndarray]:
    """Validate signals: 1-D, numeric, finite, equal length, not empty (names: any, e.g. x, y and/or z).

    Returns float64 arrays in the order given; raises ``ValueError`` naming ``source`` otherwise.
    """
    if not arrays:
        raise ValueError(f"{source}: no signals")
    out = {name: _as_signal(value, name, source) for name, value in arrays.items()}
    lengths = {name: arr.shape[0] for name, arr in out.items()}
    first = next(iter(lengths))
    for name, n in lengths.items():
        if n != lengths[first]:
            raise ValueError(
                f"{source}: signal lengths differ: {first} has {lengths[first]} samples, {name} has {n}"
            )
    if lengths[first] == 0:
        raise ValueError(f"{source}: the recording is empty")
    return out
