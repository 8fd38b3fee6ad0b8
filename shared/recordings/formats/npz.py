"""``.npz`` recordings in three layouts.

* **CWRU** (``../shared/datasets/cwru``): arrays ``<label>__<channel>`` (single-axis, g) and
  ``meta_json`` with ``fs_hz`` per label. ``key`` picks one array (signal named by its channel),
  ``label`` all channels of one label; a file with one label needs neither.
* **generic**: ``x`` [``y``, ``z``] (g, 1-D, equal length) and ``fs_hz`` (scalar, Hz), or ``fs_hz=``.
* **FEMTO/PRONOSTIA** (``../shared/datasets/femto_pronostia``): ``acc`` integer ``(n, m, c)`` counts,
  g = counts × ``scale_g``; ``t_s`` start of each of the n snapshots in seconds after the first;
  ``fs_hz`` (25.6 kHz). One part per snapshot, channels ``"0"``, ``"1"``, ... Snapshots are never
  joined: they are 0.1 s bursts 10 s apart.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np

from shared.recordings.model import Part, check_signals, rate

AXES = ("x", "y", "z")
#: Relative tolerance between a caller's ``scale_g`` and a FEMTO file's own.
SCALE_TOL = 1e-9


def read_npz(
    data: bytes,
    source: str,
    *,
    fs_hz: float | None,
    key: str | None,
    label: str | None,
    scale_g: float | None,
) -> list[Part]:
    """Parts of an npz file of any supported layout; ``ValueError`` naming ``source`` otherwise."""
    try:
        z = np.load(io.BytesIO(data), allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{source}: not a readable .npz file ({exc})") from None
    with z:
        names = list(z.files)
        keyed = sorted(k for k in names if "__" in k)
        if "acc" in names and "t_s" in names:
            if key or label:
                raise ValueError(f"{source}: --key/--label apply to CWRU-layout .npz files, not FEMTO")
            return _femto(z, source, fs_hz, scale_g)
        if scale_g is not None:
            raise ValueError(f"{source}: --scale applies to .wav files only (this .npz is in g)")
        if keyed and "x" not in names:
            return [_cwru(z, keyed, source, fs_hz, key, label)]
        if key or label:
            raise ValueError(f"{source}: key/label need <label>__<channel> arrays; found {names}")
        if "x" not in names:
            raise ValueError(
                f"{source}: no 'x' array, no <label>__<channel> arrays and no FEMTO acc/t_s (found {names})"
            )
        signals = check_signals({a: z[a] for a in AXES if a in names}, source)
        fs_file = _scalar(z, "fs_hz", source) if "fs_hz" in names else None
        return [Part(signals, rate(fs_file, fs_hz, source, "file's fs_hz"))]


def _scalar(z: Any, name: str, source: str) -> float:
    try:
        return float(np.asarray(z[name]).reshape(()))
    except (TypeError, ValueError):
        raise ValueError(f"{source}: {name} must be a single number") from None


def _meta(z: Any, source: str) -> dict[str, Any]:
    if "meta_json" not in z.files:
        return {}
    try:
        meta = json.loads(str(z["meta_json"]))
    except (ValueError, TypeError):
        raise ValueError(f"{source}: meta_json is not valid JSON") from None
    return meta if isinstance(meta, dict) else {}


def _choose(keyed: list[str], source: str, key: str | None, label: str | None) -> tuple[str, list[str]]:
    """``(label, arrays)`` selected by ``key`` (one array) or ``label`` (all its channels)."""
    shown = ", ".join(keyed[:60]) + (" ..." if len(keyed) > 60 else "")
    labels = sorted({k.split("__", 1)[0] for k in keyed})
    if key is not None:
        if label is not None:
            raise ValueError("give --key or --label, not both")
        if key not in keyed:
            raise ValueError(f"{source}: no array {key!r}; available: {shown}")
        return key.split("__", 1)[0], [key]
    if label is None:
        if len(labels) != 1:
            raise ValueError(
                f"{source}: holds {len(labels)} recordings; choose one with --key or --label "
                f"(available: {shown})"
            )
        label = labels[0]
    if label not in labels:
        raise ValueError(f"{source}: no label {label!r}; available: {', '.join(labels)}")
    return label, [k for k in keyed if k.split("__", 1)[0] == label]


def _cwru(
    z: Any, keyed: list[str], source: str, fs_hz: float | None, key: str | None, label: str | None
) -> Part:
    lab, arrays = _choose(keyed, source, key, label)
    tag = f"[{key}]" if key is not None else f"[{lab}]"
    signals = check_signals({k.split("__", 1)[1]: z[k] for k in arrays}, source + tag)
    entry = _meta(z, source).get(lab)
    fs_file: Any = entry.get("fs_hz") if isinstance(entry, dict) else None
    if fs_file is None and fs_hz is None:
        raise ValueError(f"{source}: meta_json gives no fs_hz for {lab!r}; give the sample rate with --fs")
    return Part(signals, rate(fs_file, fs_hz, source, f"meta_json sample rate of {lab!r}"), tag=tag)


def _femto_rate(z: Any, source: str, fs_hz: float | None) -> float:
    fs_file: Any = _scalar(z, "fs_hz", source) if "fs_hz" in z.files else _meta(z, source).get("fs_hz")
    return rate(fs_file, fs_hz, source, "file's fs_hz")


def _femto(z: Any, source: str, fs_hz: float | None, scale_g: float | None) -> list[Part]:
    acc, t_s = np.asarray(z["acc"]), np.asarray(z["t_s"], dtype=np.float64)
    if acc.ndim != 3 or not np.issubdtype(acc.dtype, np.integer):
        raise ValueError(f"{source}: acc must be integer counts of shape (snapshots, samples, channels)")
    if t_s.shape != (acc.shape[0],):
        raise ValueError(f"{source}: t_s has {t_s.size} values for {acc.shape[0]} snapshots")
    if not np.all(np.isfinite(t_s)):
        raise ValueError(
            f"{source}: t_s has a non-finite value at snapshot {int(np.argmin(np.isfinite(t_s)))}"
        )
    if acc.shape[0] > 1 and np.any(np.diff(t_s) <= 0):
        k = int(np.flatnonzero(np.diff(t_s) <= 0)[0])
        raise ValueError(f"{source}: t_s must increase; it does not at snapshot {k + 1}")
    if "scale_g" not in z.files:
        raise ValueError(f"{source}: FEMTO layout without scale_g (g per count)")
    scale = _scalar(z, "scale_g", source)
    if scale_g is not None and abs(scale_g - scale) > SCALE_TOL * abs(scale):
        raise ValueError(
            f"{source}: --scale {scale_g:g} contradicts the file's scale_g {scale:g} g per count"
        )
    fs = _femto_rate(z, source, fs_hz)
    parts = []
    for k in range(acc.shape[0]):
        g = acc[k].astype(np.float64) * scale
        where = f"{source}[acc {k}]"
        signals = check_signals({str(c): g[:, c] for c in range(g.shape[1])}, where)
        parts.append(Part(signals, fs, tag=f"[acc {k}]", rel_s=float(t_s[k])))
    return parts
