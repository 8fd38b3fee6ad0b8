/* Calibration and "Purge & Re-calibrate" on the asset view. */
import { api } from './api.js';
import { $, setStatus, setText } from './dom.js';
import { enc, isNum } from './format.js';
import { app, refreshFleet, refreshStatusSoon, schedule } from './state.js';

const MAX_LOOKBACK_MINUTES = 43200;

/** Calibration status line for a state event (ev.state, ev.previous, ev.reason) of the open asset. */
export function showCalibrationState(ev, prevState) {
  const reason = typeof ev.reason === 'string' ? ev.reason : '';
  const status = $('calibration-status');
  if (ev.state === 'CALIBRATING') {
    const cal = ev.calibration;
    const pct = cal && isNum(cal.percent) ? ` ${Math.round(cal.percent)}% (step ${cal.step}/${cal.steps})` : '';
    setStatus(status, `Calibrating…${pct} ${reason}`.trim());
  } else if (ev.previous === 'CALIBRATING' || prevState === 'CALIBRATING') {
    const ok = ev.state === 'CALIBRATED' || ev.state === 'MONITORING';
    setStatus(status, ok ? `Calibrated${reason ? `: ${reason}` : '.'}` : `Calibration failed${reason ? `: ${reason}` : '.'}`, ok ? 'success' : 'error');
  }
}

/** Status line for the response of POST /calibration/start (202 calibration_started: progress and result
 * then arrive as state events, see showCalibrationState). */
function showCalibrationResult(status, res) {
  const st = res && res.status;
  const models = res && res.models && typeof res.models === 'object'
    ? Object.entries(res.models).map(([k, v]) => `${k} ${v}`).join(', ') : '';
  const pts = res && isNum(res.data_points_collected) ? `${res.data_points_collected} data points` : '';
  if (st === 'failed' || st === 'rejected') {
    setStatus(status, `Calibration ${st}: ${res.message || 'no reason given'}`, 'error');
  } else if (st === 'accepted' || st === 'calibration_started') {
    setText(status, `Calibration started${pts ? ` (${pts})` : ''}. ${res.message || ''}`.trim());
  } else {
    const bits = [pts, models ? `models: ${models}` : '', res && res.message ? res.message : ''].filter(Boolean);
    setStatus(status, `Calibration complete${bits.length ? ` — ${bits.join('; ')}` : '.'}`, 'success');
  }
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
  view.calibrating = true;
  view.d.header = true; schedule();
  setStatus(status, `Starting calibration on the last ${minutes} minutes of data…`);
  try {
    const res = await api('/calibration/start', { method: 'POST', body: { asset_id: view.id, lookback_minutes: minutes } });
    if (app.view !== view) return;
    showCalibrationResult(status, res);
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
