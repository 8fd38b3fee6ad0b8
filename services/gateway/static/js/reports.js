/* Report downloads (executive PDF, technical PDF, Excel workbook) on the asset view. */
import { API, detailOf } from './api.js';
import { $, el, setStatus } from './dom.js';
import { enc } from './format.js';
import { app } from './state.js';

const REPORT_NAMES = { 'executive.pdf': 'Executive report', 'technical.pdf': 'Technical report', 'report.xlsx': 'Excel workbook' };

async function errorDetail(res) {
  try { return detailOf(await res.json()); } catch { return ''; /* not JSON */ }
}

/** Save a fetched file under the name from Content-Disposition (else <asset>-<file>); returns the name. */
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

async function downloadReport(file, button) {
  const view = app.view;
  if (!view) return;
  const status = $('report-status');
  const name = REPORT_NAMES[file] || file;
  setStatus(status, `Preparing ${name.toLowerCase()}…`);
  button.disabled = true;
  try {
    const res = await fetch(`${API}/reports/${enc(view.id)}/${file}`);
    if (res.status === 404 || res.status === 501) {
      const detail = await errorDetail(res);
      setStatus(status, `${name}: not available yet${detail && !/^not found$/i.test(detail) ? ` (${detail})` : ''}.`);
      return;
    }
    if (!res.ok) {
      const detail = await errorDetail(res);
      setStatus(status, `${name} failed: ${detail || `HTTP ${res.status}`}`, 'error');
      return;
    }
    const filename = await saveDownload(res, `${view.id}-${file}`);
    setStatus(status, `${name} downloaded (${filename}).`, 'success');
  } catch {
    setStatus(status, `${name} failed: gateway unreachable`, 'error');
  } finally {
    button.disabled = false;
  }
}

export function wireReports() {
  document.querySelectorAll('[data-report]').forEach((b) => b.addEventListener('click', () => downloadReport(b.dataset.report, b)));
}
