/* uPlot wrappers (uPlot is the global from /static/vendor/uPlot.iife.min.js): the signal and score
 * charts, the overlays drawn on them, and the data shaping they need. */
/* global uPlot */
import { MODEL_COLORS, MODELS } from './constants.js';
import { isNum, parseTs } from './format.js';

const AXIS = () => ({ stroke: '#a3b0bd', grid: { stroke: '#26303a', width: 1 }, ticks: { stroke: '#2d3844', width: 1 }, font: '11px system-ui, sans-serif' });

// ------------------------------------------------------------------------------------------------
// Overlays
// ------------------------------------------------------------------------------------------------

/** Baseline mean ±2σ band with a dashed mean line. */
function drawBaseline(u, baseline, dpr) {
  const { ctx } = u;
  const { left, width } = u.bbox;
  const y0 = u.valToPos(baseline.mean + 2 * baseline.std, 'y', true);
  const y1 = u.valToPos(baseline.mean - 2 * baseline.std, 'y', true);
  ctx.fillStyle = 'rgba(63,185,80,0.13)';
  ctx.fillRect(left, Math.min(y0, y1), width, Math.max(1, Math.abs(y1 - y0)));
  const ym = u.valToPos(baseline.mean, 'y', true);
  ctx.strokeStyle = 'rgba(63,185,80,0.6)';
  ctx.lineWidth = dpr;
  ctx.setLineDash([2 * dpr, 3 * dpr]);
  ctx.beginPath(); ctx.moveTo(left, ym); ctx.lineTo(left + width, ym); ctx.stroke();
}

function drawSpans(u, spans, xmin, xmax, dpr) {
  const { ctx } = u;
  const { top, height } = u.bbox;
  ctx.setLineDash([]);
  ctx.fillStyle = 'rgba(255,107,99,0.20)';
  for (const [a, b] of spans) {
    if (b < xmin || a > xmax) continue;
    const x0 = u.valToPos(Math.max(a, xmin), 'x', true);
    const x1 = u.valToPos(Math.min(b, xmax), 'x', true);
    ctx.fillRect(x0, top, Math.max(2 * dpr, x1 - x0), height);
  }
}

/** Flagged points outside the shaded spans: red dashed vertical lines, at most one per pixel column. */
function drawPoints(u, ov, xmin, xmax, dpr) {
  const { ctx } = u;
  const { top, height } = u.bbox;
  ctx.strokeStyle = '#ff6b63';
  ctx.lineWidth = dpr;
  ctx.setLineDash([4 * dpr, 3 * dpr]);
  ctx.beginPath();
  let lastX = -1;
  let si = 0;
  for (const t of ov.points) {
    if (t < xmin || t > xmax) continue;
    while (si < ov.spans.length && ov.spans[si][1] < t) si++;
    if (si < ov.spans.length && ov.spans[si][0] <= t) continue;
    const x = Math.round(u.valToPos(t, 'x', true));
    if (x === lastX) continue;
    lastX = x;
    ctx.moveTo(x + 0.5, top); ctx.lineTo(x + 0.5, top + height);
  }
  ctx.stroke();
}

function drawLogMarkers(u, logs, xmin, xmax, dpr) {
  const { ctx } = u;
  const { top, height } = u.bbox;
  ctx.setLineDash([]);
  ctx.strokeStyle = '#58a6ff';
  ctx.fillStyle = '#58a6ff';
  ctx.lineWidth = 2 * dpr;
  for (const log of logs) {
    if (log.t < xmin || log.t > xmax) continue;
    const x = Math.round(u.valToPos(log.t, 'x', true));
    ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
    ctx.beginPath(); ctx.moveTo(x - 5 * dpr, top); ctx.lineTo(x + 5 * dpr, top); ctx.lineTo(x, top + 7 * dpr); ctx.closePath(); ctx.fill();
  }
}

/** Baseline band, anomalous spans, flagged points and operator-log markers (ov from computeOverlay). */
function drawOverlays(u, ov, baseline) {
  const { ctx } = u;
  const { left, top, width, height } = u.bbox;
  const dpr = devicePixelRatio || 1;
  const xmin = u.scales.x.min; const xmax = u.scales.x.max;
  if (xmin == null || xmax == null) return;
  ctx.save();
  ctx.beginPath();
  ctx.rect(left, top, width, height);
  ctx.clip();
  if (baseline && isNum(baseline.mean) && isNum(baseline.std)) drawBaseline(u, baseline, dpr);
  drawSpans(u, ov.spans, xmin, xmax, dpr);
  drawPoints(u, ov, xmin, xmax, dpr);
  drawLogMarkers(u, ov.logs, xmin, xmax, dpr);
  ctx.restore();
}

/** The dashed threshold line at ratio 1 on the score chart. */
function drawThreshold(u) {
  const { ctx } = u;
  const { left, top, width, height } = u.bbox;
  const dpr = devicePixelRatio || 1;
  const y = u.valToPos(1, 'y', true);
  if (y < top || y > top + height) return;
  ctx.save();
  ctx.strokeStyle = '#e3b341';
  ctx.lineWidth = 1.5 * dpr;
  ctx.setLineDash([6 * dpr, 4 * dpr]);
  ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(left + width, y); ctx.stroke();
  ctx.fillStyle = '#e3b341';
  ctx.font = `${11 * dpr}px system-ui, sans-serif`;
  ctx.textAlign = 'right';
  ctx.fillText('threshold', left + width - 4 * dpr, y - 4 * dpr);
  ctx.restore();
}

// ------------------------------------------------------------------------------------------------
// Charts
// ------------------------------------------------------------------------------------------------

/** A cursor-sync group (charts with the same key share cursor and selection). */
export function syncGroup(key) {
  return uPlot.sync(key);
}

const cursorOpts = (ctl) => ({
  sync: { key: ctl.syncKey, setSeries: false },
  drag: { x: true, y: false, setScale: false },
  bind: ctl.cursorBinds(),
});

/**
 * One signal's line chart in `holder`. ctl supplies syncKey, cursorBinds(), yRange(base, min, max),
 * overlay (the current overlay), baselineOf(base), onSelect(u) and onCursor(u).
 */
export function signalChart(holder, s, { width, last }, ctl) {
  const opts = {
    width, height: last ? 130 : 100,
    legend: { show: false },
    cursor: cursorOpts(ctl),
    select: { show: true },
    scales: {
      x: { time: true, auto: false },
      y: { auto: true, range: (u, min, max) => ctl.yRange(s.base, min, max) },
    },
    axes: [
      { ...AXIS(), show: last, size: last ? 48 : 0 },
      { ...AXIS(), size: 56, values: (u, vals) => vals.map((v) => v.toFixed(s.digits > 2 ? 2 : s.digits)) },
    ],
    series: [{}, { label: s.label, stroke: s.color, width: 1.25, points: { show: false }, spanGaps: false }],
    hooks: {
      draw: [(u) => drawOverlays(u, ctl.overlay, ctl.baselineOf(s.base))],
      setSelect: [(u) => ctl.onSelect(u)],
      setCursor: [(u) => ctl.onCursor(u)],
    },
  };
  return new uPlot(opts, [[], []], holder);
}

/** Score ÷ threshold per model, with anomalous spans, log markers and the threshold line. */
export function scoreChart(holder, { width }, ctl) {
  return new uPlot({
    width, height: 170,
    legend: { show: false },
    cursor: cursorOpts(ctl),
    scales: { x: { time: true, auto: false }, y: { auto: true, range: (u, min, max) => [0, Math.max(1.5, (max ?? 1) * 1.1)] } },
    axes: [{ ...AXIS(), size: 48 }, { ...AXIS(), size: 56, values: (u, vals) => vals.map((v) => `${v.toFixed(1)}×`) }],
    series: [{}, ...MODELS.map((m) => ({ label: m, stroke: MODEL_COLORS[m], width: 1.25, spanGaps: true, points: { show: false }, value: (u, v) => (v == null ? '—' : `${v.toFixed(2)}×`) }))],
    hooks: {
      draw: [(u) => {
        const { spans, logs } = ctl.overlay;
        drawOverlays(u, { points: [], spans, logs }, null);
        drawThreshold(u);
      }],
      setSelect: [(u) => ctl.onSelect(u)],
    },
  }, [[], [], [], []], holder);
}

// ------------------------------------------------------------------------------------------------
// Data shaping
// ------------------------------------------------------------------------------------------------

/** Aligned [t, legacy, batch, autoencoder] score ratios (null where a model has no score at t). */
export function scoreData(scores) {
  const idx = MODELS.map(() => 0);
  const t = []; const cols = MODELS.map(() => []);
  for (;;) {
    let next = Infinity;
    MODELS.forEach((m, k) => { const s = scores[m]; if (idx[k] < s.length) next = Math.min(next, s.t[idx[k]]); });
    if (next === Infinity) break;
    t.push(next);
    MODELS.forEach((m, k) => {
      const s = scores[m];
      if (idx[k] < s.length && s.t[idx[k]] === next) {
        cols[k].push(s.cols.ratio[idx[k]]);
        idx[k]++;
        while (idx[k] < s.length && s.t[idx[k]] === next) idx[k]++;
      } else cols[k].push(null);
    });
  }
  return [t, ...cols];
}

/** Runs of consecutive anomalous scores of one model as [start, end] (seconds); adds flagged times to points. */
function anomalousRuns(s, points, spans) {
  const an = s.cols.anomaly;
  let start = null;
  for (let i = 0; i < s.t.length; i++) {
    if (!an[i]) continue;
    points.add(s.t[i]);
    if (start == null) start = s.t[i];
    if (i === s.t.length - 1 || !an[i + 1]) { if (s.t[i] > start) spans.push([start, s.t[i]]); start = null; }
  }
}

function mergeSpans(spans) {
  spans.sort((a, b) => a[0] - b[0]);
  const merged = [];
  for (const sp of spans) {
    const last = merged[merged.length - 1];
    if (last && sp[0] <= last[1]) last[1] = Math.max(last[1], sp[1]); else merged.push([...sp]);
  }
  return merged;
}

/** Flagged points (sorted seconds), merged anomalous spans, and operator-log markers {t}. */
export function computeOverlay(scores, logs) {
  const points = new Set();
  const spans = [];
  for (const m of MODELS) anomalousRuns(scores[m], points, spans);
  const marks = [];
  for (const l of logs) { const t = parseTs(l.ts); if (t != null) marks.push({ t: t / 1000 }); }
  return { points: [...points].sort((a, b) => a - b), spans: mergeSpans(spans), logs: marks };
}
