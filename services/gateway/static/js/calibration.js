/* Calibration and "Purge & Re-calibrate" on the asset view.
 *
 * POST /calibration/start answers 202 calibration_started (the default) or, from an older gateway or with
 * ?wait=true, 200 completed. After a 202 the asset's calibration is followed in GET /monitoring/status
 * (assets[id].calibration: phase, step, steps, percent; state and reason) until it is completed or failed;
 * stream state events carrying the same progress update the line sooner.
 */
import { api } from './api.js';
import { $, setStatus, setText } from './dom.js';
import { enc, isNum } from './format.js';
import { app, mergeStatus, refreshFleet, refreshStatusSoon, schedule, store } from './state.js';

const MAX_LOOKBACK_MINUTES = 43200;
const FOLLOW_MS = 1000;                   // status polling period while a started calibration runs
const FOLLOW_MAX_MS = 60 * 60 * 1000;     // stop following (and say so) after an hour

/** The calibration being followed: {view, prior (started_at of the one before), priorModels, timer, since}. */
let follow = null;

function modelText(models) {
  return models && typeof models === 'object'
    ? Object.entries(models).map(([k, v]) => `${k} ${v}`).join(', ') : '';
}

function completeText(points, models, message) {
  const pts = isNum(points) && points > 0 ? `${points} data points` : '';
  const m = modelText(models);
  const bits = [pts, m ? `models: ${m}` : '', message || ''].filter(Boolean);
  return `Calibration complete${bits.length ? ` — ${bits.join('; ')}` : '.'}`;
}

/** "Calibrating… 40% — training (step 3/5)" from a CalibrationProgress. */
function progressText(cal, reason) {
  const pct = isNum(cal.percent) ? ` ${Math.round(cal.percent)}%` : '';
  const step = isNum(cal.step) && isNum(cal.steps) ? ` (step ${cal.step}/${cal.steps})` : '';
  const pts = isNum(cal.data_points_collected) && cal.data_points_collected > 0 ? `, ${cal.data_points_collected} data points` : '';
  return `Calibrating…${pct} — ${cal.phase || 'running'}${step}${pts}${reason ? `: ${reason}` : ''}`;
}

/** Show one snapshot of the asset ({state, reason, models, calibration}); true once the calibration ended. */
function showSnapshot(snap) {
  const status = $('calibration-status');
  const cal = snap.calibration && typeof snap.calibration === 'object' ? snap.calibration : null;
  const reason = typeof snap.reason === 'string' ? snap.reason : '';
  if (cal && cal.phase === 'completed') {
    setStatus(status, completeText(cal.data_points_collected, snap.models, reason), 'success');
    return true;
  }
  if (cal && cal.phase === 'failed') {
    setStatus(status, `Calibration failed: ${reason || 'no reason given'}`, 'error');
    return true;
  }
  if (cal) { setStatus(status, progressText(cal, reason)); return false; }
  if (snap.state === 'CALIBRATING') { setStatus(status, `Calibrating…${reason ? ` ${reason}` : ''}`); return false; }
  return false;
}

/** Is this snapshot about the calibration being followed (not the one before it)? */
function isFollowed(snap) {
  const cal = snap.calibration;
  if (cal && typeof cal === 'object') return cal.started_at !== follow.prior;
  // no progress: another service changed the state after it ended; new models mean it completed
  return snap.state !== 'CALIBRATING' && modelText(snap.models) !== follow.priorModels && modelText(snap.models) !== '';
}

function stopFollowing() {
  if (follow) clearTimeout(follow.timer);
  follow = null;
}

/** Apply a snapshot to the followed calibration (if it is the followed one); stops when it ended. */
function applyFollowed(snap) {
  if (!follow || app.view !== follow.view || !isFollowed(snap)) return;
  const cal = snap.calibration;
  const ended = cal ? showSnapshot(snap) : true;
  if (!cal) setStatus($('calibration-status'), completeText(null, snap.models), 'success');
  if (ended) stopFollowing();
}

async function pollFollowed() {
  if (!follow) return;
  if (app.view !== follow.view) { stopFollowing(); return; }
  if (Date.now() - follow.since > FOLLOW_MAX_MS) {
    setStatus($('calibration-status'), 'Calibration still running after an hour: see the asset state.', 'error');
    stopFollowing();
    return;
  }
  try {
    const data = await api('/monitoring/status');
    mergeStatus(data);
    schedule();
    const s = data && data.assets && data.assets[follow.view.id];
    if (s) applyFollowed(s);
  } catch { /* the next round retries; the connection indicator shows an unreachable gateway */ }
  if (follow) follow.timer = setTimeout(pollFollowed, FOLLOW_MS);
}

/** Calibration status line for a state event (ev.state, ev.previous, ev.reason, ev.calibration) of the
 * open asset. */
export function showCalibrationState(ev, prevState) {
  if (follow) { applyFollowed(ev); return; }
  const cal = ev.calibration && typeof ev.calibration === 'object' ? ev.calibration : null;
  if (cal || ev.state === 'CALIBRATING') { showSnapshot(ev); return; }
  if (ev.previous === 'CALIBRATING' || prevState === 'CALIBRATING') {
    const ok = ev.state === 'CALIBRATED' || ev.state === 'MONITORING';
    const reason = typeof ev.reason === 'string' ? ev.reason : '';
    if (ok) setStatus($('calibration-status'), completeText(null, ev.models, reason), 'success');
    else setStatus($('calibration-status'), `Calibration failed: ${reason || 'no reason given'}`, 'error');
  }
}

/** Status line for the response of POST /calibration/start; true when the calibration goes on in the
 * background (202 calibration_started, or an interim `accepted`). */
function showCalibrationResult(status, res) {
  const st = res && res.status;
  const pts = res && isNum(res.data_points_collected) ? `${res.data_points_collected} data points` : '';
  if (st === 'failed' || st === 'rejected') {
    setStatus(status, `Calibration ${st}: ${res.message || res.detail || 'no reason given'}`, 'error');
    return false;
  }
  if (st === 'accepted' || st === 'calibration_started') {
    setStatus(status, `Calibration started${pts ? ` (${pts})` : ''}. ${res.message || ''}`.trim());
    return true;
  }
  setStatus(status, completeText(res && res.data_points_collected, res && res.models, res && res.message), 'success');
  return false;
}

/** The asset's calibration start time and model versions now (to tell the next calibration from it). */
function priorOf(id) {
  const s = (store.assets.get(id) || {}).status || {};
  const cal = s.calibration && typeof s.calibration === 'object' ? s.calibration : null;
  return { prior: cal ? cal.started_at : undefined, priorModels: modelText(s.models) };
}

async function startCalibration() {
  const view = app.view;
  if (!view) return;
  const status = $('calibration-status');
  const input = $('calibrate-minutes');
  const minutes = Number(input.value);
  if (!Number.isFinite(minutes) || minutes <= 0 || minutes > MAX_LOOKBACK_MINUTES) {
    setStatus(status, `Look-back must be a number of minutes between 1 and ${MAX_LOOKBACK_MINUTES}.`, 'error');
    input.focus();
    return;
  }
  stopFollowing();
  view.calibrating = true;
  view.d.header = true; schedule();
  setStatus(status, `Starting calibration on the last ${minutes} minutes of data…`);
  try {
    try { mergeStatus(await api('/monitoring/status')); } catch { /* the last known status then */ }
    const before = priorOf(view.id);
    const res = await api('/calibration/start', { method: 'POST', body: { asset_id: view.id, lookback_minutes: minutes } });
    if (app.view !== view) return;
    if (showCalibrationResult(status, res)) {
      follow = { view, ...before, timer: null, since: Date.now() };
      follow.timer = setTimeout(pollFollowed, FOLLOW_MS);
    }
  } catch (err) {
    if (app.view !== view) return;
    setStatus(status, `Calibration failed: ${err.message}`, 'error');
  } finally {
    view.calibrating = false;
    view.d.header = true;
    refreshStatusSoon(100);
    schedule();
  }
}

// ------------------------------------------------------------------------------------------------
// Purge
// ------------------------------------------------------------------------------------------------

/** Flat "key: value" summary of the purge response's data (nested keys dotted), at most 20 parts. */
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
  const view = app.view;
  if (!view) return;
  const status = $('purge-status');
  setStatus(status, `Purging ${view.id}…`);
  $('purge-button').disabled = true;
  try {
    const res = await api(`/system/purge?asset_id=${enc(view.id)}`, { method: 'POST' });
    if (app.view !== view) return;
    const what = res && res.data ? describePurge(res.data) : '';
    setStatus(status, `Purged${what ? ` — ${what}` : ''}. Send fresh healthy data, then start calibration.`, 'success');
    view.reset();
    await refreshFleet();
    view.load(true);
    $('calibrate-minutes').focus();
  } catch (err) {
    setStatus(status, `Purge failed: ${err.message}`, 'error');
  } finally {
    $('purge-button').disabled = false;
  }
}

function openPurgeDialog() {
  if (!app.view) return;
  setText($('purge-asset'), app.view.id);
  setText($('purge-asset-2'), app.view.id);
  $('purge-dialog').showModal();
  $('purge-cancel').focus();
}

export function wireCalibration() {
  $('calibrate-button').addEventListener('click', startCalibration);
  $('calibrate-minutes').addEventListener('keydown', (e) => { if (e.key === 'Enter') startCalibration(); });
  $('purge-button').addEventListener('click', openPurgeDialog);
  $('purge-cancel').addEventListener('click', () => $('purge-dialog').close());
  $('purge-form').addEventListener('submit', (e) => { e.preventDefault(); $('purge-dialog').close(); confirmPurge(); });
}
