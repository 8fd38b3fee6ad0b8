/* Report downloads on the asset view: GET /api/v1/reports/{executive|industrial|excel}?asset_id=&from=&to=
 * with the period picker's UTC times (both empty: the last 24 h of the asset's data, chosen by the server). */
import { API, detailOf } from './api.js';
import { $, el, setStatus } from './dom.js';
import { enc } from './format.js';
import { app } from './state.js';

const REPORT_NAMES = { executive: 'Executive report', industrial: 'Industrial report', excel: 'Excel workbook' };

async function errorDetail(res) {
  try { return detailOf(await res.json()); } catch { return ''; /* not JSON */ }
}

/** Save a fetched file under the name from Content-Disposition (else the fallback); returns the name. */
async function saveDownload(res, fallbackName) {
  const blob = await res.blob();
  const cd = res.headers.get('Content-Disposition') || '';
  const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(cd);
  const filename = m ? decodeURIComponent(m[1]) : fallbackName;
  const url = URL.createObjectURL(blob);
  const a = el('a', { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return filename;
}

/** A datetime-local value ("2026-03-01T12:00" or with seconds) read as UTC, ISO-8601 with Z; '' if empty. */
export function utcParam(value) {
  if (!value) return '';
  return value.length === 16 ? `${value}:00Z` : `${value}Z`;
}

/** The report URL of the current asset and picker period. */
function reportUrl(kind, assetId) {
  const params = [`asset_id=${enc(assetId)}`];
  const from = utcParam($('report-from').value);
  const to = utcParam($('report-to').value);
  if (from) params.push(`from=${enc(from)}`);
  if (to) params.push(`to=${enc(to)}`);
  return `${API}/reports/${kind}?${params.join('&')}`;
}

function periodText(res) {
  const from = res.headers.get('X-Report-From');
  const to = res.headers.get('X-Report-To');
  const short = (iso) => iso.replace('T', ' ').replace(/(\.\d+)?\+00:00$/, '');
  return from && to ? `, ${short(from)} – ${short(to)} UTC` : '';
}

async function downloadReport(kind, button) {
  const view = app.view;
  if (!view) return;
  const status = $('report-status');
  const name = REPORT_NAMES[kind] || kind;
  setStatus(status, `Preparing ${name.toLowerCase()}…`);
  button.disabled = true;
  try {
    const res = await fetch(reportUrl(kind, view.id));
    if (!res.ok) {
      const detail = await errorDetail(res);
      setStatus(status, `${name} failed: ${detail || `HTTP ${res.status}`}`, 'error');
      return;
    }
    const filename = await saveDownload(res, `${view.id}_${kind}`);
    setStatus(status, `${name} downloaded (${filename}${periodText(res)}).`, 'success');
  } catch {
    setStatus(status, `${name} failed: gateway unreachable`, 'error');
  } finally {
    button.disabled = false;
  }
}

export function wireReports() {
  document.querySelectorAll('[data-report]').forEach((b) => b.addEventListener('click', () => downloadReport(b.dataset.report, b)));
}
