"""Per-asset feature state (pure: no I/O). Turns normalised events into feature vectors.

- every reading → one *legacy* vector (6 features, time-aware over the data's own timestamps), once
  ``legacy_warmup`` readings of the last hour are known;
- every reading, once ``batch_window`` readings are buffered and every ``batch_step`` readings after
  that → one *batch* vector (mean, std, peak-to-peak, RMS of the 4 signals over the window = 16).
  Defaults: window :data:`BATCH_WINDOW` = 8 readings, step 1 (a vector per reading, so a fault is
  scored on the reading it arrives with). The guide's 5-minute calibration at 1 Hz (300 readings)
  then gives 293 overlapping windows, of which 37 are non-overlapping (independent): enough for the
  calibrator (30 needed), which sets the forest's threshold on held-out windows it did not fit;
- every vibration window → one *vibration* vector (11 time-domain features per axis) with the
  spectral indicators (velocity RMS mm/s, order amplitudes, envelope at bearing defect frequencies
  when the asset config allows) as ``extras``; a window of 512 samples or more also carries the same
  features of each of its frames (``frames``: :mod:`shared.features.frames`, e.g. 20 frames of 128
  samples for 2,560), the rows the autoencoder is calibrated and scored on.

Exactly once per event: each asset remembers its newest :data:`RECENT_IDS` reading event ids, and a
reading seen before (a re-delivery) changes nothing and gives no vector (:meth:`FeatureEngine.on_reading`),
so a redelivered reading neither counts twice in the rolling statistics nor yields a second vector.
The state is a function of the readings taken, so replaying them (:meth:`FeatureEngine.replay`, the
features service's journal) restores it after a restart.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from shared.features import (
    BATCH_FEATURE_NAMES,
    LEGACY_FEATURE_NAMES,
    LegacyFeatureState,
    axes_features,
    batch_features,
    defect_orders,
    spectral_features,
)
from shared.features.frames import frame_rule, split_frames
from shared.messages import AssetConfig, FeatureVector, Reading, Window


def config_bearing_orders(cfg: AssetConfig | None) -> dict[str, float] | None:
    """Defect-frequency orders from the asset config: explicit orders win, else the geometry's
    (:func:`~shared.features.envelope.defect_orders`: ``bsf`` is the ball defect line, twice the spin),
    else None."""
    if cfg is None or cfg.bearing is None:
        return None
    b = cfg.bearing
    explicit = {"bpfo": b.bpfo_order, "bpfi": b.bpfi_order, "bsf": b.bsf_order, "ftf": b.ftf_order}
    if all(v is not None for v in explicit.values()):
        return {k: float(v) for k, v in explicit.items() if v is not None}
    if b.n_balls and b.ball_diameter_mm and b.pitch_diameter_mm:
        geo = defect_orders(b.n_balls, b.ball_diameter_mm, b.pitch_diameter_mm, b.contact_angle_deg)
        return {k: float(explicit[k] if explicit[k] is not None else geo[k]) for k in geo}
    return None


#: Default readings per batch window (``BATCH_WINDOW``): 8 s at 1 Hz, 0.8 s at 10 Hz.
BATCH_WINDOW = 8
#: Default readings between two batch vectors (1: one vector per reading).
BATCH_STEP = 1

#: Reading event ids remembered per asset to recognise re-deliveries.
RECENT_IDS = 5_000


@dataclass
class AssetFeatures:
    legacy: LegacyFeatureState = field(default_factory=LegacyFeatureState)
    buffer: deque[tuple[float, float, float, float]] = field(default_factory=deque)
    since_batch: int = 0
    #: Newest reading event ids taken (oldest first), at most :data:`RECENT_IDS`.
    recent: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def seen(self, event_id: str) -> bool:
        return event_id in self.recent

    def took(self, event_id: str) -> None:
        self.recent[event_id] = None
        if len(self.recent) > RECENT_IDS:
            self.recent.popitem(last=False)


class FeatureEngine:
    def __init__(
        self, batch_window: int = BATCH_WINDOW, batch_step: int = BATCH_STEP, legacy_warmup: int = 30
    ) -> None:
        if batch_window < 2 or batch_step < 1 or legacy_warmup < 0:
            raise ValueError("batch_window must be >= 2, batch_step >= 1 and legacy_warmup >= 0")
        self.legacy_warmup = legacy_warmup
        self.batch_window = batch_window
        self.batch_step = batch_step
        self.assets: dict[str, AssetFeatures] = {}
        self.configs: dict[str, AssetConfig] = {}

    def _asset(self, asset_id: str) -> AssetFeatures:
        st = self.assets.get(asset_id)
        if st is None:
            st = self.assets[asset_id] = AssetFeatures(buffer=deque(maxlen=self.batch_window))
        return st

    def forget(self, asset_id: str) -> None:
        self.assets.pop(asset_id, None)

    def is_duplicate(self, r: Reading) -> bool:
        """True when this reading's event was taken before (a re-delivery)."""
        st = self.assets.get(r.asset_id)
        return st is not None and st.seen(r.event_id)

    def replay(self, readings: Iterable[Reading]) -> int:
        """Take readings without publishing (restoring the state); returns how many were new."""
        n = 0
        for r in readings:
            if not self.is_duplicate(r):
                self.on_reading(r)
                n += 1
        return n

    def on_reading(self, r: Reading) -> list[FeatureVector]:
        """The vectors of a new reading; none (and no state change) for a re-delivered one. Raises
        ``ValueError`` (state unchanged) for a reading older than the asset's newest."""
        st = self._asset(r.asset_id)
        if st.seen(r.event_id):
            return []
        legacy = st.legacy.update(r.ts.timestamp(), r.voltage_v, r.current_a, r.power_factor, r.vibration_g)
        st.took(r.event_id)
        out: list[FeatureVector] = []
        # The 1 h rolling mean and the 10-reading statistics are noisy until enough history exists
        # (after a start or a gap of an hour); those vectors are not published.
        if st.legacy.n_horizon >= self.legacy_warmup:
            out.append(
                FeatureVector(
                    event_id=r.event_id,
                    asset_id=r.asset_id,
                    ts=r.ts,
                    kind="legacy",
                    names=list(LEGACY_FEATURE_NAMES),
                    values=[float(v) for v in legacy],
                )
            )
        st.buffer.append((r.voltage_v, r.current_a, r.power_factor, r.vibration_g))
        st.since_batch += 1
        if len(st.buffer) == self.batch_window and st.since_batch >= self.batch_step:
            st.since_batch = 0
            window = np.asarray(st.buffer, dtype=np.float64).T  # [4, n]
            values = batch_features(window)
            out.append(
                FeatureVector(
                    event_id=r.event_id,
                    asset_id=r.asset_id,
                    ts=r.ts,
                    kind="batch",
                    names=list(BATCH_FEATURE_NAMES),
                    values=[float(v) for v in values],
                )
            )
        return out

    def on_window(self, w: Window) -> FeatureVector:
        """The window's vibration vector: its features (``values``), spectral ``extras`` and, when the
        window splits into more than one frame (:func:`shared.features.frames.frame_rule`), the same
        features of every frame (``frames``, ``frame_samples``)."""
        axes = [np.asarray(getattr(w, a), dtype=np.float64) for a in w.axes]
        named = dict(zip(w.axes, axes, strict=True))
        names, values = axes_features(named)
        rows, samples = window_frames(named, names)
        cfg = self.configs.get(w.asset_id)
        signals = np.stack(axes)
        orders = config_bearing_orders(cfg)
        rpm = cfg.rpm if cfg else None
        spec = spectral_features(signals, w.fs_hz, rpm=rpm, bearing_orders=orders if rpm else None)
        axis_rms = np.sqrt(np.mean(signals**2, axis=-1))
        return FeatureVector(
            event_id=w.event_id,
            asset_id=w.asset_id,
            ts=w.ts,
            kind="vibration",
            names=list(names),
            values=[float(v) for v in values],
            extras=reduce_axes(spec, axis_rms),
            frames=rows,
            frame_samples=samples,
        )


def window_frames(
    signals: dict[str, NDArray[np.float64]], names: list[str]
) -> tuple[list[list[float]] | None, int | None]:
    """``(rows, frame_samples)``: the time-domain features of each frame of a window (axis → samples),
    one row per frame in ``names`` order; ``(None, None)`` when the window is one frame."""
    rule = frame_rule(len(next(iter(signals.values()))))
    if not rule.split:
        return None, None
    frame_names, per_frame = axes_features({a: split_frames(x) for a, x in signals.items()})
    if frame_names != names:
        raise ValueError(f"frame features {frame_names[:3]}... differ from the window's {names[:3]}...")
    return [[float(v) for v in row] for row in per_frame], rule.samples


def reduce_axes(spec: dict[str, np.ndarray], axis_rms: np.ndarray) -> dict[str, float]:
    """One number per indicator across axes: the maximum (ISO 20816 judges the direction with the
    largest vibration), except the dominant frequency, taken from the axis with the largest RMS."""
    loudest = int(np.argmax(axis_rms))
    out: dict[str, float] = {}
    for name, arr in spec.items():
        a = np.atleast_1d(np.asarray(arr, dtype=np.float64))
        out[name] = float(a[loudest] if name == "dominant_freq_hz" else np.max(a))
    return {k: v for k, v in out.items() if np.isfinite(v)}
