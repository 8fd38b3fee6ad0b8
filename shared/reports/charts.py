"""Report charts: matplotlib (Agg, no pyplot state) figures rendered to SVG strings (pure).

Long series are reduced for drawing by :func:`reduce_series`: the period is cut into at most
:data:`MAX_BUCKETS` equal time buckets and each bucket is drawn as its mean with its min–max range
shaded, so a 7-day 1 Hz series (604,800 points) keeps every extreme visible in a small SVG. Series
with no more points than buckets are drawn as they are. Units are in the axis labels.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import numpy as np
from matplotlib.figure import Figure

from shared.reports.data import Array

#: Most time buckets a line is drawn with.
MAX_BUCKETS = 500
INK = "#1f2933"
MUTED = "#7b8794"
ACCENT = "#1c5d99"
WARN = "#d9822b"
CRIT = "#c23030"
ZONE_COLOURS = {"A": "#2e8540", "B": "#8bb33a", "C": "#e3a21a", "D": "#c23030", "none": "#cbd2d9"}

matplotlib.rcParams.update(
    {
        "svg.fonttype": "none",
        "svg.hashsalt": "rotorwatch",
        "font.family": "DejaVu Sans",
        "font.size": 7,
        "axes.edgecolor": MUTED,
        "axes.labelcolor": INK,
        "axes.titlesize": 8,
        "axes.titleweight": "bold",
        "axes.titlelocation": "left",
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "axes.axisbelow": True,
        "grid.color": "#e4e7eb",
        "grid.linewidth": 0.5,
        "xtick.color": MUTED,
        "ytick.color": MUTED,
        "legend.fontsize": 6,
        "legend.frameon": False,
    }
)


@dataclass
class Reduced:
    """A series ready to draw: times (datetime64), mean, and min/max per bucket (None: not reduced)."""

    t: np.ndarray
    mean: Array
    lo: Array | None
    hi: Array | None


def to_dt(ts_s: Array) -> np.ndarray:
    """Unix seconds → numpy datetime64[ms] (UTC)."""
    return (np.asarray(ts_s, dtype=np.float64) * 1000.0).astype("datetime64[ms]")


def reduce_series(ts_s: Array, y: Array, buckets: int = MAX_BUCKETS) -> Reduced:
    """Bucket mean and min–max of ``y`` over ``buckets`` equal time spans (module doc); NaN ignored."""
    ok = np.isfinite(y) & np.isfinite(ts_s)
    ts, v = ts_s[ok], y[ok]
    if ts.size <= buckets:
        return Reduced(to_dt(ts), v, None, None)
    span = max(float(ts[-1] - ts[0]), 1e-9)
    idx = np.minimum(((ts - ts[0]) / span * buckets).astype(np.int64), buckets - 1)
    starts = np.flatnonzero(np.r_[True, np.diff(idx) != 0])
    counts = np.diff(np.r_[starts, ts.size])
    mean = np.add.reduceat(v, starts) / counts
    t_mid = np.add.reduceat(ts, starts) / counts
    return Reduced(to_dt(t_mid), mean, np.minimum.reduceat(v, starts), np.maximum.reduceat(v, starts))


def figure(width_in: float, height_in: float) -> Figure:
    fig = Figure(figsize=(width_in, height_in), dpi=100)
    fig.set_layout_engine("constrained", h_pad=0.02, w_pad=0.02)
    return fig


def to_svg(fig: Figure) -> str:
    """The figure as an SVG document (text kept as text, no creation date)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None}, transparent=True)
    return buf.getvalue()


def _time_axis(ax: object, start_s: float | None = None, end_s: float | None = None) -> None:
    loc = mdates.AutoDateLocator(minticks=3, maxticks=7)
    ax.xaxis.set_major_locator(loc)  # type: ignore[attr-defined]
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))  # type: ignore[attr-defined]
    if start_s is not None and end_s is not None and end_s > start_s:
        ax.set_xlim(to_dt(np.array([start_s]))[0], to_dt(np.array([end_s]))[0])  # type: ignore[attr-defined]


def _draw(ax: object, r: Reduced, colour: str, label: str | None = None) -> None:
    if r.lo is not None and r.hi is not None:
        ax.fill_between(r.t, r.lo, r.hi, color=colour, alpha=0.25, linewidth=0, label="min–max per bucket")  # type: ignore[attr-defined]
    ax.plot(r.t, r.mean, color=colour, linewidth=0.9, label=label)  # type: ignore[attr-defined]


def line_chart(
    ts_s: Array,
    y: Array,
    *,
    size: tuple[float, float],
    title: str,
    ylabel: str,
    period: tuple[float, float] | None = None,
    hlines: Sequence[tuple[float, str, str]] = (),
    ylim: tuple[float, float] | None = None,
    colour: str = ACCENT,
) -> str:
    """A time series with optional horizontal reference lines ``(value, label, colour)``."""
    fig = figure(*size)
    ax = fig.add_subplot()
    _draw(ax, reduce_series(ts_s, y), colour, label=None)
    for value, label, c in hlines:
        ax.axhline(value, color=c, linewidth=0.8, linestyle="--", label=label)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    _time_axis(ax, *(period or (None, None)))
    if hlines:
        ax.legend(loc="upper left", ncols=len(hlines) + 1)
    return to_svg(fig)


def baseline_chart(
    ts_s: Array,
    y: Array,
    *,
    mean: float | None,
    std: float | None,
    size: tuple[float, float],
    title: str,
    ylabel: str,
    period: tuple[float, float],
) -> str:
    """A signal against its calibration baseline: mean line, ±1σ and ±3σ bands (when known)."""
    fig = figure(*size)
    ax = fig.add_subplot()
    if mean is not None and std is not None:
        ax.axhspan(mean - 3 * std, mean + 3 * std, color="#2e8540", alpha=0.08, label="baseline ±3σ")
        ax.axhspan(mean - std, mean + std, color="#2e8540", alpha=0.18, label="baseline ±1σ")
        ax.axhline(mean, color="#2e8540", linewidth=0.8, linestyle="--", label="baseline mean")
    _draw(ax, reduce_series(ts_s, y), ACCENT, label="measured")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    _time_axis(ax, *period)
    ax.legend(loc="upper left", ncols=5)
    return to_svg(fig)


def velocity_chart(
    ts_s: Array,
    v: Array,
    *,
    limits: tuple[float, float, float],
    basis: str,
    size: tuple[float, float],
    period: tuple[float, float],
) -> str:
    """Velocity RMS (mm/s) over the zone bands A..D of the basis' limits."""
    fig = figure(*size)
    ax = fig.add_subplot()
    top = max(limits[2] * 1.25, float(np.nanmax(v)) * 1.1 if np.isfinite(v).any() else 0.0)
    edges = (0.0, *limits, top)
    for zone, lo, hi in zip("ABCD", edges[:-1], edges[1:], strict=True):
        ax.axhspan(lo, hi, color=ZONE_COLOURS[zone], alpha=0.15, linewidth=0)
        ax.text(1.005, (lo + hi) / 2, zone, transform=ax.get_yaxis_transform(), va="center", color=MUTED)
    _draw(ax, reduce_series(ts_s, v), INK)
    ax.set_ylim(0, top)
    ax.set_title(f"Velocity RMS, 10–1000 Hz — zones: {basis}")
    ax.set_ylabel("mm/s")
    _time_axis(ax, *period)
    return to_svg(fig)


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    size: tuple[float, float],
    title: str,
    ylabel: str,
    colours: Sequence[str] | None = None,
    note: str | None = None,
) -> str:
    """Vertical bars (e.g. band energies or amplitudes at named frequencies)."""
    fig = figure(*size)
    ax = fig.add_subplot()
    x = np.arange(len(labels))
    ax.bar(x, values, color=list(colours) if colours else ACCENT, width=0.7)
    ax.set_xticks(x, labels, rotation=0)
    ax.grid(axis="x", visible=False)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if note:
        ax.text(0.99, 0.97, note, transform=ax.transAxes, ha="right", va="top", color=MUTED)
    return to_svg(fig)


def zone_bar(seconds: Mapping[str, float], *, size: tuple[float, float]) -> str:
    """One horizontal bar split by the share of time in each zone (and without a zone)."""
    fig = figure(*size)
    ax = fig.add_subplot()
    total = sum(seconds.values()) or 1.0
    left = 0.0
    for zone, s in seconds.items():
        share = 100.0 * s / total
        ax.barh(0, share, left=left, color=ZONE_COLOURS[zone], height=0.6)
        if share >= 6:
            name = "no zone" if zone == "none" else zone
            ax.text(left + share / 2, 0, f"{name} {share:.0f}%", ha="center", va="center", color="white")
        left += share
    ax.set_xlim(0, 100)
    ax.set_yticks([])
    ax.grid(False)
    ax.spines[["left", "bottom"]].set_visible(False)
    ax.set_xticks([])
    return to_svg(fig)


@dataclass
class Span:
    """One alarm's life on the timeline (Unix s); ``end`` None: still open at the period's end."""

    label: str
    start: float
    ack: float | None
    end: float | None
    severity: str


def runs(ts_s: Array, period: tuple[float, float], buckets: int = MAX_BUCKETS) -> list[tuple[float, float]]:
    """Time spans covering ``ts_s``: the period cut into ``buckets`` equal slots, consecutive slots
    holding at least one time merged into one span (start of the first slot, end of the last)."""
    start, end = period
    if not ts_s.size or end <= start:
        return []
    width = (end - start) / buckets
    idx = np.unique(np.clip(((ts_s - start) / width).astype(np.int64), 0, buckets - 1))
    breaks = np.flatnonzero(np.diff(idx) > 1)
    firsts = np.r_[idx[0], idx[breaks + 1]]
    lasts = np.r_[idx[breaks], idx[-1]]
    return [(start + a * width, start + (b + 1) * width) for a, b in zip(firsts, lasts, strict=True)]


def timeline_chart(
    spans: Sequence[Span],
    anomalies: Mapping[str, Array],
    *,
    period: tuple[float, float],
    size: tuple[float, float],
) -> str:
    """Alarm spans (one row each, acknowledgement marked) above rows of anomalous-score ticks per model."""
    fig = figure(*size)
    ax = fig.add_subplot()
    rows: list[str] = []
    for i, sp in enumerate(spans):
        colour = CRIT if sp.severity == "CRITICAL" else WARN
        end = sp.end if sp.end is not None else period[1]
        t0, t1 = to_dt(np.array([sp.start, end]))
        ax.plot([t0, t1], [i, i], color=colour, linewidth=5, solid_capstyle="butt")
        if sp.ack is not None:
            ax.plot(to_dt(np.array([sp.ack])), [i], marker="v", color=INK, markersize=5)
        rows.append(sp.label)
    for kind, ts in anomalies.items():
        y = len(rows)
        for t0, t1 in runs(ts, period):
            ax.plot(to_dt(np.array([t0, t1])), [y, y], color=ACCENT, linewidth=5, solid_capstyle="butt")
        rows.append(f"{kind} anomalies")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.grid(axis="y", visible=False)
    ax.set_title("Alarms (bar: open, ▼ acknowledged) and when scores were anomalous")
    _time_axis(ax, *period)
    return to_svg(fig)


GRADE_COLOURS = {"A": "#2e8540", "B": "#6a9a23", "C": "#d99a00", "D": "#d9622b", "F": "#c23030"}


def health_chart(
    ts_s: Array,
    score: Array,
    *,
    bounds: Sequence[tuple[float, str]],
    size: tuple[float, float],
    period: tuple[float, float],
    title: str = "Health score (0–100) with grade bands",
) -> str:
    """Health score over grade bands; ``bounds``: (lower bound, grade) best first, the rest is F."""
    fig = figure(*size)
    ax = fig.add_subplot()
    edges = [(100.0, "")] + list(bounds) + [(0.0, "F")]
    for (hi, _), (lo, grade) in zip(edges[:-1], edges[1:], strict=True):
        g = grade if lo > 0 else "F"
        ax.axhspan(lo, hi, color=GRADE_COLOURS.get(g, MUTED), alpha=0.12, linewidth=0)
        ax.text(1.005, (lo + hi) / 2, g, transform=ax.get_yaxis_transform(), va="center", color=MUTED)
    _draw(ax, reduce_series(ts_s, score), INK)
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.set_ylabel("health")
    _time_axis(ax, *period)
    return to_svg(fig)


def lines_chart(
    series: Mapping[str, tuple[Array, Array]],
    *,
    size: tuple[float, float],
    title: str,
    ylabel: str,
    period: tuple[float, float],
    hlines: Sequence[tuple[float, str, str]] = (),
) -> str:
    """Several time series on one axis (``label -> (ts_s, y)``) with reference lines."""
    fig = figure(*size)
    ax = fig.add_subplot()
    for label, (ts, y) in series.items():
        r = reduce_series(ts, y)
        if r.lo is not None and r.hi is not None:
            ax.fill_between(r.t, r.lo, r.hi, alpha=0.2, linewidth=0)
        ax.plot(r.t, r.mean, linewidth=0.9, label=label)
    for value, label, c in hlines:
        ax.axhline(value, color=c, linewidth=0.8, linestyle="--", label=label)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    _time_axis(ax, *period)
    ax.legend(loc="upper left", ncols=min(len(series) + len(hlines), 3))
    return to_svg(fig)


def bands_chart(energies: Sequence[float], band_hz: float | None, *, size: tuple[float, float]) -> str:
    """Energy per equal frequency band as adjacent bars on a kHz axis (band index when no rate)."""
    fig = figure(*size)
    ax = fig.add_subplot()
    n = len(energies)
    width = (band_hz / 1000.0) if band_hz else 1.0
    ax.bar(np.arange(n) * width, energies, width=width * 0.92, align="edge", color=ACCENT)
    ax.set_xlim(0, n * width)
    ax.set_xlabel("frequency, kHz (0 to Nyquist)" if band_hz else "band (sample rate unknown)")
    ax.set_ylabel("g²")
    ax.grid(axis="x", visible=False)
    ax.set_title("Energy per frequency band")
    return to_svg(fig)
