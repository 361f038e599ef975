// Queues and jobs: counts per status per queue with a throughput sparkline, pause/resume,
// bulk retry of dead jobs and purges; the job list (filter by queue, status, name; cursor
// paging); running jobs with their workers and leases; schedules; and one job's detail.
// Everything updates live from /ws/jobs (no polling).

import { get, post, del, live } from './api.js';
import { h, badge, ago, when, num, attempt, failure, liveDot, throttle, toast, progressBar, turns } from './dom.js';

const STATUSES = ['pending', 'scheduled', 'running', 'failed', 'dead', 'completed', 'cancelled'];
const RETRYABLE = ['failed', 'dead', 'cancelled'];
const CANCELLABLE = ['pending', 'scheduled', 'running', 'failed'];

/** Samples of completed_last_minute per queue, for the sparklines (kept across visits). */
const samplesByQueue = new Map();

function sparkline(values) {
  const w = 90, hgt = 22;
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('width', w);
  svg.setAttribute('height', hgt);
  svg.setAttribute('viewBox', `0 0 ${w} ${hgt}`);
  if (values.length > 1) {
    const max = Math.max(1, ...values);
    const pts = values.map((v, i) => `${(i / (values.length - 1)) * w},${hgt - 2 - (v / max) * (hgt - 4)}`).join(' ');
    const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
    line.setAttribute('points', pts);
    line.setAttribute('fill', 'none');
    line.setAttribute('stroke', '#ea580c');
    line.setAttribute('stroke-width', '1.5');
    svg.append(line);
  }
  return svg;
}

function queueRow(q, refresh) {
  const samples = samplesByQueue.get(q.name) || [];
  samples.push(q.completed_last_minute);
  if (samples.length > 30) samples.shift();
  samplesByQueue.set(q.name, samples);
  const c = q.counts || {};
  const bulk = async (label, fn) => {
    if (!confirm(label + ` in queue "${q.name}"?`)) return;
    let total = 0;
    for (;;) {
      const r = await attempt(fn);
      if (!r) break;
      total += r.count;
      if (!r.more) break;
    }
    toast(`${label}: ${total} job(s)`);
    refresh();
  };
  return h('tr', { 'data-queue': q.name },
    h('td', {}, h('a', { href: '#/queues?queue=' + encodeURIComponent(q.name) }, q.name), ' ', q.paused ? badge('paused') : ''),
    STATUSES.map((s) => h('td', { class: 'num', 'data-count': s }, num(c[s] || 0))),
    h('td', { class: 'num' }, num(q.completed_last_minute)),
    h('td', { class: 'hide-narrow' }, sparkline(samples)),
    h('td', { class: 'num' }, q.oldest_waiting_seconds == null ? '–' : q.oldest_waiting_seconds.toFixed(1) + ' s'),
    h('td', { class: 'act' },
      h('div', { class: 'row' },
        h('button', { type: 'button', onclick: () => attempt(() => post(`/api/queues/${encodeURIComponent(q.name)}/${q.paused ? 'resume' : 'pause'}`), q.paused ? 'Resumed' : 'Paused').then(refresh) }, q.paused ? 'Resume' : 'Pause'),
        (c.dead || 0) > 0 ? h('button', { type: 'button', 'data-action': 'retry-dead', onclick: () => bulk('Retry dead jobs', () => post(`/api/queues/${encodeURIComponent(q.name)}/retry_dead`)) }, 'Retry dead') : '',
        (c.completed || 0) > 0 ? h('button', { type: 'button', class: 'danger', onclick: () => bulk('Purge completed jobs', () => del(`/api/queues/${encodeURIComponent(q.name)}/jobs?status=completed`)) }, 'Purge completed') : '',
        (c.dead || 0) > 0 ? h('button', { type: 'button', class: 'danger', onclick: () => bulk('Purge dead jobs', () => del(`/api/queues/${encodeURIComponent(q.name)}/jobs?status=dead`)) }, 'Purge dead') : '')));
}

/** The action buttons of one job (hidden for read-only keys). */
function jobActions(j, after) {
  return h('span', { class: 'row act' },
    RETRYABLE.includes(j.status) ? h('button', { type: 'button', 'data-action': 'retry', onclick: () => attempt(() => post(`/api/jobs/${encodeURIComponent(j.id)}/retry`), 'Retried').then(after) }, 'Retry') : '',
    CANCELLABLE.includes(j.status) ? h('button', { type: 'button', class: 'danger', 'data-action': 'cancel', onclick: () => attempt(() => del(`/api/jobs/${encodeURIComponent(j.id)}`), 'Cancel requested').then(after) }, 'Cancel') : '');
}

/** A job-list row from a Job or a JobEvent (which carries the same basic fields). */
function jobRow(j, after) {
  const err = j.error || (j.errors && j.errors.length ? j.errors[j.errors.length - 1].error : '');
  const when = j.at || j.finished_at || j.started_at || j.created_at;
  return h('tr', { 'data-job': j.id, 'data-status': j.status },
    h('td', { class: 'mono' }, h('a', { href: '#/job/' + encodeURIComponent(j.id) }, j.id)),
    h('td', {}, j.queue), h('td', {}, j.name), h('td', {}, badge(j.status)),
    h('td', { class: 'num' }, `${j.attempts}/${j.max_attempts}`),
    h('td', { class: 'hide-narrow', title: when || '' }, ago(when)),
    h('td', { class: 'hide-narrow error' }, err ? String(err).slice(0, 120) : ''),
    h('td', {}, jobActions(j, after)));
}

async function queuesPage(root, _arg, params) {
  const filter = { queue: params.get('queue') || '', status: params.get('status') || '', name: params.get('name') || '' };
  const dot = liveDot();
  const queuesBody = h('tbody');
  const jobsBody = h('tbody');
  const runningBody = h('tbody');
  const schedBody = h('tbody');
  const more = h('button', { type: 'button', class: 'hidden' }, 'Next page');
  let cursor = null;

  const [queuesTurn, jobsTurn, runningTurn] = [turns(), turns(), turns()];
  const refreshQueues = async () => {
    const current = queuesTurn();
    try {
      const qs = await get('/api/queues');
      if (!current()) return;
      queuesBody.replaceChildren(...(qs.length ? qs.map((q) => queueRow(q, refreshAll)) : [h('tr', {}, h('td', { colspan: 13, class: 'empty' }, 'No queues yet: enqueue a job with POST /api/jobs.'))]));
      const sel = root.querySelector('#f-queue');
      for (const q of qs) if (![...sel.options].some((o) => o.value === q.name)) sel.append(h('option', { value: q.name }, q.name));
    } catch (e) { queuesBody.replaceChildren(h('tr', {}, h('td', { colspan: 13 }, failure(e)))); }
  };
  const listUrl = (c) => {
    const q = new URLSearchParams({ limit: '50' });
    for (const k of ['queue', 'status', 'name']) if (filter[k]) q.set(k, filter[k]);
    if (c) q.set('cursor', c);
    return '/api/jobs?' + q;
  };
  const loadJobs = async (append) => {
    const current = jobsTurn();
    try {
      const page = await get(listUrl(append ? cursor : null));
      if (!current()) return;
      const rows = page.jobs.map((j) => jobRow(j, refreshAll));
      if (append) jobsBody.append(...rows);
      else jobsBody.replaceChildren(...(rows.length ? rows : [h('tr', { class: 'none' }, h('td', { colspan: 8, class: 'empty' }, 'No jobs match.'))]));
      cursor = page.next_cursor || null;
      more.classList.toggle('hidden', !cursor);
    } catch (e) { jobsBody.replaceChildren(h('tr', {}, h('td', { colspan: 8 }, failure(e)))); }
  };
  const loadRunning = async () => {
    const current = runningTurn();
    try {
      const page = await get('/api/jobs?status=running&limit=20' + (filter.queue ? '&queue=' + encodeURIComponent(filter.queue) : ''));
      if (!current()) return;
      runningBody.replaceChildren(...(page.jobs.length ? page.jobs.map((j) => h('tr', {},
        h('td', { class: 'mono' }, h('a', { href: '#/job/' + encodeURIComponent(j.id) }, j.id)), h('td', {}, j.queue), h('td', {}, j.name),
        h('td', {}, j.worker_id || ''), h('td', {}, ago(j.started_at)), h('td', {}, j.lease_until ? ago(j.lease_until) : ''))) : [h('tr', {}, h('td', { colspan: 6, class: 'empty' }, 'No job is running.'))]));
    } catch (e) { runningBody.replaceChildren(h('tr', {}, h('td', { colspan: 6 }, failure(e)))); }
  };
  const loadSchedules = async () => {
    try {
      const ss = await get('/api/schedules');
      schedBody.replaceChildren(...(ss.length ? ss.map((s) => h('tr', {},
        h('td', {}, s.name), h('td', { class: 'mono' }, s.cron), h('td', {}, s.timezone), h('td', {}, `${s.job.name} → ${s.job.queue || 'default'}`),
        h('td', { title: s.next_run || '' }, s.next_run ? when(s.next_run) : '–'),
        h('td', {}, s.last_job_id ? h('a', { href: '#/job/' + encodeURIComponent(s.last_job_id) }, ago(s.last_run)) : '–'))) : [h('tr', {}, h('td', { colspan: 6, class: 'empty' }, 'No schedules.'))]));
    } catch (e) { schedBody.replaceChildren(h('tr', {}, h('td', { colspan: 6 }, failure(e)))); }
  };
  const refreshAll = () => { refreshQueues(); loadJobs(false); loadRunning(); };
  const throttledCounts = throttle(() => { refreshQueues(); loadRunning(); }, 1000);

  const matches = (ev) => (!filter.queue || ev.queue === filter.queue) && (!filter.status || ev.status === filter.status) && (!filter.name || ev.name === filter.name);
  const onEvent = (event, data) => {
    throttledCounts();
    if (event === 'resync') { loadJobs(false); return; }
    const row = jobsBody.querySelector(`tr[data-job="${CSS.escape(data.id)}"]`);
    const fresh = jobRow(data, refreshAll);
    fresh.classList.add('fresh');
    if (row) {
      if (matches(data)) row.replaceWith(fresh); else row.remove();
    } else if (matches(data)) {
      const none = jobsBody.querySelector('tr.none');
      if (none) none.remove();
      jobsBody.prepend(fresh);
    }
  };

  const setFilter = () => {
    const q = new URLSearchParams();
    for (const k of ['queue', 'status', 'name']) if (filter[k]) q.set(k, filter[k]);
    history.replaceState(null, '', '#/queues' + (q.toString() ? '?' + q : ''));
  };
  const form = h('form', { class: 'row', onsubmit: (e) => { e.preventDefault(); filter.name = form.querySelector('#f-name').value.trim(); setFilter(); loadJobs(false); } },
    h('label', {}, 'Queue', h('select', { id: 'f-queue', onchange: (e) => { filter.queue = e.target.value; setFilter(); loadJobs(false); loadRunning(); } },
      h('option', { value: '' }, 'all queues'), filter.queue ? h('option', { value: filter.queue }, filter.queue) : '')),
    h('label', {}, 'Status', h('select', { id: 'f-status', onchange: (e) => { filter.status = e.target.value; setFilter(); loadJobs(false); } },
      h('option', { value: '' }, 'any status'), STATUSES.map((s) => h('option', { value: s }, s)))),
    h('label', {}, 'Name', h('input', { id: 'f-name', value: filter.name, placeholder: 'job name' })),
    h('button', { type: 'submit' }, 'Filter'));
  form.querySelector('#f-queue').value = filter.queue;
  form.querySelector('#f-status').value = filter.status;
  more.addEventListener('click', () => loadJobs(true));

  root.append(
    h('div', { class: 'row' }, h('h1', {}, 'Queues & jobs'), h('span', { class: 'spacer' }), dot),
    h('div', { class: 'card scroll' }, h('h2', {}, 'Queues'),
      h('table', { id: 'queues' }, h('thead', {}, h('tr', {}, h('th', {}, 'Queue'), STATUSES.map((s) => h('th', { class: 'num' }, s)),
        h('th', { class: 'num' }, 'done/min'), h('th', { class: 'hide-narrow' }, 'throughput'), h('th', { class: 'num' }, 'oldest wait'), h('th', { class: 'act' }, ''))), queuesBody)),
    h('div', { class: 'card scroll' }, h('h2', {}, 'Jobs'), form,
      h('table', { id: 'jobs' }, h('thead', {}, h('tr', {}, ['Id', 'Queue', 'Name', 'Status', 'Attempts'].map((t) => h('th', {}, t)),
        h('th', { class: 'hide-narrow' }, 'Updated'), h('th', { class: 'hide-narrow' }, 'Last error'), h('th', {}, ''))), jobsBody), more),
    h('div', { class: 'cols' },
      h('div', { class: 'card scroll' }, h('h2', {}, 'Running now (workers and leases)'),
        h('table', {}, h('thead', {}, h('tr', {}, ['Id', 'Queue', 'Name', 'Worker', 'Started', 'Lease ends'].map((t) => h('th', {}, t)))), runningBody)),
      h('div', { class: 'card scroll' }, h('h2', {}, 'Schedules'),
        h('table', {}, h('thead', {}, h('tr', {}, ['Name', 'Cron', 'Zone', 'Job', 'Next run', 'Last run'].map((t) => h('th', {}, t)))), schedBody))));

  await Promise.all([refreshQueues(), loadJobs(false), loadRunning(), loadSchedules()]);
  // What changed between the first load and the stream's (re)connection is read again.
  const stream = live('/ws/jobs', {}, { onEvent, onState: dot.set, onOpen: () => { throttledCounts(); loadJobs(false); } });
  return () => stream.close();
}

async function jobPage(root, id) {
  const box = h('div');
  const dot = liveDot();
  root.append(h('div', { class: 'row' }, h('a', { href: '#/queues' }, '← Queues'), h('span', { class: 'spacer' }), dot), box);
  let stream = null;
  const load = async () => {
    let j;
    try { j = await get('/api/jobs/' + encodeURIComponent(id)); } catch (e) { box.replaceChildren(failure(e)); return null; }
    const kv = (k, v) => [h('dt', {}, k), h('dd', {}, v === undefined || v === null || v === '' ? '–' : v)];
    const progress = h('div');
    if (j.progress_id) {
      get('/api/progress/' + encodeURIComponent(j.progress_id)).then((p) => progress.replaceChildren(progressBar(p.overall),
        ` ${p.overall.toFixed(0)} %${p.stage ? ' · ' + p.stage : ''}`)).catch(() => {});
    }
    box.replaceChildren(
      h('div', { class: 'card' },
        h('div', { class: 'row' }, h('h1', { class: 'mono' }, j.id), badge(j.status), h('span', { class: 'spacer' }), jobActions(j, load)),
        h('dl', { class: 'kv' },
          kv('Name', j.name), kv('Queue', h('a', { href: '#/queues?queue=' + encodeURIComponent(j.queue) }, j.queue)), kv('Priority', j.priority),
          kv('Attempts', `${j.attempts} of ${j.max_attempts}`), kv('Run at', when(j.run_at)), kv('Created', when(j.created_at)), kv('Started', when(j.started_at)),
          kv('Finished', when(j.finished_at)), kv('Worker', j.worker_id), kv('Lease until', when(j.lease_until)), kv('Reason', j.reason),
          kv('Depends on', j.depends_on && j.depends_on.length ? j.depends_on.map((d) => h('a', { href: '#/job/' + encodeURIComponent(d), class: 'mono' }, d, ' ')) : ''),
          kv('Progress', j.progress_id ? progress : ''))),
      h('div', { class: 'cols' },
        h('div', { class: 'card' }, h('h2', {}, 'Payload'), h('pre', { class: 'json' }, JSON.stringify(j.payload, null, 2))),
        h('div', { class: 'card' }, h('h2', {}, 'Result'), j.result === undefined || j.result === null ? h('div', { class: 'empty' }, 'No result yet.') : h('pre', { class: 'json' }, JSON.stringify(j.result, null, 2)))),
      h('div', { class: 'card scroll' }, h('h2', {}, 'Errors'),
        j.errors && j.errors.length ? h('table', { id: 'errors' }, h('thead', {}, h('tr', {}, h('th', { class: 'num' }, 'Attempt'), h('th', {}, 'When'), h('th', {}, 'Error'))),
          h('tbody', {}, j.errors.map((e) => h('tr', {}, h('td', { class: 'num' }, e.attempt), h('td', { title: e.at }, when(e.at)), h('td', { class: 'error' }, e.error)))))
          : h('div', { class: 'empty' }, 'No errors.')));
    return j;
  };
  const j = await load();
  if (j) {
    const reload = throttle(load, 500);
    stream = live('/ws/jobs', { queue: j.queue }, { onEvent: (ev, d) => { if (ev === 'resync' || d.id === id) reload(); }, onState: dot.set, onOpen: reload });
  }
  return () => stream && stream.close();
}

export const jobPages = { queues: queuesPage, job: jobPage };
