/* Operator log panel of the asset view: the entry list and the form that adds one. */
import { api, unwrapList } from './api.js';
import { $, el, setStatus, storageSet } from './dom.js';
import { dateTimeText, enc, parseTs } from './format.js';
import { app, schedule } from './state.js';

const MAX_SHOWN = 50;

function severityClass(severity) {
  if (severity === 'critical' || severity === 'high') return 'critical';
  return severity === 'medium' ? 'warning' : 'info';
}

function logItem(l) {
  return el('li', { class: `sev-${severityClass(l.severity)}`, 'data-testid': 'log-item' },
    el('div', {}, el('strong', { text: (l.event_type || 'entry').replaceAll('_', ' ') }), l.description ? ` — ${l.description}` : ''),
    el('div', { class: 'meta', text: `${dateTimeText(l.ts)} · ${l.severity || '—'}${l.author ? ` · ${l.author}` : ''}` }));
}

/** Newest entries first. */
export function renderLogs(logs) {
  const list = $('log-list');
  const shown = [...logs].sort((a, b) => (parseTs(b.ts) ?? 0) - (parseTs(a.ts) ?? 0)).slice(0, MAX_SHOWN);
  if (!shown.length) {
    list.replaceChildren(el('li', { class: 'list-empty', text: 'No operator log entries in the last 24 hours.' }));
    return;
  }
  list.replaceChildren(...shown.map(logItem));
}

function logBody(view) {
  const body = {
    asset_id: view.id,
    event_type: $('log-event-type').value,
    severity: $('log-severity').value,
    description: $('log-description').value.trim(),
  };
  const author = $('log-author').value.trim();
  if (author) { body.author = author; storageSet('rw.who', author); }
  return body;
}

async function submitLog(ev) {
  ev.preventDefault();
  const view = app.view;
  if (!view) return;
  const status = $('log-status');
  const body = logBody(view);
  const btn = ev.submitter || $('log-form').querySelector('button[type="submit"]');
  btn.disabled = true;
  try {
    const res = await api('/logs', { method: 'POST', body });
    const entry = res && typeof res === 'object' && (res.log || (res.log_id ? res : null));
    if (entry && app.view === view) view.logs.push(entry);
    else if (app.view === view) {
      const list = await api(`/logs?asset_id=${enc(view.id)}&hours=24`);
      view.logs = unwrapList(list, 'logs');
    }
    setStatus(status, 'Log entry saved.', 'success');
    $('log-description').value = '';
    view.d.logs = true; view.d.overlay = true;
    schedule();
  } catch (err) {
    setStatus(status, `Could not save: ${err.message}`, 'error');
  } finally {
    btn.disabled = false;
  }
}

export function wireLogForm() {
  $('log-form').addEventListener('submit', submitLog);
}
