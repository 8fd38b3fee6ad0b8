/* Rotorwatch live dashboard: entry module. Plain ES modules, no build step; uPlot is a global from
 * /static/vendor/. Every number shown comes from the API; unknown values show "—".
 *
 *   api.js         REST client, SSE stream with polling fallback and reconnect backoff, window.__rw
 *   auth.js        the login view (shown when the API answers 401), who is logged in, logout
 *   state.js       shared state, render scheduling, stream events -> state
 *   router.js      hash routing between the fleet view (fleet.js) and the asset view (asset.js)
 *   asset.js       asset view; its panels: health.js, asset-charts.js (+ charts.js), alarms.js, logs.js,
 *                  calibration.js, reports.js
 *   connection.js  connection indicator; format.js, dom.js, constants.js, series.js: helpers
 */
/* global uPlot */
import { wireAlarmDialog } from './alarms.js';
import { api, startStream } from './api.js';
import { showUser, wireAuth } from './auth.js';
import { wireCalibration } from './calibration.js';
import { renderConn, startConnTicker } from './connection.js';
import { $, el } from './dom.js';
import { renderFleet } from './fleet.js';
import { wireLogForm } from './logs.js';
import { wireReports } from './reports.js';
import { applyRoute } from './router.js';
import { app, dirty, onStreamEvent, refreshFleet, schedule, setRenderer } from './state.js';

function renderFrame(now) {
  if (dirty.conn) { renderConn(); dirty.conn = false; }
  if (app.route.name === 'fleet') renderFleet();
  else if (app.view) app.view.render(now);
}

function wireAssetControls() {
  $('window-minutes').addEventListener('change', () => {
    if (app.view) app.view.setWindow(Number($('window-minutes').value) || 10);
  });
  document.querySelectorAll('[data-zoom]').forEach((b) => b.addEventListener('click', () => app.view && app.view.charts.zoom(b.dataset.zoom)));
}

function wire() {
  window.addEventListener('hashchange', applyRoute);
  $('skip-link').addEventListener('click', (e) => { e.preventDefault(); $('main').focus(); });
  wireAssetControls();
  wireCalibration();
  wireReports();
  wireAlarmDialog();
  wireLogForm();
}

const changed = () => { dirty.conn = true; schedule(); };

/** One polling round while the stream is down; true if the gateway answered. */
async function poll() {
  const ok = await refreshFleet();
  if (app.view) await app.view.poll();
  return ok;
}

/** After the stream comes back: reload what may have been missed. */
function resync() {
  refreshFleet();
  if (app.view) app.view.load(false);
}

async function main() {
  if (typeof uPlot === 'undefined') {
    document.body.prepend(el('p', { class: 'error', role: 'alert', text: 'Chart library failed to load (/static/vendor/uPlot.iife.min.js).' }));
  }
  setRenderer(renderFrame);
  wireAuth();
  try {
    showUser(await api('/auth/me'));
  } catch (err) {
    if (err.status === 401) return;  // the login view is up; logging in reloads the page
  }
  startConnTicker();
  wire();
  applyRoute();
  await refreshFleet();
  startStream({ event: onStreamEvent, resync, poll, changed });
}

main();
