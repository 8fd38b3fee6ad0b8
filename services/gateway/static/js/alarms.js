/* Alarms panel of the asset view (priority, first-out and shelved badges, the alarm-metrics summary of
   GET /alarms/metrics) and the acknowledge/resolve/shelve/unshelve dialog. */
import { api, unwrapList } from './api.js';
import { $, el, setText, storageGet, storageSet } from './dom.js';
import { dateTimeText, enc, parseTs } from './format.js';
import { refreshStatusSoon, schedule } from './state.js';

const STATE_RANK = { ACTIVE: 0, ACKNOWLEDGED: 1, RESOLVED: 2 };
const MAX_SHOWN = 50;
/* Priority as the gateway gives it (shared/health/alarm_metrics.py); the same mapping for an alarm
   that only came over the stream so far: CRITICAL 1 high, WARNING 2 medium, 3 low for trend/sensor. */
const PRIORITY_NAMES = { 1: 'high', 2: 'medium', 3: 'low' };
const LOW_SOURCES = new Set(['trend', 'sensor']);
/* The metrics summary is re-read at most this often (ms) while alarms change. */
const METRICS_EVERY_MS = 30000;
/* Shelf lengths offered (s); the health service refuses one over the asset's alarms.max_shelve_s. */
export const SHELVE_CHOICES = [[3600, '1 hour'], [8 * 3600, '8 hours'], [24 * 3600, '24 hours']];
const ACTIONS = {
  ack: { title: 'Acknowledge alarm', verb: 'Acknowledge', done: 'acknowledged', key: 'ack' },
  resolve: { title: 'Resolve alarm', verb: 'Resolve', done: 'resolved', key: 'res' },
  shelve: { title: 'Shelve alarm', verb: 'Shelve', done: 'shelved', key: 'shelve' },
  unshelve: { title: 'Unshelve alarm', verb: 'Unshelve', done: 'unshelved', key: 'unshelve' },
};

/** True while `a` is shelved (as the gateway reports it: its latest transition carries a shelf). */
export const isShelved = (a) => a.state !== 'RESOLVED' && typeof a.shelved_until === 'string' && a.shelved_until !== '';

const shelfText = (a) => `Shelved until ${dateTimeText(a.shelved_until)} by ${a.shelved_by || '—'}: ${a.shelve_reason || '—'}`;

function priorityOf(a) {
  if (Number.isInteger(a.priority) && PRIORITY_NAMES[a.priority]) return a.priority;
  if (a.severity === 'CRITICAL') return 1;
  return LOW_SOURCES.has(a.source) ? 3 : 2;
}

function badges(a) {
  const p = priorityOf(a);
  const out = [el('span', { class: `badge prio-${p}`, 'data-testid': 'alarm-priority', title: 'Alarm priority (1 = act first)', text: `P${p} ${PRIORITY_NAMES[p]}` })];
  if (a.first_out) out.push(el('span', { class: 'badge first-out', 'data-testid': 'alarm-first-out', title: 'The earliest alarm of a flood on this machine: look here first', text: 'first-out' }));
  else if (typeof a.first_out_id === 'string') out.push(el('span', { class: 'badge in-flood', 'data-testid': 'alarm-in-flood', title: `In a flood on this machine; first-out alarm ${a.first_out_id}`, text: `flood · first-out ${a.first_out_id.slice(0, 8)}` }));
  if (isShelved(a)) out.push(el('span', { class: 'badge shelved', 'data-testid': 'alarm-shelved', title: 'Taken off the alarm list\'s attention for a while by an operator; it returns by itself', text: 'shelved' }));
  return out.flatMap((b) => [' ', b]);
}

let dialogCtx = null;   // {view, alarm, action: a key of ACTIONS} while the dialog is open

function actionButton(view, a, action) {
  const spec = ACTIONS[action];
  return el('button', {
    type: 'button', class: 'small',
    'data-testid': `${action}-button`,
    'data-focus-key': `${spec.key}-${a.alarm_id}`,
    onclick: () => openAlarmDialog(view, a, action),
    text: spec.verb,
  });
}

function alarmItem(view, a) {
  const actions = el('div', { class: 'actions' });
  const open = a.state === 'ACTIVE' || a.state === 'ACKNOWLEDGED';
  const shelved = isShelved(a);
  if (a.state === 'ACTIVE') actions.append(actionButton(view, a, 'ack'));
  if (open) actions.append(actionButton(view, a, 'resolve'));
  if (open) actions.append(actionButton(view, a, shelved ? 'unshelve' : 'shelve'));
  const who = a.who ? ` · by ${a.who}` : '';
  const note = a.note ? ` · “${a.note}”` : '';
  const code = a.action_code ? ` · action ${a.action_code}` : '';
  return el('li', { class: `sev-${a.severity} alarm-${a.state}${shelved ? ' alarm-shelved' : ''}`, 'data-testid': 'alarm-item', 'data-alarm-id': a.alarm_id, 'data-state': a.state, 'data-shelved': shelved ? 'true' : 'false' },
    el('div', {}, el('span', { class: `badge sev-${a.severity}`, text: a.severity || '—' }), ' ',
      el('span', { class: 'badge', 'data-testid': 'alarm-state', text: a.state || '—' }), ...badges(a), ' ', a.reason || ''),
    shelved ? el('div', { class: 'meta shelf', 'data-testid': 'alarm-shelf', text: shelfText(a) }) : null,
    el('div', { class: 'meta', text: `${a.source || 'source —'} · opened ${dateTimeText(a.opened_at)}${a.auto_cleared ? ' · cleared automatically' : ''}${who}${code}${note}` }),
    actions.children.length ? actions : null);
}

/** The alarm list of `view` (open alarms first, newest first), keeping focus on the same button. */
export function renderAlarms(view) {
  const list = $('alarm-list');
  const focusKey = document.activeElement && list.contains(document.activeElement) ? document.activeElement.dataset.focusKey : null;
  /* Shelved open alarms after the other open ones (de-emphasised, not hidden), before the resolved. */
  const rank = (a) => (isShelved(a) ? 1.5 : STATE_RANK[a.state] ?? 3);
  const alarms = [...view.alarms.values()].sort((a, b) => rank(a) - rank(b)
    || (parseTs(b.opened_at) ?? 0) - (parseTs(a.opened_at) ?? 0));
  const open = alarms.filter((a) => a.state !== 'RESOLVED').length;
  const shelvedCount = alarms.filter(isShelved).length;
  setText($('alarm-count'), `${open} open${shelvedCount ? ` (${shelvedCount} shelved)` : ''}`);
  const shown = alarms.slice(0, MAX_SHOWN);
  if (!shown.length) {
    list.replaceChildren(el('li', { class: 'list-empty', 'data-testid': 'alarms-empty', text: 'No alarms.' }));
    return;
  }
  list.replaceChildren(...shown.map((a) => alarmItem(view, a)));
  if (focusKey) { const n = list.querySelector(`[data-focus-key="${focusKey}"]`); if (n) n.focus(); }
  loadAlarmMetrics(view);
}

let metricsFor = { id: null, at: 0 };

const secText = (s) => (s == null ? '—' : s < 120 ? `${Math.round(s)} s` : s < 7200 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(1)} h`);

/** The alarm-metrics summary of `view`'s asset over the last 24 h of its alarm data (every number with
    the period and the alarm count it rests on). Re-read at most every METRICS_EVERY_MS per asset. */
async function loadAlarmMetrics(view) {
  const now = Date.now();
  if (metricsFor.id === view.id && now - metricsFor.at < METRICS_EVERY_MS) return;
  metricsFor = { id: view.id, at: now };
  const node = $('alarm-metrics');
  try {
    const r = await api(`/alarms/metrics?asset_id=${enc(view.id)}`);
    if (metricsFor.id === view.id) renderAlarmMetrics(node, r);
  } catch (err) {
    node.replaceChildren(el('p', { class: 'muted', text: `Alarm metrics unavailable: ${err.message}` }));
  }
}

function renderAlarmMetrics(node, r) {
  const m = r && r.metrics;
  if (!m || !m.basis) { node.replaceChildren(); return; }
  const b = m.basis;
  const rate = m.rate, ack = m.ack;
  const firstOuts = (r.floods || []).map((f) => f.first_out.slice(0, 8)).join(', ');
  const rows = [
    ['Alarm rate', `${rate.mean_per_10min.toFixed(2)} per 10 min (peak ${rate.peak_per_10min})`],
    ['In flood', `${rate.flood_pct.toFixed(1)} % of ${rate.buckets} ten-minute periods (> ${r.params.operator_flood_above} alarms)`],
    ['Machine floods', rate.machine_floods ? `${rate.machine_floods} (first-out ${firstOuts || '—'})` : '0'],
    [`Standing (≥ ${(r.params.standing_s / 3600).toFixed(0)} h)`, `${m.standing.length} (${m.standing.filter((s) => s.open_at_end).length} still open)`],
    ['Chattering sources', m.chattering.length ? m.chattering.map((c) => `${c.source} ×${c.max_opens_in_window}`).join(', ') : '0'],
    ['Time to acknowledge', ack.acknowledged ? `median ${secText(ack.median_s)}, p90 ${secText(ack.p90_s)} (${ack.acknowledged} alarms)` : 'no acknowledged alarm'],
    ['Unacknowledged', `${ack.unacknowledged_open} open, ${ack.cleared_unacknowledged} cleared by themselves`],
  ];
  node.replaceChildren(
    el('h3', { text: 'Alarm performance' }),
    el('dl', { class: 'kv' }, ...rows.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { 'data-testid': `alarm-metric-${k.split(' ')[0].toLowerCase()}`, text: v })])),
    el('p', { class: 'panel-note', 'data-testid': 'alarm-metrics-basis', text: `${b.alarms} alarm${b.alarms === 1 ? '' : 's'} opened ${dateTimeText(b.start)} – ${dateTimeText(b.end)} (data time); priorities ${Object.entries(m.by_priority).map(([k, v]) => `${k} ${v}`).join(', ')}.` }),
  );
}

function openAlarmDialog(view, alarm, action) {
  dialogCtx = { view, alarm, action };
  const spec = ACTIONS[action];
  setText($('alarm-dialog-title'), spec.title);
  setText($('alarm-dialog-reason'), `${alarm.severity || ''} · ${alarm.reason || ''}${isShelved(alarm) ? ` · ${shelfText(alarm)}` : ''}`);
  $('alarm-action-wrap').hidden = action !== 'resolve';
  $('alarm-shelve-wrap').hidden = action !== 'shelve';
  setText($('alarm-note-label'), action === 'shelve' ? 'Reason (required)' : 'Note');
  $('alarm-note').required = action === 'shelve';
  if (action === 'shelve') $('alarm-shelve-duration').value = String(SHELVE_CHOICES[0][0]);
  setText($('alarm-submit'), spec.verb);
  setText($('alarm-error'), '');
  $('alarm-who').value = storageGet('rw.who');
  $('alarm-note').value = '';
  $('alarm-dialog').showModal();
  ($('alarm-who').value ? $('alarm-note') : $('alarm-who')).focus();
}

function closeAlarmDialog() {
  $('alarm-dialog').close();
  dialogCtx = null;
}

/** After a successful action: re-read the asset's alarms (the stream also brings the transition). */
async function reloadAlarms(view) {
  try {
    const list = await api(`/alarms?asset_id=${enc(view.id)}`);
    for (const x of unwrapList(list, 'alarms')) view.upsertAlarm(x);
  } catch { /* the stream will bring the transition */ }
}

async function submitAlarmDialog(ev) {
  ev.preventDefault();
  const ctx = dialogCtx;
  if (!ctx) return;
  const who = $('alarm-who').value.trim();
  const note = $('alarm-note').value.trim();
  const errNode = $('alarm-error');
  if (!who) { setText(errNode, 'Enter your name: actions on alarms are recorded with who did them.'); $('alarm-who').focus(); return; }
  storageSet('rw.who', who);
  if (ctx.action === 'shelve' && !note) { setText(errNode, 'Enter a reason: a shelved alarm is recorded with why it was shelved.'); $('alarm-note').focus(); return; }
  const body = ctx.action === 'shelve' ? { who, reason: note, duration_s: Number($('alarm-shelve-duration').value) } : { who, note };
  if (ctx.action === 'resolve') body.action_code = $('alarm-action-code').value;
  const spec = ACTIONS[ctx.action];
  const submit = $('alarm-submit');
  submit.disabled = true;
  try {
    const res = await api(`/alarms/${enc(ctx.alarm.alarm_id)}/${ctx.action}`, { method: 'POST', body });
    if (res && typeof res === 'object') ctx.view.upsertAlarm(res.alarm && typeof res.alarm === 'object' ? res.alarm : res);
    closeAlarmDialog();
    const period = ctx.action === 'shelve' ? ` for ${SHELVE_CHOICES.find(([s]) => s === body.duration_s)?.[1] ?? `${body.duration_s} s`}` : '';
    setText($('alarm-status'), `Alarm ${spec.done}${period} by ${who}.`);
    await reloadAlarms(ctx.view);
    refreshStatusSoon(100);
    schedule();
  } catch (err) {
    setText(errNode, `${spec.verb} failed: ${err.message}`);
  } finally {
    submit.disabled = false;
  }
}

export function wireAlarmDialog() {
  $('alarm-shelve-duration').replaceChildren(...SHELVE_CHOICES.map(([s, label]) => el('option', { value: String(s), text: label })));
  $('alarm-form').addEventListener('submit', submitAlarmDialog);
  $('alarm-cancel').addEventListener('click', closeAlarmDialog);
}
