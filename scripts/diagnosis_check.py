#!/usr/bin/env python
"""Bearing-defect diagnosis on real recordings: does the health stage name a component only when the
envelope evidence rose against the asset's calibrated envelope level, and the right one?

    python scripts/diagnosis_check.py [--femto ../shared/datasets/femto_pronostia]
                                      [--cwru ../shared/datasets/cwru] [--check-engine 5] [--snr-rise 1.3]

Both parts run the live code: envelope features as the features service computes them
(:func:`shared.features.spectral_features` per axis, the maximum over axes as
``shared.features.engine.reduce_axes``; a few windows are cross-checked against
``FeatureEngine.on_window``, identical values required), the calibrator's envelope baseline
(:func:`shared.learning.baseline.envelope_baseline`) and the health stage
(:class:`shared.health.assessor.HealthAssessor`, one update per window in data time, with the asset's
rpm and bearing config). A window "names" a component when one of its insights has an ``env_*`` signal;
the named component is the best-ranked one.

1. **FEMTO** (six run-to-failure bearings, 25.6 kHz, two axes, no documented failed element): calibrated
   on the first min(300, first 10 % of life) snapshots (as tests/test_real_calibration_acceptance.py
   does), then every later snapshot in order. The first half of life counts as healthy: component
   insights there are false. Also shown: where in life a component is first named, what the rule
   before issue 15 (envelope SNR >= 3 alone, no baseline) would have said, and how often an asset
   without an envelope baseline (an old manifest) shows the unnamed "peak not compared" insight.
2. **CWRU** (0 HP, 1797 rpm, drive end, SKF 6205): calibrated on the first 60 % of the healthy record
   (48 kHz, resampled to 12 kHz; windows of 2048 samples, hop 1024), the last 40 % held out; each fault
   record (non-overlapping windows; the 12 kHz recordings, then the three 48 kHz ones resampled to
   12 kHz) runs through its own assessor from that calibration. The confusion tables count records
   (the component named in most of its windows) and windows. The data set has 0 HP only.

``--snr-rise`` runs the whole check with another harmonic SNR rise factor of the rule
(:data:`shared.health.insights.envelope_levels.SNR_RISE`), ``--ball-snr-rise`` with another factor of the
ball's harmonic SNR over its calibrated p95 under cage-rate evidence
(:data:`shared.health.insights.envelope_levels.BALL_SNR_RISE`): sensitivity checks.

Prints the tables; exit 0 (whatever the numbers), 2 when a data file is missing.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # any Python: the repository's .venv when this one lacks the packages
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _bootstrap

    _bootstrap.ensure(("numpy", "scipy", "pydantic"))

import argparse
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray
from scipy.signal import resample_poly

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from shared.evaluation import frame  # noqa: E402
from shared.features import spectral_features  # noqa: E402
from shared.features.engine import FeatureEngine, config_bearing_orders  # noqa: E402
from shared.health.assessor import HealthAssessor  # noqa: E402
from shared.health.insights import DEFECTS, envelope_levels  # noqa: E402
from shared.learning.baseline import envelope_baseline  # noqa: E402
from shared.messages import AssetConfig, BearingGeometry, Window  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"
FEMTO_BEARINGS = ("1_1", "1_2", "2_1", "2_2", "3_1", "3_2")
#: FEMTO's test bearing (its README): 13 balls of 3.5 mm on a 25.6 mm pitch diameter.
FEMTO_BEARING = BearingGeometry(n_balls=13, ball_diameter=3.5, pitch_diameter=25.6)
#: CWRU drive-end SKF 6205 by its geometry, as the README configures it (9 balls, d 0.3126 in, D 1.537 in:
#: BPFO 3.5848, BPFI 5.4152, ball defect line 4.7134, FTF 0.3983 x shaft speed, the data set's table).
CWRU_BEARING = BearingGeometry(n_balls=9, ball_diameter=0.3126, pitch_diameter=1.537, unit="in")
CWRU_RPM, CWRU_FS, CWRU_WINDOW = 1797.0, 12_000.0, 2048
FAMILY = {"IR": "bpfi", "OR": "bpfo", "B": "bsf", "normal": "none"}
NAMES = ("bpfi", "bpfo", "bsf", "ftf", "none")
T0 = 1_700_000_000.0
Extras = dict[str, NDArray[np.float64]]


def envelope_extras(x: NDArray[np.float64], fs: float, cfg: AssetConfig) -> Extras:
    """``env_{d}_amp``/``env_{d}_snr`` of windows ``x[N, axes, n]`` (g): per axis, then the maximum over
    axes, as the features service's vibration vector extras."""
    spec = spectral_features(x, fs, rpm=cfg.rpm, bearing_orders=config_bearing_orders(cfg))
    return {k: v.max(axis=-1) for k, v in spec.items() if k.startswith("env_")}


def check_engine(
    x: NDArray[np.float64], fs: float, cfg: AssetConfig, ex: Extras, rows: Iterable[int]
) -> None:
    """The features service's ``FeatureEngine.on_window`` gives the same envelope extras (to 1e-9)."""
    eng = FeatureEngine()
    eng.configs[cfg.asset_id] = cfg
    for i in rows:
        axes = ["x", "y", "z"][: x.shape[1]]
        w = Window(
            event_id=f"c{i}",
            asset_id=cfg.asset_id,
            ts=datetime.fromtimestamp(T0, UTC) + timedelta(seconds=int(i)),
            fs_hz=fs,
            n=x.shape[2],
            axes=axes,
            **{a: x[i, j].tolist() for j, a in enumerate(axes)},
        )
        got = eng.on_window(w).extras
        for k, v in ex.items():
            if abs(got[k] - v[i]) > 1e-9 * max(1.0, abs(v[i])):
                raise AssertionError(f"{k} of window {i}: engine {got[k]} vs script {v[i]}")


def run_assessor(
    cfg: AssetConfig, base: dict | None, ex: Extras, times: NDArray[np.float64], prefix: str = "env_"
) -> list[str]:
    """The defect of the best-ranked insight whose signal starts with ``prefix`` on each window ('none'
    when there is none), in order. ``env_``: a named component; ``envelope:``: a peak not compared with
    a calibrated level (no envelope baseline)."""
    a = HealthAssessor(cfg.asset_id, config=cfg, baseline=base)
    out = []
    for i, t in enumerate(times):
        r = a.update(T0 + float(t), features={k: float(v[i]) for k, v in ex.items()})
        named = [
            ins.signal[len(prefix) :].split("_")[0] for ins in r.insights if ins.signal.startswith(prefix)
        ]
        out.append(named[0] if named else "none")
    return out


def old_rule(ex: Extras) -> list[str]:
    """Before issue 15, without an envelope baseline: the defect with the highest SNR among SNR >= 3."""
    out = []
    for i in range(next(iter(ex.values())).shape[0]):
        snr = {d: float(ex[f"env_{d}_snr"][i]) for d in DEFECTS if f"env_{d}_snr" in ex}
        best = max(snr, key=lambda d: snr[d])
        out.append(best if snr[best] >= 3.0 else "none")
    return out


@dataclass
class FemtoRow:
    """One FEMTO bearing: calibration snapshots, monitored snapshots in the first half of life, and the
    windows of that first half with a named component (now), with the old rule's named component, and
    (without an envelope baseline) with an unnamed peak; the first named window and the second half."""

    bearing: str
    calibrated: int
    monitored: int
    named: int
    old: int
    unbased: int
    first: str
    late: Counter[str]


def femto_bearing(path: Path, b: str, n_check: int) -> FemtoRow:
    with np.load(path / f"femto_Bearing{b}.npz") as z:
        meta = json.loads(str(z["meta_json"]))
        x = np.moveaxis(z["acc"].astype(np.float64) * float(z["scale_g"]), 2, 1)  # [N, 2, 2560]
        t, fs = z["t_s"].astype(np.float64), float(z["fs_hz"])
    life = float(meta["life_s"])
    cfg = AssetConfig(asset_id="femto", rpm=float(meta["rpm"]), bearing=FEMTO_BEARING)
    ex = envelope_extras(x, fs, cfg)
    check_engine(x, fs, cfg, ex, np.linspace(0, len(t) - 1, n_check).astype(int))
    k = min(300, int(np.count_nonzero(t < 0.1 * life)))
    base = envelope_baseline({n: v[:k] for n, v in ex.items()})
    mon = {n: v[k:] for n, v in ex.items()}
    named = np.array(run_assessor(cfg, base, mon, t[k:]))
    old = np.array(old_rule(mon))
    unbased = np.array(run_assessor(cfg, None, mon, t[k:], prefix="envelope:"))
    half = t[k:] <= 0.5 * life
    hits = np.flatnonzero(named != "none")
    return FemtoRow(
        bearing=f"Bearing{b}",
        calibrated=k,
        monitored=int(half.sum()),
        named=int(np.count_nonzero(named[half] != "none")),
        old=int(np.count_nonzero(old[half] != "none")),
        unbased=int(np.count_nonzero(unbased[half] != "none")),
        first=f"{t[k + hits[0]] / life:.3f} {named[hits[0]]}" if hits.size else "never",
        late=Counter(named[~half & (named != "none")].tolist()),
    )


def print_femto(rows: list[FemtoRow]) -> None:
    print("\n## FEMTO: component insights over the first half of life (healthy) and where first named\n")
    print(
        "| bearing | calib. snapshots | monitored in 1st half | named in 1st half | old rule in 1st half "
        "| no envelope baseline: unnamed peak in 1st half | first named (fraction of life, component) "
        "| named in 2nd half (by component) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        late = ", ".join(f"{d} {c}" for d, c in r.late.most_common()) or "-"
        print(
            f"| {r.bearing} | {r.calibrated} | {r.monitored} | {r.named} | {r.old} | {r.unbased} | {r.first} "
            f"| {late} |"
        )
    tot = [sum(getattr(r, f) for r in rows) for f in ("monitored", "named", "old", "unbased")]
    print(f"| all | | {' | '.join(str(v) for v in tot)} | | |")


def cwru_records(
    path: Path,
) -> tuple[dict[str, NDArray[np.float64]], NDArray[np.float64], NDArray[np.float64]]:
    """Fault records (drive end; the 12 kHz ones, then the 48 kHz ones resampled to 12 kHz) by label,
    and the healthy record's training/held-out parts resampled from 48 kHz to 12 kHz (split in time
    before resampling)."""
    with np.load(path / "cwru_0hp_1797rpm.npz") as z:
        meta = json.loads(str(z["meta_json"]))
        raw = {k: (z[f"{k}__DE"].astype(np.float64), float(meta[k]["fs_hz"])) for k in meta}
    faults = {k: resample_poly(x, 1, int(round(fs / CWRU_FS))) for k, (x, fs) in raw.items() if k != "normal"}
    normal, fs_n = raw["normal"]
    cut = int(0.6 * normal.size)
    q = int(round(fs_n / CWRU_FS))
    return faults, resample_poly(normal[:cut], 1, q), resample_poly(normal[cut:], 1, q)


@dataclass
class CwruRecord:
    """One CWRU record: its family, windows, the component named per window (counts), the record's
    verdict (the component named in most windows, 'none' when never), the old rule's counts and, per
    defect, the median over its windows of the harmonic rises (``A/p95(A)``, ``S/p95(S)``) the rule
    compares (:class:`shared.health.insights.envelope_levels.HarmonicRise`)."""

    label: str
    family: str
    windows: int
    named: Counter[str]
    verdict: str
    old: Counter[str]
    rises: dict[str, tuple[float, float]]


def median_rises(base: dict, ex: Extras) -> dict[str, tuple[float, float]]:
    """Per defect: median over windows of ``(amp_rise, snr_rise)`` against the calibrated levels."""
    out = {}
    for d in DEFECTS:
        rs = [
            envelope_levels.HarmonicRise.of({k: float(v[i]) for k, v in ex.items()}, base, d)
            for i in range(len(ex[f"env_{d}_amp"]))
        ]
        ok = [r for r in rs if r is not None]
        if ok:
            out[d] = (float(np.median([r.amp_rise for r in ok])), float(np.median([r.snr_rise for r in ok])))
    return out


def cwru(path: Path, n_check: int) -> tuple[int, list[CwruRecord]]:
    """(healthy calibration windows, the records: held-out normal first, then the faults)."""
    faults, train, hold = cwru_records(path)
    cfg = AssetConfig(asset_id="cwru", rpm=CWRU_RPM, bearing=CWRU_BEARING)

    def windows(sig: NDArray[np.float64], hop: int) -> NDArray[np.float64]:
        return frame(sig, CWRU_WINDOW, hop)[:, None, :]

    xt = windows(train, CWRU_WINDOW // 2)
    ext = envelope_extras(xt, CWRU_FS, cfg)
    check_engine(xt, CWRU_FS, cfg, ext, range(min(n_check, xt.shape[0])))
    base = envelope_baseline(ext)
    order = sorted(faults, key=lambda k: (k.endswith("_48k"), k))  # the 12 kHz recordings first
    records = {"normal (held out)": windows(hold, CWRU_WINDOW // 2)} | {
        k: windows(faults[k], CWRU_WINDOW) for k in order
    }
    out = []
    for label, xw in records.items():
        ex = envelope_extras(xw, CWRU_FS, cfg)
        named = Counter(run_assessor(cfg, base, ex, CWRU_WINDOW / CWRU_FS * np.arange(xw.shape[0])))
        some = Counter({d: c for d, c in named.items() if d != "none"})
        verdict = some.most_common(1)[0][0] if some else "none"
        family = "normal" if label.startswith("normal") else label.split("0")[0]
        rises = median_rises(base, ex)
        out.append(CwruRecord(label, family, xw.shape[0], named, verdict, Counter(old_rule(ex)), rises))
    return xt.shape[0], out


def confusion(records: list[CwruRecord], by_windows: bool, fs: str = "12k") -> dict[str, Counter[str]]:
    """True family -> component named -> count (records, or windows) over the held-out healthy windows
    and the fault records recorded at ``fs`` ("12k", or "48k": resampled to 12 kHz)."""
    table: dict[str, Counter[str]] = {f: Counter() for f in FAMILY}
    for r in records:
        if r.family == "normal" or r.label.endswith(f"_{fs}"):
            table[r.family].update(r.named if by_windows else Counter([r.verdict]))
    return table


def print_cwru(n_train: int, records: list[CwruRecord]) -> None:
    print(f"\n## CWRU: calibrated on {n_train} healthy windows of {CWRU_WINDOW} samples at 12 kHz\n")
    print("| record | windows | named (windows) | record names | old rule (windows) |")
    print("|---|---|---|---|---|")
    for r in records:
        named = ", ".join(f"{d} {c}" for d, c in r.named.most_common())
        old = ", ".join(f"{d} {c}" for d, c in r.old.most_common())
        print(f"| {r.label} | {r.windows} | {named} | {r.verdict} | {old} |")
    need = (
        f"A >= {envelope_levels.RISE_FACTOR:g} and S >= {envelope_levels.SNR_RISE:g}, then the largest S; "
        "a window whose "
        f"largest is ftf counts for bsf too when bsf has A >= {envelope_levels.RISE_FACTOR:g} and "
        f"S >= {envelope_levels.BALL_SNR_RISE:g}"
    )
    print("\nWhy (median over each record's windows): harmonic amplitude rise A/p95(A) and harmonic SNR")
    print(f"rise S/p95(S) per defect; the rule needs {need}\n")
    print("| record | " + " | ".join(f"{d} A, S" for d in DEFECTS) + " |")
    print("|---|" + "---|" * len(DEFECTS))
    for r in records:
        cells = [f"{r.rises[d][0]:.1f}, {r.rises[d][1]:.2f}" if d in r.rises else "-" for d in DEFECTS]
        print(f"| {r.label} | " + " | ".join(cells) + " |")
    for fs, title, by_windows in (
        ("12k", "12 kHz records", False),
        ("12k", "12 kHz windows", True),
        ("48k", "48 kHz records resampled to 12 kHz", False),
    ):
        print(f"\nConfusion ({title}; with the held-out healthy windows): true family x component named\n")
        print("| true \\ named | " + " | ".join(NAMES) + " |")
        print("|---|" + "---|" * len(NAMES))
        for fam, c in confusion(records, by_windows, fs).items():
            if sum(c.values()):
                print(f"| {fam} ({FAMILY[fam]}) | " + " | ".join(str(c.get(n, 0)) for n in NAMES) + " |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--femto", type=Path, default=DATASETS / "femto_pronostia")
    ap.add_argument("--cwru", type=Path, default=DATASETS / "cwru")
    ap.add_argument("--check-engine", type=int, default=5, help="windows cross-checked per data set")
    ap.add_argument(
        "--snr-rise",
        type=float,
        default=envelope_levels.SNR_RISE,
        help="harmonic SNR rise factor of the rule (a sensitivity check; default: the live value)",
    )
    ap.add_argument(
        "--ball-snr-rise",
        type=float,
        default=envelope_levels.BALL_SNR_RISE,
        help="ball harmonic SNR over its calibrated p95 under cage-rate evidence (default: the live value)",
    )
    args = ap.parse_args(argv)
    envelope_levels.SNR_RISE = args.snr_rise
    envelope_levels.BALL_SNR_RISE = args.ball_snr_rise
    for p, f in ((args.femto, "femto_Bearing1_1.npz"), (args.cwru, "cwru_0hp_1797rpm.npz")):
        if not (p / f).exists():
            print(f"missing {p / f} (see the data set's README)", file=sys.stderr)
            return 2
    print_femto([femto_bearing(args.femto, b, args.check_engine) for b in FEMTO_BEARINGS])
    print_cwru(*cwru(args.cwru, args.check_engine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
