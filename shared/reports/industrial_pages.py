"""Pages 3-5 of the industrial PDF: trends and spectrum, alarms and anomalies, assessment (pure).

Spectrum view: raw accelerometer samples are not stored, so the newest stored vibration vector's
indicators are what can be shown — its band energies (``band_i_energy``, g², equal bands from 0 to
Nyquist = ``fs_hz / 2`` of the newest window, :mod:`shared.features.spectral`), its amplitudes at 1×,
2×, 3× running speed (``order{h}_amp_g``, g zero-to-peak) and its envelope amplitudes at the bearing
defect frequencies (``env_{d}_amp``, g, with their SNR), each placed at ``order × rpm / 60`` Hz.

Degradation trend: the least-squares slope of the health score over the period, points/day; the
remaining-life estimate of the newest update (:mod:`shared.reports.prognosis`) and the stored trend of
the indicator it rests on, ``rms_log = ln(RMS / calibrated RMS)`` in Np, with the failure threshold.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shared.health.insights.base import bearing_orders
from shared.health.iso20816 import ZONE_DESCRIPTIONS, ZoneBasis, basis_of
from shared.reports import alarm_performance, charts, facts
from shared.reports.data import ReportData, Series
from shared.reports.findings import recommendations
from shared.reports.prognosis import prognosis

FULL_W = 7.1
MAX_SPANS = 8
MAX_TRANSITIONS = 8
MAX_LOGS = 5
MAX_RECOMMENDATIONS = 8
MODEL_ORDER = ("legacy", "batch", "autoencoder")
DEFECTS = ("bpfo", "bpfi", "bsf", "ftf")


def _period(data: ReportData) -> tuple[float, float]:
    return data.start.timestamp(), data.end.timestamp()


def _basis(data: ReportData) -> ZoneBasis:
    return basis_of(data.config.iso if data.config else None)


def _basis_short(b: ZoneBasis) -> str:
    if b.kind == "information":
        return f"information only (ISO 20816-3 group {b.group}, {b.foundation} limits)"
    return b.text


def trends_page(data: ReportData) -> dict[str, Any]:
    """Page 3: score trends with thresholds, velocity over zone bands, envelope SNR, spectrum view."""
    period = _period(data)
    out: dict[str, Any] = {"scores": _scores_chart(data, period), "velocity": None}
    src = data.vibration if "velocity_rms_mm_s" in data.vibration.columns else data.health
    v = src.columns.get("velocity_rms_mm_s")
    if v is not None and np.isfinite(v).any():
        b = _basis(data)
        out["velocity"] = charts.velocity_chart(
            src.ts_s, v, limits=b.limits, basis=_basis_short(b), size=(FULL_W, 1.4), period=period
        )
    out["snr"] = _snr_chart(data.vibration, period)
    out["kurtosis"] = _kurtosis_chart(data.vibration, period)
    out.update(spectrum(data))
    return out


def _scores_chart(data: ReportData, period: tuple[float, float]) -> str | None:
    """Every model's anomaly score as a multiple of its threshold (1 = WARNING above, 2 = CRITICAL)."""
    series = {}
    for kind in sorted(data.scores, key=lambda k: MODEL_ORDER.index(k) if k in MODEL_ORDER else 9):
        s = data.scores[kind]
        score, thr = s.columns.get("anomaly_score"), s.columns.get("threshold")
        if not len(s) or score is None or thr is None:
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(thr > 0, score / thr, np.nan)
        last = facts.last_finite(thr)
        series[f"{kind} (threshold {facts.fmt_num(last, 4)})"] = (s.ts_s, ratio)
    if not series:
        return None
    return charts.lines_chart(
        series,
        size=(FULL_W, 1.45),
        title="Model anomaly scores ÷ their threshold",
        ylabel="× threshold",
        period=period,
        hlines=[(1.0, "threshold (WARNING above)", charts.WARN), (2.0, "2× (CRITICAL above)", charts.CRIT)],
    )


def _kurtosis_chart(vib: Series, period: tuple[float, float]) -> str | None:
    cols = {f"{a} axis": vib.columns[f"{a}_kurtosis"] for a in "xyz" if f"{a}_kurtosis" in vib.columns}
    cols = {k: v for k, v in cols.items() if np.isfinite(v).any()}
    if not cols:
        return None
    return charts.lines_chart(
        {k: (vib.ts_s, v) for k, v in cols.items()},
        size=(FULL_W, 1.2),
        title="Impulsiveness: excess kurtosis per axis (0 for Gaussian vibration)",
        ylabel="kurtosis",
        period=period,
    )


def _snr_chart(vib: Series, period: tuple[float, float]) -> str | None:
    keys = [
        d for d in DEFECTS if f"env_{d}_snr" in vib.columns and np.isfinite(vib.columns[f"env_{d}_snr"]).any()
    ]
    if not keys:
        return None
    fig = charts.figure(FULL_W, 1.2)
    ax = fig.add_subplot()
    for d in keys:
        r = charts.reduce_series(vib.ts_s, vib.columns[f"env_{d}_snr"])
        ax.plot(r.t, r.mean, linewidth=0.9, label=d.upper())
    ax.set_title("Envelope SNR at the bearing defect frequencies (peak / nearby median)")
    ax.set_ylabel("SNR")
    charts._time_axis(ax, *period)
    ax.legend(loc="upper left", ncols=len(keys))
    return charts.to_svg(fig)


def _latest_row(vib: Series) -> tuple[int, float] | None:
    """Index and time of the newest vibration vector with band energies."""
    b0 = vib.columns.get("band_0_energy")
    if b0 is None:
        return None
    ok = np.flatnonzero(np.isfinite(b0))
    return (int(ok[-1]), float(vib.ts_s[ok[-1]])) if ok.size else None


def _fs_at(windows: Series, ts: float) -> float | None:
    fs = windows.columns.get("fs_hz")
    if fs is None or not len(windows):
        return None
    i = int(np.argmin(np.abs(windows.ts_s - ts)))
    return float(fs[i]) if np.isfinite(fs[i]) else None


def spectrum(data: ReportData) -> dict[str, Any]:
    """The spectrum view of the newest stored vibration vector (module doc)."""
    vib = data.vibration
    latest = _latest_row(vib)
    if latest is None:
        return {"spectrum_at": None}
    i, ts = latest
    n_bands = sum(1 for k in vib.columns if k.startswith("band_") and k.endswith("_energy"))
    energies = [float(vib.columns[f"band_{b}_energy"][i]) for b in range(n_bands)]
    fs = _fs_at(data.windows, ts)
    bands = charts.bands_chart(energies, fs / 2 / n_bands if fs else None, size=(3.45, 1.9))
    return {"spectrum_at": facts.fmt_time(ts), "bands_svg": bands, "peaks_svg": _peaks_chart(data, i)}


def _peaks_chart(data: ReportData, i: int) -> str | None:
    vib, cfg = data.vibration, data.config
    shaft = cfg.rpm / 60.0 if cfg and cfg.rpm else None
    orders = bearing_orders(cfg.bearing) if cfg else {}
    labels, values, colours, snrs = [], [], [], []
    for h in (1, 2, 3):
        col = vib.columns.get(f"order{h}_amp_g")
        if col is not None and np.isfinite(col[i]):
            labels.append(f"{h}×" + (f"\n{h * shaft:.1f} Hz" if shaft else ""))
            values.append(float(col[i]))
            colours.append(charts.ACCENT)
    for d in DEFECTS:
        col = vib.columns.get(f"env_{d}_amp")
        if col is not None and np.isfinite(col[i]):
            hz = f"\n{orders[d] * shaft:.1f} Hz" if shaft and d in orders else ""
            labels.append(d.upper() + hz)
            values.append(float(col[i]))
            colours.append(charts.WARN)
            snr = vib.columns.get(f"env_{d}_snr")
            if snr is not None and np.isfinite(snr[i]):
                snrs.append(f"{d.upper()} SNR {snr[i]:.1f}")
    if not values:
        return None
    return charts.bar_chart(
        labels,
        values,
        size=(3.45, 1.9),
        title="Orders (blue), envelope (orange)",
        ylabel="g",
        colours=colours,
        note="; ".join(snrs) or None,
    )


def _spans(data: ReportData) -> tuple[list[charts.Span], int]:
    """One span per alarm (newest :data:`MAX_SPANS`), and how many more alarms there are."""
    by_id: dict[str, charts.Span] = {}
    for a in data.alarms:
        sp = by_id.get(a.alarm_id)
        if sp is None:
            sp = by_id[a.alarm_id] = charts.Span(
                f"{a.source} {a.alarm_id[:8]}",
                max(a.opened_at.timestamp(), _period(data)[0]),
                None,
                None,
                a.severity,
            )
        if a.state == "ACKNOWLEDGED" and sp.ack is None:
            sp.ack = a.ts.timestamp()
        elif a.state == "RESOLVED":
            sp.end = a.ts.timestamp()
        if a.severity == "CRITICAL":
            sp.severity = "CRITICAL"
    spans = sorted(by_id.values(), key=lambda s: s.start)
    return spans[-MAX_SPANS:], max(len(spans) - MAX_SPANS, 0)


def _transition(a: Any) -> dict[str, str]:
    # A shelving's note is its reason: shown once, in its shelf mark.
    note = None if a.transition == "shelved" and a.note == a.shelve_reason else a.note
    code = a.action_code and a.action_code.replace("_", " ")
    extra = [x for x in (a.who and f"by {a.who}", code, note) if x]
    if a.auto_cleared:
        extra.insert(0, "cleared by itself")
    if a.transition == "unshelved":
        extra.insert(0, "returned from shelf")
    if mark := facts.shelf_mark(a):
        extra.insert(0, mark)
    return {
        "ts": facts.fmt_cell(a.ts),
        "alarm": a.alarm_id[:8],
        "state": a.state,
        "severity": a.severity,
        "source": a.source,
        "reason": a.reason,
        "extra": "; ".join(extra),
    }


def alarms_page(data: ReportData) -> dict[str, Any]:
    """Page 4: alarm timeline and transitions, anomalous scores per model, operator log."""
    spans, spans_more = _spans(data)
    anomalies = {}
    rows = []
    for kind, s in data.scores.items():
        flags = s.columns.get("is_anomaly")
        if flags is None or not len(s):
            continue
        hit = s.ts_s[flags > 0.5]
        anomalies[kind] = hit
        rows.append(
            {
                "kind": kind,
                "n": f"{len(s):,}",
                "flagged": f"{hit.size:,}",
                "share": f"{100 * hit.size / len(s):.1f} %",
                "first": facts.fmt_cell(float(hit[0])) if hit.size else "—",
                "last": facts.fmt_cell(float(hit[-1])) if hit.size else "—",
            }
        )
    shown_anomalies = {k: v for k, v in anomalies.items() if v.size}
    timeline = None
    if spans or shown_anomalies:
        height = 0.8 + 0.14 * (len(spans) + len(shown_anomalies))
        timeline = charts.timeline_chart(spans, shown_anomalies, period=_period(data), size=(FULL_W, height))
    transitions = [_transition(a) for a in data.alarms[-MAX_TRANSITIONS:]]
    logs = [
        {
            "ts": facts.fmt_cell(g.ts),
            "type": g.event_type.replace("_", " "),
            "severity": g.severity,
            "author": g.author or "—",
            "text": g.description,
        }
        for g in data.logs[-MAX_LOGS:]
    ]
    counts = facts.alarm_counts(data.alarms, data.start, data.open_before)
    return {
        "timeline": timeline,
        "spans_more": spans_more,
        "transitions": transitions,
        "transitions_total": len(data.alarms),
        "raised": counts.raised,
        "open": counts.still_open,
        "carried": counts.open_at_start,
        "shelved": counts.shelved,
        "anomaly_rows": rows,
        "performance": alarm_performance.table(data),
        "logs": logs,
        "logs_total": len(data.logs),
    }


def _health_slope(h: Series) -> float | None:
    """Least-squares slope of the health score, points/day (None: fewer than 2 points or no span)."""
    score = h.columns.get("health_score")
    if score is None:
        return None
    ok = np.isfinite(score)
    t, y = h.ts_s[ok], score[ok]
    if t.size < 2 or t[-1] <= t[0]:
        return None
    return float(np.polyfit((t - t[0]) / 86_400.0, y, 1)[0])


def rms_log_chart(data: ReportData, size: tuple[float, float]) -> str | None:
    """The stored ``ind_rms_log`` (Np) over the period with the newest failure threshold (the newest
    update's, else the last stored ``rul_threshold``) as a dashed line; None when no rms_log is stored."""
    h = data.health
    y = h.columns.get("ind_rms_log")
    if y is None or not np.isfinite(y).any():
        return None
    latest = data.latest_health
    threshold = latest.rul.threshold if latest and latest.rul and latest.rul.threshold is not None else None
    if threshold is None:
        threshold = facts.last_finite(h.columns.get("rul_threshold", np.zeros(0)))
    lines = [] if threshold is None else [(threshold, f"failure threshold {threshold:.2f} Np", charts.CRIT)]
    return charts.line_chart(
        h.ts_s,
        y,
        size=size,
        title="rms_log = ln(RMS / calibrated RMS), the indicator the remaining-life estimate rests on",
        ylabel="Np",
        period=_period(data),
        hlines=lines,
    )


def assessment_page(data: ReportData) -> dict[str, Any]:
    """Page 5: ISO 20816 assessment, degradation, maintenance window, recommended actions."""
    h = data.latest_health
    b = _basis(data)
    zone_s = facts.zone_time(data)
    di = data.health.columns.get("degradation_index", np.zeros(0))
    score = data.health.columns.get("health_score", np.zeros(0))
    recs = recommendations(h, data.alarms)
    slope = _health_slope(data.health)
    di_chart = None
    if np.isfinite(di).any():
        di_chart = charts.line_chart(
            data.health.ts_s,
            di,
            size=(FULL_W, 1.3),
            title="Degradation index (0 = as calibrated, 1 = worn out)",
            ylabel="index",
            period=_period(data),
            ylim=(0, 1),
        )
    return {
        "latest": h,
        "basis_text": (h.zone_basis_text if h and h.zone_basis_text else b.text),
        "basis_alarming": (h.zone_basis in ("iso20816-3", "custom")) if h and h.zone_basis else b.alarming,
        "limits": [f"{v:g}" for v in b.limits],
        "velocity": facts.fmt_num(h.velocity_rms_mm_s) if h and h.velocity_rms_mm_s is not None else None,
        "zone_text": ZONE_DESCRIPTIONS.get(h.iso_zone or "", "") if h else "",
        "zone_rows": facts.zone_rows(zone_s),
        "di_now": facts.fmt_num(facts.last_finite(di)),
        "di_max": facts.fmt_num(float(np.nanmax(di))) if np.isfinite(di).any() else "—",
        "score_first": facts.fmt_num(float(score[np.isfinite(score)][0]))
        if np.isfinite(score).any()
        else "—",
        "score_last": facts.fmt_num(facts.last_finite(score)),
        "slope": None if slope is None else f"{slope:+.1f}",
        "di_chart": di_chart,
        "rul": prognosis(h),
        "rms_chart": rms_log_chart(data, (FULL_W, 1.3)),
        "recommendations": recs[:MAX_RECOMMENDATIONS],
        "recommendations_total": len(recs),
    }
