"""The "Alarm performance" section of the reports (pure): the ISA-18.2 style metrics of
:mod:`shared.health.alarm_metrics` for the report's asset over its period.

A report holds one asset's alarms: the alarms opened in the period (``ReportData.alarms``) and those
already open when it began (``ReportData.open_before``, for standing alarms). Floods are therefore
this asset's own (3 of its alarms within 10 minutes), not its machine's. The period ``[start, end]``
is closed in a report; the metrics take ``[start, end + 1 µs)``.

- executive PDF: one line (:func:`summary_line`);
- industrial PDF (page 4) and the Excel summary: the table (:func:`rows`): item, value, unit, and
  the basis (period, alarms) in its first row.
"""

from __future__ import annotations

from datetime import timedelta

from shared.health.alarm_metrics import AlarmMetrics, compute_metrics
from shared.reports import facts
from shared.reports.data import ReportData

Row = tuple[str, str | int | float | None, str]


def performance(data: ReportData) -> AlarmMetrics | None:
    """The metrics of the report's alarms over its period; ``None`` for an empty or instant period."""
    end = data.end + timedelta(microseconds=1)
    if not data.start < end:
        return None
    return compute_metrics([*data.open_before, *data.alarms], data.start, end)


def _dur(seconds: float | None) -> str:
    return "—" if seconds is None else facts.fmt_duration(seconds)


def summary_line(m: AlarmMetrics) -> str:
    """One sentence: rate, peak, standing, chattering, time to acknowledge, each with its basis."""
    b, r, a = m.basis, m.rate, m.ack
    ack = (
        f"acknowledged in a median {_dur(a.median_s)} (p90 {_dur(a.p90_s)}, {a.acknowledged} alarms)"
        if a.acknowledged
        else "none acknowledged"
    )
    return (
        f"{b.alarms} alarm(s) opened: {r.mean_per_10min:.2f} per 10 min on average, peak {r.peak_per_10min} "
        f"in one 10-min period; {len(m.standing)} standing (open ≥ {m.params.standing_s / 3600:g} h), "
        f"{len(m.chattering)} chattering source(s); {ack}; {a.unacknowledged_open} open unacknowledged."
    )


def rows(m: AlarmMetrics) -> list[Row]:
    """The table: (item, value, unit)."""
    b, r, a, p = m.basis, m.rate, m.ack, m.params
    chatter = ", ".join(f"{c.source} ×{c.max_opens_in_window}" for c in m.chattering) or "none"
    top = ", ".join(f"{s.source} {s.opens}" for s in m.top_sources[:3]) or "none"
    prio = ", ".join(f"{k} {v}" for k, v in m.by_priority.items())
    return [
        (
            "Alarms opened in the period (the basis)",
            b.alarms,
            f"alarms over {facts.fmt_duration(b.duration_s)}",
        ),
        ("By priority", prio, "alarms"),
        ("Alarm rate, mean", round(r.mean_per_10min, 3), "alarms per 10 min"),
        ("Alarm rate, peak", r.peak_per_10min, "alarms in one 10-min period"),
        (
            f"10-min periods in flood (> {p.operator_flood_above} alarms)",
            round(r.flood_pct, 2),
            f"% of {r.buckets} periods",
        ),
        (
            f"Floods ({p.flood_min_alarms} alarms within {p.flood_window_s / 60:g} min)",
            r.machine_floods,
            "floods",
        ),
        (f"Standing alarms (open ≥ {p.standing_s / 3600:g} h)", len(m.standing), "alarms"),
        (
            f"Chattering sources (≥ {p.chatter_min_opens} opens in {p.chatter_window_s / 60:g} min)",
            chatter,
            "max opens in one window",
        ),
        ("Time to acknowledge, median", a.median_s, f"s, over {a.acknowledged} acknowledged alarms"),
        ("Time to acknowledge, 90th percentile", a.p90_s, f"s, over {a.acknowledged} acknowledged alarms"),
        (
            "Unacknowledged: open / cleared by themselves",
            f"{a.unacknowledged_open} / {a.cleared_unacknowledged}",
            "alarms",
        ),
        ("Most frequent sources", top, "opens"),
    ]


def table(data: ReportData) -> list[dict[str, str]]:
    """:func:`rows` as text cells for the PDF templates (empty when there is no period)."""
    m = performance(data)
    if m is None:
        return []
    out = []
    for item, value, unit in rows(m):
        if isinstance(value, float):
            text = facts.fmt_num(value)
        else:
            text = "—" if value is None else str(value)
        out.append({"item": item, "value": text, "unit": unit})
    return out
