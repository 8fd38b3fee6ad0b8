"""Recordings as users have them: files, directories and archives of snapshot data (reading files is
the only I/O; no network, no MQTT).

* :func:`load_snapshots` / :func:`iter_snapshots`: ``.npz`` (CWRU, generic x/y/z, FEMTO), ``.csv``
  (split at gaps in its time column), ``.wav`` (PCM integer and float) and the header-less ASCII
  layout of classic bearing test rigs (NASA/IMS), from a file, several files, a directory (recursive)
  or a ``.zip``/``.tar``/``.tar.gz`` archive; each snapshot with its UTC start time (from a time
  column, the file name, a fixed interval or the file's mtime: :mod:`shared.recordings.times`).
* :func:`channel_map`: the channels of a multi-channel snapshot to one or several assets.
* :func:`windows`: a snapshot cut into windows stamped ``start + offset / fs``.

Every bad input is a ``ValueError`` naming the file (and line/column) and the reason.
"""

from shared.recordings.channels import SnapshotWindow, channel_map, window_count, windows
from shared.recordings.load import iter_snapshots, load_snapshots
from shared.recordings.model import AXES, Snapshot
from shared.recordings.times import DEFAULT_GAP_FACTOR, EPOCH_MIN_S, SAMPLE_JITTER_TOL, TIME_FROM

__all__ = [
    "AXES",
    "DEFAULT_GAP_FACTOR",
    "EPOCH_MIN_S",
    "SAMPLE_JITTER_TOL",
    "TIME_FROM",
    "Snapshot",
    "SnapshotWindow",
    "channel_map",
    "iter_snapshots",
    "load_snapshots",
    "window_count",
    "windows",
]
