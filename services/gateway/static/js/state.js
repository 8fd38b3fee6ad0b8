/* In-memory state shared by the views, the render scheduler, and how stream events update the state.
 *
 * Data flow: REST snapshot on load -> stream events -> this state -> one requestAnimationFrame flush
 * renders what changed (the frame renderer is registered by main.js with setRenderer).
 */
import { api, rw, unwrapList } from './api.js';
import { LAG_SAMPLES } from './constants.js';
import { isNum, numOrNull, parseTs, pushCapped } from './format.js';

export const store = {
  assets: new Map(),      // id -> asset record
  systemState: null,
  fleetLoaded: false,
  fleetError: '',
};

/** The current route ({name: 'fleet'} or {name: 'asset', id}) and its AssetView (null on the fleet). */
export const app = { route: { name: null }, view: null };

/** What the next frame must re-render outside the asset view (which tracks its own parts). */
export const dirty = { fleet: new Set(), fleetStructure: true, conn: true };

// ------------------------------------------------------------------------------------------------
// Render scheduling: one rAF flush for everything that changed.
// ------------------------------------------------------------------------------------------------
let renderFrame = () => {};
let frameRequested = false;
let pendingRenderTs = [];   // data ts of reading events not yet shown by a frame

/** Register the function that renders one frame; it gets Date.now() of the frame. */
export function setRenderer(fn) { renderFrame = fn; }

export function schedule() {
  if (frameRequested) return;
  frameRequested = true;
  requestAnimationFrame(flush);
}

function flush() {
  frameRequested = false;
  renderFrame(Date.now());
  if (pendingRenderTs.length) {
    const done = Date.now();
    for (const t of pendingRenderTs) pushCapped(rw.renderLagMs, done - t, LAG_SAMPLES);
    pendingRenderTs = [];
  }
}

// ------------------------------------------------------------------------------------------------
// Assets, health and status
// ------------------------------------------------------------------------------------------------

/** The health document inside a monitoring-status entry (nested `health`, or fields at top level). */
export function healthFromStatus(s) {
  if (!s || typeof s !== 'object') return null;
  if (s.health && typeof s.health === 'object') return s.health;
  if (isNum(s.health_score)) return s;
  return null;
}

/** The newer of two health documents (candidate wins ties and unparseable times). */
export function newerHealth(current, candidate) {
  if (!candidate || !isNum(candidate.health_score)) return current;
  if (!current) return candidate;
  const a = parseTs(current.ts); const b = parseTs(candidate.ts);
  if (a == null || b == null) return candidate;
  return b >= a ? candidate : current;
}

export function assetRec(id) {
  let a = store.assets.get(id);
  if (!a) {
    a = { id, state: null, reason: '', status: null, health: null, activeAlarms: null, lastDataTs: null };
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

/** Merge a /monitoring/status snapshot into the store (and the open asset view). */
export function mergeStatus(data) {
  if (!data || typeof data !== 'object') return;
  if (typeof data.system_state === 'string') store.systemState = data.system_state;
  const assets = data.assets && typeof data.assets === 'object' ? data.assets : {};
  const entries = Array.isArray(assets) ? assets.map((s) => [s.asset_id, s]) : Object.entries(assets);
  for (const [id, s] of entries) {
    if (typeof id !== 'string' || !s) continue;
    mergeAssetStatus(id, s);
  }
  store.fleetLoaded = true;
}

function mergeAssetStatus(id, s) {
  const a = assetRec(id);
  a.status = s;
  if (typeof s.state === 'string') a.state = s.state;
  if (typeof s.reason === 'string') a.reason = s.reason;
  // The status is a full snapshot: no health there means none exists (never assessed, or purged).
  const h = healthFromStatus(s);
  a.health = h ? newerHealth(a.health, h) : null;
  a.activeAlarms = numOrNull(s.active_alarms) ?? numOrNull(a.health && a.health.active_alarms);
  dirty.fleet.add(id);
  if (app.view && app.view.id === id) {
    if (h) app.view.setHealth(h);
    app.view.markAll();
  }
}

/** Re-read the asset list and status; resolves to true if both requests succeeded. */
export async function refreshFleet() {
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
export function refreshStatusSoon(delay = 800) {
  if (statusTimer) return;
  statusTimer = setTimeout(async () => {
    statusTimer = null;
    try { mergeStatus(await api('/monitoring/status')); schedule(); } catch { /* next event or poll retries */ }
  }, delay);
}

// ------------------------------------------------------------------------------------------------
// Stream events
// ------------------------------------------------------------------------------------------------
const ON_EVENT = {
  reading(a, d, view, received, dataTs) {
    if (dataTs != null) {
      pushCapped(rw.lagMs, received - dataTs, LAG_SAMPLES);
      pendingRenderTs.push(dataTs);
    }
    if (a.lastDataTs == null || (dataTs != null && dataTs >= a.lastDataTs)) a.lastDataTs = dataTs;
    dirty.fleet.add(a.id);
    if (view) view.addReading(d);
  },
  score(a, d, view) {
    if (view) view.addScore(d);
  },
  health(a, d, view) {
    a.health = newerHealth(a.health, d);
    if (isNum(d.active_alarms)) a.activeAlarms = d.active_alarms;
    dirty.fleet.add(a.id);
    if (view) view.setHealth(d);
  },
  alarm(a, d, view) {
    if (view) view.upsertAlarm(d);
    refreshStatusSoon();
  },
  state(a, d, view) {
    const prevState = a.state;
    if (typeof d.state === 'string') a.state = d.state;
    a.reason = typeof d.reason === 'string' ? d.reason : '';
    if (d.state === 'IDLE') { a.health = null; a.activeAlarms = null; }
    dirty.fleet.add(a.id);
    if (view) view.onState(d, prevState);
    refreshStatusSoon(d.state === 'CALIBRATING' ? 2000 : 300);
  },
};

/** Apply one stream event (see api.js startStream) to the store and the open asset view. */
export function onStreamEvent(type, d, received, dataTs) {
  const id = d.asset_id;
  if (typeof id !== 'string') return;
  if (!store.assets.has(id)) refreshFleetSoon();
  const a = assetRec(id);
  const view = app.view && app.view.id === id ? app.view : null;
  const handle = ON_EVENT[type];
  if (handle) handle(a, d, view, received, dataTs);
  schedule();
}
