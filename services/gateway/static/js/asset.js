/* Asset view (#/asset/<id>): loads the time window over REST, takes live events from state.js, and
 * renders the parts that changed (flags in `d`) on each frame. */
import { renderAlarms } from './alarms.js';
import { api, unwrapList } from './api.js';
import { AssetCharts } from './asset-charts.js';
import { showCalibrationState } from './calibration.js';
import { MAX_POINTS, MODELS, SIGNALS } from './constants.js';
import { $, setText, storageGet } from './dom.js';
import { enc, isNum, numOrNull, parseTs } from './format.js';
import { buildStatusCards, renderCards, renderHealth, renderInsights } from './health.js';
import { renderLogs } from './logs.js';
import { renderRul, TrendChart } from './prognosis.js';
import { Series } from './series.js';
import { app, assetRec, healthFromStatus, mergeStatus, newerHealth, schedule } from './state.js';

const SCORE_FIELDS = ['ratio', 'score', 'threshold', 'anomaly', 'severity', 'version'];
const STATUS_LINES = ['calibration-status', 'purge-status', 'report-status', 'alarm-status', 'log-status'];

export class AssetView {
  constructor(id) {
    this.id = id;
    this.minutes = Number($('window-minutes').value) || 10;
    this.abort = new AbortController();
    this.readings = new Series(SIGNALS.map((s) => s.key));
    this.scores = Object.fromEntries(MODELS.map((m) => [m, new Series(SCORE_FIELDS)]));
    this.latest = null;          // newest reading
    this.latestTs = null;
    this.health = null;
    this.alarms = new Map();
    this.logs = [];
    this.calibrating = false;
    this.charts = new AssetCharts(this);
    this.trend = new TrendChart(id);
    this.d = { header: true, cards: true, health: true, rul: true, insights: true, alarms: true, logs: true, charts: true, scores: true, overlay: true };
  }

  markAll() { for (const k of Object.keys(this.d)) this.d[k] = true; schedule(); }
  get rec() { return assetRec(this.id); }
  get status() { return this.rec.status || {}; }

  /** Baseline {mean, std} of a signal (by SIGNALS base name) from the monitoring status, or null. */
  baselineOf(key) {
    const bs = this.status.baseline_summary || (this.status.health && this.status.health.baseline_summary);
    const b = bs && bs[key];
    return b && isNum(b.mean) && isNum(b.std) ? b : null;
  }

  // ---------------------------------------------------------------- lifecycle
  mount() {
    setText($('asset-title'), this.id);
    $('asset-error').hidden = true;
    for (const id of STATUS_LINES) setText($(id), '');
    $('calibrate-button').disabled = false;
    $('log-author').value = storageGet('rw.who');
    buildStatusCards();
    this.charts.build();
    this.trend.build();
    const h = healthFromStatus(this.rec.status) || this.rec.health;
    if (h) this.health = newerHealth(null, h);
    this.markAll();
    this.load(true);
  }

  destroy() {
    this.abort.abort();
    this.charts.destroy();
    this.trend.destroy();
  }

  /** Forget all data (after a purge) and return to the live range. */
  reset() {
    this.readings.clear();
    for (const m of MODELS) this.scores[m].clear();
    this.latest = null; this.latestTs = null;
    this.health = null; this.alarms.clear(); this.logs = [];
    this.trend.clear();
    this.charts.xView = null;
    this.markAll();
  }

  /** A new time window (minutes): back to live and reload. */
  setWindow(minutes) {
    this.minutes = minutes;
    this.charts.xView = null;
    this.load(false);
    this.markAll();
  }

  // ---------------------------------------------------------------- REST
  /** Load the window from the REST API; merges into what the stream already delivered. */
  async load(full) {
    const id = enc(this.id);
    const m = this.minutes;
    const signal = this.abort.signal;
    const hours = Math.max(24, Math.ceil(m / 60));
    const jobs = {
      readings: api(`/assets/${id}/readings?minutes=${m}&limit=${MAX_POINTS}`, { signal }),
      scores: api(`/assets/${id}/scores?minutes=${m}`, { signal }),
      health: api(`/assets/${id}/health?minutes=${m}`, { signal }),
      alarms: api(`/alarms?asset_id=${id}`, { signal }),
      logs: api(`/logs?asset_id=${id}&hours=${hours}`, { signal }),
      status: api('/monitoring/status', { signal }),
      trend: this.trend.load(signal),
    };
    const names = Object.keys(jobs);
    const results = await Promise.allSettled(Object.values(jobs));
    if (signal.aborted || app.view !== this) return;
    const errors = [];
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') this.applyLoaded(names[i], r.value, full);
      else if (!(r.reason && r.reason.name === 'AbortError')) errors.push(`${names[i]}: ${r.reason.message}`);
    });
    const last = this.readings.length ? this.readings.last * 1000 : null;
    if (last != null && (this.rec.lastDataTs == null || last > this.rec.lastDataTs)) this.rec.lastDataTs = last;
    const errNode = $('asset-error');
    errNode.hidden = errors.length === 0;
    setText(errNode, errors.length ? `Some data could not be loaded — ${errors.join(' · ')}` : '');
    this.markAll();
  }

  applyLoaded(name, v, full) {
    if (name === 'readings') for (const x of unwrapList(v, 'readings')) this.addReading(x);
    else if (name === 'scores') for (const x of unwrapList(v, 'scores')) this.addScore(x);
    else if (name === 'health') {
      const hist = unwrapList(v, 'history', 'health');
      if (hist.length) this.setHealth(hist[hist.length - 1]);
    } else if (name === 'alarms') {
      if (full) this.alarms.clear();
      for (const x of unwrapList(v, 'alarms')) this.upsertAlarm(x);
    } else if (name === 'logs') {
      this.logs = unwrapList(v, 'logs').filter((x) => x && typeof x === 'object');
      this.d.logs = true; this.d.overlay = true;
    } else if (name === 'status') mergeStatus(v);
    else if (name === 'trend') this.trend.dirty = true;
  }

  /** One polling round while the stream is down: the newest minute of data plus alarms. */
  async poll() {
    const id = enc(this.id);
    const signal = this.abort.signal;
    const [r, s, al] = await Promise.allSettled([
      api(`/assets/${id}/readings?minutes=1&limit=${MAX_POINTS}`, { signal }),
      api(`/assets/${id}/scores?minutes=1`, { signal }),
      api(`/alarms?asset_id=${id}`, { signal }),
    ]);
    if (app.view !== this) return;
    if (r.status === 'fulfilled') this.addPolledReadings(unwrapList(r.value, 'readings'));
    if (s.status === 'fulfilled') for (const x of unwrapList(s.value, 'scores')) this.addScore(x);
    if (al.status === 'fulfilled') for (const x of unwrapList(al.value, 'alarms')) this.upsertAlarm(x);
    const h = healthFromStatus(this.rec.status);
    if (h) this.setHealth(h);
  }

  addPolledReadings(list) {
    for (const x of list) this.addReading(x);
    const lastR = list[list.length - 1];
    if (!lastR) return;
    const t = parseTs(lastR.ts);
    if (t != null && (this.rec.lastDataTs == null || t >= this.rec.lastDataTs)) this.rec.lastDataTs = t;
  }

  // ---------------------------------------------------------------- data in (REST and stream)
  addReading(r) {
    if (!r || typeof r !== 'object') return;
    const t = parseTs(r.ts);
    if (t == null) return;
    const row = {};
    for (const s of SIGNALS) row[s.key] = numOrNull(r[s.key]);
    if (this.readings.add(r.event_id ?? null, t / 1000, row)) {
      if (!this.latest || t >= this.latestTs) { this.latest = r; this.latestTs = t; this.d.cards = true; }
      this.d.charts = true;
    }
  }

  addScore(sc) {
    if (!sc || typeof sc !== 'object' || !this.scores[sc.model]) return;
    const t = parseTs(sc.ts);
    if (t == null) return;
    const score = numOrNull(sc.anomaly_score);
    const thr = numOrNull(sc.threshold);
    const ratio = score != null && thr != null && thr > 0 ? score / thr : null;
    const key = sc.event_id != null ? `${sc.event_id}:${sc.model}` : null;
    const row = { ratio, score, threshold: thr, anomaly: sc.is_anomaly === true, severity: sc.severity ?? null, version: sc.model_version ?? null };
    if (this.scores[sc.model].add(key, t / 1000, row)) { this.d.scores = true; this.d.overlay = true; }
  }

  setHealth(h) {
    const next = newerHealth(this.health, h);
    if (next !== this.health) {
      this.health = next;
      this.trend.addHealth(next);
      this.d.health = true; this.d.rul = true; this.d.insights = true; this.d.cards = true;
    }
  }

  upsertAlarm(a) {
    if (!a || typeof a.alarm_id !== 'string') return;
    const prev = this.alarms.get(a.alarm_id);
    if (prev && parseTs(prev.ts) != null && parseTs(a.ts) != null && parseTs(a.ts) < parseTs(prev.ts)) return;
    this.alarms.set(a.alarm_id, { ...(prev || {}), ...a });
    this.d.alarms = true;
  }

  onState(ev, prevState) {
    this.d.header = true;
    showCalibrationState(ev, prevState);
    if (ev.state === 'IDLE') { this.health = null; this.d.health = true; this.d.rul = true; this.d.insights = true; this.d.cards = true; }
  }

  // ---------------------------------------------------------------- rendering
  render(now) {
    const d = this.d;
    if (d.header) { this.renderHeader(); d.header = false; }
    if (d.health) { renderHealth(this.health); d.health = false; }
    if (d.rul) { renderRul(this.health); d.rul = false; }
    if (d.cards) { renderCards(this.latest, this.health, (base) => this.baselineOf(base)); d.cards = false; }
    if (d.insights) { renderInsights(this.health); d.insights = false; }
    if (d.alarms) { renderAlarms(this); d.alarms = false; }
    if (d.logs) { renderLogs(this.logs); d.logs = false; }
    this.charts.render(now);
    this.trend.render();
  }

  renderHeader() {
    const rec = this.rec;
    const node = $('asset-state');
    const state = rec.state || '—';
    setText(node, state);
    node.className = `badge state-${state}`;
    setText($('asset-state-reason'), rec.reason || '');
    $('calibrate-button').disabled = this.calibrating || rec.state === 'CALIBRATING';
  }
}
