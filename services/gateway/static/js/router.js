/* Hash routing: #/ is the fleet, #/asset/<id> one asset. */
import { AssetView } from './asset.js';
import { $, el } from './dom.js';
import { app, dirty, schedule } from './state.js';

function parseRoute() {
  const m = /^#\/asset\/([^/?#]+)/.exec(location.hash);
  if (!m) return { name: 'fleet' };
  let id;
  try { id = decodeURIComponent(m[1]); } catch { id = m[1]; }
  return { name: 'asset', id };
}

function showFleet() {
  $('crumbs').replaceChildren('Fleet');
  document.title = 'Rotorwatch — fleet';
  dirty.fleetStructure = true;
  $('fleet-title').focus({ preventScroll: true });
}

function showAsset(id) {
  $('crumbs').replaceChildren(el('a', { href: '#/', text: 'Fleet' }), ` / ${id}`);
  document.title = `Rotorwatch — ${id}`;
  app.view = new AssetView(id);
  app.view.mount();
  $('asset-title').focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

/** Show the view for location.hash (no-op if it is already shown). */
export function applyRoute() {
  const next = parseRoute();
  const { route } = app;
  if (next.name === route.name && next.id === route.id && (next.name === 'fleet' || app.view)) return;
  app.route = next;
  if (app.view) { app.view.destroy(); app.view = null; }
  const fleet = next.name === 'fleet';
  $('fleet-view').hidden = !fleet;
  $('asset-view').hidden = fleet;
  if (fleet) showFleet();
  else showAsset(next.id);
  schedule();
}
