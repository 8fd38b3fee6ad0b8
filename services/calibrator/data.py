"""Collect calibration data from the store (the only I/O here is through the Store interface).

A calibration asks for the data up to a time ``end`` (data time; the gateway sends the time of the
request unless the client names one). :func:`wait_for_store` first waits until the store holds it: the
historian may still be writing a burst the gateway accepted just before (measured before this wait:
a calibration right after 1,000 readings found 0). The look-back window then ends at the asset's
newest stored data point not after ``end``, not at the wall clock, so replayed history and accelerated
timestamps calibrate the same way as live data.

Calibration learns the running machine only: :func:`collect` classifies the readings and windows with the
operating-state classifier (:func:`shared.health.operating_state.classify_series`, the rule the features
service marks vectors with) and leaves the stopped and starting ones out, saying how many and why
(:class:`OperatingExclusion`, in ``Collected.operating``); the minimums then apply to the running data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from shared.features import BATCH_FEATURE_NAMES, LEGACY_FEATURE_NAMES, LegacyFeatureState, batch_features
from shared.features.batch import sliding_windows
from shared.learning.fault_signature import FaultSignature
from shared.learning.screening import Screening, screen, screen_windows
from shared.messages import SIGNALS
from shared.messages.operating import OperatingSettings
from shared.records import READINGS, features_measurement, point_to_features, point_to_frames
from shared.store import Point, Store
from shared.store.identity import EVENT_SLOTS

from .running import OperatingExclusion, reading_states, running_windows
from .store_wait import POLL_S as POLL_S
from .store_wait import WATCHED as WATCHED
from .store_wait import StoreProgress as StoreProgress
from .store_wait import StoreWait, newest_ns, window_layout
from .store_wait import wait_for_store as wait_for_store

DATASET_FOR_KIND = {"legacy": "legacy", "batch": "batch", "vibration": "autoencoder"}


@dataclass
class Collected:
    asset_id: str
    lookback_minutes: float
    end_ns: int | None
    counts: dict[str, int] = field(default_factory=dict)  # feature kind -> vectors found
    datasets: dict[str, tuple[NDArray[np.float64], list[str]]] = field(default_factory=dict)
    signal_baseline: dict[str, dict[str, float]] = field(default_factory=dict)
    #: Raw readings [n, 4] (voltage V, current A, power factor, vibration g), for validation.
    signals: NDArray[np.float64] | None = None
    #: Data time covered by the readings, seconds.
    reading_span_s: float = 0.0
    #: Data time of each row of ``signals``, seconds (Unix).
    reading_ts: NDArray[np.float64] | None = None
    #: The screenings of the data (readings, vibration windows), set by :func:`screen_collected`.
    screenings: list[Screening] = field(default_factory=list)
    #: How the wait for the store ended (set by the job; ``None`` when it did not wait).
    store_wait: StoreWait | None = None
    #: The frame rows of the autoencoder's windows, when its vectors carry frames (long windows).
    frames: Frames | None = None
    #: Envelope amplitudes and SNRs at bearing defect frequencies (``env_*_amp``/``env_*_snr`` extras, when
    #: the asset config gives rpm and geometry), one value per row of the autoencoder's window matrix
    #: (NaN: a vector without it).
    vibration_extras: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    #: The fault-signature judgement of the vibration windows (set by the job's validation).
    fault_signature: FaultSignature | None = None
    #: Sample rate (Hz) and length (samples) of the newest vibration window (``None``: no window).
    window_layout: tuple[float, int] | None = None
    #: The readings / windows left out because the asset was stopped or starting (:func:`collect`).
    operating: list[OperatingExclusion] = field(default_factory=list)

    @property
    def operating_excluded_readings(self) -> int:
        return sum(e.excluded for e in self.operating if e.what == "readings")

    @property
    def readings(self) -> int:
        return self.counts.get("readings", 0)

    @property
    def windows(self) -> int:
        return self.counts.get("vibration", 0)

    @property
    def autoencoder_rows(self) -> int:
        """Rows the autoencoder would train on: the frames of the windows, or the windows themselves."""
        return len(self.frames.rows) if self.frames is not None else self.windows


@dataclass
class Frames:
    """Frame rows of vibration windows (:mod:`shared.features.frames`): ``rows [m, d]`` in the window
    matrix's feature order, ``window [m]`` the row of each frame's window in that matrix, ``samples``
    per frame and the newest window's frames per window (``per_window``)."""

    rows: NDArray[np.float64]
    window: NDArray[np.int64]
    samples: int
    per_window: int

    def without(self, flagged: NDArray[np.bool_]) -> Frames:
        """These frames less the ``flagged`` rows (a mask over ``rows``)."""
        keep = ~flagged
        return Frames(self.rows[keep], self.window[keep], self.samples, self.per_window)


def _matrix(points: list[Point]) -> tuple[NDArray[np.float64], list[str]] | None:
    """Stack feature vectors that share the newest vector's feature names (older layouts are skipped)."""
    if not points:
        return None
    names, _, _ = point_to_features(points[-1])
    rows = []
    for p in points:
        n, v, _ = point_to_features(p)
        if n == names:
            rows.append(v)
    return np.asarray(rows, dtype=np.float64), list(names)


def _layout(point: Point) -> tuple[list[str], int | None]:
    """A vibration vector's layout: its feature names and frame length (``None``: no frames)."""
    got = point_to_frames(point)
    return point_to_features(point)[0], None if got is None else got[0]


def same_layout(points: list[Point]) -> list[Point]:
    """The vibration vectors with the newest one's layout (feature names and frame length)."""
    newest = _layout(points[-1])
    return [p for p in points if _layout(p) == newest]


def envelope_extras(points: list[Point]) -> dict[str, NDArray[np.float64]]:
    """The vectors' ``env_*_amp`` (g) and ``env_*_snr`` (1) extras (envelope amplitude and SNR at a bearing
    defect frequency), one value per vector (NaN where a vector lacks one); empty when none carries any."""
    extras = [point_to_features(p)[2] for p in points]
    keys = sorted({k for e in extras for k in e if k.startswith("env_") and k.endswith(("_amp", "_snr"))})
    return {k: np.asarray([e.get(k, np.nan) for e in extras], dtype=np.float64) for k in keys}


def _vibration(points: list[Point]) -> tuple[tuple[NDArray[np.float64], list[str]] | None, Frames | None]:
    """The window matrix of the vibration vectors with the newest vector's layout (feature names and
    frame length; older layouts are skipped), and their frame rows when they carry frames."""
    if not points:
        return None, None
    same = same_layout(points)
    names, samples = _layout(points[-1])
    windows = np.asarray([point_to_features(p)[1] for p in same], dtype=np.float64)
    if samples is None:
        return (windows, names), None
    per = [np.asarray(point_to_frames(p)[1], dtype=np.float64) for p in same]  # type: ignore[index]
    owner = np.concatenate([np.full(len(f), i, dtype=np.int64) for i, f in enumerate(per)])
    return (windows, names), Frames(np.concatenate(per), owner, samples, len(per[-1]))


def collect(
    store: Store,
    asset_id: str,
    lookback_minutes: float,
    end_ns: int | None = None,
    operating: OperatingSettings | None = None,
) -> Collected:
    """The asset's running data in the ``lookback_minutes`` before its newest stored point not after
    ``end_ns`` (to the microsecond: an event at ``end`` is stored up to 999 ns later; ``None``: its newest
    point). Readings, and the legacy/batch vectors of their times, taken while the asset was stopped or
    starting are left out, and so are such vibration windows (:func:`reading_states`,
    :func:`running_windows`, per the asset's
    ``operating`` settings; ``None``: relative levels); ``counts`` count what is kept."""
    end = newest_ns(store, asset_id, None if end_ns is None else end_ns + EVENT_SLOTS)
    out = Collected(asset_id, lookback_minutes, end)
    if end is None:
        return out
    start = end - int(lookback_minutes * 60e9)
    readings = store.query(READINGS, asset_id, start_ns=start, end_ns=end + 1)
    if readings:
        out.reading_span_s = (readings[-1].ts_ns - readings[0].ts_ns) / 1e9
    complete = [p for p in readings if all(s in p.fields for s in SIGNALS)]
    signals = np.asarray([[float(p.fields[s]) for s in SIGNALS] for p in complete], dtype=np.float64)
    reading_ts = np.asarray([p.ts_ns / 1e9 for p in complete], dtype=np.float64)
    states = reading_states(out.operating, signals, reading_ts, operating)
    running = states == "running"
    not_running_us = {p.ts_ns // 1000 for p, ok in zip(complete, running, strict=True) if not ok}
    out.counts["readings"] = len(readings) - len(not_running_us)
    _features(
        out,
        store,
        start,
        end,
        not_running_us,
        lambda pts: running_windows(out.operating, pts, reading_ts, states, operating),
    )
    if running.any():
        out.signals, out.reading_ts = signals[running], reading_ts[running]
        out.signal_baseline = signal_baseline(out.signals)
    return out


def _features(
    out: Collected,
    store: Store,
    start: int,
    end: int,
    not_running_us: set[int],
    running_only: Callable[[list[Point]], list[Point]],
) -> None:
    """The feature vectors of the look-back (in ``out``): legacy/batch vectors at the times (µs) of
    readings taken while not running are left out, vibration vectors pass ``running_only``."""
    for kind in ("legacy", "batch", "vibration"):
        pts = store.query(features_measurement(kind), out.asset_id, start_ns=start, end_ns=end + 1)
        if kind == "vibration":
            pts = running_only(pts)
        elif not_running_us:
            pts = [p for p in pts if p.ts_ns // 1000 not in not_running_us]
        out.counts[kind] = len(pts)
        mat, frames = _vibration(pts) if kind == "vibration" else (_matrix(pts), None)
        if kind == "vibration" and pts:
            out.vibration_extras = envelope_extras(same_layout(pts))
        if mat is not None:
            out.datasets[DATASET_FOR_KIND[kind]] = mat
        if frames is not None:
            out.frames = frames
    if out.windows:
        out.window_layout = window_layout(store, out.asset_id, start, end + 1)


def signal_baseline(signals: NDArray[np.float64]) -> dict[str, dict[str, float]]:
    """Mean, population std, min and max of each reading signal (its unit: V, A, 1, g)."""
    return {
        s: {
            "mean": float(signals[:, j].mean()),
            "std": float(signals[:, j].std()),
            "min": float(signals[:, j].min()),
            "max": float(signals[:, j].max()),
        }
        for j, s in enumerate(SIGNALS)
    }


def reading_features(
    ts: NDArray[np.float64], signals: NDArray[np.float64], batch_window: int, legacy_warmup: int
) -> dict[str, tuple[NDArray[np.float64], list[str]]]:
    """The legacy and batch feature matrices of readings in time order, computed as the features service
    does (:class:`shared.features.engine.FeatureEngine`, step 1): a legacy vector per reading once
    ``legacy_warmup`` readings are in its 1 h horizon, a batch vector per full window of ``batch_window``."""
    state = LegacyFeatureState()
    legacy = []
    for t, row in zip(ts, signals, strict=True):
        vec = state.update(float(t), *(float(v) for v in row))
        if state.n_horizon >= legacy_warmup:
            legacy.append(vec)
    out = {}
    if legacy:
        out["legacy"] = (np.asarray(legacy), list(LEGACY_FEATURE_NAMES))
    if signals.shape[0] >= batch_window:
        out["batch"] = (batch_features(sliding_windows(signals, batch_window)), list(BATCH_FEATURE_NAMES))
    return out


def screen_collected(
    c: Collected,
    datasets: dict[str, tuple[NDArray[np.float64], list[str]]],
    *,
    sigma: float,
    max_fraction: float,
    batch_window: int,
    legacy_warmup: int = 30,
) -> list[Screening]:
    """Screen the data the chosen ``datasets`` are trained on (see :mod:`shared.learning.screening`):
    the raw readings for the legacy/batch forests, the vibration feature rows for the autoencoder.

    Returns the screenings (check ``ok``: more than ``max_fraction`` flagged means reject). Where some
    rows are flagged but not too many, they are excluded here, in place: flagged readings leave
    ``c.signals`` and ``c.signal_baseline``, and the legacy/batch datasets are recomputed from the
    remaining readings (a stored vector's rolling statistics still hold the faulty readings; likewise,
    first, when :func:`collect` left out readings while the asset was not running); flagged
    vibration windows leave the autoencoder dataset. Windows with frames (``c.frames``) are screened as
    the frame rows the autoencoder trains on (``frames_per_window``: the running median spans the frames
    of 21 windows) and flagged frames leave ``c.frames``: screened as whole windows, 5 of the first 57
    snapshots of FEMTO Bearing1_2 (its first 10 % of life) stand out at ×1.2-1.5 of their neighbours' RMS
    (9-21 % of the windows: rejected), 1.3-1.7 % of their frames (accepted).
    """
    out: list[Screening] = []
    if c.operating_excluded_readings and c.signals is not None and c.reading_ts is not None:
        # a stored vector's rolling statistics (1 h mean, batch window) still hold the excluded readings
        rebuilt = reading_features(c.reading_ts, c.signals, batch_window, legacy_warmup)
        for kind in ("legacy", "batch"):
            if kind in datasets and kind in rebuilt:
                datasets[kind] = c.datasets[kind] = rebuilt[kind]
    if ("legacy" in datasets or "batch" in datasets) and c.signals is not None and c.signals.shape[0] >= 2:
        res = screen(c.signals, list(SIGNALS), what="readings", sigma=sigma, max_fraction=max_fraction)
        out.append(res)
        if res.ok and res.n_flagged and c.reading_ts is not None:
            keep = ~res.flagged
            c.signals, c.reading_ts = c.signals[keep], c.reading_ts[keep]
            c.signal_baseline = signal_baseline(c.signals)
            rebuilt = reading_features(c.reading_ts, c.signals, batch_window, legacy_warmup)
            for kind in ("legacy", "batch"):
                if kind in datasets and kind in rebuilt:
                    datasets[kind] = c.datasets[kind] = rebuilt[kind]
    if "autoencoder" in datasets:
        out.append(_screen_vibration(c, datasets, sigma, max_fraction))
    c.screenings = out
    return out


def _screen_vibration(
    c: Collected,
    datasets: dict[str, tuple[NDArray[np.float64], list[str]]],
    sigma: float,
    max_fraction: float,
) -> Screening:
    """Screen the autoencoder's rows (see :func:`screen_collected`) and exclude the flagged ones."""
    X, names = datasets["autoencoder"]
    if c.frames is not None:
        res = screen_windows(
            c.frames.rows,
            names,
            what="vibration frames",
            sigma=sigma,
            max_fraction=max_fraction,
            frames_per_window=c.frames.per_window,
        )
        if res.ok and res.n_flagged:
            c.frames = c.frames.without(res.flagged)
        return res
    res = screen_windows(X, names, sigma=sigma, max_fraction=max_fraction)
    if res.ok and res.n_flagged:
        datasets["autoencoder"] = c.datasets["autoencoder"] = (X[~res.flagged], names)
        c.vibration_extras = {k: v[~res.flagged] for k, v in c.vibration_extras.items()}
    return res


def frame_datasets(c: Collected, datasets: dict[str, tuple[NDArray[np.float64], list[str]]]) -> None:
    """After the checks: the autoencoder trains on the frame rows the screening kept (in place; nothing
    changes for windows without frames)."""
    if "autoencoder" in datasets and c.frames is not None:
        datasets["autoencoder"] = (c.frames.rows, datasets["autoencoder"][1])
