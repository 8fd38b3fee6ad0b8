/* Fleet view: one card per asset (health, risk, state, alarms, last data) and a summary line. */
import { $, el, setText } from './dom.js';
import { riskOf } from './constants.js';
import { enc, fmt, isNum } from './format.js';
import { dirty, store } from './state.js';

const cardNodes = new Map();   // asset id -> card element (kept, so focus and hover survive re-renders)

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

/** Cards in id order; rebuilds the grid only when the set of assets changed. */
function renderCards() {
  const grid = $('fleet-grid');
  if (dirty.fleetStructure) {
    const ids = [...store.assets.keys()].sort();
    const nodes = ids.map((id) => updateCard(store.assets.get(id)));
    const current = [...grid.children];
    if (current.length !== nodes.length || current.some((n, i) => n !== nodes[i])) grid.replaceChildren(...nodes);
    dirty.fleetStructure = false;
    $('fleet-empty').hidden = !store.fleetLoaded || ids.length > 0;
  } else {
    for (const id of dirty.fleet) { const a = store.assets.get(id); if (a) updateCard(a); }
  }
  dirty.fleet.clear();
}

export function renderFleet() {
  renderCards();
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
