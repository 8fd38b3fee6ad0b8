/* REST client for /api/v1 and the live event stream (Server-Sent Events at /api/v1/stream).
 *
 * If the stream fails, the page polls the REST API (through the `poll` handler) every POLL_MS and
 * reconnects the stream with exponential backoff. `conn` holds the connection state for the status
 * indicator; `window.__rw` holds stream receive statistics for tests and diagnostics.
 */
import { needLogin } from './auth.js';
import { parseTs } from './format.js';

export const API = '/api/v1';
const POLL_MS = 3000;             // REST polling period while the stream is down
const STREAM_TYPES = ['reading', 'score', 'health', 'alarm', 'state'];

// Test/diagnostic hook: stream receive statistics (times in ms since the epoch).
export const rw = {
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
// REST
// ------------------------------------------------------------------------------------------------

/** Text of an API error body: {"detail": "..."} or FastAPI's list of validation errors. */
export function detailOf(data) {
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

/** JSON request to the API; resolves to the parsed body, rejects with ApiError (or AbortError). */
export async function api(path, { method = 'GET', body, signal } = {}) {
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
  if (res.status === 401) needLogin(detailOf(data));  // no or expired session: the login view
  if (!res.ok) throw new ApiError(res.status, detailOf(data) || `HTTP ${res.status} ${res.statusText}`);
  return data;
}

/** First array found in a response: the value itself or one of the named keys. */
export function unwrapList(data, ...keys) {
  if (Array.isArray(data)) return data;
  if (data && typeof data === 'object') {
    for (const k of keys) if (Array.isArray(data[k])) return data[k];
  }
  return [];
}

// ------------------------------------------------------------------------------------------------
// Stream (SSE) with polling fallback and reconnect backoff
// ------------------------------------------------------------------------------------------------
export const conn = { mode: 'connecting', es: null, attempts: 0, retryAt: null, retryTimer: null, pollTimer: null, everOpen: false, pollFailed: false };

let handlers = null;

/**
 * Open the stream. handlers:
 *   event(type, data, receivedMs, dataTsMs)  one parsed event;
 *   resync()                                  the stream is back after a failure: reload what was missed;
 *   poll() -> Promise<boolean>                one polling round while the stream is down (true: gateway answered);
 *   changed()                                 `conn` changed.
 */
export function startStream(h) {
  handlers = h;
  openStream();
}

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
  es.onopen = () => streamOpened();
  es.onerror = () => {
    if (conn.es !== es) return;
    streamFailed();
  };
  for (const type of STREAM_TYPES) es.addEventListener(type, (ev) => receive(type, ev.data));
}

function streamOpened() {
  const wasDown = conn.everOpen || conn.mode === 'polling';
  conn.everOpen = true;
  conn.attempts = 0;
  conn.mode = 'live';
  rw.streamOpen = true;
  stopPolling();
  handlers.changed();
  if (wasDown) handlers.resync();
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
  handlers.changed();
}

function startPolling() {
  if (conn.pollTimer) return;
  const tick = async () => {
    const ok = await handlers.poll();
    conn.pollFailed = !ok;
    handlers.changed();
  };
  conn.pollTimer = setInterval(tick, POLL_MS);
}

function stopPolling() {
  clearInterval(conn.pollTimer);
  conn.pollTimer = null;
  conn.pollFailed = false;
}

/** Parse one event, count it in window.__rw and hand it on. */
function receive(type, raw) {
  const received = Date.now();
  let d;
  try { d = JSON.parse(raw); } catch { rw.badEvents += 1; return; }
  if (!d || typeof d !== 'object') { rw.badEvents += 1; return; }
  const dataTs = parseTs(d.ts);
  rw.lastEventAt = received;
  rw.lastEventDataTs = dataTs;
  rw.eventsReceived += 1;
  rw.byType[type] = (rw.byType[type] || 0) + 1;
  handlers.event(type, d, received, dataTs);
}
