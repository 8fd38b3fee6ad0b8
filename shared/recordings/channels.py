"""Map a snapshot's channels to assets, and cut a snapshot into windows.

Channel specs (``--channel`` on the command line):

* ``CH=asset``: channel ``CH`` is the (single) ``x`` axis of ``asset``;
* ``CH``: channel ``CH`` is the ``x`` axis of the default asset;
* ``C1,C2=asset`` / ``CX,CY,CZ=asset``: two or three channels are the axes of one sensor, taken as
  ``x``, ``y``, ``z`` in this order (e.g. FEMTO ``0,1=bearing1``: horizontal -> x, vertical -> y);
* ``CH:AXIS,...=asset``: each channel names its axis (``x``, ``y`` or ``z``), e.g. ``1:z=pump`` or
  ``0:y,1:z=pump``; either every channel of a spec names its axis or none does.

Without specs, signals named ``x``, ``y`` and/or ``z`` (any non-empty subset; or a single signal of any
name, as ``x``) belong to the default asset; any other set of channels must be mapped explicitly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

import numpy as np

from shared import topics
from shared.recordings.model import AXES, Snapshot

SPEC_FORMS = "CHANNEL=ASSET, CHANNEL, C1,C2[,C3]=ASSET (-> x, y, z) or CH:AXIS[,CH:AXIS...]=ASSET"


def _parse_spec(spec: str, default_asset: str) -> tuple[dict[str, str], str]:
    """``({axis: channel} in x, y, z order, asset)`` of one spec; ``ValueError`` naming the spec."""
    chans, sep, asset = spec.partition("=")
    asset = asset.strip() if sep else default_asset
    items = [c.strip() for c in chans.split(",")]
    if not 1 <= len(items) <= len(AXES) or "" in items or (sep and not asset):
        raise ValueError(f"--channel {spec!r}: expected {SPEC_FORMS} (1 to 3 channels per asset)")
    if not topics.valid_asset_id(asset):
        raise ValueError(f"--channel {spec!r}: asset id {asset!r} must match {topics.ASSET_ID_PATTERN}")
    named = [":" in c for c in items]
    if any(named) and not all(named):
        raise ValueError(f"--channel {spec!r}: give every channel its axis (CH:AXIS) or none")
    pairs = [tuple(p.strip() for p in c.rsplit(":", 1)) for c in items] if all(named) else None
    axes = [a for _, a in pairs] if pairs else list(AXES[: len(items)])
    names = [c for c, _ in pairs] if pairs else items
    bad = [a for a in axes if a not in AXES]
    if bad or len(set(axes)) != len(axes):
        raise ValueError(f"--channel {spec!r}: axes must be distinct names among x, y, z, got {axes}")
    if "" in names or len(set(names)) != len(names):
        raise ValueError(f"--channel {spec!r}: a channel name is empty or given twice")
    mapping = dict(zip(axes, names, strict=True))
    return {a: mapping[a] for a in AXES if a in mapping}, asset


def _default(snapshot: Snapshot, default_asset: str) -> dict[str, dict[str, np.ndarray]]:
    names = list(snapshot.signals)
    if set(names) <= set(AXES):
        return {default_asset: {a: snapshot.signals[a] for a in AXES if a in names}}
    if len(names) == 1:
        return {default_asset: {"x": snapshot.signals[names[0]]}}
    raise ValueError(
        f"{snapshot.source} has channels {', '.join(names)}: map them to assets with "
        f"--channel {names[0]}=ASSET [--channel {names[1]}=ASSET2 ...] "
        "(or C1,C2[,C3]=ASSET for the x, y[, z] axes of one sensor)"
    )


def channel_map(
    specs: Sequence[str], snapshot: Snapshot, default_asset: str
) -> dict[str, dict[str, np.ndarray]]:
    """The snapshot's samples per asset: ``{asset: {axis: samples}}`` (g), axes in x, y, z order.

    ``specs`` as in the module docstring; raises ``ValueError`` for a malformed spec, an unknown
    channel (listing the snapshot's channels), an asset named twice, an invalid asset id, or a
    multi-channel snapshot without specs.
    """
    if not specs:
        return _default(snapshot, default_asset)
    out: dict[str, dict[str, np.ndarray]] = {}
    for spec in specs:
        axes, asset = _parse_spec(spec, default_asset)
        missing = [n for n in axes.values() if n not in snapshot.signals]
        if missing:
            raise ValueError(
                f"{snapshot.source}: no channel {missing[0]!r} (--channel {spec!r}); "
                f"channels: {', '.join(snapshot.signals)}"
            )
        if asset in out:
            raise ValueError(f"--channel {spec!r}: asset {asset!r} is mapped twice")
        out[asset] = {axis: snapshot.signals[n] for axis, n in axes.items()}
    return out


class SnapshotWindow(NamedTuple):
    """One window: ``ts`` UTC time of its first sample, ``offset`` its first sample index, ``data``
    axis -> samples (g, views into the snapshot)."""

    ts: datetime
    offset: int
    data: dict[str, np.ndarray]


def windows(
    snapshot: Snapshot, *, window: int, hop: int, axes: Mapping[str, np.ndarray] | None = None
) -> Iterator[SnapshotWindow]:
    """Windows ``[offset, offset + window)`` for ``offset = 0, hop, 2 hop, ...`` while they fit.

    ``ts = snapshot.start + offset / snapshot.fs_hz`` seconds. ``axes`` (default: the snapshot's
    signals) are the samples to cut, e.g. one asset's entry of :func:`channel_map`; they must have
    the snapshot's length. A trailing part shorter than a window is not yielded.
    """
    if window < 1 or hop < 1:
        raise ValueError(f"window and hop must be >= 1 sample, got window={window}, hop={hop}")
    data = dict(snapshot.signals if axes is None else axes)
    n = snapshot.n
    if any(arr.shape[0] != n for arr in data.values()):
        raise ValueError(f"{snapshot.source}: axes must have the snapshot's {n} samples")
    for offset in range(0, n - window + 1, hop):
        ts = snapshot.start + timedelta(seconds=offset / snapshot.fs_hz)
        yield SnapshotWindow(ts, offset, {a: arr[offset : offset + window] for a, arr in data.items()})


def window_count(n: int, window: int, hop: int) -> int:
    """Number of full windows in ``n`` samples: ``floor((n - window) / hop) + 1``, 0 if ``n < window``."""
    return 0 if n < window else (n - window) // hop + 1
