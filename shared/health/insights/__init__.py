"""Presentation: human-readable insights, which signal is abnormal, by how much, and what it likely
means (pure).

Every number in an insight comes from the inputs (current values, baseline statistics, scores,
ISO result, configured speed and bearing orders) or a direct arithmetic of them (z-score, ratio,
frequency = rpm / 60 * order). When nothing is abnormal the list is empty.

Rules
-----
* **z-score rules** (need a baseline for the feature)::

      z = (value - mean) / max(std, 0.01 * |mean|, 1e-12)

  An insight is produced when ``|z| >= z_min`` (default 3) in a direction that indicates a
  problem (e.g. power factor only downwards, vibration only upwards); severity is CRITICAL when
  ``|z| >= CRITICAL_RATIO * z_min`` (:data:`shared.messages.CRITICAL_RATIO` = 2, as for scores),
  else WARNING. The std floor (1 % of the mean) keeps a perfectly constant
  calibration signal from turning tiny measurement noise into huge z-scores.
* **ISO 20816-3**: zone C -> WARNING, zone D -> CRITICAL (``Vibration in ISO 20816 zone C: 5.1 mm/s``).
* **Envelope (bearing) peaks** (:mod:`.envelope`): d = BPFO (outer race), BPFI (inner race), BSF
  (rolling element), FTF (cage rate: rolling element or cage); the frequency shown is
  ``rpm / 60 * order``. A component is named only when its evidence rose against the asset's
  calibrated envelope level, in 4 of the last 6 windows. With calibrated harmonic levels:
  ``env_<d>_harm_amp >= 2 ×`` and ``env_<d>_harm_snr >= 1.3 ×`` their calibrated p95, and d has the
  strongest SNR rise of those (one component per window;
  ``Envelope harmonics of BPFI (162 Hz) 16.4× their calibrated level (0.0051 g → 0.084 g), harmonic
  SNR 2.3 (2.0× its calibrated level) in 5 of the last 6 windows: inner-race defect likely``). With
  the fundamental's level only: ``env_<d>_amp >= 2 ×`` its calibrated p95 and ``env_<d>_snr >=
  envelope_snr_min`` (default 3, a linear peak-to-noise-floor amplitude ratio) (``Envelope
  amplitude at BPFO (168 Hz) 4.2× its calibrated level (0.012 g → 0.05 g) in 5 of the last 6
  windows: outer-race defect likely (SNR 6.1)``). With only a mean/std baseline of ``env_<d>_amp``:
  SNR ``>= envelope_snr_min`` and z ``>= z_min``. Without any baseline of it (models calibrated
  before envelope baselines were stored): a persistent SNR peak is reported as not compared with a
  calibrated level, naming no component.
* **Running-speed orders** (need a baseline, or for 2× an ISO zone C/D): 1× amplitude z >= z_min
  -> imbalance (``ratio = value / baseline mean``); 2× amplitude z >= z_min and ``2× >= 0.5 * 1×``
  -> misalignment; 3× z >= z_min -> mechanical looseness.
* **Models**: one insight naming the models whose (persistent) anomaly flag is on, worst first,
  with their ratios (``Anomaly on 2 models: batch 3.1×, legacy 1.4× threshold``); CRITICAL when
  the worst ratio is >= ``CRITICAL_RATIO``. Ranked last, so specific signals come first.

Ranking (``score_for_ranking``, a dimensionless ordering key, larger first)::

    z rules       weight * min(|z|, 30)          (weight 0.7 .. 1.2 per signal; 0.8 generic)
    orders        1.5 * min(|z|, 30)
    envelope      1.5 * min(3 * snr / envelope_snr_min, 30)   (harmonic level: 3 * rise_S / 1.3;
                  without SNR: from the rise or z; a peak not compared with a calibrated level: 1)
    ISO zone C    20;  zone D  60
    models        0.5 * min(worst ratio, 4)   (ratio = anomaly_score / threshold; at most 2)

With the default ``z_min`` = 3 every signal-specific insight scores at least 0.7 * 3 = 2.1, so the
generic model insight always comes after the ones that name a signal.

At most one insight per signal group (e.g. ``voltage_v`` and ``voltage_v_mean`` are both
"voltage"), the best-ranked one; at most ``max_items`` in total, best first.

Modules: :mod:`.base` (types, machine info, formatting, z-score), :mod:`.rules` (the z-score rule
table), :mod:`.diagnostics` (running-speed orders), :mod:`.envelope` (bearing defects against the
calibrated envelope level), :mod:`.build` (collection, ranking).
"""

from shared.health.insights.base import (
    DEFECTS,
    Insight,
    InsightSeverity,
    MachineInfo,
    ModelStatus,
    bearing_orders,
    fmt_hz,
    fmt_num,
    z_score,
)
from shared.health.insights.build import build_insights
from shared.health.insights.rules import RULES

__all__ = [
    "DEFECTS",
    "RULES",
    "Insight",
    "InsightSeverity",
    "MachineInfo",
    "ModelStatus",
    "bearing_orders",
    "build_insights",
    "fmt_hz",
    "fmt_num",
    "z_score",
]
