"""Diagnostic insights: running-speed orders (imbalance, misalignment, looseness) (pure; bearing envelope
peaks: :mod:`.envelope`). Frequencies shown are ``rpm / 60 * order`` (Hz); amplitudes in g.

* 1× amplitude z >= z_min -> imbalance (``ratio = value / baseline mean``);
* 2× amplitude z >= z_min (or, without a baseline, ISO zone C/D) and ``2× >= 0.5 * 1×`` ->
  misalignment;
* 3× amplitude z >= z_min -> mechanical looseness.

Ranking keys: ``ORDER_WEIGHT * min(z, Z_CAP)``.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.health.insights.base import (
    Z_CAP,
    Baseline,
    Candidate,
    Insight,
    MachineInfo,
    baseline_stats,
    fmt_hz,
    fmt_num,
    severity_over,
    z_score,
)

#: Ranking weight of order insights (per σ; the envelope insights use the same).
ORDER_WEIGHT = 1.5
#: 2× counts as misalignment only when at least this fraction of the 1× amplitude.
MISALIGNMENT_MIN_2X_OF_1X = 0.5


def _z_and_mean(cur: Mapping[str, float], baseline: Baseline, name: str) -> tuple[float, float] | None:
    stats = baseline_stats(baseline, name)
    if stats is None or name not in cur:
        return None
    return z_score(cur[name], *stats), stats[0]


def _at(machine: MachineInfo, order: int) -> str:
    f1 = machine.shaft_hz
    return "" if f1 is None else f" ({fmt_hz(order * f1)})"


def order_insights(
    cur: Mapping[str, float], baseline: Baseline, machine: MachineInfo, iso_bad: bool, z_min: float
) -> list[Candidate]:
    """Imbalance (1×), misalignment (2×) and looseness (3×) insights (module doc)."""
    out = [
        c
        for c in (
            _imbalance(cur, baseline, machine, z_min),
            _misalignment(cur, baseline, machine, iso_bad, z_min),
            _looseness(cur, baseline, machine, z_min),
        )
        if c is not None
    ]
    return out


def _imbalance(
    cur: Mapping[str, float], baseline: Baseline, machine: MachineInfo, z_min: float
) -> Candidate | None:
    o1 = cur.get("order1_amp_g")
    r1 = _z_and_mean(cur, baseline, "order1_amp_g")
    if o1 is None or r1 is None or r1[0] < z_min or r1[1] <= 0:
        return None
    z, m = r1
    text = (
        f"1× running speed{_at(machine, 1)} amplitude {o1 / m:.1f}× baseline: imbalance likely "
        f"({fmt_num(o1)}g vs {fmt_num(m)}g)"
    )
    return "order1", Insight(text, severity_over(z, z_min), "order1_amp_g", o1, ORDER_WEIGHT * min(z, Z_CAP))


def _misalignment(
    cur: Mapping[str, float], baseline: Baseline, machine: MachineInfo, iso_bad: bool, z_min: float
) -> Candidate | None:
    o1, o2 = cur.get("order1_amp_g"), cur.get("order2_amp_g")
    if o2 is None or o2 <= 0:
        return None
    r2 = _z_and_mean(cur, baseline, "order2_amp_g")
    dominant = o1 is None or o1 <= 0 or o2 >= MISALIGNMENT_MIN_2X_OF_1X * o1
    if not dominant or not ((r2 is not None and r2[0] >= z_min) or (r2 is None and iso_bad)):
        return None
    rel = "" if o1 is None or o1 <= 0 else f", {o2 / o1:.1f}× the 1× amplitude"
    text = f"Strong 2× running-speed component{_at(machine, 2)}: misalignment likely ({fmt_num(o2)}g{rel})"
    if r2 is not None:
        sev, rank = severity_over(r2[0], z_min), ORDER_WEIGHT * min(r2[0], Z_CAP)
    else:
        sev, rank = "WARNING", ORDER_WEIGHT * z_min
    return "order2", Insight(text, sev, "order2_amp_g", o2, rank)


def _looseness(
    cur: Mapping[str, float], baseline: Baseline, machine: MachineInfo, z_min: float
) -> Candidate | None:
    o3 = cur.get("order3_amp_g")
    r3 = _z_and_mean(cur, baseline, "order3_amp_g")
    if o3 is None or r3 is None or r3[0] < z_min:
        return None
    z, m = r3
    text = (
        f"Strong 3× running-speed component{_at(machine, 3)}: mechanical looseness likely "
        f"({fmt_num(o3)}g, baseline {fmt_num(m)}g)"
    )
    return "order3", Insight(text, severity_over(z, z_min), "order3_amp_g", o3, ORDER_WEIGHT * min(z, Z_CAP))
