// The pages other than queues and jobs: overview, progress, notifications, cache, search
// and exports. Each fills `root` and returns a cleanup closing its streams. Live parts
// follow the existing event streams (/ws/jobs, /ws/progress, /ws/notifications); nothing
// polls on a timer.

import { get, post, del, raw, live } from './api.js';
import { h, badge, ago, num, bytes, attempt, failure, liveDot, throttle, toast, progressBar, turns } from './dom.js';

const stat = (k, v, id, small) => h('div', { class: small ? 'stat small' : 'stat', id }, h('div', { class: 'k' }, k), h('div', { class: 'v' }, v));
const table = (heads, body, id) => h('table', { id }, h('thead', {}, h('tr', {}, heads.map((t) => h('th', { class: t.startsWith('#') ? 'num' : '' }, t.replace(/^#/, ''))))), body);
const emptyRow = (cols, text) => h('tr', { class: 'none' }, h('td', { colspan: cols, class: 'empty' }, text));

// ---------------------------------------------------------------- overview

async function overview(root) {
  const dot = liveDot();
  const stats = h('div', { class: 'grid' });
  const ready = h('tbody');
  root.append(
    h('div', { class: 'row' }, h('h1', {}, 'Overview'), h('span', { class: 'spacer' }), dot,
      h('button', { type: 'button', onclick: () => { loadReady(); loadStats(); } }, 'Refresh')),
    stats,
    h('div', { class: 'card scroll', id: 'readiness' }, h('h2', {}, 'Modules'), table(['Module', 'State', 'Reason', 'Details'], ready)));

  let queues = [], cache = null, search = null, rate = null;
  const drawStats = () => {
    const sum = (s) => queues.reduce((n, q) => n + ((q.counts || {})[s] || 0), 0);
    const perMin = queues.reduce((n, q) => n + q.completed_last_minute, 0);
    stats.replaceChildren(
      stat('Jobs done / s (now)', rate === null ? '–' : num(rate), 'm-now'),
      stat('Jobs / s (last minute)', (perMin / 60).toFixed(2), 'm-rate'),
      stat('Waiting jobs', num(sum('pending') + sum('scheduled') + sum('failed')), 'm-waiting'),
      stat('Running jobs', num(sum('running')), 'm-running'),
      stat('Dead jobs', num(sum('dead')), 'm-dead'),
      stat('Cache hit rate', cache ? (cache.hit_rate * 100).toFixed(1) + ' %' : '–', 'm-cache'),
      stat('Cache entries', cache ? `${num(cache.entries)} · ${bytes(cache.bytes)}` : '–'),
      stat('Indexed documents', search ? num(search.documents) : '–', 'm-docs'),
      stat('Index chunks / vectors', search ? `${num(search.chunks)} / ${num(search.vectors)}` : '–'));
  };
  const turn = turns();
  const loadQueues = async () => {
    const current = turn();
    let qs = [];
    try { qs = await get('/api/queues'); } catch { /* the module may be off */ }
    if (current()) { queues = qs; drawStats(); }
  };
  const loadStats = async () => {
    [cache, search] = await Promise.all([get('/api/cache/stats').catch(() => null), get('/api/search/stats').catch(() => null)]);
    await loadQueues();
  };
  const loadReady = async () => {
    let r;
    // 503 (a module unavailable) carries the same report.
    try { r = await (await fetch('/readyz')).json(); } catch (e) { ready.replaceChildren(emptyRow(4, String(e))); return; }
    ready.replaceChildren(...Object.entries(r.modules).map(([name, m]) => h('tr', { 'data-module': name },
      h('td', {}, name), h('td', {}, badge(m.status)), h('td', {}, m.reason || ''),
      h('td', { class: 'mono muted' }, m.details ? Object.entries(m.details).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' · ') : ''))));
  };
  await Promise.all([loadReady(), loadStats()]);
  // The job event stream in activity mode: one summary a second while jobs move (never
  // one frame per job), which updates the rate and triggers one refresh of the counts.
  const EVERY_MS = 1000;
  const refresh = throttle(loadQueues, EVERY_MS);
  // No summary for a while means nothing moved: the rate drops to 0 (a local timer; no request).
  let idle = null;
  const onEvent = (ev, d) => {
    if (ev === 'jobs.activity') {
      const done = Object.values(d.queues).reduce((n, steps) => n + (steps.completed || 0), 0);
      rate = Math.round(done * 1000 / EVERY_MS);
      clearTimeout(idle);
      idle = setTimeout(() => { rate = 0; drawStats(); }, 2.5 * EVERY_MS);
    }
    refresh();
  };
  const stream = live('/ws/jobs', { every_ms: EVERY_MS }, { onEvent, onState: dot.set, onOpen: refresh });
  return () => { clearTimeout(idle); stream.close(); };
}

// ---------------------------------------------------------------- progress

async function progress(root) {
  const dot = liveDot();
  const body = h('tbody');
  root.append(h('div', { class: 'row' }, h('h1', {}, 'Progress'), h('span', { class: 'spacer' }), dot),
    h('div', { class: 'card scroll' }, table(['Id', 'Status', 'Stage', 'Progress', '#Overall', 'ETA', 'Updated'], body, 'progress')));
  const rows = new Map();
  const draw = (p) => {
    let row = rows.get(p.id);
    if (!row) {
      row = { bar: progressBar(0), tr: null };
      row.tr = h('tr', { 'data-progress': p.id });
      rows.set(p.id, row);
      const none = body.querySelector('tr.none');
      if (none) none.remove();
      body.prepend(row.tr);
    }
    row.bar.set(p.overall);
    const stage = p.stages && p.stages.length ? `${p.stage || ''} (${p.stage_index + 1}/${p.stages.length})` : (p.stage || '');
    row.tr.replaceChildren(h('td', { class: 'mono' }, p.id), h('td', {}, badge(p.status)), h('td', {}, stage), h('td', {}, row.bar),
      h('td', { class: 'num', 'data-overall': '' }, p.overall.toFixed(1) + ' %'), h('td', {}, p.eta_seconds == null ? '' : p.eta_seconds + ' s'),
      h('td', { title: p.updated_at }, ago(p.updated_at)));
    if (p.error) row.tr.append(h('td', { class: 'error' }, p.error));
  };
  try {
    const [active, recent] = await Promise.all([get('/api/progress?status=processing&limit=200'), get('/api/progress?limit=200')]);
    const seen = new Set();
    for (const p of [...recent.items, ...active.items]) { if (!seen.has(p.id)) { seen.add(p.id); draw(p); } }
    if (!seen.size) body.append(emptyRow(7, 'Nothing tracked yet: create one with POST /api/progress.'));
  } catch (e) { body.replaceChildren(h('tr', {}, h('td', { colspan: 7 }, failure(e)))); }
  const stream = live('/ws/progress', {}, {
    onOpen: (send) => send({ action: 'subscribe', progress_id: '*' }),
    onEvent: (ev, data) => { if (ev.startsWith('progress.')) draw(data); },
    onState: dot.set,
  });
  return () => stream.close();
}

// ---------------------------------------------------------------- notifications

function emRuns(text) {
  // Search snippets mark matches with <em>…</em>; build them as elements, never as HTML.
  return String(text).split(/(<em>.*?<\/em>)/g).map((part) => (part.startsWith('<em>') ? h('em', {}, part.slice(4, -5)) : part));
}

async function notifications(root, _arg, params) {
  const user = params.get('user') || sessionStorage.getItem('hearth.user') || '';
  const dot = liveDot();
  const unread = h('span', { class: 'badge', id: 'unread' }, '–');
  const body = h('tbody');
  const userForm = h('form', { class: 'row', onsubmit: (e) => { e.preventDefault(); const u = userForm.querySelector('input').value.trim(); sessionStorage.setItem('hearth.user', u); location.hash = '#/notifications?user=' + encodeURIComponent(u); } },
    h('label', {}, 'User id', h('input', { value: user, required: true, placeholder: 'user id', id: 'n-user' })), h('button', { type: 'submit' }, 'Show feed'));
  const send = h('form', { class: 'row act', id: 'n-send', onsubmit: async (e) => {
    e.preventDefault();
    const f = new FormData(send);
    await attempt(() => post('/api/notifications', { type: f.get('type'), title: f.get('title'), message: f.get('message'), user_id: user }), 'Sent');
  } },
  h('label', {}, 'Type', h('select', { name: 'type' }, ['info', 'success', 'warning', 'error'].map((t) => h('option', { value: t }, t)))),
  h('label', {}, 'Title', h('input', { name: 'title', required: true, value: 'Test notification' })),
  h('label', {}, 'Message', h('input', { name: 'message', value: 'Sent from the hearth dashboard' })),
  h('button', { type: 'submit' }, 'Send test'));
  root.append(h('div', { class: 'row' }, h('h1', {}, 'Notifications'), h('span', { class: 'spacer' }), user ? dot : ''), h('div', { class: 'card' }, userForm));
  if (!user) { root.append(h('div', { class: 'card empty' }, 'Enter a user id to see their feed.')); return null; }
  root.append(h('div', { class: 'card' }, h('div', { class: 'row' }, h('h2', {}, `Feed of ${user}`), 'unread:', unread, h('span', { class: 'spacer' }),
    h('button', { type: 'button', class: 'act', onclick: () => attempt(() => post('/api/notifications/read_all', { user_id: user }), 'All read') }, 'Mark all read')), send),
  h('div', { class: 'card scroll' }, table(['Type', 'Title', 'Message', 'Created', 'Read', 'Deliveries', ''], body, 'feed')));

  const delivery = (ds) => Object.entries(ds || {}).map(([ch, d]) => h('div', {}, `${ch}: `, badge(d.state), d.attempts ? ` ${d.attempts} attempt(s)` : '', d.error ? h('span', { class: 'error' }, ' ' + d.error) : ''));
  const row = (n) => h('tr', { 'data-notification': n.id },
    h('td', {}, badge(n.type)), h('td', {}, n.title), h('td', {}, n.message), h('td', { title: n.created_at }, ago(n.created_at)),
    h('td', {}, n.read ? 'read' : h('strong', {}, 'unread')), h('td', { 'data-deliveries': '' }, delivery(n.deliveries)),
    h('td', {}, n.read ? '' : h('button', { type: 'button', class: 'act', onclick: () => attempt(() => post(`/api/notifications/${encodeURIComponent(n.id)}/read`)) }, 'Mark read')));
  const turn = turns();
  const load = async () => {
    const current = turn();
    try {
      const [items, c] = await Promise.all([get('/api/notifications?limit=50&user_id=' + encodeURIComponent(user)), get('/api/notifications/unread_count?user_id=' + encodeURIComponent(user))]);
      if (!current()) return;
      unread.textContent = c.unread_count;
      body.replaceChildren(...(items.length ? items.map(row) : [emptyRow(7, 'No notifications yet.')]));
    } catch (e) { body.replaceChildren(h('tr', {}, h('td', { colspan: 7 }, failure(e)))); }
  };
  await load();
  const reload = throttle(load, 500);
  const stream = live('/ws/notifications', { user_id: user }, {
    onState: dot.set,
    onOpen: reload,
    onEvent: (ev, d) => {
      if (d && d.unread_count !== undefined) unread.textContent = d.unread_count;
      if (ev === 'notification.created') {
        const none = body.querySelector('tr.none');
        if (none) none.remove();
        const tr = row(d.notification);
        tr.classList.add('fresh');
        body.prepend(tr);
      } else if (ev === 'notification.read' || ev === 'notification.deleted' || ev === 'notification.delivery' || ev === 'resync') {
        reload();
      }
    },
  });
  return () => stream.close();
}

// ---------------------------------------------------------------- cache

async function cache(root) {
  const statsBox = h('div');
  const out = h('div');
  const load = async () => {
    try {
      const s = await get('/api/cache/stats');
      const tr = (name, t) => h('tr', {}, h('td', {}, name), h('td', {}, t.enabled === false ? 'off' : ''), h('td', { class: 'num' }, num(t.hits)), h('td', { class: 'num' }, num(t.misses)),
        h('td', { class: 'num' }, (t.hit_rate * 100).toFixed(1) + ' %'), h('td', { class: 'num' }, num(t.entries)), h('td', { class: 'num' }, bytes(t.bytes)), h('td', { class: 'num' }, num(t.evictions)));
      statsBox.replaceChildren(table(['Tier', '', '#Hits', '#Misses', '#Hit rate', '#Entries', '#Bytes', '#Evictions'], h('tbody', {}, tr('all', s), tr('L1 (memory)', s.l1), tr('L2 (disk)', s.l2)), 'cache-stats'),
        h('p', { class: 'muted' }, `${num(s.sets)} sets · ${num(s.deletes)} deletes · ${num(s.expired)} expired`));
    } catch (e) { statsBox.replaceChildren(failure(e)); }
  };
  const lookup = h('form', { class: 'row', onsubmit: async (e) => {
    e.preventDefault();
    const key = lookup.querySelector('input').value;
    try {
      const r = await raw('/api/cache/' + encodeURIComponent(key));
      const ct = r.headers.get('content-type') || '';
      const text = ct.startsWith('text/') || ct.includes('json') ? (await r.text()).slice(0, 20000) : `(${bytes((await r.arrayBuffer()).byteLength)} of ${ct})`;
      out.replaceChildren(h('dl', { class: 'kv' }, h('dt', {}, 'Tier'), h('dd', {}, r.headers.get('x-cache') || ''), h('dt', {}, 'Type'), h('dd', {}, ct),
        h('dt', {}, 'Expires'), h('dd', {}, r.headers.get('x-cache-expires-at') || '')), h('pre', { class: 'json' }, text));
    } catch (err) { out.replaceChildren(failure(err)); }
    load();
  } }, h('label', {}, 'Key', h('input', { required: true, placeholder: 'user:42' })), h('button', { type: 'submit' }, 'Look up'));
  const byTag = h('form', { class: 'row', onsubmit: async (e) => {
    e.preventDefault();
    const tags = byTag.querySelector('input').value.split(',').map((t) => t.trim()).filter(Boolean);
    await attempt(() => post('/api/cache/invalidate', { tags }), (r) => `${r.invalidated} entries invalidated`);
    load();
  } }, h('label', {}, 'Tags (comma-separated)', h('input', { required: true, placeholder: 'users' })), h('button', { type: 'submit', class: 'danger' }, 'Invalidate'));
  const byPattern = h('form', { class: 'row', onsubmit: async (e) => {
    e.preventDefault();
    const p = byPattern.querySelector('input').value;
    await attempt(() => del('/api/cache?pattern=' + encodeURIComponent(p)), (r) => `${r.deleted} keys deleted`);
    load();
  } }, h('label', {}, 'Pattern', h('input', { required: true, placeholder: 'user:*' })), h('button', { type: 'submit', class: 'danger' }, 'Delete matching'));
  root.append(h('div', { class: 'row' }, h('h1', {}, 'Cache'), h('span', { class: 'spacer' }), h('button', { type: 'button', onclick: load }, 'Refresh')),
    h('div', { class: 'card scroll' }, h('h2', {}, 'Statistics'), statsBox),
    h('div', { class: 'card' }, h('h2', {}, 'Look up a key'), lookup, out),
    h('div', { class: 'cols act' }, h('div', { class: 'card' }, h('h2', {}, 'Invalidate by tag'), byTag), h('div', { class: 'card' }, h('h2', {}, 'Delete by pattern'), byPattern)));
  await load();
  return null;
}

// ---------------------------------------------------------------- search

async function search(root) {
  const statsBox = h('div', { class: 'grid' });
  const results = h('tbody');
  const ratioOut = h('span', {}, '0.5');
  const form = h('form', { class: 'row', id: 'search-form', onsubmit: async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const mode = f.get('mode');
    const req = { query: f.get('query'), mode, limit: Number(f.get('limit')) || 10, highlight: true };
    if (mode === 'hybrid') req.fusion = f.get('fusion') === 'weighted' ? { method: 'weighted', semantic_ratio: Number(f.get('ratio')) } : { method: 'rrf' };
    try {
      const rs = await post('/api/search', req);
      const sc = (v) => (v === null || v === undefined ? '–' : v.toFixed(4));
      results.replaceChildren(...(rs.length ? rs.map((r, i) => h('tr', { 'data-result': r.id },
        h('td', { class: 'num' }, i + 1), h('td', { class: 'mono' }, r.id), h('td', { class: 'num' }, sc(r.score)),
        h('td', { class: 'num', 'data-score': 'keyword' }, sc(r.scores.keyword)), h('td', { class: 'num', 'data-score': 'semantic' }, sc(r.scores.semantic)),
        h('td', {}, emRuns(r.content)), h('td', { class: 'mono muted hide-narrow' }, Object.keys(r.metadata || {}).length ? JSON.stringify(r.metadata) : ''))) : [emptyRow(7, 'No results.')]));
    } catch (err) { results.replaceChildren(h('tr', {}, h('td', { colspan: 7 }, failure(err)))); }
  } },
  h('label', {}, 'Query', h('input', { name: 'query', required: true, size: 32, placeholder: 'what to look for' })),
  h('label', {}, 'Mode', h('select', { name: 'mode' }, ['hybrid', 'keyword', 'semantic'].map((m) => h('option', { value: m }, m)))),
  h('label', {}, 'Fusion', h('select', { name: 'fusion' }, h('option', { value: 'rrf' }, 'RRF'), h('option', { value: 'weighted' }, 'weighted'))),
  h('label', {}, 'Semantic ratio', h('span', { class: 'row' }, h('input', { name: 'ratio', type: 'range', min: 0, max: 1, step: 0.05, value: 0.5, oninput: (e) => { ratioOut.textContent = e.target.value; } }), ratioOut)),
  h('label', {}, 'Limit', h('input', { name: 'limit', type: 'number', min: 1, max: 100, value: 10, size: 4 })),
  h('button', { type: 'submit' }, 'Search'));
  root.append(h('h1', {}, 'Search playground'), statsBox, h('div', { class: 'card' }, form),
    h('div', { class: 'card scroll' }, table(['#', 'Id', '#Score', '#Keyword', '#Semantic', 'Snippet', 'Metadata'], results, 'results')));
  results.append(emptyRow(7, 'Run a query to see results with their keyword and semantic scores.'));
  try {
    const s = await get('/api/search/stats');
    statsBox.replaceChildren(stat('Documents', num(s.documents)), stat('Chunks', num(s.chunks)), stat('Vectors', num(s.vectors)),
      stat('Semantic', s.semantic_ready ? 'ready' : 'off'), stat('Model', s.model || '–', undefined, true));
    if (!s.semantic_ready && s.semantic_unavailable_reason) statsBox.append(h('div', { class: 'stat muted' }, s.semantic_unavailable_reason));
  } catch (e) { statsBox.replaceChildren(failure(e)); }
  return null;
}

// ---------------------------------------------------------------- exports

async function exportsPage(root) {
  const dot = liveDot();
  const body = h('tbody');
  const download = async (x) => {
    try {
      const r = await raw(`/api/exports/${encodeURIComponent(x.id)}/download`);
      const url = URL.createObjectURL(await r.blob());
      const a = h('a', { href: url, download: x.filename || x.id });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (e) { toast(e.message, true); }
  };
  const turn = turns();
  const load = async () => {
    const current = turn();
    try {
      const xs = await get('/api/exports?limit=100');
      if (!current()) return;
      body.replaceChildren(...(xs.length ? xs.map((x) => h('tr', { 'data-export': x.id },
        h('td', { class: 'mono' }, x.id), h('td', {}, x.source_type + (x.source_id ? ' ' + x.source_id : '')), h('td', {}, x.format),
        h('td', {}, badge(x.status)), h('td', {}, progressBar(x.progress)), h('td', { class: 'num' }, x.size ? bytes(x.size) : ''),
        h('td', { title: x.created_at }, ago(x.created_at)), h('td', { class: 'error' }, x.error || ''),
        h('td', {}, x.status === 'completed' ? h('button', { type: 'button', onclick: () => download(x) }, 'Download') : ''))) : [emptyRow(9, 'No exports yet: create one with POST /api/exports.')]));
    } catch (e) { body.replaceChildren(h('tr', {}, h('td', { colspan: 9 }, failure(e)))); }
  };
  root.append(h('div', { class: 'row' }, h('h1', {}, 'Exports'), h('span', { class: 'spacer' }), dot),
    h('div', { class: 'card scroll' }, table(['Id', 'Source', 'Format', 'Status', 'Progress', '#Size', 'Created', 'Error', ''], body, 'exports')));
  await load();
  // Exports run as jobs named `export`: their steps refresh the list.
  const reload = throttle(load, 1000);
  const stream = live('/ws/jobs', {}, { onEvent: (ev, d) => { if (ev === 'resync' || d.name === 'export') reload(); }, onState: dot.set, onOpen: reload });
  return () => stream.close();
}

export const pages = { overview, progress, notifications, cache, search, exports: exportsPage };
