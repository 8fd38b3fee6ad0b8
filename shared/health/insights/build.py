"""``build_insights``: collect the candidate insights, keep the best per signal group, rank (pure).
Rules and ranking: see :mod:`shared.health.insights`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from shared.health.insights.base import (
    MODEL_LABELS,
    Z_CAP,
    Insight,
    MachineInfo,
    ModelStatus,
    baseline_stats,
    finite,
    fmt_num,
    severity_over,
    z_score,
)
from shared.health.insights.diagnostics import Baseline, Candidate, order_insights
from shared.health.insights.envelope import Counts, envelope_insights
from shared.health.insights.rules import DIAGNOSTIC_ONLY, GENERIC_WEIGHT, RULES
from shared.health.iso20816 import DAMAGE_ZONE, UNSATISFACTORY_ZONES, VELOCITY_FEATURE, ZoneResult

#: Ranking keys of the ISO 20816-3 insight per zone: above every signal-specific insight.
ISO_RANK = {"C": 20.0, "D": 60.0}
#: Model insight ranking: ``MODEL_RANK_PER_RATIO * min(worst ratio, MODEL_RATIO_CAP)`` (at most 2).
MODEL_RANK_PER_RATIO = 0.5
MODEL_RATIO_CAP = 4.0


def build_insights(
    current: Mapping[str, float],
    baseline: Mapping[str, Mapping[str, float]] | None = None,
    scores: Iterable[ModelStatus] | Mapping[str, ModelStatus] = (),
    iso: ZoneResult | None = None,
    machine: MachineInfo | None = None,
    max_items: int = 4,
    *,
    z_min: float = 3.0,
    envelope_snr_min: float = 3.0,
    envelope_counts: Counts | None = None,
) -> list[Insight]:
    """Rank the abnormal signals of ``current`` (latest feature/reading values by name) against
    ``baseline`` (name -> {"mean", "std", ...}; envelope indicators also "median", "p95"), the models'
    statuses, the ISO zone and bearing frequencies; return at most ``max_items`` insights, most
    important first (rules and ranking in :mod:`shared.health.insights`). ``envelope_counts``: per
    bearing defect, (windows whose envelope evidence rose, windows counted) over the last few windows
    (:mod:`shared.health.insights.envelope`; None: the current window alone). Empty when everything
    is normal."""
    _check_params(max_items, z_min, envelope_snr_min)
    cur = _check_current(current)
    machine = machine or MachineInfo()
    statuses = _check_statuses(scores)
    iso_bad = iso is not None and iso.zone in UNSATISFACTORY_ZONES
    candidates: list[Candidate] = []
    if iso is not None and iso_bad:
        candidates.append(("iso", iso_insight(iso)))
    candidates.extend(z_insights(cur, baseline, z_min, skip_velocity=iso_bad))
    candidates.extend(order_insights(cur, baseline, machine, iso_bad, z_min))
    candidates.extend(envelope_insights(cur, baseline, machine, z_min, envelope_snr_min, envelope_counts))
    model = model_insight(statuses)
    if model is not None:
        candidates.append(("models", model))
    return rank(candidates)[:max_items]


def rank(candidates: Iterable[Candidate]) -> list[Insight]:
    """The best-ranked insight of each signal group, best first (ties: by signal name)."""
    best: dict[str, Insight] = {}
    for group, ins in candidates:
        if group not in best or ins.score_for_ranking > best[group].score_for_ranking:
            best[group] = ins
    return sorted(best.values(), key=lambda i: (-i.score_for_ranking, i.signal))


def iso_insight(iso: ZoneResult) -> Insight:
    """Zone C -> WARNING, zone D -> CRITICAL, with the boundary crossed (mm/s) and the limits' basis."""
    _, bc, cd = iso.limits
    v = iso.velocity_mm_s
    where = "ISO 20816 zone" if iso.basis == "iso20816-3" else "zone"
    of = "" if iso.basis == "iso20816-3" else f" of the {iso.basis_text or 'custom limits'}"
    if iso.zone == DAMAGE_ZONE:
        text = f"Vibration in {where} D{of}: {v:.1f} mm/s (above {cd:g} mm/s: damage likely)"
        return Insight(text, "CRITICAL", VELOCITY_FEATURE, v, ISO_RANK["D"])
    text = f"Vibration in {where} C{of}: {v:.1f} mm/s (above {bc:g} mm/s: not for long-term operation)"
    return Insight(text, "WARNING", VELOCITY_FEATURE, v, ISO_RANK["C"])


def z_insights(
    cur: Mapping[str, float], baseline: Baseline, z_min: float, *, skip_velocity: bool
) -> list[Candidate]:
    """One candidate per feature with ``|z| >= z_min`` in a direction its rule reports (a feature
    without a rule: a generic text, either direction). ``skip_velocity``: the ISO insight covers it."""
    out: list[Candidate] = []
    for name, value in cur.items():
        if name in DIAGNOSTIC_ONLY or (name == VELOCITY_FEATURE and skip_velocity):
            continue
        stats = baseline_stats(baseline, name)
        if stats is None:
            continue
        mean, std = stats
        z = z_score(value, mean, std)
        if abs(z) < z_min:
            continue
        rule = RULES.get(name)
        if rule is None:
            direction = "above" if z > 0 else "below"
            text = f"{name} = {fmt_num(value)} ({abs(z):.1f}σ {direction} baseline {fmt_num(mean)})"
            group, weight = name, GENERIC_WEIGHT
        else:
            template = rule.up if z > 0 else rule.down
            if template is None:
                continue
            text = template.format(v=fmt_num(value), m=fmt_num(mean), s=fmt_num(std), z=f"{abs(z):.1f}")
            group, weight = rule.group, rule.weight
        sev = severity_over(abs(z), z_min)
        out.append((group, Insight(text, sev, name, value, weight * min(abs(z), Z_CAP))))
    return out


def model_insight(statuses: Iterable[ModelStatus]) -> Insight | None:
    """One insight naming the flagged models, worst ratio first; CRITICAL from a worst ratio of
    :data:`shared.messages.CRITICAL_RATIO`."""
    flagged = sorted((st for st in statuses if st.is_anomaly), key=lambda st: (-st.ratio, st.model))
    if not flagged:
        return None
    top = flagged[0]
    if len(flagged) == 1:
        text = f"{MODEL_LABELS.get(top.model, top.model)} model anomaly: score {top.ratio:.1f}× threshold"
    else:
        parts = ", ".join(f"{st.model} {st.ratio:.1f}×" for st in flagged)
        text = f"Anomaly on {len(flagged)} models: {parts} threshold"
    rank_key = MODEL_RANK_PER_RATIO * min(top.ratio, MODEL_RATIO_CAP)
    return Insight(text, severity_over(top.ratio, 1.0), f"model:{top.model}", top.ratio, rank_key)


# ---------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------
def _check_current(current: Mapping[str, float]) -> dict[str, float]:
    if not isinstance(current, Mapping):
        raise ValueError(f"current must be a mapping name -> value, got {type(current).__name__}")
    out: dict[str, float] = {}
    for k, v in current.items():
        if not isinstance(k, str):
            raise ValueError(f"feature names must be strings, got {k!r}")
        if not finite(v):
            raise ValueError(f"feature {k!r} must be a finite number, got {v!r}")
        out[k] = float(v)
    return out


def _check_statuses(scores: Iterable[ModelStatus] | Mapping[str, ModelStatus]) -> list[ModelStatus]:
    statuses = list(scores.values()) if isinstance(scores, Mapping) else list(scores)
    for st in statuses:
        if not isinstance(st, ModelStatus):
            raise ValueError(f"scores must be ModelStatus objects, got {type(st).__name__}")
        if not finite(st.ratio):
            raise ValueError(f"ratio of model {st.model!r} must be finite")
    return statuses


def _check_params(max_items: int, z_min: float, envelope_snr_min: float) -> None:
    if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 0:
        raise ValueError(f"max_items must be an integer >= 0, got {max_items!r}")
    for name, v in (("z_min", z_min), ("envelope_snr_min", envelope_snr_min)):
        if not (isinstance(v, int | float) and finite(v) and v > 0):
            raise ValueError(f"{name} must be a positive number, got {v!r}")
