/* The connection indicator in the top bar: Live, Polling (with the stream-retry countdown), offline. */
import { conn } from './api.js';
import { $, el, setText } from './dom.js';
import { dirty, schedule } from './state.js';

function connText() {
  if (conn.mode === 'live') return { text: 'Live', cls: 'live', countdown: '' };
  if (conn.mode !== 'polling') return { text: 'Connecting…', cls: 'connecting', countdown: '' };
  const secs = conn.retryAt ? Math.max(0, Math.round((conn.retryAt - Date.now()) / 1000)) : null;
  return {
    text: `${conn.pollFailed ? 'Gateway unreachable' : 'Polling'} — stream retry`,
    cls: conn.pollFailed ? 'offline' : 'polling',
    countdown: secs != null ? ` in ${secs} s` : '',
  };
}

export function renderConn() {
  const node = $('conn');
  const { text, cls, countdown } = connText();
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

/** Re-render the countdown every second while polling. */
export function startConnTicker() {
  setInterval(() => { if (conn.mode === 'polling') { dirty.conn = true; schedule(); } }, 1000);
}
