/* Asset view panels fed by readings and health: the health ring and facts, the live status cards,
 * and the insights list. */
import { ISO_ZONE_TEXT, riskOf, SIGNALS } from './constants.js';
import { $, el, setText } from './dom.js';
import { fmt, numOrNull, timeText } from './format.js';
import { maintenanceText } from './prognosis.js';

const RING_CIRCUMFERENCE = 2 * Math.PI * 52;

/** The health ring and facts for health document h (null: no assessment yet). */
export function renderHealth(h) {
  const risk = riskOf(h);
  const ring = $('health-ring');
  ring.className = `ring-wrap ${risk.cls}`;
  const score = h ? numOrNull(h.health_score) : null;
  const c = RING_CIRCUMFERENCE;
  const arc = $('ring-arc');
  arc.setAttribute('stroke-dashoffset', String(score == null ? c : c * (1 - Math.min(100, Math.max(0, score)) / 100)));
  arc.style.visibility = score == null ? 'hidden' : 'visible';
  setText($('health-score'), fmt(score, 1));
  const rl = $('risk-label');
  setText(rl, risk.level ? risk.text : '—');
  rl.className = `risk-text ${risk.cls}`;
  renderHealthFacts(h);
  ring.setAttribute('aria-label', `Health ${fmt(score, 1)} of 100, risk ${risk.level ? risk.text : 'unknown'}`);
  ring.setAttribute('role', 'img');
}

function renderHealthFacts(h) {
  setText($('health-grade'), h && typeof h.grade === 'string' ? h.grade : '—');
  // Only a fitted estimate gives a window (its 80 % interval's low end); else why there is none.
  setText($('maint-window'), maintenanceText(h));
  setText($('maint-reason'), h && h.maintenance_reason ? h.maintenance_reason : '');
  setText($('degradation'), h ? fmt(numOrNull(h.degradation_index), 2) : '—');
  const zone = h && typeof h.iso_zone === 'string' ? h.iso_zone : null;
  setText($('iso-zone'), zone ? zoneText(zone, h.zone_basis) : '—');
  setText($('iso-basis'), zone && typeof h.zone_basis_text === 'string' ? h.zone_basis_text : '—');
  setText($('health-ts'), h && h.ts ? `as of ${timeText(h.ts)}` : 'no assessment yet');
}

/** A zone for people: the standard's meaning when its limits may alarm (confirmed ISO 20816-3 or the
 * asset's custom limits), else marked as information only (applicability not confirmed). */
function zoneText(zone, basis) {
  if (basis === 'information') return `zone ${zone} (information only)`;
  return ISO_ZONE_TEXT[zone] || zone;
}

// ------------------------------------------------------------------------------------------------
// Status cards
// ------------------------------------------------------------------------------------------------
function statusCard(testid, signal, label, target) {
  return el('div', { class: 'status-card', 'data-testid': testid, 'data-signal': signal },
    el('div', { class: 'label', text: label }),
    el('div', { class: 'value', 'data-role': 'value', text: '—' }),
    el('div', { class: 'target', 'data-role': 'target', text: target }),
    el('div', { class: 'zscore', 'data-role': 'z' }));
}

export function buildStatusCards() {
  const cards = SIGNALS.map((s) => statusCard(`status-${s.base}`, s.base, s.label, 'baseline —'));
  cards.push(statusCard('status-velocity', 'velocity', 'Velocity (RMS)', 'ISO 20816 zone —'));
  $('status-cards').replaceChildren(...cards);
}

/** One signal's card: latest value, baseline target, and the deviation in σ. */
function renderSignalCard(s, r, b) {
  const card = document.querySelector(`#status-cards [data-signal="${s.base}"]`);
  if (!card) return;
  const v = r ? numOrNull(r[s.key]) : null;
  setText(card.querySelector('[data-role="value"]'), v == null ? '—' : `${fmt(v, s.digits)}${s.unit ? ' ' + s.unit : ''}`);
  setText(card.querySelector('[data-role="target"]'), b ? `target ${fmt(b.mean, s.digits)}${s.unit} ±${fmt(b.std, s.digits)}${s.unit}` : 'baseline — (not calibrated)');
  let cls = 'status-card';
  let zText = '';
  if (v != null && b && b.std > 0) {
    const z = (v - b.mean) / b.std;
    const az = Math.abs(z);
    cls += az < 2 ? ' dev-ok' : az < 3 ? ' dev-warn' : ' dev-bad';
    zText = `${z >= 0 ? '+' : ''}${z.toFixed(1)}σ from baseline`;
  }
  if (card.className !== cls) card.className = cls;
  setText(card.querySelector('[data-role="z"]'), zText);
}

function renderVelocityCard(h) {
  const card = document.querySelector('#status-cards [data-signal="velocity"]');
  const vel = h ? numOrNull(h.velocity_rms_mm_s) : null;
  const zone = h && typeof h.iso_zone === 'string' ? h.iso_zone : null;
  setText(card.querySelector('[data-role="value"]'), vel == null ? '—' : `${fmt(vel, 2)} mm/s`);
  const basis = h ? h.zone_basis : null;
  const label = { custom: 'Custom-limit zone', information: 'Zone (information only)' }[basis] || 'ISO 20816 zone';
  setText(card.querySelector('[data-role="target"]'), `${label} ${zone || '—'}`);
  // An information-only zone is not judged: no warning colours.
  const zcls = basis === 'information' ? '' : ({ A: ' dev-ok', B: ' dev-ok', C: ' dev-warn', D: ' dev-bad' }[zone] || '');
  if (card.className !== `status-card${zcls}`) card.className = `status-card${zcls}`;
}

/** Cards for the latest reading r, baselines via baselineOf(base), velocity from health h. */
export function renderCards(r, h, baselineOf) {
  setText($('reading-ts'), r ? `latest reading ${timeText(r.ts)}` : 'no readings in this window');
  for (const s of SIGNALS) renderSignalCard(s, r, baselineOf(s.base));
  renderVelocityCard(h);
}

// ------------------------------------------------------------------------------------------------
// Insights
// ------------------------------------------------------------------------------------------------
const SEVERITY_ORDER = { critical: 0, warning: 1, info: 2 };

export function renderInsights(h) {
  const box = $('insights');
  const items = h && Array.isArray(h.insights) ? h.insights.filter((x) => x && typeof x.text === 'string') : [];
  const key = h ? JSON.stringify(items) : 'none';
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  if (!h) {
    box.replaceChildren(el('p', { class: 'list-empty', 'data-testid': 'insights-empty', text: 'No health assessment yet — calibrate the asset on healthy data first.' }));
    return;
  }
  if (!items.length) {
    box.replaceChildren(el('p', { class: 'list-empty ok', 'data-testid': 'insights-empty', text: '✓ No anomalies detected — signals match the healthy baseline.' }));
    return;
  }
  items.sort((a, b) => (SEVERITY_ORDER[a.severity] ?? 3) - (SEVERITY_ORDER[b.severity] ?? 3));
  box.replaceChildren(el('ul', { class: 'list' }, ...items.map((it) => el('li', { class: `sev-${it.severity}`, 'data-testid': 'insight-item', 'data-severity': it.severity },
    el('div', { text: it.text }),
    el('div', { class: 'meta', text: [it.signal, it.severity].filter(Boolean).join(' · ') })))));
}
