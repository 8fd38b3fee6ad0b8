/* The asset view's charts: one chart per signal plus the score chart, sharing one time range.
 *
 * The range follows the newest data ("live") until the user zooms or pans (drag, wheel, Shift+drag,
 * the zoom buttons); double-click or Live returns to live. Redraws are throttled to CHART_INTERVAL_MS.
 */
import { computeOverlay, scoreChart, scoreData, signalChart, syncGroup } from './charts.js';
import { CHART_INTERVAL_MS, MODEL_COLORS, MODELS, SIGNALS } from './constants.js';
import { $, el, setText } from './dom.js';
import { fmt } from './format.js';
import { schedule } from './state.js';

export class AssetCharts {
  /** view: the AssetView (readings, scores, logs, minutes, baselineOf, dirty flags `d`). */
  constructor(view) {
    this.view = view;
    this.xView = null;           // null: live (follow newest data); else [min, max] seconds
    this.overlay = { points: [], spans: [], logs: [] };  // from computeOverlay, drawn by every chart
    this.syncKey = null;         // cursor-sync group of this asset's charts
    this.signalCharts = [];      // one per signal, in SIGNALS order
    this.scoreChart = null;
    this.lastDrawAt = 0;
    this.drawTimer = null;
    this.resizeObs = null;
  }

  // ---------------------------------------------------------------- lifecycle
  build() {
    const box = $('signal-charts');
    box.replaceChildren();
    const width = Math.max(300, box.clientWidth || 600);
    this.syncKey = syncGroup(`rw-${this.view.id}`).key;
    this.signalCharts = SIGNALS.map((s, i) => {
      const title = el('div', { class: 'chart-title', text: `${s.label}${s.unit ? ` (${s.unit})` : ''}` });
      const holder = el('div', { class: 'chart-box' });
      box.append(title, holder);
      const u = signalChart(holder, s, { width, last: i === SIGNALS.length - 1 }, this);
      this.attachWheel(u);
      return u;
    });
    const sbox = $('score-chart');
    sbox.replaceChildren();
    this.scoreChart = scoreChart(sbox, { width }, this);
    this.attachWheel(this.scoreChart);
    this.observeResize(box, sbox);
  }

  observeResize(box, sbox) {
    this.resizeObs = new ResizeObserver(() => {
      const w = Math.max(300, box.clientWidth);
      for (const u of this.signalCharts) if (u.width !== w) u.setSize({ width: w, height: u.height });
      const sw = Math.max(300, sbox.clientWidth);
      if (this.scoreChart && this.scoreChart.width !== sw) this.scoreChart.setSize({ width: sw, height: this.scoreChart.height });
    });
    this.resizeObs.observe(box);
    this.resizeObs.observe(sbox);
  }

  destroy() {
    clearTimeout(this.drawTimer);
    if (this.resizeObs) this.resizeObs.disconnect();
    for (const u of this.signalCharts) u.destroy();
    if (this.scoreChart) this.scoreChart.destroy();
    this.signalCharts = [];
    this.scoreChart = null;
    $('signal-charts').replaceChildren();
    $('score-chart').replaceChildren();
  }

  // ---------------------------------------------------------------- hooks used by charts.js (also `overlay`, `syncKey`)
  baselineOf(base) { return this.view.baselineOf(base); }

  /** Keep the baseline band in view: y range = data range ∪ (mean ± 2σ), padded 8%. */
  yRange(base, min, max) {
    const b = this.view.baselineOf(base);
    let lo = min; let hi = max;
    if (b) { lo = lo == null ? b.mean - 2 * b.std : Math.min(lo, b.mean - 2 * b.std); hi = hi == null ? b.mean + 2 * b.std : Math.max(hi, b.mean + 2 * b.std); }
    if (lo == null || hi == null) return [0, 1];
    const pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.05 || 1;
    return [lo - pad, hi + pad];
  }

  cursorBinds() {
    return {
      dblclick: () => () => { this.goLive(); return null; },
      mousedown: (u, targ, handler) => (e) => {
        if (e.shiftKey) { this.startPan(u, e); return null; }
        handler(e);
        return null;
      },
    };
  }

  onSelect(u) {
    const sel = u.select;
    if (sel.width > 3) {
      const a = u.posToVal(sel.left, 'x');
      const b = u.posToVal(sel.left + sel.width, 'x');
      this.setView([a, b]);
    }
    u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
  }

  onCursor(u) {
    const idx = u.cursor.idx;
    const r = this.view.readings;
    if (idx == null || !r.length) return;
    const t = r.t[idx];
    if (t == null) return;
    const parts = SIGNALS.map((s) => `${s.label} ${fmt(r.cols[s.key][idx], s.digits)}${s.unit ? ' ' + s.unit : ''}`);
    setText($('chart-readout'), `${new Date(t * 1000).toLocaleTimeString()} · ${parts.join(' · ')}`);
  }

  // ---------------------------------------------------------------- zoom and pan
  attachWheel(u) {
    u.over.addEventListener('wheel', (e) => {
      const ext = this.extent();
      if (!ext) return;
      e.preventDefault();
      const [min, max] = this.currentRange(ext);
      const rect = u.over.getBoundingClientRect();
      const at = u.posToVal(e.clientX - rect.left, 'x');
      const f = e.deltaY < 0 ? 0.8 : 1.25;
      this.setView([at - (at - min) * f, at + (max - at) * f]);
    }, { passive: false });
  }

  startPan(u, e) {
    const ext = this.extent();
    if (!ext) return;
    const [min, max] = this.currentRange(ext);
    const x0 = e.clientX;
    const perPx = (max - min) / Math.max(1, u.over.clientWidth);
    const move = (ev) => { const dt = (ev.clientX - x0) * perPx; this.setView([min - dt, max - dt], true); };
    const up = () => { window.removeEventListener('mousemove', move); window.removeEventListener('mouseup', up); };
    window.addEventListener('mousemove', move);
    window.addEventListener('mouseup', up);
  }

  /** Data time extent in seconds across readings and scores. */
  extent() {
    const { readings, scores } = this.view;
    let lo = readings.first; let hi = readings.last;
    for (const m of MODELS) {
      const s = scores[m];
      if (!s.length) continue;
      lo = lo == null ? s.first : Math.min(lo, s.first);
      hi = hi == null ? s.last : Math.max(hi, s.last);
    }
    return lo == null ? null : [lo, hi];
  }

  currentRange(ext) {
    if (this.xView) return this.xView;
    const [lo, hi] = ext;
    const min = Math.max(lo, hi - this.view.minutes * 60);
    return min === hi ? [hi - 1, hi + 1] : [min, hi];
  }

  /** Show [a, b] (clamped to the window; keepSpan: shift rather than shrink at the edges). */
  setView(range, keepSpan = false) {
    const ext = this.extent();
    if (!ext) return;
    let [a, b] = range;
    const span = b - a;
    const [lo, hi] = [Math.max(ext[0], ext[1] - this.view.minutes * 60), ext[1]];
    if (keepSpan) {
      if (a < lo) { a = lo; b = lo + span; }
      if (b > hi) { b = hi; a = hi - span; }
    }
    a = Math.max(a, lo); b = Math.min(b, hi);
    if (b - a < 0.5) { const c = (a + b) / 2; a = c - 0.25; b = c + 0.25; }
    this.xView = a <= lo && b >= hi ? null : [a, b];
    this.applyRange();
  }

  /** A zoom button: in, out, left, right, or live. */
  zoom(action) {
    const ext = this.extent();
    if (!ext) return;
    const [min, max] = this.currentRange(ext);
    const span = max - min; const mid = (min + max) / 2;
    if (action === 'in') this.setView([mid - span / 4, mid + span / 4]);
    else if (action === 'out') this.setView([mid - span, mid + span]);
    else if (action === 'left') this.setView([min - span / 4, max - span / 4], true);
    else if (action === 'right') this.setView([min + span / 4, max + span / 4], true);
    else this.goLive();
  }

  goLive() { this.xView = null; this.applyRange(); }

  applyRange() {
    const ext = this.extent();
    $('live-button').setAttribute('aria-pressed', String(this.xView == null));
    if (!ext) return;
    const [min, max] = this.currentRange(ext);
    for (const u of [...this.signalCharts, this.scoreChart]) if (u) u.setScale('x', { min, max });
  }

  // ---------------------------------------------------------------- rendering
  /** Redraw if data changed, at most every CHART_INTERVAL_MS (a timer catches up later). */
  render(now) {
    const d = this.view.d;
    if (!(d.charts || d.scores || d.overlay)) return;
    const wait = this.lastDrawAt + CHART_INTERVAL_MS - now;
    if (wait <= 0) {
      this.lastDrawAt = now;
      this.draw();
    } else if (!this.drawTimer) {
      this.drawTimer = setTimeout(() => { this.drawTimer = null; schedule(); }, wait);
    }
  }

  /** Drop data older than the window; true marks the affected parts dirty. */
  trimToWindow(ext) {
    const { d, readings, scores } = this.view;
    const minT = ext[1] - this.view.minutes * 60;
    if (readings.trim(minT)) d.charts = true;
    for (const m of MODELS) if (scores[m].trim(minT)) { d.scores = true; d.overlay = true; }
  }

  draw() {
    const d = this.view.d;
    const ext = this.extent();
    if (ext) this.trimToWindow(ext);
    if (d.overlay || d.scores) this.updateOverlay();
    const range = ext ? this.currentRange(ext) : null;
    if (d.charts || d.overlay) this.drawSignals(range);
    if ((d.scores || d.overlay) && this.scoreChart) this.drawScores(range);
    d.charts = false; d.scores = false; d.overlay = false;
  }

  drawSignals(range) {
    const r = this.view.readings;
    SIGNALS.forEach((s, i) => {
      const u = this.signalCharts[i];
      u.batch(() => {
        u.setData([r.t, r.cols[s.key]], false);
        if (range) u.setScale('x', { min: range[0], max: range[1] });
      });
    });
  }

  drawScores(range) {
    const u = this.scoreChart;
    u.batch(() => {
      u.setData(scoreData(this.view.scores), false);
      if (range) u.setScale('x', { min: range[0], max: range[1] });
    });
    this.renderScoreLegend();
  }

  /** Recompute the overlay and publish its counts (data-* attributes and the summary text). */
  updateOverlay() {
    const ov = computeOverlay(this.view.scores, this.view.logs);
    this.overlay = ov;
    const box = $('signal-charts');
    box.dataset.anomalyCount = String(ov.points.length);
    box.dataset.anomalySpans = String(ov.spans.length);
    box.dataset.logCount = String(ov.logs.length);
    setText($('anomaly-summary'), `${ov.points.length} flagged point${ov.points.length === 1 ? '' : 's'} · ${ov.spans.length} anomalous span${ov.spans.length === 1 ? '' : 's'}`);
  }

  renderScoreLegend() {
    const parts = MODELS.map((m) => {
      const s = this.view.scores[m];
      const key = el('span', { class: 'key', style: `background:${MODEL_COLORS[m]}` });
      if (!s.length) return el('span', { 'data-model': m }, key, `${m}: no scores`);
      const i = s.length - 1;
      const ver = s.cols.version[i];
      return el('span', { 'data-model': m }, key,
        `${m}${ver ? ` (${ver})` : ''}: ${fmt(s.cols.score[i], 4)} / threshold ${fmt(s.cols.threshold[i], 4)} · ${s.cols.severity[i] || '—'}`);
    });
    $('score-legend').replaceChildren(...parts, el('span', {}, el('span', { class: 'key key-threshold' }), 'threshold'));
  }
}
