"""``.wav`` recordings: PCM integer (8/16/24/32-bit) and IEEE float (32/64-bit), any channel count.

Channels are named ``"0"``, ``"1"``, ... in file order. Scale (g):

* integer PCM: full scale is ±``scale_g`` g, i.e. ``g = value / 2**(bits - 1) * scale_g`` (8-bit
  samples are unsigned with 128 as zero); ``scale_g`` is **required**;
* float: ``g = value * scale_g`` (``value`` itself when ``scale_g`` is not given: 1.0 = 1 g).

Integer PCM is read with the standard library's :mod:`wave` where it can (plain ``WAVE_FORMAT_PCM``);
float and ``WAVE_FORMAT_EXTENSIBLE`` files are read from the RIFF chunks directly.
"""

from __future__ import annotations

import io
import struct
import wave
from dataclasses import dataclass

import numpy as np

from shared.recordings.model import Part, check_signals, rate

PCM, FLOAT, EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
_INT_DTYPES = {8: np.dtype("u1"), 16: np.dtype("<i2"), 32: np.dtype("<i4")}
_FLOAT_DTYPES = {32: np.dtype("<f4"), 64: np.dtype("<f8")}


@dataclass(frozen=True)
class WavFormat:
    """The ``fmt `` chunk: sample kind (``PCM`` or ``FLOAT``), channels, rate (Hz), bits per sample."""

    kind: int
    channels: int
    fs_hz: int
    bits: int
    plain: bool  # WAVE_FORMAT_PCM / _IEEE_FLOAT, not WAVE_FORMAT_EXTENSIBLE


def riff_chunks(data: bytes, source: str) -> dict[bytes, bytes]:
    """The first chunk of each id in a RIFF/WAVE file (a truncated last chunk keeps what is there)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{source}: not a RIFF/WAVE file")
    chunks: dict[bytes, bytes] = {}
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        chunks.setdefault(cid, data[pos + 8 : pos + 8 + size])
        pos += 8 + size + (size & 1)
    for need in (b"fmt ", b"data"):
        if need not in chunks:
            raise ValueError(f"{source}: no {need.decode().strip()!r} chunk")
    return chunks


def wav_format(fmt: bytes, source: str) -> WavFormat:
    """Decode a ``fmt `` chunk; ``ValueError`` for formats other than PCM and IEEE float."""
    if len(fmt) < 16:
        raise ValueError(f"{source}: fmt chunk too short ({len(fmt)} bytes)")
    tag, channels, fs, _, _, bits = struct.unpack("<HHIIHH", fmt[:16])
    kind = tag
    if tag == EXTENSIBLE:
        if len(fmt) < 40:
            raise ValueError(f"{source}: WAVE_FORMAT_EXTENSIBLE fmt chunk too short ({len(fmt)} bytes)")
        kind = int.from_bytes(fmt[24:26], "little")  # first two bytes of the sub-format GUID
    if kind not in (PCM, FLOAT):
        raise ValueError(
            f"{source}: WAV sample format 0x{kind:04x} is not supported (PCM integer or float only)"
        )
    dtypes = (_INT_DTYPES | {24: None}) if kind == PCM else _FLOAT_DTYPES
    if bits not in dtypes:
        raise ValueError(f"{source}: {bits}-bit {'integer' if kind == PCM else 'float'} WAV is not supported")
    if channels < 1:
        raise ValueError(f"{source}: WAV with {channels} channels")
    return WavFormat(kind, channels, fs, bits, plain=tag != EXTENSIBLE)


def _pcm_frames(data: bytes, chunk: bytes, fmt: WavFormat) -> bytes:
    """Sample bytes of a PCM file: through :mod:`wave` when it reads the file, else the data chunk."""
    if fmt.plain:
        try:
            with wave.open(io.BytesIO(data)) as w:
                return w.readframes(w.getnframes())
        except (wave.Error, EOFError):
            pass  # e.g. a truncated data chunk: the RIFF reader keeps the whole frames there are
    return chunk


def _samples(raw: bytes, fmt: WavFormat, source: str) -> np.ndarray:
    """``(frames, channels)`` float64 sample values (integer counts, or the float values)."""
    width = fmt.bits // 8
    frames = len(raw) // (width * fmt.channels)
    raw = raw[: frames * width * fmt.channels]
    if frames == 0:
        raise ValueError(f"{source}: the WAV file holds no samples")
    if fmt.kind == FLOAT:
        flat = np.frombuffer(raw, dtype=_FLOAT_DTYPES[fmt.bits]).astype(np.float64)
    elif fmt.bits == 24:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        flat = ((b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8).astype(np.float64)
    elif fmt.bits == 8:
        flat = np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0
    else:
        flat = np.frombuffer(raw, dtype=_INT_DTYPES[fmt.bits]).astype(np.float64)
    return flat.reshape(frames, fmt.channels)


def read_wav(data: bytes, source: str, *, fs_hz: float | None, scale_g: float | None) -> list[Part]:
    """The single part of a WAV file, in g (see the module docstring for the scale)."""
    chunks = riff_chunks(data, source)
    fmt = wav_format(chunks[b"fmt "], source)
    if fmt.kind == PCM and scale_g is None:
        raise ValueError(
            f"{source}: {fmt.bits}-bit integer WAV: give the full scale in g with --scale "
            "(full scale = ±scale g)"
        )
    raw = _pcm_frames(data, chunks[b"data"], fmt) if fmt.kind == PCM else chunks[b"data"]
    values = _samples(raw, fmt, source)
    if fmt.kind == PCM:
        values *= (scale_g or 1.0) / float(2 ** (fmt.bits - 1))
    elif scale_g is not None:
        values *= scale_g
    signals = check_signals({str(c): values[:, c] for c in range(fmt.channels)}, source)
    return [Part(signals, rate(float(fmt.fs_hz), fs_hz, source, "WAV header's sample rate"))]
