/* The remaining-life panel and the degradation-trend chart of the asset view (issue 15).
 *
 * The panel shows the health update's `rul` (shared.messages.health.RulItem): with status "estimate"
 * the median remaining life and its 80 % interval in human units, the indicator it rests on (rms_log,
 * ln(RMS / calibrated RMS) in neper, with its failure threshold), the fitted model and the data time
 * of the estimate; the maintenance window is the interval's conservative (low) end. Any other status
 * (or an update without `rul`) shows why there is no estimate, never a number of days.
 *
 * The chart draws rms_log over the last 24 h of stored health updates (/assets/{id}/health/series)
 * plus live ones, with the failure threshold as a dashed line, and the early-warning CUSUM of rms_log
 * (Np·s, right axis) with its decision level (the trend alarm opens above it) when the updates carry it. */
/* global uPlot */
import { api } from './api.js';
import { $, setText } from './dom.js';
import { dateTimeText, enc, fmt, isNum, numOrNull, parseTs } from './format.js';

/** Look-back of the trend chart, minutes, and most points it loads. */
export const TREND_MINUTES = 1440;
const TREND_LIMIT = 10000;
const TREND_KEEP = 20000;

const STATUS_TEXT = {
  estimate: 'Remaining life',
  no_degradation_trend: 'No degradation trend',
  not_calibrated: 'Not calibrated',
  sensor_fault: 'Sensor fault',
};

/** [unit name, seconds per unit, digits] for a duration in seconds: minutes below 2 h, hours below
 * 2 days, else days. */
export function lifeUnit(s) {
  if (s < 7200) return ['min', 60, 0];
  if (s < 172800) return ['h', 3600, 1];
  return ['days', 86400, 1];
}

/** A duration (s) in the unit of `ref` seconds (default: its own): "45 min", "3.2 h", "12.0 days". */
export function lifeText(s, ref = s) {
  const [name, per, digits] = lifeUnit(ref);
  return `${(s / per).toFixed(digits)} ${name}`;
}

/** "2.0 h (80 %: 1.0–4.0 h)" from a RulItem with status estimate, in the median's unit (no upper
 * end: "1.0 h – no upper bound"); the same text as shared/reports/prognosis.py. */
export function estimateText(rul) {
  const med = rul.median_s;
  const [name, per, digits] = lifeUnit(med);
  const v = (s) => (s / per).toFixed(digits);
  const pct = isNum(rul.interval) ? Math.round(rul.interval * 100) : 80;
  const span = isNum(rul.high_s) ? `${v(rul.low_s)}–${v(rul.high_s)} ${name}` : `${v(rul.low_s)} ${name} – no upper bound`;
  return `${v(med)} ${name} (${pct} %: ${span})`;
}

/** The update's RulItem when it is a usable estimate (median and low end known), else null. */
export function estimateOf(h) {
  const rul = h && h.rul && typeof h.rul === 'object' ? h.rul : null;
  return rul && rul.status === 'estimate' && isNum(rul.median_s) && isNum(rul.low_s) ? rul : null;
}

/** What the maintenance fact says: the estimate's low end, else why there is no window. */
export function maintenanceText(h) {
  if (!h) return '—';
  const rul = estimateOf(h);
  // under a minute (possibly 0: the threshold's spread reaches below the current level): now
  const when = rul && rul.low_s < 60 ? 'now' : rul && `within ${lifeText(rul.low_s)}`;
  if (rul) return `${when} (conservative end of the ${Math.round((rul.interval || 0.8) * 100)} % interval)`;
  const st = h.rul && STATUS_TEXT[h.rul.status];
  return st && h.rul.status !== 'estimate' ? `none (${st.toLowerCase()})` : 'none (no remaining-life estimate)';
}

function indicatorText(rul) {
  const name = rul.indicator || 'rms_log';
  const unit = rul.indicator_unit || 'Np';
  const parts = [];
  if (isNum(rul.level)) {
    const ratio = name === 'rms_log' ? ` (RMS ${fmt(Math.exp(rul.level), 2)}× calibrated)` : '';
    const past = isNum(rul.threshold) && rul.level >= rul.threshold ? ', past the failure threshold' : '';
    parts.push(`${name} ${fmt(rul.level, 2)} ${unit}${ratio}${past}`);
  } else parts.push(name);
  if (isNum(rul.threshold)) {
    const ratio = name === 'rms_log' ? ` (RMS ${fmt(Math.exp(rul.threshold), 2)}× calibrated)` : '';
    parts.push(`failure threshold ${fmt(rul.threshold, 2)} ${unit}${ratio}`);
  }
  return parts.join('; ');
}

function modelText(rul) {
  if (!rul.model) return '—';
  const bits = [];
  if (isNum(rul.n_points)) bits.push(`${rul.n_points} points`);
  if (isNum(rul.window_s)) bits.push(`over ${lifeText(rul.window_s)} of data`);
  return bits.length ? `${rul.model}, fitted on ${bits.join(' ')}` : rul.model;
}

function setRow(id, text) {
  const dd = $(id);
  const show = text != null && text !== '';
  dd.hidden = !show; dd.previousElementSibling.hidden = !show;
  setText(dd, show ? text : '');
}

/** The remaining-life panel for health document h (null: no assessment yet). */
export function renderRul(h) {
  const rul = h && h.rul && typeof h.rul === 'object' ? h.rul : null;
  const est = estimateOf(h);
  const panel = $('rul-panel');
  panel.dataset.status = rul ? String(rul.status) : (h ? 'none' : 'no-assessment');
  let head;
  if (est) head = `Remaining life: ${estimateText(est)}`;
  else if (rul && STATUS_TEXT[rul.status] && rul.status !== 'estimate') head = STATUS_TEXT[rul.status];
  else head = h ? 'No estimate' : 'No health assessment yet';
  setText($('rul-headline'), head);
  let reason = rul && rul.reason ? rul.reason : '';
  // no rul: a window means the update predates prognostics; else its maintenance reason says why
  if (!rul && h) {
    if (isNum(h.maintenance_window_days)) reason = 'This health update predates prognostics: its window came from a per-risk-level rule.';
    else reason = h.maintenance_reason || 'This health update carries no remaining-life estimate.';
  }
  setText($('rul-reason'), reason);
  setRow('rul-indicator', est ? indicatorText(est) : null);
  setRow('rul-basis', est && est.threshold_basis ? est.threshold_basis : null);
  setRow('rul-model', est ? modelText(est) : null);
  setRow('rul-asof', est && est.as_of ? dateTimeText(est.as_of) : null);
  const cusum = h && h.indicators ? numOrNull(h.indicators.cusum) : null;
  const level = h && h.indicators ? numOrNull(h.indicators.cusum_h) : null;
  const of = level == null ? '' : ` (decision level ${fmt(level, 1)} Np·s)`;
  setRow('rul-cusum', cusum == null ? null : `${fmt(cusum, 1)} Np·s${of}`);
}

// ------------------------------------------------------------------------------------------------
// rms_log trend chart
// ------------------------------------------------------------------------------------------------
const AXIS = () => ({ stroke: '#a3b0bd', grid: { stroke: '#26303a', width: 1 }, ticks: { stroke: '#2d3844', width: 1 }, font: '11px system-ui, sans-serif' });

function drawLevel(u, value, label, colour, scale = 'y') {
  if (!isNum(value)) return;
  const { ctx } = u;
  const { left, top, width, height } = u.bbox;
  const dpr = devicePixelRatio || 1;
  const y = u.valToPos(value, scale, true);
  if (y < top || y > top + height) return;
  ctx.save();
  ctx.strokeStyle = colour;
  ctx.lineWidth = 1.5 * dpr;
  ctx.setLineDash([6 * dpr, 4 * dpr]);
  ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(left + width, y); ctx.stroke();
  ctx.fillStyle = colour;
  ctx.font = `${11 * dpr}px system-ui, sans-serif`;
  ctx.textAlign = 'right';
  ctx.fillText(label, left + width - 4 * dpr, y - 4 * dpr);
  ctx.restore();
}

export class TrendChart {
  constructor(assetId) {
    this.id = assetId;
    this.t = [];          // data time, s
    this.v = [];          // rms_log, Np
    this.c = [];          // CUSUM of rms_log, Np·s (null where an update has none)
    this.threshold = null;
    this.cusumH = null;   // the CUSUM's decision level, Np·s (newest)
    this.truncated = false;
    this.u = null;
    this.resizeObs = null;
    this.dirty = true;
  }

  /** Load the stored series (abortable); replaces what is held. */
  async load(signal) {
    const q = `fields=ind_rms_log,rul_threshold,ind_cusum,ind_cusum_h&minutes=${TREND_MINUTES}&limit=${TREND_LIMIT}`;
    const body = await api(`/assets/${enc(this.id)}/health/series?${q}`, { signal });
    const ts = Array.isArray(body && body.ts) ? body.ts : [];
    const s = (body && body.series) || {};
    const lv = Array.isArray(s.ind_rms_log) ? s.ind_rms_log : [];
    const th = Array.isArray(s.rul_threshold) ? s.rul_threshold : [];
    const cu = Array.isArray(s.ind_cusum) ? s.ind_cusum : [];
    const ch = Array.isArray(s.ind_cusum_h) ? s.ind_cusum_h : [];
    this.t = []; this.v = []; this.c = [];
    this.truncated = Boolean(body && body.truncated);  // more updates in the 24 h than the limit
    ts.forEach((iso, i) => {
      const t = parseTs(iso);
      if (t != null && isNum(lv[i])) { this.t.push(t / 1000); this.v.push(lv[i]); this.c.push(numOrNull(cu[i])); }
      if (isNum(th[i])) this.threshold = th[i];
      if (isNum(ch[i])) this.cusumH = ch[i];
    });
    this.dirty = true;
  }

  /** A live health update: its rms_log (and the estimate's threshold) appended in data-time order. */
  addHealth(h) {
    if (!h) return;
    const t = parseTs(h.ts);
    const v = h.indicators ? numOrNull(h.indicators.rms_log) : null;
    if (h.rul && isNum(h.rul.threshold)) { this.threshold = h.rul.threshold; this.dirty = true; }
    const ind = h.indicators || {};
    if (isNum(ind.cusum_h)) { this.cusumH = ind.cusum_h; this.dirty = true; }
    if (t == null || v == null) return;
    const s = t / 1000;
    if (this.t.length && s <= this.t[this.t.length - 1]) return;
    this.t.push(s); this.v.push(v); this.c.push(numOrNull(ind.cusum));
    if (this.t.length > TREND_KEEP) for (const a of [this.t, this.v, this.c]) a.splice(0, a.length - TREND_KEEP);
    this.dirty = true;
  }

  clear() { this.t = []; this.v = []; this.c = []; this.threshold = null; this.cusumH = null; this.dirty = true; }

  build() {
    const box = $('trend-chart');
    box.replaceChildren();
    const width = Math.max(300, box.clientWidth || 600);
    this.u = new uPlot({
      width, height: 160,
      legend: { show: false },
      scales: {
        x: { time: true },
        y: { auto: true, range: (u, min, max) => this.yRange(min, max) },
        c: { auto: true, range: (u, min, max) => [0, Math.max(max ?? 0, this.cusumH ?? 0, 1) * 1.1] },
      },
      axes: [
        { ...AXIS(), size: 40 },
        { ...AXIS(), size: 56, label: 'rms_log (Np)', labelSize: 14, values: (u, vals) => vals.map((x) => x.toFixed(2)) },
        { ...AXIS(), scale: 'c', side: 1, grid: { show: false }, size: 56, label: 'CUSUM (Np·s)', labelSize: 14 },
      ],
      series: [{},
        { label: 'rms_log', stroke: '#e3b341', width: 1.25, points: { show: false }, spanGaps: false },
        { label: 'CUSUM', scale: 'c', stroke: '#58a6ff', width: 1, points: { show: false }, spanGaps: false }],
      hooks: { draw: [(u) => {
        drawLevel(u, this.threshold, 'failure threshold', '#ff6b63');
        drawLevel(u, this.cusumH, 'CUSUM decision level', '#58a6ff', 'c');
      }] },
    }, [[], [], []], box);
    this.resizeObs = new ResizeObserver(() => {
      const w = Math.max(300, box.clientWidth);
      if (this.u && this.u.width !== w) this.u.setSize({ width: w, height: this.u.height });
    });
    this.resizeObs.observe(box);
    this.dirty = true;
  }

  /** The data's range, widened to include the threshold (so the gap to failure is visible). */
  yRange(min, max) {
    let lo = min ?? 0; let hi = max ?? 1;
    if (isNum(this.threshold)) { lo = Math.min(lo, this.threshold); hi = Math.max(hi, this.threshold); }
    lo = Math.min(lo, 0);
    const pad = (hi - lo) * 0.08 || 0.1;
    return [lo - pad, hi + pad];
  }

  destroy() {
    if (this.resizeObs) this.resizeObs.disconnect();
    if (this.u) this.u.destroy();
    this.u = null; this.resizeObs = null;
    $('trend-chart').replaceChildren();
  }

  render() {
    if (!this.dirty || !this.u) return;
    this.dirty = false;
    const box = $('trend-chart');
    box.dataset.points = String(this.t.length);
    box.dataset.threshold = isNum(this.threshold) ? String(this.threshold) : '';
    box.dataset.last = this.v.length ? String(this.v[this.v.length - 1]) : '';
    box.dataset.cusumH = isNum(this.cusumH) ? String(this.cusumH) : '';
    const note = $('trend-note');
    if (!this.t.length) setText(note, 'No rms_log in the last 24 h of this asset\'s health updates.');
    else {
      const th = isNum(this.threshold) ? `; failure threshold ${fmt(this.threshold, 2)} Np (dashed)` : '; no failure threshold (no estimate)';
      const ch = isNum(this.cusumH) ? `; CUSUM decision level ${fmt(this.cusumH, 1)} Np·s (blue dashed)` : '';
      const n = this.truncated ? `newest ${this.t.length} updates (older ones of the 24 h left out)` : `${this.t.length} updates`;
      setText(note, `${n}, latest ${fmt(this.v[this.v.length - 1], 3)} Np${th}${ch}`);
    }
    this.u.setData([this.t, this.v, this.c]);
  }
}
