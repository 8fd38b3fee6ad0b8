"""Bearing-defect insights from the envelope spectrum, judged against the asset's own calibrated envelope
level (pure).

Per defect d (BPFO outer race, BPFI inner race, BSF rolling element, FTF cage rate) a vibration window
carries ``a = env_{d}_amp`` (g, envelope-spectrum amplitude at ``f_d = rpm / 60 * order_d``) and
``s = env_{d}_snr`` (1, that amplitude over the nearby envelope-spectrum median;
:mod:`shared.features.envelope`). A healthy bearing's envelope often shows a peak near some defect
frequency (a neighbour's defect, a structural resonance, a tone of the drive), so a peak alone names
nothing: the evidence must have *risen* against the same indicator on the asset's own healthy
calibration windows (:func:`shared.learning.baseline.envelope_baseline`: ``median``, ``p95``, ...).

The window's evidence at d **rose** (:func:`window_flag`) when, by what the baseline holds:

* **calibrated harmonic level** (``p95`` and ``median`` of ``env_{d}_harm_amp`` and
  ``env_{d}_harm_snr`` for every judged defect; stored by calibrations since issue 15, session 2).
  With ``A_d = env_{d}_harm_amp`` (g, the envelope amplitudes at the harmonics 1–3 of f_d that no
  other defect shares, summed) and ``S_d = env_{d}_harm_snr`` (1, that sum over the summed nearby
  floors; :mod:`shared.features.envelope`)::

      rise_A(d) = A_d / p95(A_d) >= RISE_FACTOR     and     rise_S(d) = S_d / p95(S_d) >= SNR_RISE

  and d has the largest ``rise_S`` of the defects that pass both (at most one defect per window).
  The amplitude must have left its healthy range *and* the peaks must stand out of the envelope
  spectrum more than they did on the healthy windows: a fault lifts the whole envelope spectrum
  (on CWRU every family's ``A`` rises 2–130× on every fault record), so the amplitude alone cannot
  tell the families apart, while the SNR rises at the fault's own harmonics. Comparing each
  family with its own calibrated level (not one absolute SNR for all) removes what a healthy
  machine already shows at a frequency; taking the strongest rise (not every crossing) names one
  component. Harmonics: a defect's impacts are short, so their envelope has harmonics; summed,
  they carry the evidence through the noise of a single bin on a short window (on CWRU IR014 the
  fundamental alone stays below an SNR of 3). A component is named when its evidence rose in at
  least ``ENVELOPE_K`` of the last ``ENVELOPE_N`` windows (4 of 6)::

      Envelope harmonics of BPFI (162 Hz) 16.4× their calibrated level (0.0051 g → 0.084 g),
      harmonic SNR 2.3 (2.0× its calibrated level) in 5 of the last 6 windows: inner-race defect likely

  **Ball impacts recurring at cage speed.** A damaged ball strikes the races at its spin harmonics
  (the BSF line; on CWRU's SKF 6205 the ``bsf`` order 4.7135 is 2× the ball spin, 141 Hz at 1797 rpm)
  and is carried through the load zone once per cage turn, so its impacts are amplitude-modulated at
  FTF; on a short window the FTF harmonics often rise more than the BSF ones (CWRU B014, B028). A
  cage defect alone raises the FTF harmonics but leaves the BSF harmonics where they were. So a
  window whose strongest rise is FTF also counts as ball evidence when its BSF harmonic evidence left
  its healthy range (:func:`ball_under_cage`)::

      rise_A(bsf) >= RISE_FACTOR     and     rise_S(bsf) >= BALL_SNR_RISE (1.0: at least its p95)

  The ball is named when its evidence (BSF strongest, or FTF strongest with the BSF harmonics above
  their healthy range) persisted in 4 of the last 6 windows; it then replaces the FTF insight (the
  ball explains the cage-rate lines). When only the cage-rate evidence persisted, the FTF insight keeps
  its honest wording ("rolling-element or cage defect likely"): the current window alone does not
  rename it (a cage defect that makes the whole envelope louder has its BSF harmonics above their p95
  in about 1 window of 20 by chance; in 4 of 6 windows hardly ever). On a borderline record the two
  insights can alternate from one update to the next. When the current window is a cage-rate window
  with the ball's lines above their range, the ball insight states both lines (signal
  ``env_bsf_harm_amp``, key ``bearing_bsf``)::

      Envelope harmonics of FTF (11.9 Hz) 205.9× their calibrated level (0.01 g → 2.10 g), harmonic
      SNR 2.7 (2.7× its calibrated level), with those of BSF (141 Hz) 142.6× their calibrated level
      (0.0079 g → 1.13 g), harmonic SNR 2.1 (1.3× its calibrated p95) in 4 of the last 6 windows:
      rolling-element (ball) defect likely (ball impacts recurring at cage speed)

  (CWRU B028, its 7th window; "in k of the last n windows" counts the ball evidence.)

  Measured (scripts/diagnosis_check.py; docs/EVALUATION.md, "Bearing-defect diagnosis"): FEMTO
  first halves name nothing (1,507 snapshots); CWRU held-out healthy windows name nothing; CWRU
  (0 HP, 12 kHz) inner race 3 of 4 records BPFI (IR028 nothing), outer race 4 of 5 BPFO (OR014@6
  nothing), ball 1 of 4 (B028, from cage-rate windows with the ball's lines above their healthy
  range, in 22 of its 58 windows; B014 FTF in 6 of 59 windows and the ball in 5: borderline; B021
  BPFI; B007 nothing; before the ball-under-cage count B014 and B028 read FTF; why BSF alone is not
  reached on these 0.17 s windows: EVALUATION.md, "Ball faults"). ``BALL_SNR_RISE`` = 1.0 is the
  healthy p95 itself, not fitted: at 0.8–0.9 B014 is named a ball too, at 1.2–1.3 B028 reads FTF; races,
  healthy windows and FEMTO first halves are the same at every factor from 0.8 to 1.3. ``SNR_RISE`` = 1.3 was
  chosen on those same records (1.0–1.2 call OR014@6 inner race, 1.5 loses windows of IR014/OR021):
  there are no other labelled fault records to check it on.
* **calibrated envelope level** of the fundamental only (``p95`` and ``median`` of ``env_{d}_amp``;
  calibrations of issue 15 before the harmonic indicators)::

      a >= RISE_FACTOR * p95     and     s >= envelope_snr_min          (s absent: the amplitude alone)

  per defect, each on its own (several may be named); ``Envelope amplitude at BPFO (168 Hz) 4.2× its
  calibrated level (0.012 g → 0.050 g) in 5 of the last 6 windows: outer-race defect likely (SNR
  6.1)`` (calibrated level = the median). Measured before the harmonic rule: CWRU inner race 2 of 4
  (IR028 BPFO), outer race 4 of 5, ball 1 of 4.
* **mean/std only** (a baseline a caller built from its own training windows, e.g.
  ``scripts/evaluate.py``): ``s >= envelope_snr_min`` and ``z(a) >= z_min`` (s absent: the z alone);
  ``Envelope peak at BPFO 107 Hz: outer-race defect likely (SNR 6.2)``.
* **no baseline** for ``env_{d}_amp`` (a model calibrated before envelope baselines were stored): a
  peak is not compared with anything, so no component is named. ``s >= envelope_snr_min`` persistent
  in K of N windows gives ``Envelope peak at the BPFO frequency (168 Hz): SNR 4.1 in 4 of the last 6
  windows; not compared with a calibrated envelope level, no component named (recalibrate to
  diagnose)``, signal ``envelope:bpfo_snr`` (no bearing action in reports), ranked
  ``UNBASELINED_RANK`` (after every signal-specific insight). Kept rather than dropped: a persistent
  peak is evidence an operator may want to see, as long as it claims nothing.

Persistence is counted per vibration window by the assessor's evidence state
(:class:`shared.health.evidence.EvidenceState`, with :func:`window_flag`) and passed in as
``counts`` (defect → (windows whose evidence rose, windows counted, at most N)). Without counts (a
caller judging one window at a time) the current window alone decides and the text names no windows.

Severity (harmonic level): CRITICAL when ``rise_A >= 2 * RISE_FACTOR`` and ``rise_S >= 2 * SNR_RISE``
(:data:`shared.messages.CRITICAL_RATIO`); ranking key ``1.5 * min(3 * rise_S / SNR_RISE, 30)``.
Otherwise: CRITICAL when ``s >= 2 * envelope_snr_min`` (:data:`shared.messages.CRITICAL_RATIO`, as for
scores) and, on a calibrated level, also ``a >= 2 * RISE_FACTOR * p95``; else WARNING. Ranking key
``1.5 * min(3 * s / envelope_snr_min, 30)`` (the SNR: on CWRU the fault's own frequency has the
highest SNR while every amplitude rises), or from the rise (``3 * a / (RISE_FACTOR * p95)``) or z
when there is no SNR.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from shared.health.insights import envelope_levels as levels
from shared.health.insights.base import (
    DEFECTS,
    Z_CAP,
    Baseline,
    Candidate,
    Insight,
    InsightSeverity,
    MachineInfo,
    baseline_stats,
    fmt_hz,
    fmt_num,
    severity_over,
    z_score,
)
from shared.health.insights.envelope_levels import (
    EnvelopeLevel,
    HarmonicRise,
    ball_under_cage,
    ratio_over,
    strongest,
)

#: defect -> (windows whose evidence rose, windows counted) over the last ``ENVELOPE_N``.
Counts = Mapping[str, tuple[int, int]]

#: What a named ball defect means (the BSF insight and the ball under cage-rate evidence).
BALL_MEANING = "rolling-element (ball) defect likely"
#: The FTF insight's meaning when the BSF harmonics rose with it.
BALL_AT_CAGE_MEANING = f"{BALL_MEANING} (ball impacts recurring at cage speed)"
#: k-of-n persistence of the per-window evidence (windows).
ENVELOPE_K = 4
ENVELOPE_N = 6
#: Ranking weight (per σ-equivalent), as the running-speed order insights.
ORDER_WEIGHT = 1.5
#: An SNR of ``snr_min`` (or a rise to the threshold) ranks like a z of this many σ.
SNR_RANK_SCALE = 3.0
#: Ranking key of a peak that is not compared with a calibrated level (below every named signal).
UNBASELINED_RANK = 1.0


def window_flag(
    cur: Mapping[str, float], baseline: Baseline, d: str, snr_min: float, z_min: float
) -> bool | None:
    """Whether this window's evidence at defect ``d`` rose (module doc): on a calibrated harmonic level,
    ``d`` is :func:`strongest` (``bsf`` also when FTF is, with :func:`ball_under_cage`: such a window
    counts for both); else the fundamental's rule. None when the window carries nothing this
    baseline can judge (no ``env_{d}_amp`` under a calibrated level, no SNR without one)."""
    if HarmonicRise.of(cur, baseline, d) is not None:
        best = strongest(cur, baseline)
        if d == "bsf" and best == "ftf":  # cage-rate evidence with the ball's lines above their range
            return ball_under_cage(cur, baseline) is not None
        return best == d
    amp, snr = cur.get(f"env_{d}_amp"), cur.get(f"env_{d}_snr")
    level = EnvelopeLevel.of(baseline, d)
    if level is not None:
        if amp is None:
            return None
        return amp >= level.threshold and (snr is None or snr >= snr_min)
    stats = baseline_stats(baseline, f"env_{d}_amp")
    z = None if amp is None or stats is None else z_score(amp, *stats)
    if snr is not None:
        return snr >= snr_min and (z is None or z >= z_min)
    return None if z is None else z >= z_min


def envelope_insights(
    cur: Mapping[str, float],
    baseline: Baseline,
    machine: MachineInfo,
    z_min: float,
    snr_min: float,
    counts: Counts | None = None,
) -> list[Candidate]:
    """One candidate per defect whose evidence rose persistently (module doc); a named ball replaces
    the FTF insight (it explains the cage-rate lines)."""
    found: dict[str, Insight] = {}
    for d in DEFECTS:
        flag = window_flag(cur, baseline, d, snr_min, z_min)
        if flag is None:
            continue
        hits, n = (int(flag), 1) if counts is None else counts.get(d, (0, 0))
        if hits < (1 if counts is None else ENVELOPE_K):
            continue
        windows = "" if counts is None else f" in {hits} of the last {n} windows"
        ins = _insight(cur, baseline, machine, d, windows, z_min, snr_min)
        if ins is not None:
            found[d] = ins
    if "bsf" in found and found["bsf"].signal.startswith("env_bsf_harm"):
        found.pop("ftf", None)
    return [(f"bearing_{'bsf' if ins.signal.startswith('env_bsf_') else d}", ins) for d, ins in found.items()]


def _insight(
    cur: Mapping[str, float],
    baseline: Baseline,
    machine: MachineInfo,
    d: str,
    windows: str,
    z_min: float,
    snr_min: float,
) -> Insight | None:
    label, meaning = DEFECTS[d]
    amp, snr = cur.get(f"env_{d}_amp"), cur.get(f"env_{d}_snr")
    order, f1 = machine.orders.get(d), machine.shaft_hz
    hz = None if order is None or f1 is None else fmt_hz(order * f1)
    rise = HarmonicRise.of(cur, baseline, d)
    if rise is not None:
        ball = ball_under_cage(cur, baseline) if d == "bsf" else None
        cage = HarmonicRise.of(cur, baseline, "ftf")
        if ball is not None and cage is not None and strongest(cur, baseline) == "ftf":
            ftf = machine.orders.get("ftf")
            at = None if ftf is None or f1 is None else fmt_hz(ftf * f1)
            return _ball_under_cage(cage, ball, machine, at, windows)
        return _harmonic(d, rise, hz, windows)
    level = EnvelopeLevel.of(baseline, d)
    if level is not None and amp is not None:
        return _calibrated(d, amp, snr, level, hz, windows, snr_min)
    stats = baseline_stats(baseline, f"env_{d}_amp")
    where = label if hz is None else f"{label} {hz}"
    if stats is None:
        if snr is None:
            return None
        at = label if hz is None else f"{label} ({hz})"
        text = (
            f"Envelope peak at the {at} frequency: SNR {snr:.1f}{windows}; not compared with a calibrated "
            "envelope level, no component named (recalibrate to diagnose)"
        )
        return Insight(text, "WARNING", f"envelope:{d}_snr", snr, UNBASELINED_RANK)
    if snr is not None:
        rank = ORDER_WEIGHT * min(SNR_RANK_SCALE * snr / snr_min, Z_CAP)
        text = f"Envelope peak at {where}: {meaning} (SNR {snr:.1f}{windows})"
        return Insight(text, severity_over(snr, snr_min), f"env_{d}_snr", snr, rank)
    if amp is None:
        return None
    z = z_score(amp, *stats)
    detail = f"amplitude {fmt_num(amp)}g, {z:.1f}σ above normal{windows}"
    text = f"Envelope peak at {where}: {meaning} ({detail})"
    return Insight(text, severity_over(z, z_min), f"env_{d}_amp", amp, ORDER_WEIGHT * min(z, Z_CAP))


def _calibrated(
    d: str, amp: float, snr: float | None, level: EnvelopeLevel, hz: str | None, windows: str, snr_min: float
) -> Insight:
    """The named-component insight on a calibrated envelope level (module doc)."""
    label, meaning = DEFECTS[d]
    at = label if hz is None else f"{label} ({hz})"
    rise = amp / level.threshold if level.threshold > 0 else math.inf
    times = "above its calibrated level"
    if level.median > 0:
        times = f"{amp / level.median:.1f}× its calibrated level"
    tail = "" if snr is None else f" (SNR {snr:.1f})"
    text = (
        f"Envelope amplitude at {at} {times} ({fmt_num(level.median)} g → {fmt_num(amp)} g){windows}: "
        f"{meaning}{tail}"
    )
    strength = rise if snr is None else min(rise, snr / snr_min)
    sev: InsightSeverity = severity_over(strength, 1.0)
    rank_on = SNR_RANK_SCALE * (min(rise, 1e9) if snr is None else snr / snr_min)
    return Insight(text, sev, f"env_{d}_amp", amp, ORDER_WEIGHT * min(rank_on, Z_CAP))


def _levels(r: HarmonicRise) -> str:
    """``6.0× their calibrated level (0.002 g → 0.012 g)`` (the rise over the calibrated median)."""
    times = "above their calibrated level"
    if r.amp_level.median > 0:
        times = f"{r.amp / r.amp_level.median:.1f}× their calibrated level"
    return f"{times} ({fmt_num(r.amp_level.median)} g → {fmt_num(r.amp)} g)"


def _harmonic(d: str, r: HarmonicRise, hz: str | None, windows: str) -> Insight:
    """The named-component insight on the calibrated harmonic level (module doc)."""
    label, meaning = DEFECTS[d]
    meaning = BALL_MEANING if d == "bsf" else meaning
    at = label if hz is None else f"{label} ({hz})"
    text = (
        f"Envelope harmonics of {at} {_levels(r)}, "
        f"harmonic SNR {r.snr:.1f} ({ratio_over(r.snr, r.snr_level.median):.1f}× its calibrated level)"
        f"{windows}: "
        f"{meaning}"
    )
    strength = min(r.amp_rise / levels.RISE_FACTOR, r.snr_rise / levels.SNR_RISE)
    rank_on = SNR_RANK_SCALE * min(r.snr_rise / levels.SNR_RISE, 1e9)
    return Insight(
        text, severity_over(strength, 1.0), f"env_{d}_harm_amp", r.amp, ORDER_WEIGHT * min(rank_on, Z_CAP)
    )


def _ball_under_cage(
    cage: HarmonicRise, ball: HarmonicRise, machine: MachineInfo, hz: str | None, windows: str
) -> Insight:
    """The ball named under persistent cage-rate (FTF) evidence, with both lines it rests on (module
    doc); severity and rank from the FTF rise (the evidence that persisted)."""
    order, f1 = machine.orders.get("bsf"), machine.shaft_hz
    ball_at = "BSF" if order is None or f1 is None else f"BSF ({fmt_hz(order * f1)})"
    cage_at = "FTF" if hz is None else f"FTF ({hz})"
    text = (
        f"Envelope harmonics of {cage_at} {_levels(cage)}, harmonic SNR {cage.snr:.1f} "
        f"({ratio_over(cage.snr, cage.snr_level.median):.1f}× its calibrated level), with those of {ball_at} "
        f"{_levels(ball)}, harmonic SNR {ball.snr:.1f} ({ball.snr_rise:.1f}× its calibrated p95){windows}: "
        f"{BALL_AT_CAGE_MEANING}"
    )
    strength = min(cage.amp_rise / levels.RISE_FACTOR, cage.snr_rise / levels.SNR_RISE)
    rank_on = SNR_RANK_SCALE * min(cage.snr_rise / levels.SNR_RISE, 1e9)
    return Insight(
        text, severity_over(strength, 1.0), "env_bsf_harm_amp", ball.amp, ORDER_WEIGHT * min(rank_on, Z_CAP)
    )
