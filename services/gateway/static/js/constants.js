/* What the dashboard shows and how much of it it keeps. */

export const MAX_POINTS = 5000;          // readings kept per series, and scores kept per model
export const CHART_INTERVAL_MS = 250;    // charts redraw at most this often
export const LAG_SAMPLES = 5000;         // stream-lag samples kept in window.__rw

export const MODELS = ['legacy', 'batch', 'autoencoder'];
export const MODEL_COLORS = { legacy: '#58a6ff', batch: '#d2a8ff', autoencoder: '#56d4dd' };

export const SIGNALS = [
  { key: 'voltage_v', base: 'voltage', label: 'Voltage', unit: 'V', digits: 1, color: '#58a6ff' },
  { key: 'current_a', base: 'current', label: 'Current', unit: 'A', digits: 2, color: '#d2a8ff' },
  { key: 'power_factor', base: 'power_factor', label: 'Power factor', unit: '', digits: 3, color: '#56d4dd' },
  { key: 'vibration_g', base: 'vibration', label: 'Vibration', unit: 'g', digits: 3, color: '#e3b341' },
];

export const ISO_ZONE_TEXT = {  // ISO 20816 evaluation zones
  A: 'zone A (as new)',
  B: 'zone B (long-term OK)',
  C: 'zone C (limited operation)',
  D: 'zone D (damage risk)',
};

const RISK = {
  LOW: { cls: 'risk-low', text: 'Low' },
  MODERATE: { cls: 'risk-moderate', text: 'Moderate' },
  HIGH: { cls: 'risk-high', text: 'High' },
  CRITICAL: { cls: 'risk-critical', text: 'Critical' },
};

/** Risk level of a health document: {level, cls, text}; level null when unknown. */
export function riskOf(health) {
  const level = health && typeof health.risk_level === 'string' ? health.risk_level : null;
  return level && RISK[level] ? { level, ...RISK[level] } : { level: null, cls: 'risk-none', text: '—' };
}
