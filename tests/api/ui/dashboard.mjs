// Drives the dashboard in a real headless Chromium (Debian's, never a downloaded one)
// through playwright-core, against the hearth server started by tests/api/ui.rs:
// sign-in with a key, live job list, retry of a dead job, live progress, live
// notifications, search scores, read-only keys, and screenshots of every page.
//
// Environment: HEARTH_URL, HEARTH_ADMIN_KEY, HEARTH_READER_KEY, HEARTH_CHROMIUM,
// HEARTH_NODE_MODULES (where playwright-core is installed), HEARTH_SCREENSHOTS.
// Prints "ok <step>" per step; exits non-zero naming the step that failed.

import { createRequire } from 'node:module';

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} is not set`); return v; };
const require = createRequire(env('HEARTH_NODE_MODULES') + '/');
const { chromium } = require('playwright-core');

const base = env('HEARTH_URL');
const admin = env('HEARTH_ADMIN_KEY');
const reader = env('HEARTH_READER_KEY');
const shots = env('HEARTH_SCREENSHOTS');
const WAIT = { timeout: 30000 };

/** The API, as a program (not the browser) uses it. */
async function api(method, path, body, key = admin) {
  const headers = { Authorization: 'Bearer ' + key };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Enqueues a job that fails for good at its first attempt: a dead job with error `boom`. */
async function deadJob(queue) {
  const { job_id: id } = await api('POST', '/api/jobs', { name: 'flaky', queue, max_attempts: 1, priority: 9, payload: { why: 'test' } });
  const claimed = await api('POST', '/api/jobs/claim', { queues: [queue], names: ['flaky'], worker_id: 'ui-worker', max: 1 });
  if (!claimed.length || claimed[0].id !== id) throw new Error('claimed ' + JSON.stringify(claimed));
  await api('POST', `/api/jobs/${id}/fail`, { worker_id: 'ui-worker', error: 'boom' });
  return id;
}

const browser = await chromium.launch({ executablePath: env('HEARTH_CHROMIUM'), args: ['--no-sandbox', '--disable-dev-shm-usage'] });
const errors = [];

async function newPage(width = 1280) {
  const page = await browser.newPage({ viewport: { width, height: 800 } });
  page.on('pageerror', (e) => errors.push('page error: ' + e.message));
  page.on('console', (m) => {
    // Network answers (401 before sign-in, 503 of a disabled module) are the page's data,
    // not errors of its code.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push('console error: ' + m.text());
  });
  return page;
}

let page = await newPage();
async function step(name, fn) {
  try {
    await fn();
    console.log('ok', name);
  } catch (e) {
    await page.screenshot({ path: `${shots}/FAILED-${name.replace(/\W+/g, '-')}.png`, fullPage: true }).catch(() => {});
    throw new Error(`step "${name}" failed: ${e.message}`);
  }
}
/** Navigates within the page and waits until the new view is drawn. */
async function go(hash) {
  const before = await page.evaluate(() => document.body.dataset.render || '0');
  await page.evaluate((h) => { location.hash = h; }, hash);
  await page.waitForFunction((b) => (document.body.dataset.render || '0') !== b, before, WAIT);
}
const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
const liveOn = () => page.locator('#page .live.on').waitFor(WAIT);

try {
  await step('the sign-in box asks for a key', async () => {
    await page.goto(base + '/ui/');
    await page.locator('#login-key').waitFor(WAIT);
    await shot('0-sign-in');
  });

  await step('a bad key is refused, a good one opens the overview', async () => {
    await page.fill('#login-key', 'not-a-key');
    await page.click('#login-form button[type=submit]');
    await page.locator('#login-error:has-text("not accepted")').waitFor(WAIT);
    await page.fill('#login-key', admin);
    await page.click('#login-form button[type=submit]');
    await page.locator('#readiness tr[data-module="job_queue"]').waitFor(WAIT);
    await liveOn();
    const stored = await page.evaluate(() => sessionStorage.getItem('hearth.apiKey'));
    if (stored !== admin) throw new Error('the key is kept in sessionStorage');
    const cookies = await page.context().cookies();
    if (cookies.length) throw new Error('no cookies: ' + JSON.stringify(cookies));
    await shot('1-overview');
  });

  await step('the overview follows the job activity summaries live', async () => {
    const { job_id: id } = await api('POST', '/api/jobs', { name: 'ov-test', queue: 'ov', payload: {} });
    await page.locator('#m-waiting .v:has-text("1")').waitFor(WAIT);
    const claimed = await api('POST', '/api/jobs/claim', { queues: ['ov'], names: ['ov-test'], worker_id: 'ui-worker', max: 1 });
    if (!claimed.length || claimed[0].id !== id) throw new Error('claimed ' + JSON.stringify(claimed));
    await api('POST', `/api/jobs/${id}/complete`, { worker_id: 'ui-worker', result: null });
    await page.locator('#m-now .v:has-text("1")').waitFor(WAIT);
    await page.locator('#m-waiting .v:has-text("0")').waitFor(WAIT);
  });

  await step('a job enqueued over the API appears on the queues page without a reload', async () => {
    await go('#/queues?queue=ui');
    await liveOn();
    await page.evaluate(() => { window.notReloaded = true; });
    const { job_id: id } = await api('POST', '/api/jobs', { name: 'ui-test', queue: 'ui', payload: { n: 1 } });
    await page.locator(`#jobs tr[data-job="${id}"][data-status="pending"]`).waitFor(WAIT);
    await page.locator('#queues tr[data-queue="ui"] td[data-count="pending"]:has-text("1")').waitFor(WAIT);
    if (!(await page.evaluate(() => window.notReloaded))) throw new Error('the page reloaded');
  });

  await step('a dead job shows its error and Retry revives it', async () => {
    const id = await deadJob('ui');
    const row = page.locator(`#jobs tr[data-job="${id}"]`);
    await page.locator(`#jobs tr[data-job="${id}"][data-status="dead"]:has-text("boom")`).waitFor(WAIT);
    await shot('2-queues');
    await row.locator('button[data-action="retry"]').click();
    await page.locator(`#jobs tr[data-job="${id}"][data-status="pending"]`).waitFor(WAIT);
    const job = await api('GET', `/api/jobs/${id}`);
    if (job.status !== 'pending' || job.attempts !== 0) throw new Error('after retry: ' + JSON.stringify(job));
  });

  await step('a job detail shows attempts and errors', async () => {
    const id = await deadJob('ui-detail');
    await go('#/job/' + id);
    await page.locator('#errors td:has-text("boom")').waitFor(WAIT);
    await shot('3-job');
  });

  await step('a progress update moves the bar live', async () => {
    await api('POST', '/api/progress', { id: 'ui-progress', stages: ['download', 'transcode'] });
    await go('#/progress');
    await liveOn();
    await page.locator('#progress tr[data-progress="ui-progress"]').waitFor(WAIT);
    await api('PATCH', '/api/progress/ui-progress', { progress: 80 });
    await page.locator('#progress tr[data-progress="ui-progress"] td[data-overall]:has-text("40.0 %")').waitFor(WAIT);
    const now = await page.locator('#progress tr[data-progress="ui-progress"] .bar').getAttribute('aria-valuenow');
    if (now !== '40') throw new Error('bar at ' + now);
    await shot('4-progress');
  });

  await step('a notification appears in the feed live', async () => {
    await go('#/notifications?user=alice');
    await liveOn();
    await api('POST', '/api/notifications', { type: 'success', title: 'Export ready', message: 'Your file is ready', user_id: 'alice' });
    await page.locator('#feed tr:has-text("Export ready")').waitFor(WAIT);
    await page.locator('#unread:has-text("1")').waitFor(WAIT);
    await page.click('#n-send button[type=submit]');
    await page.locator('#feed tr:has-text("Test notification")').waitFor(WAIT);
    await shot('5-notifications');
  });

  await step('the cache page looks a key up', async () => {
    const r = await fetch(base + '/api/cache/greeting?tags=demo', { method: 'PUT', headers: { Authorization: 'Bearer ' + admin, 'Content-Type': 'text/plain' }, body: 'hello there' });
    if (!r.ok) throw new Error('cache put ' + r.status);
    await go('#/cache');
    await page.locator('#cache-stats').waitFor(WAIT);
    await page.fill('form:has(button:has-text("Look up")) input', 'greeting');
    await page.click('button:has-text("Look up")');
    await page.locator('pre:has-text("hello there")').waitFor(WAIT);
    await shot('6-cache');
  });

  await step('a search shows keyword and semantic scores', async () => {
    await api('POST', '/api/search/index', { id: 'doc-cats', content: 'Cats are small domesticated carnivorous mammals that purr.' });
    await api('POST', '/api/search/index', { id: 'doc-rust', content: 'Rust is a systems programming language focused on safety.' });
    const stats = await api('GET', '/api/search/stats');
    await go('#/search');
    if (!stats.semantic_ready) await page.selectOption('#search-form select[name=mode]', 'keyword');
    await page.fill('#search-form input[name=query]', 'cats purr');
    await page.click('#search-form button[type=submit]');
    const row = page.locator('#results tr[data-result="doc-cats"]');
    await row.waitFor(WAIT);
    const kw = await row.locator('td[data-score="keyword"]').textContent();
    const sem = await row.locator('td[data-score="semantic"]').textContent();
    if (!/^\d/.test(kw)) throw new Error('keyword score ' + kw);
    if (stats.semantic_ready && !/^-?\d/.test(sem)) throw new Error('semantic score ' + sem);
    await shot('7-search');
  });

  await step('the exports page lists an export', async () => {
    await api('POST', '/api/exports', { format: 'txt', source_type: 'document', source: { title: 'Notes', content: 'hello' } });
    await go('#/exports');
    await page.locator('#exports tr[data-export] .s-completed').first().waitFor(WAIT);
    await page.locator('#exports button:has-text("Download")').first().waitFor(WAIT);
    await shot('8-exports');
  });

  await step('a narrow window still shows the queues', async () => {
    await page.setViewportSize({ width: 420, height: 800 });
    await go('#/queues');
    await page.locator('#queues tr[data-queue="ui"]').waitFor(WAIT);
    await shot('9-queues-narrow');
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  await step('a read-only key sees no destructive buttons', async () => {
    await deadJob('ui-ro');
    page = await newPage();
    await page.goto(base + '/ui/#/queues?queue=ui-ro');
    await page.fill('#login-key', reader);
    await page.click('#login-form button[type=submit]');
    await page.locator('#queues tr[data-queue="ui-ro"]').waitFor(WAIT);
    await page.locator('#jobs tr[data-status="dead"]').first().waitFor(WAIT);
    const visible = await page.locator('#page button:visible').allTextContents();
    const acting = visible.filter((t) => /retry|cancel|purge|pause|resume/i.test(t));
    if (acting.length) throw new Error('visible to a read-only key: ' + acting.join(', '));
    await shot('10-read-only');
  });

  if (errors.length) throw new Error('the page logged errors:\n' + errors.join('\n'));
  console.log('all steps passed');
} finally {
  await browser.close();
}
