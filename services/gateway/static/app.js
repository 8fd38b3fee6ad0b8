/* Rotorwatch live dashboard. Plain ES module, no build step; uPlot is a global from /static/vendor/.
 *
 * Data flow: REST snapshot on load -> Server-Sent Events (/api/v1/stream) for live events -> in-memory
 * state -> one requestAnimationFrame flush renders what changed (DOM every frame, charts at most every
 * CHART_INTERVAL_MS). If the stream fails, the page polls the REST API and reconnects the stream with
 * exponential backoff. Every number shown comes from the API; unknown values show "—".
 */

const API = '/api/v1';
const MAX_POINTS = 5000;          // readings kept per series, and scores kept per model
const CHART_INTERVAL_MS = 250;    // charts redraw at most this often
const POLL_MS = 3000;             // REST polling period while the stream is down
const LAG_SAMPLES = 5000;         // stream-lag samples kept in window.__rw
const MODELS = ['legacy', 'batch', 'autoencoder'];
const MODEL_COLORS = { legacy: '#58a6ff', batch: '#d2a8ff', autoencoder: '#56d4dd' };
const RISK = {
  LOW: { cls: 'risk-low', text: 'Low' },
  MODERATE: { cls: 'risk-moderate', text: 'Moderate' },
  HIGH: { cls: 'risk-high', text: 'High' },
  CRITICAL: { cls: 'risk-critical', text: 'Critical' },
};
const SIGNALS = [
  { key: 'voltage_v', base: 'voltage', label: 'Voltage', unit: 'V', digits: 1, color: '#58a6ff' },
  { key: 'current_a', base: 'current', label: 'Current', unit: 'A', digits: 2, color: '#d2a8ff' },
  { key: 'power_factor', base: 'power_factor', label: 'Power factor', unit: '', digits: 3, color: '#56d4dd' },
  { key: 'vibration_g', base: 'vibration', label: 'Vibration', unit: 'g', digits: 3, color: '#e3b341' },
];
const ISO_ZONE_TEXT = {  // ISO 20816 evaluation zones
  A: 'zone A (as new)',
  B: 'zone B (long-term OK)',
  C: 'zone C (limited operation)',
  D: 'zone D (damage risk)',
};
const STREAM_TYPES = ['reading', 'score', 'health', 'alarm', 'state'];

// ------------------------------------------------------------------------------------------------
// Test/diagnostic hook: stream receive statistics (times in ms since the epoch).
// ------------------------------------------------------------------------------------------------
const rw = {
  lastEventAt: null,        // browser receive time of the last stream event
  lastEventDataTs: null,    // data timestamp (ts field) of the last stream event
  eventsReceived: 0,
  byType: {},
  lagMs: [],                // reading events: receive time - data ts
  renderLagMs: [],          // reading events: time the frame showing it was built - data ts
  streamOpen: false,
  reconnects: 0,
  badEvents: 0,
};
window.__rw = rw;

// ------------------------------------------------------------------------------------------------
// Small helpers
// ------------------------------------------------------------------------------------------------
const $ = (id) => document.getElementById(id);
const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
const numOrNull = (v) => (isNum(v) ? v : null);
const fmt = (v, digits = 1) => (isNum(v) ? v.toFixed(digits) : '—');
const enc = encodeURIComponent;
const parseTs = (s) => {
  if (typeof s !== 'string' && typeof s !== 'number') return null;
  const t = typeof s === 'number' ? s : Date.parse(s);
  return Number.isFinite(t) ? t : null;
};
const timeText = (iso) => { const t = parseTs(iso); return t == null ? '—' : new Date(t).toLocaleTimeString(); };
const dateTimeText = (iso) => { const t = parseTs(iso); return t == null ? '—' : new Date(t).toLocaleString(); };
const pushCapped = (arr, v, cap) => { arr.push(v); if (arr.length > cap) arr.splice(0, arr.length - cap); };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
}

function setText(node, text) {
  if (node && node.textContent !== text) node.textContent = text;
}

function storageGet(key) {
  try { return localStorage.getItem(key) || ''; } catch { return ''; }
}
function storageSet(key, value) {
  try { localStorage.setItem(key, value); } catch { /* private mode: not remembered */ }
}

/** Text of an API error body: {"detail": "..."} or FastAPI's list of validation errors. */
function detailOf(data) {
  if (data == null) return '';
  if (typeof data === 'string') return data.slice(0, 300);
  const d = data.detail;
  if (typeof d === 'string') return d;
  if (Array.isArray(d)) {
    return d.map((e) => `${(e.loc || []).filter((p) => p !== 'body').join('.')}: ${e.msg}`).join('; ');
  }
  return d ? JSON.stringify(d).slice(0, 300) : '';
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, { method = 'GET', body, signal } = {}) {
  const init = { method, signal, headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(API + path, init);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, 'gateway unreachable');
  }
  const text = await res.text();
  let data = null;
  if (text) { try { data = JSON.parse(text); } catch { data = text; } }
  if (!res.ok) throw new ApiError(res.status, detailOf(data) || `HTTP ${res.status} ${res.statusText}`);
  return data;
}

/** First array found in a response: the value itself or one of the named keys. */
function unwrapList(data, ...keys) {
  if (Array.isArray(data)) return data;
  if (data && typeof data === 'object') {
    for (const k of keys) if (Array.isArray(data[k])) return data[k];
  }
  return [];
}

/** The health document inside a monitoring-status entry (nested `health`, or fields at top level). */
function healthFromStatus(s) {
  if (!s || typeof s !== 'object') return null;
  if (s.health && typeof s.health === 'object') return s.health;
  if (isNum(s.health_score)) return s;
  return null;
}

function newerHealth(current, candidate) {
  if (!candidate || !isNum(candidate.health_score)) return current;
  if (!current) return candidate;
  const a = parseTs(current.ts); const b = parseTs(candidate.ts);
  if (a == null || b == null) return candidate;
  return b >= a ? candidate : current;
}

// ------------------------------------------------------------------------------------------------
// Sorted time series buffer (parallel arrays, seconds), de-duplicated by event id, capped.
// ------------------------------------------------------------------------------------------------
class Series {
  constructor(fields, cap = MAX_POINTS) {
    this.fields = fields;
    this.cap = cap;
    this.t = [];
    this.id = [];
    this.cols = Object.fromEntries(fields.map((f) => [f, []]));
    this.ids = new Set();
  }
  get length() { return this.t.length; }
  get first() { return this.t.length ? this.t[0] : null; }
  get last() { return this.t.length ? this.t[this.t.length - 1] : null; }
  clear() { this.t.length = 0; this.id.length = 0; for (const f of this.fields) this.cols[f].length = 0; this.ids.clear(); }

  /** Insert one row at its time position; false if the id was seen already. */
  add(id, t, row) {
    if (!isNum(t)) return false;
    if (id != null) { if (this.ids.has(id)) return false; this.ids.add(id); }
    const n = this.t.length;
    let i = n;
    if (n && this.t[n - 1] > t) {
      let lo = 0; let hi = n;
      while (lo < hi) { const mid = (lo + hi) >> 1; if (this.t[mid] <= t) lo = mid + 1; else hi = mid; }
      i = lo;
    }
    if (i === n) {
      this.t.push(t); this.id.push(id);
      for (const f of this.fields) this.cols[f].push(row[f] ?? null);
    } else {
      this.t.splice(i, 0, t); this.id.splice(i, 0, id);
      for (const f of this.fields) this.cols[f].splice(i, 0, row[f] ?? null);
    }
    return true;
  }

  /** Drop rows older than minT (seconds) and the oldest rows beyond the cap. */
  trim(minT) {
    let k = 0;
    if (minT != null) while (k < this.t.length && this.t[k] < minT) k++;
    k = Math.max(k, this.t.length - this.cap);
    if (k <= 0) return false;
    for (const id of this.id.slice(0, k)) if (id != null) this.ids.delete(id);
    this.t.splice(0, k); this.id.splice(0, k);
    for (const f of this.fields) this.cols[f].splice(0, k);
    return true;
  }
}

// ------------------------------------------------------------------------------------------------
// Global state
// ------------------------------------------------------------------------------------------------
const store = {
  assets: new Map(),      // id -> asset record
  systemState: null,
  fleetLoaded: false,
  fleetError: '',
};

function assetRec(id) {
  let a = store.assets.get(id);
  if (!a) {
    a = { id, state: null, reason: '', status: null, health: null, activeAlarms: null, lastDataTs: null, lastReading: null };
    store.assets.set(id, a);
    dirty.fleetStructure = true;
  }
  return a;
}

function mergeAssetList(data) {
  for (const it of unwrapList(data, 'assets', 'items')) {
    const id = typeof it === 'string' ? it : it && it.asset_id;
    if (typeof id !== 'string') continue;
    const a = assetRec(id);
    if (it && typeof it === 'object') {
      if (typeof it.state === 'string') a.state = it.state;
      if (isNum(it.health_score)) a.health = newerHealth(a.health, it);
      if (isNum(it.active_alarms)) a.activeAlarms = it.active_alarms;
    }
    dirty.fleet.add(id);
  }
  store.fleetLoaded = true;
}

function mergeStatus(data) {
  if (!data || typeof data !== 'object') return;
  if (typeof data.system_state === 'string') store.systemState = data.system_state;
  const assets = data.assets && typeof data.assets === 'object' ? data.assets : {};
  const entries = Array.isArray(assets) ? assets.map((s) => [s.asset_id, s]) : Object.entries(assets);
  for (const [id, s] of entries) {
    if (typeof id !== 'string' || !s) continue;
    const a = assetRec(id);
    a.status = s;
    if (typeof s.state === 'string') a.state = s.state;
    if (typeof s.reason === 'string') a.reason = s.reason;
    // The status is a full snapshot: no health there means none exists (never assessed, or purged).
    const h = healthFromStatus(s);
    a.health = h ? newerHealth(a.health, h) : null;
    a.activeAlarms = numOrNull(s.active_alarms) ?? numOrNull(a.health && a.health.active_alarms);
    dirty.fleet.add(id);
    if (currentView && currentView.id === id) {
      if (h) currentView.setHealth(h);
      currentView.markAll();
    }
  }
  store.fleetLoaded = true;
}

async function refreshFleet() {
  const [assets, status] = await Promise.allSettled([api('/assets'), api('/monitoring/status')]);
  if (assets.status === 'fulfilled') mergeAssetList(assets.value);
  if (status.status === 'fulfilled') mergeStatus(status.value);
  const errs = [assets, status].filter((r) => r.status === 'rejected').map((r) => r.reason.message);
  store.fleetError = errs.length ? `Could not load assets: ${errs.join('; ')}` : '';
  dirty.fleetStructure = true;
  schedule();
  return errs.length === 0;
}

let fleetTimer = null;
/** Re-read the asset list and status soon (an asset seen first on the stream gets its state). */
function refreshFleetSoon(delay = 1000) {
  if (fleetTimer) return;
  fleetTimer = setTimeout(() => { fleetTimer = null; refreshFleet(); }, delay);
}

let statusTimer = null;
/** Re-read /monitoring/status soon (coalesces bursts of alarm/state events into one request). */
function refreshStatusSoon(delay = 800) {
  if (statusTimer) return;
  statusTimer = setTimeout(async () => {
    statusTimer = null;
    try { mergeStatus(await api('/monitoring/status')); schedule(); } catch { /* next event or poll retries */ }
  }, delay);
}

// ------------------------------------------------------------------------------------------------
// Render scheduling: one rAF flush for everything that changed.
// ------------------------------------------------------------------------------------------------
const dirty = { fleet: new Set(), fleetStructure: true, conn: true };
let frameRequested = false;
let pendingRenderTs = [];

function schedule() {
  if (frameRequested) return;
  frameRequested = true;
  requestAnimationFrame(flush);
}

function flush() {
  frameRequested = false;
  const now = Date.now();
  if (dirty.conn) { renderConn(); dirty.conn = false; }
  if (route.name === 'fleet') renderFleet();
  else if (currentView) currentView.render(now);
  if (pendingRenderTs.length) {
    const done = Date.now();
    for (const t of pendingRenderTs) pushCapped(rw.renderLagMs, done - t, LAG_SAMPLES);
    pendingRenderTs = [];
  }
}

// ------------------------------------------------------------------------------------------------
// Stream (SSE) with polling fallback and reconnect backoff
// ------------------------------------------------------------------------------------------------
const conn = { mode: 'connecting', es: null, attempts: 0, retryAt: null, retryTimer: null, pollTimer: null, everOpen: false, pollFailed: false };

function openStream() {
  clearTimeout(conn.retryTimer);
  conn.retryTimer = null;
  conn.retryAt = null;
  let es;
  try {
    es = new EventSource(`${API}/stream`);
  } catch {
    streamFailed();
    return;
  }
  conn.es = es;
  es.onopen = () => {
    const wasDown = conn.everOpen || conn.mode === 'polling';
    conn.everOpen = true;
    conn.attempts = 0;
    conn.mode = 'live';
    rw.streamOpen = true;
    stopPolling();
    dirty.conn = true;
    schedule();
    if (wasDown) resync();
  };
  es.onerror = () => {
    if (conn.es !== es) return;
    streamFailed();
  };
  for (const type of STREAM_TYPES) es.addEventListener(type, (ev) => onStreamEvent(type, ev.data));
}

function streamFailed() {
  if (conn.es) { conn.es.close(); conn.es = null; }
  rw.streamOpen = false;
  conn.mode = 'polling';
  rw.reconnects += 1;
  const delay = Math.min(30000, 1000 * 2 ** conn.attempts) * (1 + Math.random() * 0.25);
  conn.attempts = Math.min(conn.attempts + 1, 10);
  conn.retryAt = Date.now() + delay;
  conn.retryTimer = setTimeout(openStream, delay);
  startPolling();
  dirty.conn = true;
  schedule();
}

function startPolling() {
  if (conn.pollTimer) return;
  const tick = async () => {
    const ok = await refreshFleet();
    if (currentView) await currentView.poll();
    conn.pollFailed = !ok;
    dirty.conn = true;
    schedule();
  };
  conn.pollTimer = setInterval(tick, POLL_MS);
}

function stopPolling() {
  clearInterval(conn.pollTimer);
  conn.pollTimer = null;
  conn.pollFailed = false;
}

/** After the stream comes back: reload what may have been missed. */
function resync() {
  refreshFleet();
  if (currentView) currentView.load(false);
}

function renderConn() {
  const node = $('conn');
  let text; let cls; let countdown = '';
  if (conn.mode === 'live') { text = 'Live'; cls = 'live'; }
  else if (conn.mode === 'polling') {
    const secs = conn.retryAt ? Math.max(0, Math.round((conn.retryAt - Date.now()) / 1000)) : null;
    cls = conn.pollFailed ? 'offline' : 'polling';
    text = `${conn.pollFailed ? 'Gateway unreachable' : 'Polling'} — stream retry`;
    if (secs != null) countdown = ` in ${secs} s`;
  } else { text = 'Connecting…'; cls = 'connecting'; }
  node.className = `conn ${cls}`;
  // The label is a live region; the per-second countdown is hidden from screen readers.
  let label = node.querySelector('.conn-label');
  let count = node.querySelector('.conn-count');
  if (!label) {
    label = el('span', { class: 'conn-label' });
    count = el('span', { class: 'conn-count', 'aria-hidden': 'true' });
    node.replaceChildren(label, count);
  }
  setText(label, text);
  setText(count, countdown);
}
setInterval(() => { if (conn.mode === 'polling') { dirty.conn = true; schedule(); } }, 1000);

function onStreamEvent(type, raw) {
  const received = Date.now();
  let d;
  try { d = JSON.parse(raw); } catch { rw.badEvents += 1; return; }
  if (!d || typeof d !== 'object') { rw.badEvents += 1; return; }
  const dataTs = parseTs(d.ts);
  rw.lastEventAt = received;
  rw.lastEventDataTs = dataTs;
  rw.eventsReceived += 1;
  rw.byType[type] = (rw.byType[type] || 0) + 1;
  const id = d.asset_id;
  if (typeof id !== 'string') return;
  if (!store.assets.has(id)) refreshFleetSoon();
  const a = assetRec(id);
  const view = currentView && currentView.id === id ? currentView : null;
  switch (type) {
    case 'reading':
      if (dataTs != null) {
        pushCapped(rw.lagMs, received - dataTs, LAG_SAMPLES);
        pendingRenderTs.push(dataTs);
      }
      if (a.lastDataTs == null || (dataTs != null && dataTs >= a.lastDataTs)) { a.lastDataTs = dataTs; a.lastReading = d; }
      dirty.fleet.add(id);
      if (view) view.addReading(d);
      break;
    case 'score':
      if (view) view.addScore(d);
      break;
    case 'health':
      a.health = newerHealth(a.health, d);
      if (isNum(d.active_alarms)) a.activeAlarms = d.active_alarms;
      dirty.fleet.add(id);
      if (view) view.setHealth(d);
      break;
    case 'alarm':
      if (view) view.upsertAlarm(d);
      refreshStatusSoon();
      break;
    case 'state': {
      const prevState = a.state;
      if (typeof d.state === 'string') a.state = d.state;
      a.reason = typeof d.reason === 'string' ? d.reason : '';
      if (d.state === 'IDLE') { a.health = null; a.activeAlarms = null; }
      dirty.fleet.add(id);
      if (view) view.onState(d, prevState);
      refreshStatusSoon(d.state === 'CALIBRATING' ? 2000 : 300);
      break;
    }
    default:
      break;
  }
  schedule();
}

// ------------------------------------------------------------------------------------------------
// Fleet view
// ------------------------------------------------------------------------------------------------
const cardNodes = new Map();

function riskOf(health) {
  const level = health && typeof health.risk_level === 'string' ? health.risk_level : null;
  return level && RISK[level] ? { level, ...RISK[level] } : { level: null, cls: 'risk-none', text: '—' };
}

function buildCard(id) {
  const node = el('a', { class: 'asset-card risk-none', href: `#/asset/${enc(id)}`, 'data-testid': `asset-card-${id}`, 'data-asset': id },
    el('div', { class: 'card-top' },
      el('span', { class: 'asset-name', text: id, title: id }),
      el('span', { class: 'badge', 'data-testid': 'card-state' })),
    el('div', { class: 'card-health num' },
      el('span', { 'data-testid': 'card-health' }), el('small', { text: ' / 100' })),
    el('div', { class: 'card-meta' },
      el('span', { class: 'risk-text', 'data-testid': 'card-risk' }),
      el('span', { 'data-testid': 'card-alarms' })),
    el('div', { class: 'card-meta' }, el('span', { 'data-testid': 'card-last-data' })));
  cardNodes.set(id, node);
  return node;
}

function updateCard(a) {
  const node = cardNodes.get(a.id) || buildCard(a.id);
  const h = a.health;
  const risk = riskOf(h);
  const cls = `asset-card ${risk.cls}`;
  if (node.className !== cls) node.className = cls;
  const state = a.state || '—';
  const badge = node.querySelector('[data-testid="card-state"]');
  setText(badge, state);
  badge.className = `badge state-${state}`;
  setText(node.querySelector('[data-testid="card-health"]'), fmt(h && h.health_score, 1));
  setText(node.querySelector('[data-testid="card-risk"]'), risk.level ? `${risk.text} risk` : 'risk —');
  const alarmsNode = node.querySelector('[data-testid="card-alarms"]');
  const n = a.activeAlarms;
  setText(alarmsNode, isNum(n) ? `${n} active alarm${n === 1 ? '' : 's'}` : 'alarms —');
  alarmsNode.className = isNum(n) && n > 0 ? 'alarms-on' : '';
  setText(node.querySelector('[data-testid="card-last-data"]'),
    a.lastDataTs != null ? `last data ${new Date(a.lastDataTs).toLocaleTimeString()}` : '');
  const label = `${a.id}: health ${fmt(h && h.health_score, 1)} of 100, ${risk.level ? risk.text + ' risk' : 'risk unknown'}, state ${state}, ${isNum(n) ? n : 'unknown number of'} active alarms`;
  if (node.getAttribute('aria-label') !== label) node.setAttribute('aria-label', label);
  return node;
}

function renderFleet() {
  const grid = $('fleet-grid');
  if (dirty.fleetStructure) {
    const ids = [...store.assets.keys()].sort();
    const nodes = ids.map((id) => updateCard(store.assets.get(id)));
    const current = [...grid.children];
    if (current.length !== nodes.length || current.some((n, i) => n !== nodes[i])) grid.replaceChildren(...nodes);
    dirty.fleet.clear();
    dirty.fleetStructure = false;
    $('fleet-empty').hidden = !store.fleetLoaded || ids.length > 0;
  } else {
    for (const id of dirty.fleet) { const a = store.assets.get(id); if (a) updateCard(a); }
    dirty.fleet.clear();
  }
  const all = [...store.assets.values()];
  const withAlarms = all.filter((a) => isNum(a.activeAlarms) && a.activeAlarms > 0).length;
  const summary = store.fleetLoaded
    ? `${all.length} asset${all.length === 1 ? '' : 's'} · ${withAlarms} with active alarms · system ${store.systemState || '—'}`
    : 'Loading assets…';
  setText($('fleet-summary'), summary);
  const err = $('fleet-error');
  err.hidden = !store.fleetError;
  setText(err, store.fleetError);
}

// ------------------------------------------------------------------------------------------------
// Charts: uPlot helpers
// ------------------------------------------------------------------------------------------------
const AXIS = () => ({ stroke: '#a3b0bd', grid: { stroke: '#26303a', width: 1 }, ticks: { stroke: '#2d3844', width: 1 }, font: '11px system-ui, sans-serif' });

/** Vertical lines and shaded spans shared by the signal charts and the score chart. */
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
  if (baseline && isNum(baseline.mean) && isNum(baseline.std)) {
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
  // anomalous spans
  ctx.setLineDash([]);
  ctx.fillStyle = 'rgba(255,107,99,0.20)';
  for (const [a, b] of ov.spans) {
    if (b < xmin || a > xmax) continue;
    const x0 = u.valToPos(Math.max(a, xmin), 'x', true);
    const x1 = u.valToPos(Math.min(b, xmax), 'x', true);
    ctx.fillRect(x0, top, Math.max(2 * dpr, x1 - x0), height);
  }
  // flagged points outside the shaded spans: red dashed vertical lines, at most one per pixel column
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
  // operator-log markers
  ctx.setLineDash([]);
  ctx.strokeStyle = '#58a6ff';
  ctx.fillStyle = '#58a6ff';
  ctx.lineWidth = 2 * dpr;
  for (const log of ov.logs) {
    if (log.t < xmin || log.t > xmax) continue;
    const x = Math.round(u.valToPos(log.t, 'x', true));
    ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
    ctx.beginPath(); ctx.moveTo(x - 5 * dpr, top); ctx.lineTo(x + 5 * dpr, top); ctx.lineTo(x, top + 7 * dpr); ctx.closePath(); ctx.fill();
  }
  ctx.restore();
}

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
// Asset view
// ------------------------------------------------------------------------------------------------
class AssetView {
  constructor(id) {
    this.id = id;
    this.minutes = Number($('window-minutes').value) || 10;
    this.abort = new AbortController();
    this.readings = new Series(SIGNALS.map((s) => s.key));
    this.scores = Object.fromEntries(MODELS.map((m) => [m, new Series(['ratio', 'score', 'threshold', 'anomaly', 'severity', 'version'])]));
    this.health = null;
    this.alarms = new Map();
    this.logs = [];
    this.overlay = { points: [], spans: [], logs: [] };
    this.xView = null;           // null: live (follow newest data); else [min, max] seconds
    this.charts = [];            // signal charts
    this.scoreChart = null;
    this.lastChartAt = 0;
    this.chartTimer = null;
    this.calibrating = false;
    this.loadErrors = [];
    this.d = { header: true, cards: true, health: true, insights: true, alarms: true, logs: true, charts: true, scores: true, overlay: true };
    this.resizeObs = null;
  }

  markAll() { for (const k of Object.keys(this.d)) this.d[k] = true; schedule(); }
  get rec() { return assetRec(this.id); }
  get status() { return this.rec.status || {}; }
  baselineOf(key) {
    const bs = this.status.baseline_summary || (this.status.health && this.status.health.baseline_summary);
    const b = bs && bs[key];
    return b && isNum(b.mean) && isNum(b.std) ? b : null;
  }

  // ---------------------------------------------------------------- lifecycle
  mount() {
    setText($('asset-title'), this.id);
    $('asset-error').hidden = true;
    setText($('calibration-status'), '');
    setText($('purge-status'), '');
    setText($('report-status'), '');
    setText($('alarm-status'), '');
    setText($('log-status'), '');
    $('calibrate-button').disabled = false;
    $('log-author').value = storageGet('rw.who');
    this.buildStatusCards();
    this.buildCharts();
    const h = healthFromStatus(this.rec.status) || this.rec.health;
    if (h) this.health = newerHealth(null, h);
    this.markAll();
    this.load(true);
  }

  destroy() {
    this.abort.abort();
    clearTimeout(this.chartTimer);
    if (this.resizeObs) this.resizeObs.disconnect();
    for (const u of this.charts) u.destroy();
    if (this.scoreChart) this.scoreChart.destroy();
    this.charts = [];
    this.scoreChart = null;
    $('signal-charts').replaceChildren();
    $('score-chart').replaceChildren();
  }

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
    };
    const names = Object.keys(jobs);
    const results = await Promise.allSettled(Object.values(jobs));
    if (signal.aborted || currentView !== this) return;
    const errors = [];
    results.forEach((r, i) => {
      const name = names[i];
      if (r.status === 'rejected') {
        if (r.reason && r.reason.name === 'AbortError') return;
        errors.push(`${name}: ${r.reason.message}`);
        return;
      }
      const v = r.value;
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
    });
    const rec = this.rec;
    const last = this.readings.length ? this.readings.last * 1000 : null;
    if (last != null && (rec.lastDataTs == null || last > rec.lastDataTs)) rec.lastDataTs = last;
    this.loadErrors = errors;
    const errNode = $('asset-error');
    errNode.hidden = errors.length === 0;
    setText(errNode, errors.length ? `Some data could not be loaded — ${errors.join(' · ')}` : '');
    this.markAll();
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
    if (currentView !== this) return;
    if (r.status === 'fulfilled') {
      const list = unwrapList(r.value, 'readings');
      for (const x of list) this.addReading(x);
      const lastR = list[list.length - 1];
      if (lastR) { const t = parseTs(lastR.ts); if (t != null && (this.rec.lastDataTs == null || t >= this.rec.lastDataTs)) { this.rec.lastDataTs = t; this.rec.lastReading = lastR; } }
    }
    if (s.status === 'fulfilled') for (const x of unwrapList(s.value, 'scores')) this.addScore(x);
    if (al.status === 'fulfilled') for (const x of unwrapList(al.value, 'alarms')) this.upsertAlarm(x);
    const h = healthFromStatus(this.rec.status);
    if (h) this.setHealth(h);
  }

  // ---------------------------------------------------------------- data in
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
      this.d.health = true; this.d.insights = true; this.d.cards = true;
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
    const reason = typeof ev.reason === 'string' ? ev.reason : '';
    const status = $('calibration-status');
    if (ev.state === 'CALIBRATING') {
      status.className = 'status-line';
      setText(status, `Calibrating… ${reason}`.trim());
    } else if (ev.previous === 'CALIBRATING' || prevState === 'CALIBRATING') {
      const ok = ev.state === 'CALIBRATED' || ev.state === 'MONITORING';
      status.className = `status-line ${ok ? 'success' : 'error'}`;
      setText(status, ok ? `Calibrated${reason ? `: ${reason}` : '.'}` : `Calibration failed${reason ? `: ${reason}` : '.'}`);
    }
    if (ev.state === 'IDLE') { this.health = null; this.d.health = true; this.d.insights = true; this.d.cards = true; }
  }

  // ---------------------------------------------------------------- rendering
  render(now) {
    const d = this.d;
    if (d.header) { this.renderHeader(); d.header = false; }
    if (d.health) { this.renderHealth(); d.health = false; }
    if (d.cards) { this.renderCards(); d.cards = false; }
    if (d.insights) { this.renderInsights(); d.insights = false; }
    if (d.alarms) { this.renderAlarms(); d.alarms = false; }
    if (d.logs) { this.renderLogs(); d.logs = false; }
    if (d.charts || d.scores || d.overlay) {
      const wait = this.lastChartAt + CHART_INTERVAL_MS - now;
      if (wait <= 0) {
        this.lastChartAt = now;
        this.renderCharts();
      } else if (!this.chartTimer) {
        this.chartTimer = setTimeout(() => { this.chartTimer = null; schedule(); }, wait);
      }
    }
  }

  renderHeader() {
    const rec = this.rec;
    const node = $('asset-state');
    const state = rec.state || '—';
    setText(node, state);
    node.className = `badge state-${state}`;
    setText($('asset-state-reason'), rec.reason || '');
    const btn = $('calibrate-button');
    btn.disabled = this.calibrating || rec.state === 'CALIBRATING';
  }

  renderHealth() {
    const h = this.health;
    const risk = riskOf(h);
    const ring = $('health-ring');
    ring.className = `ring-wrap ${risk.cls}`;
    const score = h ? numOrNull(h.health_score) : null;
    const c = 2 * Math.PI * 52;
    const arc = $('ring-arc');
    arc.setAttribute('stroke-dashoffset', String(score == null ? c : c * (1 - Math.min(100, Math.max(0, score)) / 100)));
    arc.style.visibility = score == null ? 'hidden' : 'visible';
    setText($('health-score'), fmt(score, 1));
    const rl = $('risk-label');
    setText(rl, risk.level ? risk.text : '—');
    rl.className = `risk-text ${risk.cls}`;
    setText($('health-grade'), h && typeof h.grade === 'string' ? h.grade : '—');
    const days = h ? numOrNull(h.maintenance_window_days) : null;
    setText($('maint-window'), days == null ? '—' : `within ${fmt(days, days < 10 ? 1 : 0)} days`);
    setText($('maint-reason'), h && h.maintenance_reason ? h.maintenance_reason : '');
    setText($('degradation'), h ? fmt(numOrNull(h.degradation_index), 2) : '—');
    const zone = h && typeof h.iso_zone === 'string' ? h.iso_zone : null;
    setText($('iso-zone'), zone ? (ISO_ZONE_TEXT[zone] || zone) : '—');
    setText($('health-ts'), h && h.ts ? `as of ${timeText(h.ts)}` : 'no assessment yet');
    ring.setAttribute('aria-label', `Health ${fmt(score, 1)} of 100, risk ${risk.level ? risk.text : 'unknown'}`);
    ring.setAttribute('role', 'img');
  }

  buildStatusCards() {
    const wrap = $('status-cards');
    const cards = SIGNALS.map((s) => el('div', { class: 'status-card', 'data-testid': `status-${s.base}`, 'data-signal': s.base },
      el('div', { class: 'label', text: s.label }),
      el('div', { class: 'value', 'data-role': 'value', text: '—' }),
      el('div', { class: 'target', 'data-role': 'target', text: 'baseline —' }),
      el('div', { class: 'zscore', 'data-role': 'z' })));
    cards.push(el('div', { class: 'status-card', 'data-testid': 'status-velocity', 'data-signal': 'velocity' },
      el('div', { class: 'label', text: 'Velocity (RMS)' }),
      el('div', { class: 'value', 'data-role': 'value', text: '—' }),
      el('div', { class: 'target', 'data-role': 'target', text: 'ISO 20816 zone —' }),
      el('div', { class: 'zscore', 'data-role': 'z' })));
    wrap.replaceChildren(...cards);
  }

  renderCards() {
    const r = this.latest;
    setText($('reading-ts'), r ? `latest reading ${timeText(r.ts)}` : 'no readings in this window');
    for (const s of SIGNALS) {
      const card = document.querySelector(`#status-cards [data-signal="${s.base}"]`);
      if (!card) continue;
      const v = r ? numOrNull(r[s.key]) : null;
      const b = this.baselineOf(s.base);
      setText(card.querySelector('[data-role="value"]'), v == null ? '—' : `${fmt(v, s.digits)}${s.unit ? ' ' + s.unit : ''}`);
      setText(card.querySelector('[data-role="target"]'), b ? `target ${fmt(b.mean, s.digits)}${s.unit} ±${fmt(b.std, s.digits)}${s.unit}` : 'baseline — (not calibrated)');
      let cls = 'status-card';
      let zText = '';
      if (v != null && b && b.std > 0) {
        const z = (v - b.mean) / b.std;
        const az = Math.abs(z);
        cls += az < 2 ? ' dev-ok' : az < 3 ? ' dev-warn' : ' dev-bad';
        zText = `${z >= 0 ? '+' : ''}${z.toFixed(1)}σ from baseline`;
      }
      if (card.className !== cls) card.className = cls;
      setText(card.querySelector('[data-role="z"]'), zText);
    }
    const card = document.querySelector('#status-cards [data-signal="velocity"]');
    const h = this.health;
    const vel = h ? numOrNull(h.velocity_rms_mm_s) : null;
    const zone = h && typeof h.iso_zone === 'string' ? h.iso_zone : null;
    setText(card.querySelector('[data-role="value"]'), vel == null ? '—' : `${fmt(vel, 2)} mm/s`);
    setText(card.querySelector('[data-role="target"]'), `ISO 20816 zone ${zone || '—'}`);
    const zcls = { A: ' dev-ok', B: ' dev-ok', C: ' dev-warn', D: ' dev-bad' }[zone] || '';
    if (card.className !== `status-card${zcls}`) card.className = `status-card${zcls}`;
  }

  renderInsights() {
    const box = $('insights');
    const h = this.health;
    const items = h && Array.isArray(h.insights) ? h.insights.filter((x) => x && typeof x.text === 'string') : [];
    const key = h ? JSON.stringify(items) : 'none';
    if (box.dataset.key === key) return;
    box.dataset.key = key;
    if (!h) {
      box.replaceChildren(el('p', { class: 'list-empty', 'data-testid': 'insights-empty', text: 'No health assessment yet — calibrate the asset on healthy data first.' }));
      return;
    }
    if (!items.length) {
      box.replaceChildren(el('p', { class: 'list-empty ok', 'data-testid': 'insights-empty', text: '✓ No anomalies detected — signals match the healthy baseline.' }));
      return;
    }
    const order = { critical: 0, warning: 1, info: 2 };
    items.sort((a, b) => (order[a.severity] ?? 3) - (order[b.severity] ?? 3));
    box.replaceChildren(el('ul', { class: 'list' }, ...items.map((it) => el('li', { class: `sev-${it.severity}`, 'data-testid': 'insight-item', 'data-severity': it.severity },
      el('div', { text: it.text }),
      el('div', { class: 'meta', text: [it.signal, it.severity].filter(Boolean).join(' · ') }))))); 
  }

  renderAlarms() {
    const list = $('alarm-list');
    const focusKey = document.activeElement && list.contains(document.activeElement) ? document.activeElement.dataset.focusKey : null;
    const rank = { ACTIVE: 0, ACKNOWLEDGED: 1, RESOLVED: 2 };
    const alarms = [...this.alarms.values()].sort((a, b) => (rank[a.state] ?? 3) - (rank[b.state] ?? 3)
      || (parseTs(b.opened_at) ?? 0) - (parseTs(a.opened_at) ?? 0));
    const open = alarms.filter((a) => a.state !== 'RESOLVED').length;
    setText($('alarm-count'), `${open} open`);
    const shown = alarms.slice(0, 50);
    if (!shown.length) {
      list.replaceChildren(el('li', { class: 'list-empty', 'data-testid': 'alarms-empty', text: 'No alarms.' }));
      return;
    }
    list.replaceChildren(...shown.map((a) => {
      const actions = el('div', { class: 'actions' });
      if (a.state === 'ACTIVE') {
        actions.append(el('button', { type: 'button', class: 'small', 'data-testid': 'ack-button', 'data-focus-key': `ack-${a.alarm_id}`, onclick: () => openAlarmDialog(this, a, 'ack'), text: 'Acknowledge' }));
      }
      if (a.state === 'ACTIVE' || a.state === 'ACKNOWLEDGED') {
        actions.append(el('button', { type: 'button', class: 'small', 'data-testid': 'resolve-button', 'data-focus-key': `res-${a.alarm_id}`, onclick: () => openAlarmDialog(this, a, 'resolve'), text: 'Resolve' }));
      }
      const who = a.who ? ` · by ${a.who}` : '';
      const note = a.note ? ` · “${a.note}”` : '';
      const code = a.action_code ? ` · action ${a.action_code}` : '';
      return el('li', { class: `sev-${a.severity} alarm-${a.state}`, 'data-testid': 'alarm-item', 'data-alarm-id': a.alarm_id, 'data-state': a.state },
        el('div', {}, el('span', { class: `badge sev-${a.severity}`, text: a.severity || '—' }), ' ',
          el('span', { class: 'badge', 'data-testid': 'alarm-state', text: a.state || '—' }), ' ', a.reason || ''),
        el('div', { class: 'meta', text: `${a.source || 'source —'} · opened ${dateTimeText(a.opened_at)}${a.auto_cleared ? ' · cleared automatically' : ''}${who}${code}${note}` }),
        actions.children.length ? actions : null);
    }));
    if (focusKey) { const n = list.querySelector(`[data-focus-key="${focusKey}"]`); if (n) n.focus(); }
  }

  renderLogs() {
    const list = $('log-list');
    const logs = [...this.logs].sort((a, b) => (parseTs(b.ts) ?? 0) - (parseTs(a.ts) ?? 0)).slice(0, 50);
    if (!logs.length) {
      list.replaceChildren(el('li', { class: 'list-empty', text: 'No operator log entries in the last 24 hours.' }));
      return;
    }
    list.replaceChildren(...logs.map((l) => el('li', { class: `sev-${l.severity === 'critical' || l.severity === 'high' ? 'critical' : l.severity === 'medium' ? 'warning' : 'info'}`, 'data-testid': 'log-item' },
      el('div', {}, el('strong', { text: (l.event_type || 'entry').replaceAll('_', ' ') }), l.description ? ` — ${l.description}` : ''),
      el('div', { class: 'meta', text: `${dateTimeText(l.ts)} · ${l.severity || '—'}${l.author ? ` · ${l.author}` : ''}` }))));
  }

  // ---------------------------------------------------------------- charts
  buildCharts() {
    const box = $('signal-charts');
    box.replaceChildren();
    const width = Math.max(300, box.clientWidth || 600);
    const sync = uPlot.sync(`rw-${this.id}`);
    this.charts = SIGNALS.map((s, i) => {
      const title = el('div', { class: 'chart-title', text: `${s.label}${s.unit ? ` (${s.unit})` : ''}` });
      const holder = el('div', { class: 'chart-box' });
      box.append(title, holder);
      const last = i === SIGNALS.length - 1;
      const opts = {
        width, height: last ? 130 : 100,
        legend: { show: false },
        cursor: {
          sync: { key: sync.key, setSeries: false },
          drag: { x: true, y: false, setScale: false },
          bind: this.cursorBinds(),
        },
        select: { show: true },
        scales: {
          x: { time: true, auto: false },
          y: { auto: true, range: (u, min, max) => this.yRange(s.base, min, max) },
        },
        axes: [
          { ...AXIS(), show: last, size: last ? 48 : 0 },
          { ...AXIS(), size: 56, values: (u, vals) => vals.map((v) => v.toFixed(s.digits > 2 ? 2 : s.digits)) },
        ],
        series: [{}, { label: s.label, stroke: s.color, width: 1.25, points: { show: false }, spanGaps: false }],
        hooks: {
          draw: [(u) => drawOverlays(u, this.overlay, this.baselineOf(s.base))],
          setSelect: [(u) => this.onSelect(u)],
          setCursor: [(u) => this.onCursor(u)],
        },
      };
      const u = new uPlot(opts, [[], []], holder);
      this.attachWheel(u);
      return u;
    });
    const sbox = $('score-chart');
    sbox.replaceChildren();
    this.scoreChart = new uPlot({
      width, height: 170,
      legend: { show: false },
      cursor: { sync: { key: sync.key, setSeries: false }, drag: { x: true, y: false, setScale: false }, bind: this.cursorBinds() },
      scales: { x: { time: true, auto: false }, y: { auto: true, range: (u, min, max) => [0, Math.max(1.5, (max ?? 1) * 1.1)] } },
      axes: [{ ...AXIS(), size: 48 }, { ...AXIS(), size: 56, values: (u, vals) => vals.map((v) => `${v.toFixed(1)}×`) }],
      series: [{}, ...MODELS.map((m) => ({ label: m, stroke: MODEL_COLORS[m], width: 1.25, spanGaps: true, points: { show: false }, value: (u, v) => (v == null ? '—' : `${v.toFixed(2)}×`) }))],
      hooks: {
        draw: [(u) => { drawOverlays(u, { points: [], spans: this.overlay.spans, logs: this.overlay.logs }, null); drawThreshold(u); }],
        setSelect: [(u) => this.onSelect(u)],
      },
    }, [[], [], [], []], sbox);
    this.attachWheel(this.scoreChart);
    this.resizeObs = new ResizeObserver(() => {
      const w = Math.max(300, box.clientWidth);
      for (const u of this.charts) if (u.width !== w) u.setSize({ width: w, height: u.height });
      const sw = Math.max(300, sbox.clientWidth);
      if (this.scoreChart && this.scoreChart.width !== sw) this.scoreChart.setSize({ width: sw, height: this.scoreChart.height });
    });
    this.resizeObs.observe(box);
    this.resizeObs.observe(sbox);
  }

  /** Keep the baseline band in view: y range = data range ∪ (mean ± 2σ), padded 8%. */
  yRange(base, min, max) {
    const b = this.baselineOf(base);
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
    if (idx == null || !this.readings.length) return;
    const t = this.readings.t[idx];
    if (t == null) return;
    const parts = SIGNALS.map((s) => `${s.label} ${fmt(this.readings.cols[s.key][idx], s.digits)}${s.unit ? ' ' + s.unit : ''}`);
    setText($('chart-readout'), `${new Date(t * 1000).toLocaleTimeString()} · ${parts.join(' · ')}`);
  }

  /** Data time extent in seconds across readings and scores. */
  extent() {
    let lo = this.readings.first; let hi = this.readings.last;
    for (const m of MODELS) {
      const s = this.scores[m];
      if (!s.length) continue;
      lo = lo == null ? s.first : Math.min(lo, s.first);
      hi = hi == null ? s.last : Math.max(hi, s.last);
    }
    return lo == null ? null : [lo, hi];
  }

  currentRange(ext) {
    if (this.xView) return this.xView;
    const [lo, hi] = ext;
    const min = Math.max(lo, hi - this.minutes * 60);
    return min === hi ? [hi - 1, hi + 1] : [min, hi];
  }

  setView(range, keepSpan = false) {
    const ext = this.extent();
    if (!ext) return;
    let [a, b] = range;
    const span = b - a;
    const [lo, hi] = [Math.max(ext[0], ext[1] - this.minutes * 60), ext[1]];
    if (keepSpan) {
      if (a < lo) { a = lo; b = lo + span; }
      if (b > hi) { b = hi; a = hi - span; }
    }
    a = Math.max(a, lo); b = Math.min(b, hi);
    if (b - a < 0.5) { const c = (a + b) / 2; a = c - 0.25; b = c + 0.25; }
    this.xView = a <= lo && b >= hi ? null : [a, b];
    this.applyRange();
  }

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
    const live = $('live-button');
    live.setAttribute('aria-pressed', String(this.xView == null));
    if (!ext) return;
    const [min, max] = this.currentRange(ext);
    for (const u of [...this.charts, this.scoreChart]) if (u) u.setScale('x', { min, max });
  }

  computeOverlay() {
    const points = new Set();
    const spans = [];
    for (const m of MODELS) {
      const s = this.scores[m];
      const an = s.cols.anomaly;
      let start = null;
      for (let i = 0; i < s.t.length; i++) {
        if (an[i]) {
          points.add(s.t[i]);
          if (start == null) start = s.t[i];
          if (i === s.t.length - 1 || !an[i + 1]) { if (s.t[i] > start) spans.push([start, s.t[i]]); start = null; }
        }
      }
    }
    spans.sort((a, b) => a[0] - b[0]);
    const merged = [];
    for (const sp of spans) {
      const last = merged[merged.length - 1];
      if (last && sp[0] <= last[1]) last[1] = Math.max(last[1], sp[1]); else merged.push([...sp]);
    }
    const logs = [];
    for (const l of this.logs) { const t = parseTs(l.ts); if (t != null) logs.push({ t: t / 1000, type: l.event_type }); }
    this.overlay = { points: [...points].sort((a, b) => a - b), spans: merged, logs };
    const box = $('signal-charts');
    box.dataset.anomalyCount = String(this.overlay.points.length);
    box.dataset.anomalySpans = String(merged.length);
    box.dataset.logCount = String(logs.length);
    setText($('anomaly-summary'), `${this.overlay.points.length} flagged point${this.overlay.points.length === 1 ? '' : 's'} · ${merged.length} anomalous span${merged.length === 1 ? '' : 's'}`);
  }

  renderCharts() {
    const d = this.d;
    const ext = this.extent();
    if (ext) {
      const minT = ext[1] - this.minutes * 60;
      if (this.readings.trim(minT)) d.charts = true;
      for (const m of MODELS) if (this.scores[m].trim(minT)) { d.scores = true; d.overlay = true; }
    }
    if (d.overlay || d.scores) this.computeOverlay();
    const range = ext ? this.currentRange(ext) : null;
    if (d.charts || d.overlay) {
      const r = this.readings;
      SIGNALS.forEach((s, i) => {
        const u = this.charts[i];
        u.batch(() => {
          u.setData([r.t, r.cols[s.key]], false);
          if (range) u.setScale('x', { min: range[0], max: range[1] });
        });
      });
    }
    if ((d.scores || d.overlay) && this.scoreChart) {
      const u = this.scoreChart;
      u.batch(() => {
        u.setData(this.scoreData(), false);
        if (range) u.setScale('x', { min: range[0], max: range[1] });
      });
      this.renderScoreLegend();
    }
    d.charts = false; d.scores = false; d.overlay = false;
  }

  /** Aligned [t, legacy, batch, autoencoder] score ratios (null where a model has no score at t). */
  scoreData() {
    const idx = MODELS.map(() => 0);
    const t = []; const cols = MODELS.map(() => []);
    for (;;) {
      let next = Infinity;
      MODELS.forEach((m, k) => { const s = this.scores[m]; if (idx[k] < s.length) next = Math.min(next, s.t[idx[k]]); });
      if (next === Infinity) break;
      t.push(next);
      MODELS.forEach((m, k) => {
        const s = this.scores[m];
        if (idx[k] < s.length && s.t[idx[k]] === next) {
          cols[k].push(s.cols.ratio[idx[k]]);
          idx[k]++;
          while (idx[k] < s.length && s.t[idx[k]] === next) idx[k]++;
        } else cols[k].push(null);
      });
    }
    return [t, ...cols];
  }

  renderScoreLegend() {
    const box = $('score-legend');
    const parts = MODELS.map((m) => {
      const s = this.scores[m];
      const n = s.length;
      if (!n) return el('span', { 'data-model': m }, el('span', { class: 'key', style: `background:${MODEL_COLORS[m]}` }), `${m}: no scores`);
      const i = n - 1;
      const ver = s.cols.version[i];
      return el('span', { 'data-model': m }, el('span', { class: 'key', style: `background:${MODEL_COLORS[m]}` }),
        `${m}${ver ? ` (${ver})` : ''}: ${fmt(s.cols.score[i], 4)} / threshold ${fmt(s.cols.threshold[i], 4)} · ${s.cols.severity[i] || '—'}`);
    });
    box.replaceChildren(...parts, el('span', {}, el('span', { class: 'key key-threshold' }), 'threshold'));
  }
}

// ------------------------------------------------------------------------------------------------
// Actions: calibration, purge, reports, alarms, operator log
// ------------------------------------------------------------------------------------------------
async function startCalibration() {
  const view = currentView;
  if (!view) return;
  const status = $('calibration-status');
  const input = $('calibrate-minutes');
  const minutes = Number(input.value);
  if (!Number.isFinite(minutes) || minutes <= 0 || minutes > 43200) {
    status.className = 'status-line error';
    setText(status, 'Look-back must be a number of minutes between 1 and 43200.');
    input.focus();
    return;
  }
  view.calibrating = true;
  view.d.header = true; schedule();
  status.className = 'status-line';
  setText(status, `Starting calibration on the last ${minutes} minutes of data…`);
  try {
    const res = await api('/calibration/start', { method: 'POST', body: { asset_id: view.id, lookback_minutes: minutes } });
    if (currentView !== view) return;
    const st = res && res.status;
    const models = res && res.models && typeof res.models === 'object'
      ? Object.entries(res.models).map(([k, v]) => `${k} ${v}`).join(', ') : '';
    const pts = res && isNum(res.data_points_collected) ? `${res.data_points_collected} data points` : '';
    if (st === 'failed' || st === 'rejected') {
      status.className = 'status-line error';
      setText(status, `Calibration ${st}: ${res.message || 'no reason given'}`);
    } else if (st === 'accepted') {
      setText(status, `Calibration started${pts ? ` (${pts})` : ''}. ${res.message || ''}`.trim());
    } else {
      status.className = 'status-line success';
      const bits = [pts, models ? `models: ${models}` : '', res && res.message ? res.message : ''].filter(Boolean);
      setText(status, `Calibration complete${bits.length ? ` — ${bits.join('; ')}` : '.'}`);
    }
  } catch (err) {
    if (currentView !== view) return;
    status.className = 'status-line error';
    setText(status, `Calibration failed: ${err.message}`);
  } finally {
    view.calibrating = false;
    view.d.header = true;
    refreshStatusSoon(100);
    schedule();
  }
}

function describePurge(data) {
  const parts = [];
  const walk = (obj, prefix) => {
    for (const [k, v] of Object.entries(obj || {})) {
      const key = prefix ? `${prefix}.${k}` : k;
      if (Array.isArray(v)) parts.push(`${key}: ${v.length ? v.join(', ') : 'none'}`);
      else if (v && typeof v === 'object') walk(v, key);
      else parts.push(`${key}: ${v}`);
    }
  };
  walk(data, '');
  return parts.slice(0, 20).join(' · ');
}

async function confirmPurge() {
  const view = currentView;
  if (!view) return;
  const status = $('purge-status');
  status.className = 'status-line';
  setText(status, `Purging ${view.id}…`);
  $('purge-button').disabled = true;
  try {
    const res = await api(`/system/purge?asset_id=${enc(view.id)}`, { method: 'POST' });
    if (currentView !== view) return;
    status.className = 'status-line success';
    const what = res && res.data ? describePurge(res.data) : '';
    setText(status, `Purged${what ? ` — ${what}` : ''}. Send fresh healthy data, then start calibration.`);
    view.readings.clear();
    for (const m of MODELS) view.scores[m].clear();
    view.latest = null; view.latestTs = null;
    view.health = null; view.alarms.clear(); view.logs = [];
    view.xView = null;
    view.markAll();
    await refreshFleet();
    view.load(true);
    $('calibrate-minutes').focus();
  } catch (err) {
    status.className = 'status-line error';
    setText(status, `Purge failed: ${err.message}`);
  } finally {
    $('purge-button').disabled = false;
  }
}

const REPORT_NAMES = { 'executive.pdf': 'Executive report', 'technical.pdf': 'Technical report', 'report.xlsx': 'Excel workbook' };

async function downloadReport(file, button) {
  const view = currentView;
  if (!view) return;
  const status = $('report-status');
  const name = REPORT_NAMES[file] || file;
  status.className = 'status-line';
  setText(status, `Preparing ${name.toLowerCase()}…`);
  button.disabled = true;
  try {
    const res = await fetch(`${API}/reports/${enc(view.id)}/${file}`);
    if (res.status === 404 || res.status === 501) {
      let detail = '';
      try { detail = detailOf(await res.json()); } catch { /* not JSON */ }
      status.className = 'status-line';
      setText(status, `${name}: not available yet${detail && !/^not found$/i.test(detail) ? ` (${detail})` : ''}.`);
      return;
    }
    if (!res.ok) {
      let detail = '';
      try { detail = detailOf(await res.json()); } catch { /* not JSON */ }
      status.className = 'status-line error';
      setText(status, `${name} failed: ${detail || `HTTP ${res.status}`}`);
      return;
    }
    const blob = await res.blob();
    const cd = res.headers.get('Content-Disposition') || '';
    const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(cd);
    const filename = m ? decodeURIComponent(m[1]) : `${view.id}-${file}`;
    const url = URL.createObjectURL(blob);
    const a = el('a', { href: url, download: filename });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    status.className = 'status-line success';
    setText(status, `${name} downloaded (${filename}).`);
  } catch {
    status.className = 'status-line error';
    setText(status, `${name} failed: gateway unreachable`);
  } finally {
    button.disabled = false;
  }
}

let alarmDialogCtx = null;

function openAlarmDialog(view, alarm, action) {
  alarmDialogCtx = { view, alarm, action };
  const dlg = $('alarm-dialog');
  setText($('alarm-dialog-title'), action === 'ack' ? 'Acknowledge alarm' : 'Resolve alarm');
  setText($('alarm-dialog-reason'), `${alarm.severity || ''} · ${alarm.reason || ''}`);
  $('alarm-action-wrap').hidden = action !== 'resolve';
  setText($('alarm-submit'), action === 'ack' ? 'Acknowledge' : 'Resolve');
  setText($('alarm-error'), '');
  $('alarm-who').value = storageGet('rw.who');
  $('alarm-note').value = '';
  dlg.showModal();
  ($('alarm-who').value ? $('alarm-note') : $('alarm-who')).focus();
}

async function submitAlarmDialog(ev) {
  ev.preventDefault();
  const ctx = alarmDialogCtx;
  if (!ctx) return;
  const who = $('alarm-who').value.trim();
  const note = $('alarm-note').value.trim();
  const errNode = $('alarm-error');
  if (!who) { setText(errNode, 'Enter your name: actions on alarms are recorded with who did them.'); $('alarm-who').focus(); return; }
  storageSet('rw.who', who);
  const body = { who, note };
  if (ctx.action === 'resolve') body.action_code = $('alarm-action-code').value;
  const submit = $('alarm-submit');
  submit.disabled = true;
  try {
    const res = await api(`/alarms/${enc(ctx.alarm.alarm_id)}/${ctx.action}`, { method: 'POST', body });
    if (res && typeof res === 'object') ctx.view.upsertAlarm(res.alarm && typeof res.alarm === 'object' ? res.alarm : res);
    $('alarm-dialog').close();
    alarmDialogCtx = null;
    setText($('alarm-status'), `Alarm ${ctx.action === 'ack' ? 'acknowledged' : 'resolved'} by ${who}.`);
    try {
      const list = await api(`/alarms?asset_id=${enc(ctx.view.id)}`);
      for (const x of unwrapList(list, 'alarms')) ctx.view.upsertAlarm(x);
    } catch { /* the stream will bring the transition */ }
    refreshStatusSoon(100);
    schedule();
  } catch (err) {
    setText(errNode, `${ctx.action === 'ack' ? 'Acknowledge' : 'Resolve'} failed: ${err.message}`);
  } finally {
    submit.disabled = false;
  }
}

async function submitLog(ev) {
  ev.preventDefault();
  const view = currentView;
  if (!view) return;
  const status = $('log-status');
  const author = $('log-author').value.trim();
  const body = {
    asset_id: view.id,
    event_type: $('log-event-type').value,
    severity: $('log-severity').value,
    description: $('log-description').value.trim(),
  };
  if (author) { body.author = author; storageSet('rw.who', author); }
  const btn = ev.submitter || $('log-form').querySelector('button[type="submit"]');
  btn.disabled = true;
  try {
    const res = await api('/logs', { method: 'POST', body });
    const entry = res && typeof res === 'object' && (res.log || (res.log_id ? res : null));
    if (entry && currentView === view) view.logs.push(entry);
    else if (currentView === view) {
      const list = await api(`/logs?asset_id=${enc(view.id)}&hours=24`);
      view.logs = unwrapList(list, 'logs');
    }
    status.className = 'status-line success';
    setText(status, 'Log entry saved.');
    $('log-description').value = '';
    view.d.logs = true; view.d.overlay = true;
    schedule();
  } catch (err) {
    status.className = 'status-line error';
    setText(status, `Could not save: ${err.message}`);
  } finally {
    btn.disabled = false;
  }
}

// ------------------------------------------------------------------------------------------------
// Routing
// ------------------------------------------------------------------------------------------------
let route = { name: null };
let currentView = null;

function parseRoute() {
  const h = location.hash;
  const m = /^#\/asset\/([^/?#]+)/.exec(h);
  if (m) {
    let id;
    try { id = decodeURIComponent(m[1]); } catch { id = m[1]; }
    return { name: 'asset', id };
  }
  return { name: 'fleet' };
}

function applyRoute() {
  const next = parseRoute();
  if (next.name === route.name && next.id === route.id && (next.name === 'fleet' || currentView)) return;
  route = next;
  if (currentView) { currentView.destroy(); currentView = null; }
  const fleet = route.name === 'fleet';
  $('fleet-view').hidden = !fleet;
  $('asset-view').hidden = fleet;
  const crumbs = $('crumbs');
  if (fleet) {
    crumbs.replaceChildren('Fleet');
    document.title = 'Rotorwatch — fleet';
    dirty.fleetStructure = true;
    $('fleet-title').focus({ preventScroll: true });
  } else {
    crumbs.replaceChildren(el('a', { href: '#/', text: 'Fleet' }), ` / ${route.id}`);
    document.title = `Rotorwatch — ${route.id}`;
    currentView = new AssetView(route.id);
    currentView.mount();
    $('asset-title').focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }
  schedule();
}

// ------------------------------------------------------------------------------------------------
// Wiring
// ------------------------------------------------------------------------------------------------
function wire() {
  window.addEventListener('hashchange', applyRoute);
  $('skip-link').addEventListener('click', (e) => { e.preventDefault(); $('main').focus(); });
  $('window-minutes').addEventListener('change', () => {
    if (!currentView) return;
    currentView.minutes = Number($('window-minutes').value) || 10;
    currentView.xView = null;
    currentView.load(false);
    currentView.markAll();
  });
  document.querySelectorAll('[data-zoom]').forEach((b) => b.addEventListener('click', () => currentView && currentView.zoom(b.dataset.zoom)));
  $('calibrate-button').addEventListener('click', startCalibration);
  $('calibrate-minutes').addEventListener('keydown', (e) => { if (e.key === 'Enter') startCalibration(); });
  $('purge-button').addEventListener('click', () => {
    if (!currentView) return;
    setText($('purge-asset'), currentView.id);
    setText($('purge-asset-2'), currentView.id);
    $('purge-dialog').showModal();
    $('purge-cancel').focus();
  });
  $('purge-cancel').addEventListener('click', () => $('purge-dialog').close());
  $('purge-form').addEventListener('submit', (e) => { e.preventDefault(); $('purge-dialog').close(); confirmPurge(); });
  document.querySelectorAll('[data-report]').forEach((b) => b.addEventListener('click', () => downloadReport(b.dataset.report, b)));
  $('alarm-form').addEventListener('submit', submitAlarmDialog);
  $('alarm-cancel').addEventListener('click', () => { $('alarm-dialog').close(); alarmDialogCtx = null; });
  $('log-form').addEventListener('submit', submitLog);
}

async function main() {
  if (typeof uPlot === 'undefined') {
    document.body.prepend(el('p', { class: 'error', role: 'alert', text: 'Chart library failed to load (/static/vendor/uPlot.iife.min.js).' }));
  }
  wire();
  applyRoute();
  await refreshFleet();
  openStream();
}

main();
