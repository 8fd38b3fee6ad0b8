"""Calibration validation on real bearings: healthy early life accepted, whole fault records refused.

Run: ``PYTHONPATH=. .venv/bin/python -m benchmarks.bench_calibration_real [--datasets ../shared/datasets]``
(``make bench`` section ``real``). Offline, pure functions, no services: each set goes through what
the calibrator judges vibration windows with — :func:`shared.learning.screening.screen_windows` (energy
outliers: reject above 5 %, else exclude) and then :func:`shared.learning.fault_signature.fault_signature`
on the kept windows (median excess kurtosis per axis, median envelope SNR at the bearing defect
frequencies). Features as the features service computes them: 11 time-domain features per axis
(:func:`shared.features.vibration.axes_features`) and the envelope SNR extras, the maximum over the
axes (``shared.features.engine.reduce_axes``), with the bearing orders from geometry
(:func:`shared.features.envelope.defect_orders`) and the record's rpm, as an asset config with rpm and
bearing geometry gives them.

* **FEMTO/PRONOSTIA learning set** (healthy; every one must be accepted): the 6 bearings, as one
  2-axis asset (``x`` = horizontal, ``y`` = vertical) and each channel as a 1-axis asset; calibration
  data = the first min(300, the kept snapshots within the first 10 % of life) snapshots, each a
  2,560-sample window at 25.6 kHz; 13 balls of 3.5 mm on a 25.6 mm pitch, 0°.
* **CWRU 0 HP** (1797 rpm, SKF 6205: 9 balls 0.3126 in, pitch 1.537 in): the normal record (48 kHz,
  and resampled to 12 kHz) must be accepted; every fault record and channel (DE, FE, BA; 12 and
  48 kHz) offered as calibration data, in windows of 2,048 samples at 12 kHz and 8,192 at 48 kHz
  (the drive-end bearing's geometry for every channel: the seeded fault is in that bearing).

Printed per set: windows, screening (excluded / rejected), the highest median kurtosis (axis) and the
highest median envelope SNR (defect), the verdict with the indicators only (as without rpm/geometry in
the asset config) and with both. Ball faults are expected to pass: no time-domain or envelope
signature at 0 HP. Numbers are printed, never asserted; ``ROW|`` lines feed ``python -m benchmarks``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.signal import resample_poly

from shared.features.engine import reduce_axes
from shared.features.envelope import defect_orders
from shared.features.frames import split_frames
from shared.features.spectral import spectral_features
from shared.features.vibration import axes_features
from shared.learning.fault_signature import FaultSignature, fault_signature
from shared.learning.screening import Screening, screen_windows

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT.parent / "shared" / "datasets"
FEMTO_BEARINGS = ("Bearing1_1", "Bearing1_2", "Bearing2_1", "Bearing2_2", "Bearing3_1", "Bearing3_2")
FEMTO_ORDERS = defect_orders(13, 3.5, 25.6)
FEMTO_CHANNELS = {"x": 0, "y": 1}  # horizontal, vertical
#: Calibration data of a FEMTO bearing: at most this many snapshots, within the first LIFE_FRACTION of life.
FEMTO_MAX_SNAPSHOTS = 300
FEMTO_LIFE_FRACTION = 0.10
CWRU_FILE = "cwru_0hp_1797rpm.npz"
CWRU_RPM = 1797.0
CWRU_ORDERS = defect_orders(9, 0.3126, 1.537)
CWRU_WINDOW = {12_000: 2048, 48_000: 8192}


@dataclass(frozen=True)
class CalibrationSet:
    """One set of windows offered as calibration data: ``signals`` axis → ``[windows, n]`` (g)."""

    name: str
    healthy: bool
    signals: dict[str, NDArray[np.float64]]
    fs_hz: float
    rpm: float
    orders: dict[str, float]


@dataclass(frozen=True)
class Verdict:
    """What the calibrator's window checks say of a set: the screening of the autoencoder's rows (frames,
    :mod:`shared.features.frames`) and of whole windows (for comparison), the fault signature of the whole
    windows with the time-domain indicators only (no rpm/geometry in the config) and with the envelope
    extras too."""

    case: CalibrationSet
    screening: Screening
    screening_windows: Screening
    kurtosis_only: FaultSignature
    signature: FaultSignature

    @property
    def accepted(self) -> bool:
        return self.screening.ok and self.signature.ok

    def refused_by(self) -> str:
        parts = [] if self.screening.ok else ["screening"]
        parts += [i.name for i in self.signature.found]
        return ", ".join(parts)


def features(s: CalibrationSet) -> tuple[NDArray[np.float64], list[str], dict[str, NDArray[np.float64]]]:
    """``(X[windows, 11·axes], names, extras)``: the vibration vector of each window and its envelope SNR
    extras (the maximum over the axes, as the features service reduces them)."""
    names, X = axes_features(s.signals)
    stacked = np.stack([s.signals[a] for a in s.signals], axis=1)  # [windows, axes, n]
    spec = spectral_features(stacked, s.fs_hz, rpm=s.rpm, bearing_orders=s.orders)
    rms = np.sqrt(np.mean(stacked**2, axis=-1))
    rows = [reduce_axes({k: v[i] for k, v in spec.items()}, rms[i]) for i in range(stacked.shape[0])]
    extras = {k: np.array([r[k] for r in rows]) for k in spec if k.startswith("env_") and k.endswith("_snr")}
    return X, names, extras


def frame_rows(s: CalibrationSet) -> tuple[NDArray[np.float64], list[str], int]:
    """The autoencoder's rows: each window split into k frames (:func:`shared.features.frames.split_frames`),
    in time order, 11 features per axis; and k."""
    frames = {a: split_frames(v) for a, v in s.signals.items()}  # [windows, k, L]
    names, X = axes_features({a: f.reshape(-1, f.shape[-1]) for a, f in frames.items()})
    return X, names, next(iter(frames.values())).shape[1]


def judge(s: CalibrationSet) -> Verdict:
    """Screen the frame rows (the running median over the frames of 21 windows) and, for comparison, the
    whole windows; then judge the whole windows for a fault signature, with and without the envelope
    extras."""
    X, names, extras = features(s)
    FX, fnames, k = frame_rows(s)
    screening = screen_windows(FX, fnames, what="vibration frames", frames_per_window=k)
    whole = screen_windows(X, names)
    sig = fault_signature(X, names), fault_signature(X, names, extras=extras)
    return Verdict(s, screening, whole, *sig)


def femto_sets(
    root: Path, bearings: tuple[str, ...] = FEMTO_BEARINGS, limit: int | None = None
) -> Iterator[CalibrationSet]:
    """Each FEMTO bearing's early life as a 2-axis asset and as two 1-axis assets (``limit``: at most
    this many snapshots, for fast tests)."""
    for b in bearings:
        with np.load(root / "femto_pronostia" / f"femto_{b}.npz") as z:
            meta = json.loads(str(z["meta_json"]))
            early = np.nonzero(z["t_s"] <= FEMTO_LIFE_FRACTION * meta["life_s"])[0][:FEMTO_MAX_SNAPSHOTS]
            early = early[:limit] if limit else early
            acc = z["acc"][early].astype(np.float64) * float(z["scale_g"])  # [n, 2560, 2] g
            fs, rpm = float(z["fs_hz"]), float(meta["rpm"])
        both = {a: np.ascontiguousarray(acc[:, :, c]) for a, c in FEMTO_CHANNELS.items()}
        yield CalibrationSet(f"FEMTO {b} x+y", True, both, fs, rpm, FEMTO_ORDERS)
        for a, sig in both.items():
            yield CalibrationSet(
                f"FEMTO {b} {'horizontal' if a == 'x' else 'vertical'}",
                True,
                {"x": sig},
                fs,
                rpm,
                FEMTO_ORDERS,
            )


def cwru_windows(x: NDArray[np.float64], n: int, limit: int | None = None) -> NDArray[np.float64]:
    """Non-overlapping ``n``-sample windows of ``x`` (the first ``limit``)."""
    m = x.shape[0] // n if limit is None else min(limit, x.shape[0] // n)
    return x[: m * n].astype(np.float64).reshape(m, n)


def cwru_sets(
    root: Path, labels: tuple[str, ...] | None = None, limit: int | None = None
) -> Iterator[CalibrationSet]:
    """Every CWRU record × channel (``labels``: only these, e.g. ``IR021_12k``); the normal record also
    resampled to 12 kHz."""
    with np.load(root / "cwru" / CWRU_FILE) as z:
        meta = json.loads(str(z["meta_json"]))
        for key in z.files:
            label, _, channel = key.partition("__")
            if not channel or (labels and label not in labels):
                continue
            fs = int(meta[label]["fs_hz"])
            x = z[key].astype(np.float64)
            healthy = label == "normal"
            yield CalibrationSet(
                f"CWRU {label} {channel}",
                healthy,
                {"x": cwru_windows(x, CWRU_WINDOW[fs], limit)},
                fs,
                CWRU_RPM,
                CWRU_ORDERS,
            )
            if healthy:
                y = resample_poly(x, 1, 4)
                yield CalibrationSet(
                    f"CWRU {label}@12k {channel}",
                    True,
                    {"x": cwru_windows(y, CWRU_WINDOW[12_000], limit)},
                    12_000.0,
                    CWRU_RPM,
                    CWRU_ORDERS,
                )


def _highest(sig: FaultSignature, kind: str) -> str:
    items = [i for i in sig.indicators if i.kind == kind]
    if not items:
        return "-"
    best = max(items, key=lambda i: i.median)
    short = best.name.removesuffix("_kurtosis") if kind == "kurtosis" else best.name[4:-4]
    return f"{best.median:6.2f} {short}"


def _screening(s: Screening) -> str:
    return f"{s.n_flagged} excl" if s.ok else f"REJECT {100 * s.fraction:.0f}%"


def row(v: Verdict) -> str:
    ko = "refused" if not (v.screening.ok and v.kurtosis_only.ok) else "accepted"
    verdict = "accepted" if v.accepted else f"REFUSED ({v.refused_by()})"
    kurt, env = _highest(v.signature, "kurtosis"), _highest(v.signature, "envelope")
    return (
        f"{v.case.name:28s} {'healthy' if v.case.healthy else 'fault':7s} {v.screening_windows.n:4d} "
        f"{_screening(v.screening):11s} {_screening(v.screening_windows):11s} {kurt:>10s} {env:>11s} "
        f"{ko:9s} {verdict}"
    )


HEAD = (
    f"{'set':28s} {'kind':7s} {'wins':>4s} {'scr frames':11s} {'scr windows':11s} {'kurt (ax)':>10s} "
    f"{'env SNR':>11s} {'kurt only':9s} verdict"
)


def report(verdicts: list[Verdict]) -> list[str]:
    lines = [HEAD, "-" * len(HEAD)] + [row(v) for v in verdicts]
    healthy = [v for v in verdicts if v.case.healthy]
    faults = [v for v in verdicts if not v.case.healthy]
    for what, group, good in (
        ("healthy sets accepted", healthy, True),
        ("fault sets refused", faults, False),
    ):
        hits = sum(v.accepted == good for v in group)
        lines.append(f"ROW|{what} (screening + fault signature)|{hits} of {len(group)}||")
    de = [v for v in faults if v.case.name.endswith(" DE")]
    lines.append(f"ROW|  of which drive-end channel refused|{sum(not v.accepted for v in de)} of {len(de)}||")
    ko = sum(not (v.screening.ok and v.kurtosis_only.ok) for v in faults)
    lines.append(f"ROW|fault sets refused without rpm/geometry (kurtosis only)|{ko} of {len(faults)}||")
    bad = [v.case.name for v in healthy if not v.screening_windows.ok]
    what = "healthy sets rejected if whole windows were screened"
    lines.append(f"ROW|{what}|{len(bad)} of {len(healthy)}|{', '.join(bad)}|")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--datasets", type=Path, default=DATASETS, help=f"folder with femto_pronostia/ and cwru/ ({DATASETS})"
    )
    a = p.parse_args(argv)
    verdicts = [judge(s) for s in (*femto_sets(a.datasets), *cwru_sets(a.datasets))]
    print("\n".join(report(verdicts)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
