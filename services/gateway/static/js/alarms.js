/* Alarms panel of the asset view and the acknowledge/resolve dialog. */
import { api, unwrapList } from './api.js';
import { $, el, setText, storageGet, storageSet } from './dom.js';
import { dateTimeText, enc, parseTs } from './format.js';
import { refreshStatusSoon, schedule } from './state.js';

const STATE_RANK = { ACTIVE: 0, ACKNOWLEDGED: 1, RESOLVED: 2 };
const MAX_SHOWN = 50;

let dialogCtx = null;   // {view, alarm, action: 'ack' | 'resolve'} while the dialog is open

function actionButton(view, a, action) {
  const ack = action === 'ack';
  return el('button', {
    type: 'button', class: 'small',
    'data-testid': ack ? 'ack-button' : 'resolve-button',
    'data-focus-key': `${ack ? 'ack' : 'res'}-${a.alarm_id}`,
    onclick: () => openAlarmDialog(view, a, action),
    text: ack ? 'Acknowledge' : 'Resolve',
  });
}

function alarmItem(view, a) {
  const actions = el('div', { class: 'actions' });
  if (a.state === 'ACTIVE') actions.append(actionButton(view, a, 'ack'));
  if (a.state === 'ACTIVE' || a.state === 'ACKNOWLEDGED') actions.append(actionButton(view, a, 'resolve'));
  const who = a.who ? ` · by ${a.who}` : '';
  const note = a.note ? ` · “${a.note}”` : '';
  const code = a.action_code ? ` · action ${a.action_code}` : '';
  return el('li', { class: `sev-${a.severity} alarm-${a.state}`, 'data-testid': 'alarm-item', 'data-alarm-id': a.alarm_id, 'data-state': a.state },
    el('div', {}, el('span', { class: `badge sev-${a.severity}`, text: a.severity || '—' }), ' ',
      el('span', { class: 'badge', 'data-testid': 'alarm-state', text: a.state || '—' }), ' ', a.reason || ''),
    el('div', { class: 'meta', text: `${a.source || 'source —'} · opened ${dateTimeText(a.opened_at)}${a.auto_cleared ? ' · cleared automatically' : ''}${who}${code}${note}` }),
    actions.children.length ? actions : null);
}

/** The alarm list of `view` (open alarms first, newest first), keeping focus on the same button. */
export function renderAlarms(view) {
  const list = $('alarm-list');
  const focusKey = document.activeElement && list.contains(document.activeElement) ? document.activeElement.dataset.focusKey : null;
  const alarms = [...view.alarms.values()].sort((a, b) => (STATE_RANK[a.state] ?? 3) - (STATE_RANK[b.state] ?? 3)
    || (parseTs(b.opened_at) ?? 0) - (parseTs(a.opened_at) ?? 0));
  const open = alarms.filter((a) => a.state !== 'RESOLVED').length;
  setText($('alarm-count'), `${open} open`);
  const shown = alarms.slice(0, MAX_SHOWN);
  if (!shown.length) {
    list.replaceChildren(el('li', { class: 'list-empty', 'data-testid': 'alarms-empty', text: 'No alarms.' }));
    return;
  }
  list.replaceChildren(...shown.map((a) => alarmItem(view, a)));
  if (focusKey) { const n = list.querySelector(`[data-focus-key="${focusKey}"]`); if (n) n.focus(); }
}

function openAlarmDialog(view, alarm, action) {
  dialogCtx = { view, alarm, action };
  setText($('alarm-dialog-title'), action === 'ack' ? 'Acknowledge alarm' : 'Resolve alarm');
  setText($('alarm-dialog-reason'), `${alarm.severity || ''} · ${alarm.reason || ''}`);
  $('alarm-action-wrap').hidden = action !== 'resolve';
  setText($('alarm-submit'), action === 'ack' ? 'Acknowledge' : 'Resolve');
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
  const body = { who, note };
  if (ctx.action === 'resolve') body.action_code = $('alarm-action-code').value;
  const submit = $('alarm-submit');
  submit.disabled = true;
  try {
    const res = await api(`/alarms/${enc(ctx.alarm.alarm_id)}/${ctx.action}`, { method: 'POST', body });
    if (res && typeof res === 'object') ctx.view.upsertAlarm(res.alarm && typeof res.alarm === 'object' ? res.alarm : res);
    closeAlarmDialog();
    setText($('alarm-status'), `Alarm ${ctx.action === 'ack' ? 'acknowledged' : 'resolved'} by ${who}.`);
    await reloadAlarms(ctx.view);
    refreshStatusSoon(100);
    schedule();
  } catch (err) {
    setText(errNode, `${ctx.action === 'ack' ? 'Acknowledge' : 'Resolve'} failed: ${err.message}`);
  } finally {
    submit.disabled = false;
  }
}

export function wireAlarmDialog() {
  $('alarm-form').addEventListener('submit', submitAlarmDialog);
  $('alarm-cancel').addEventListener('click', closeAlarmDialog);
}
