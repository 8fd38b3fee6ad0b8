"""Format readers: each turns the bytes of one file into :class:`~shared.recordings.model.Part` objects.

:func:`read_parts` picks the reader by the file's suffix (see :func:`shared.recordings.archive.format_of`).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.recordings.formats.npz import read_npz
from shared.recordings.formats.text import read_ascii, read_csv
from shared.recordings.formats.wav import read_wav
from shared.recordings.model import Part


@dataclass(frozen=True)
class ReadOptions:
    """Caller's options for every reader: ``fs_hz`` (Hz), CWRU ``key``/``label``, ``scale_g`` (g at full
    scale / per count), ``gap_factor`` (a time-column interval longer than this many median intervals
    splits the file)."""

    fs_hz: float | None
    key: str | None
    label: str | None
    scale_g: float | None
    gap_factor: float


def read_parts(kind: str, data: bytes, source: str, opts: ReadOptions) -> list[Part]:
    """The parts of one file of format ``kind`` (``npz``, ``csv``, ``wav``, ``ascii``)."""
    if kind != "npz" and (opts.key or opts.label):
        raise ValueError(f"{source}: --key/--label apply to CWRU-layout .npz files only")
    if kind in ("csv", "ascii") and opts.scale_g is not None:
        raise ValueError(f"{source}: --scale applies to .wav files only (text files are read in g)")
    if kind == "npz":
        return read_npz(data, source, fs_hz=opts.fs_hz, key=opts.key, label=opts.label, scale_g=opts.scale_g)
    if kind == "csv":
        return read_csv(data, source, fs_hz=opts.fs_hz, gap_factor=opts.gap_factor)
    if kind == "wav":
        return read_wav(data, source, fs_hz=opts.fs_hz, scale_g=opts.scale_g)
    if kind == "ascii":
        return read_ascii(data, source, fs_hz=opts.fs_hz)
    raise ValueError(f"{source}: unsupported format {kind!r}")


__all__ = ["ReadOptions", "read_parts"]
