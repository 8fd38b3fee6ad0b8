"""The industrial PDF: five A4 pages for engineers (pure: ReportData → PDF bytes).

1. **Asset and sensors**: configuration (speed, bearing defect orders and frequencies, ISO basis),
   sensors as the stored data shows them (reading rate; vibration axes, sample rates, window
   lengths), model versions and calibration dates, baseline statistics of the calibration data
   against the period's own statistics.
2. **Signals against their baseline**: each reading signal with the calibration mean, ±1σ and ±3σ.
3. **Trends and spectrum**: model scores with thresholds, velocity RMS over its zone bands, and the
   spectrum view the stored vibration vectors allow (band energies, running-speed orders, envelope
   amplitudes at bearing defect frequencies; raw samples are not stored), see
   :mod:`shared.reports.industrial_pages`.
4. **Alarms and anomalies**: timeline, transitions with acknowledgements, resolutions and actions,
   anomalous-score counts, operator log.
5. **Assessment**: ISO 20816 (with its basis), degradation, maintenance window with its reasons,
   recommended actions derived from the findings (:mod:`shared.reports.findings`).

Every page states the period; the footer states when the report was generated, the data counts and
the model versions. Long tables are cut to a fixed number of rows and say how many more there are.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shared.health.insights.base import bearing_orders
from shared.health.iso20816 import basis_of
from shared.reports import charts, facts
from shared.reports.data import ModelInfo, ReportData
from shared.reports.executive import common_context
from shared.reports.industrial_pages import alarms_page, assessment_page, trends_page
from shared.reports.render import render_pdf

PAGES = 5
#: Width of a full-width chart, inches (A4 minus margins).
FULL_W = 7.1


def build_industrial(data: ReportData) -> bytes:
    """The 5-page industrial report of ``data`` as PDF bytes."""
    return render_pdf("industrial.html", industrial_context(data), PAGES)


def industrial_context(data: ReportData) -> dict[str, Any]:
    ctx = common_context(data)
    ctx["title"] = "Industrial condition report"
    ctx.update(asset_page(data))
    ctx["signals"] = signals_page(data)
    ctx["trends"] = trends_page(data)
    ctx["alarms"] = alarms_page(data)
    ctx["assessment"] = assessment_page(data)
    return ctx


def asset_page(data: ReportData) -> dict[str, Any]:
    """Page 1: configuration, sensors, models, baseline statistics."""
    return {
        "config_rows": config_rows(data),
        "sensors": sensor_rows(data),
        "model_rows": model_rows(data),
        "calibrated": facts.fmt_time(max((m.created_at for m in data.models if m.created_at), default=None)),
        "baseline_rows": baseline_rows(data),
        **feature_rows(data),
    }


def config_rows(data: ReportData) -> list[tuple[str, str]]:
    cfg = data.config
    if cfg is None:
        return [("Configuration", "no asset configuration is retained for this asset")]
    rows = [("Asset", f"{cfg.name or cfg.asset_id} ({cfg.asset_id}), {cfg.type}")]
    shaft = None if cfg.rpm is None else cfg.rpm / 60.0
    rows.append(
        ("Running speed", "not configured" if shaft is None else f"{cfg.rpm:g} r/min ({shaft:.2f} Hz)")
    )
    if cfg.bearing is not None:
        orders = bearing_orders(cfg.bearing)
        parts = [
            f"{k.upper()} {v:.4g}×" + ("" if shaft is None else f" = {v * shaft:.1f} Hz")
            for k, v in orders.items()
        ]
        rows.append(("Bearing defect orders", ", ".join(parts) or "—"))
    else:
        rows.append(("Bearing", "not configured (no defect frequencies)"))
    basis = basis_of(cfg.iso)
    limits = " / ".join(f"{v:g}" for v in basis.limits)
    rows.append(("Vibration zones", f"{basis.text}; A/B, B/C, C/D = {limits} mm/s"))
    return rows


def sensor_rows(data: ReportData) -> list[tuple[str, str]]:
    s = facts.sensors(data)
    rate = "—" if s.reading_rate_hz is None else f"{s.reading_rate_hz:.3g} Hz (median spacing)"
    signals = "voltage V, current A, power factor, vibration g"
    rows = [
        (
            "Readings",
            f"{s.readings:,} in the period; {signals}; {rate}" if s.readings else "none in the period",
        )
    ]
    if s.windows:
        fs = ", ".join(f"{v:g} Hz" for v in s.fs_hz) or "—"
        n = ", ".join(f"{v:,}" for v in s.samples) or "—"
        lengths = ", ".join(f"{n / f:.3g} s" for n in s.samples for f in s.fs_hz[:1]) if s.fs_hz else "—"
        every = "" if s.window_every_s is None else f"; one every {facts.fmt_duration(s.window_every_s)}"
        rows.append(("Vibration windows", f"{s.windows:,} windows{every}"))
        rows.append(("Accelerometer axes", ", ".join(s.axes) or "not recorded"))
        rows.append(("Sample rate / window", f"{fs}; {n} samples ({lengths})"))
    else:
        rows.append(("Vibration windows", "none in the period"))
    return rows


def model_rows(data: ReportData) -> list[dict[str, str]]:
    used = facts.score_versions(data)
    counts = facts.anomaly_counts(data)
    out = []
    for m in data.models:
        feats = (m.baseline.get("features") or {}) if isinstance(m.baseline, dict) else {}
        frames = m.frames or {}
        fpw = frames.get("frames_per_window")
        out.append(
            {
                "kind": m.kind,
                "version": m.version,
                "created": facts.fmt_time(m.created_at),
                "threshold": facts.fmt_num(m.threshold, 4),
                "features": f"{len(m.features)}",
                "calib_n": f"{feats.get('n'):,}" if isinstance(feats.get("n"), int) else "—",
                "rows": f"{fpw} frames/window"
                if fpw and fpw != 1
                else "whole windows"
                if m.kind == "autoencoder"
                else "",
                "scored": ", ".join(used.get(m.kind, [])) or "no score in the period",
                "scores": f"{counts[m.kind][1]:,}" if m.kind in counts else "0",
            }
        )
    return out


def signal_baseline(models: list[ModelInfo]) -> dict[str, dict[str, float]]:
    """The calibration signal baseline of the first model that carries one (all share one calibration)."""
    for m in models:
        sig = m.baseline.get("signals") if isinstance(m.baseline, dict) else None
        if sig:
            return sig
    return {}


def baseline_rows(data: ReportData) -> list[dict[str, str]]:
    base = signal_baseline(data.models)
    period = facts.signal_stats(data)
    out = []
    for name, unit in facts.SIGNALS.items():
        b, p = base.get(name), period.get(name)
        if b is None and p is None:
            continue
        shift = None
        if b and p and b.get("std"):
            shift = (p["mean"] - b["mean"]) / b["std"]
        out.append(
            {
                "signal": facts.SIGNAL_LABELS[name],
                "unit": unit,
                **{
                    f"b_{k}": facts.fmt_num(b.get(k) if b else None, 4) for k in ("mean", "std", "min", "max")
                },
                "b_n": f"{int(b['n']):,}" if b and b.get("n") else "—",
                **{
                    f"p_{k}": facts.fmt_num(p.get(k) if p else None, 4) for k in ("mean", "std", "min", "max")
                },
                "shift": "—" if shift is None else f"{shift:+.1f}σ",
            }
        )
    return out


#: Most feature-baseline rows on page 1.
MAX_FEATURES = 10


def feature_rows(data: ReportData) -> dict[str, Any]:
    """Feature baseline of the first model carrying one (vibration model first), with the period's
    mean of each feature where the stored vibration vectors hold it."""
    ordered = sorted(data.models, key=lambda m: m.kind != "autoencoder")
    for m in ordered:
        fb = m.baseline.get("features") if isinstance(m.baseline, dict) else None
        feats = (fb or {}).get("features") or []
        if not feats:
            continue
        rows = []
        for f in feats[:MAX_FEATURES]:
            col = data.vibration.columns.get(f.get("name", ""))
            mean = float(np.nanmean(col)) if col is not None and np.isfinite(col).any() else None
            rows.append(
                {"name": f.get("name", "?"), "period": facts.fmt_num(mean, 4)}
                | {k: facts.fmt_num(f.get(k), 4) for k in ("mean", "std", "median", "mad", "min", "max")}
            )
        return {
            "feature_model": m.kind,
            "feature_n": fb.get("n") if fb else None,
            "feature_rows": rows,
            "features_more": max(len(feats) - MAX_FEATURES, 0),
        }
    return {"feature_model": None, "feature_n": None, "feature_rows": [], "features_more": 0}


def signals_page(data: ReportData) -> dict[str, Any]:
    """Page 2: each reading signal against the calibration mean ± σ (charts and out-of-band shares)."""
    base = signal_baseline(data.models)
    r = data.readings
    period = (data.start.timestamp(), data.end.timestamp())
    charts_out, rows = [], []
    for name, unit in facts.SIGNALS.items():
        y = r.columns.get(name)
        if y is None or not np.isfinite(y).any():
            continue
        b = base.get(name) or {}
        mean, std = b.get("mean"), b.get("std")
        title = f"{facts.SIGNAL_LABELS[name]} ({unit})"
        charts_out.append(
            charts.baseline_chart(
                r.ts_s, y, mean=mean, std=std, size=(FULL_W, 1.85), title=title, ylabel=unit, period=period
            )
        )
        rows.append(_band_row(name, y, mean, std))
    return {
        "charts": charts_out,
        "rows": rows,
        "has_baseline": bool(base),
        "note": _reduction_note(len(r)),
    }


def _band_row(name: str, y: np.ndarray, mean: float | None, std: float | None) -> dict[str, str]:
    v = y[np.isfinite(y)]
    if mean is None or not std:
        return {"signal": facts.SIGNAL_LABELS[name], "n": f"{v.size:,}", "out1": "—", "out3": "—"}
    z = np.abs(v - mean) / std
    return {
        "signal": facts.SIGNAL_LABELS[name],
        "n": f"{v.size:,}",
        "out1": f"{100 * np.mean(z > 1):.1f} %",
        "out3": f"{100 * np.mean(z > 3):.1f} %",
    }


def _reduction_note(n: int) -> str:
    if n <= charts.MAX_BUCKETS:
        return "Every reading is drawn."
    return (
        f"{n:,} readings are drawn as {charts.MAX_BUCKETS} equal time buckets: the line is each bucket's "
        "mean, the shaded range its minimum to maximum, so no extreme is hidden."
    )
