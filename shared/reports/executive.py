"""The executive PDF: one A4 page for managers (pure: ReportData → PDF bytes).

Contents: asset and period; the newest health update's grade A-F, health score, risk, remaining
life (median and 80 % interval, the indicator and failure threshold it rests on) and the maintenance
window it gives (the interval's low end), or why there is no estimate
(:mod:`shared.reports.prognosis`); key numbers — maximum vibration (g, over every reading of the
period), velocity RMS (newest, with its ISO 20816 zone and the zone's basis; the period's maximum),
alarms raised / still open, time in each ISO zone, availability of data (:mod:`shared.reports.facts`);
a health trend chart; the top insights of the newest health update; the latest operator actions (log
entries, alarm acknowledgements and resolutions). The footer states when it was generated, the data
it rests on (period, counts) and the model versions. A period without data gives a page saying so.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shared.health.scoring import GRADE_BOUNDS
from shared.reports import alarm_performance, charts, facts
from shared.reports.data import ReportData
from shared.reports.prognosis import prognosis
from shared.reports.render import render_pdf

PAGES = 1
#: Most insights and operator actions listed (the rest are counted as "N more").
MAX_INSIGHTS = 4
MAX_ACTIONS = 5


def build_executive(data: ReportData) -> bytes:
    """The 1-page executive summary of ``data`` as PDF bytes."""
    return render_pdf("executive.html", executive_context(data), PAGES)


def common_context(data: ReportData) -> dict[str, Any]:
    """What every report shows in its header and footer."""
    cfg = data.config
    return {
        "asset_id": data.asset_id,
        "asset_name": (cfg.name if cfg and cfg.name else ""),
        "asset_type": cfg.type if cfg else None,
        "start": facts.fmt_time(data.start),
        "end": facts.fmt_time(data.end),
        "duration": facts.fmt_duration(facts.period_s(data)),
        "generated": facts.fmt_time(data.generated_at),
        "counts": facts.data_counts(data),
        "models": facts.model_versions(data.models),
        "empty": data.empty,
        "n_alarms": len(data.alarms),
        "n_logs": len(data.logs),
        "cap_note": cap_note(data),
    }


def cap_note(data: ReportData) -> str:
    """What the gatherer's row cap changed ("" when nothing was capped)."""
    if data.capped is None:
        return ""
    k = -(-(data.readings_total or len(data.readings)) // max(data.capped, 1))
    return (
        f"The period holds more than {data.capped:,} rows per series, so charts, availability and the "
        f"per-row counts here use every k-th stored row (k = {k} for the readings); the maximum and "
        "the baseline comparison use every reading."
    )


def executive_context(data: ReportData) -> dict[str, Any]:
    ctx = common_context(data)
    if data.empty:
        return ctx
    ctx.update(_health(data))
    ctx.update(_key_numbers(data))
    ctx["trend_svg"] = _trend(data)
    perf = alarm_performance.performance(data)
    ctx["alarm_perf"] = alarm_performance.summary_line(perf) if perf else ""
    insights = data.latest_health.insights if data.latest_health else []
    ctx["insights"] = insights[:MAX_INSIGHTS]
    ctx["insights_total"] = len(insights)
    actions = facts.operator_actions(data.alarms, data.logs)
    ctx["actions"] = [
        {"ts": facts.fmt_cell(a.ts), "who": a.who, "what": a.what, "detail": a.detail}
        for a in actions[:MAX_ACTIONS]
    ]
    ctx["actions_total"] = len(actions)
    return ctx


def _health(data: ReportData) -> dict[str, Any]:
    h = data.latest_health
    if h is None:
        return {"health": None}
    return {
        "health": {
            "grade": h.grade,
            "score": f"{h.health_score:.0f}",
            "risk": h.risk_level,
            "rul": prognosis(h),
            "ts": facts.fmt_time(h.ts),
        }
    }


def _key_numbers(data: ReportData) -> dict[str, Any]:
    stats = facts.signal_stats(data).get("vibration_g")
    vmax = facts.column_max(data.readings, "vibration_g")
    h = data.latest_health
    v_peak = facts.column_max(data.vibration, "velocity_rms_mm_s") or facts.column_max(
        data.health, "velocity_rms_mm_s"
    )
    alarms = facts.alarm_counts(data.alarms, data.start, data.open_before)
    zone_s = facts.zone_time(data)
    total = sum(zone_s.values())
    avail = facts.availability(data)
    return {
        "vib_max": f"{stats['max']:.6g}" if stats else None,
        "vib_max_at": facts.fmt_time(vmax[1]) if vmax and stats and vmax[0] == stats["max"] else None,
        "vib_mean": facts.fmt_num(stats["mean"]) if stats else None,
        "velocity": None if h is None or h.velocity_rms_mm_s is None else facts.fmt_num(h.velocity_rms_mm_s),
        "zone": h.iso_zone if h else None,
        "zone_basis": (h.zone_basis_text or h.zone_basis or "") if h else "",
        "zone_information": bool(h and h.zone_basis == "information"),
        "velocity_peak": facts.fmt_num(v_peak[0]) if v_peak else None,
        "alarms_raised": alarms.raised,
        "alarms_open": alarms.still_open,
        "alarms_carried": alarms.open_at_start,
        "availability": None if avail is None else f"{avail[0]:.1f}",
        "bucket_s": "—" if avail is None else facts.fmt_duration(avail[1]),
        "zone_rows": facts.zone_rows(zone_s),
        "zone_svg": charts.zone_bar(zone_s, size=(3.3, 0.32)) if total > 0 else None,
    }


def _trend(data: ReportData) -> str | None:
    h = data.health
    score = h.columns.get("health_score")
    if score is None or not np.isfinite(score).any():
        return None
    return charts.health_chart(
        h.ts_s,
        score,
        bounds=GRADE_BOUNDS,
        size=(7.1, 1.85),
        period=(data.start.timestamp(), data.end.timestamp()),
    )
