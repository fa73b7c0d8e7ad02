// Browser test of the Stats and Now views against a real lastseend holding a
// year of history, and the screenshots the README shows: a team of people
// (some online, some not), a year of one user's sessions imported through
// POST /api/v1/import, live beats keeping the online ones online. Checks that
// Stats draws bars and a heatmap, that the sessions table sorts by duration
// and pages, that the Now count says how many are online and follows a
// change without a reload, that the bell sets a watch, and that the public
// status preview shows what each level shows.
//
// Needs what run.mjs needs (a built dashboard embedded in lastseend, or
// LASTSEEND_BIN; Chromium at CHROMIUM_PATH or /usr/bin/chromium).
// Screenshots (1280×800, light and dark) land in e2e/screenshots/, or in
// docs/screenshots/ with --docs.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, freePort, Lastseend, lastseendBinary, newTally, tempDir } from './lastseend.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const shots = process.argv.includes('--docs') ? join(here, '..', '..', 'docs', 'screenshots') : join(here, 'screenshots');
mkdirSync(shots, { recursive: true });
mkdirSync(join(here, 'screenshots'), { recursive: true });

const tally = newTally();
const step = tally.step;

const tz = 'Europe/Paris';
// The history is made in the user's zone: local wall times below are Paris's.
process.env.TZ = tz;

/** A small deterministic random source, so every run draws the same year. */
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * A year of working days for two devices, ending `until`: mornings and
 * afternoons at the laptop with short idle stretches, a lunch away, some
 * evenings at the desktop, a few weekend hours, and holidays off.
 */
function history(until) {
  const r = rng(42);
  const spans = [];
  const add = (device_id, state, start, end, why) => {
    if (end <= start || end > until) return;
    spans.push({
      device_id,
      state,
      ...(why ? { why } : {}),
      start: new Date(start).toISOString(),
      end: new Date(end).toISOString(),
      duration_s: Math.round((end - start) / 1000),
    });
  };
  const at = (d, h, m = 0) => new Date(d.getFullYear(), d.getMonth(), d.getDate(), h, m).getTime();
  const min = 60_000;
  const first = new Date(until - 365 * 86_400_000);
  for (let d = new Date(first.getFullYear(), first.getMonth(), first.getDate()); d.getTime() < until; d.setDate(d.getDate() + 1)) {
    const wd = (d.getDay() + 6) % 7;
    const month = d.getMonth();
    const holiday = (month === 7 && d.getDate() < 20) || (month === 11 && d.getDate() > 23) || r() < 0.04;
    if (holiday) continue;
    if (wd < 5) {
      // Morning on the laptop, broken by an idle stretch.
      let t = at(d, 8, Math.floor(r() * 50));
      const lunch = at(d, 12, Math.floor(r() * 40));
      while (t < lunch) {
        const run = (35 + r() * 70) * min;
        const end = Math.min(lunch, t + run);
        add(1, 'active', t, end, r() < 0.12 ? 'call' : undefined);
        t = end;
        if (t >= lunch) break;
        const idle = (4 + r() * 12) * min;
        add(1, 'idle', t, Math.min(lunch, t + idle));
        t += idle;
      }
      // Lunch: the screen locked.
      const back = lunch + (35 + r() * 35) * min;
      add(1, 'away', lunch, back);
      t = back;
      const stop = at(d, 17, Math.floor(r() * 90));
      while (t < stop) {
        const run = (30 + r() * 80) * min;
        const end = Math.min(stop, t + run);
        add(1, 'active', t, end, r() < 0.1 ? 'call' : undefined);
        t = end;
        if (t >= stop) break;
        const idle = (3 + r() * 15) * min;
        add(1, 'idle', t, Math.min(stop, t + idle));
        t += idle;
      }
      // Some evenings at the desktop.
      if (r() < 0.35) {
        const s = at(d, 20, Math.floor(r() * 60));
        add(2, 'active', s, s + (40 + r() * 80) * min, r() < 0.3 ? 'media' : undefined);
      }
    } else if (r() < 0.45) {
      const s = at(d, 10 + Math.floor(r() * 5), Math.floor(r() * 60));
      add(2, 'active', s, s + (30 + r() * 120) * min);
    }
  }
  return spans;
}

const tmp = tempDir();
let svc;
let browser;
let keepAlive;
try {
  const bin = lastseendBinary(tmp.dir);
  svc = new Lastseend(bin, tmp.dir, await freePort());
  let adaToken = '';
  const userTokens = {};
  const devices = {}; // handle → device token
  const seqs = {};
  const people = [
    ['ada', 'Ada Lovelace'],
    ['grace', 'Grace Hopper'],
    ['linus', 'Linus Torvalds'],
    ['margaret', 'Margaret Hamilton'],
    ['ken', 'Ken Thompson'],
    ['barbara', 'Barbara Liskov'],
    ['alan', 'Alan Kay'],
  ];
  // What each is doing when the page opens; alan never reports.
  const now = { ada: 'active', grace: 'active', linus: 'active', margaret: 'idle', ken: 'away', barbara: 'offline' };

  const beat = async (handle, state, at = new Date()) => {
    seqs[handle] = (seqs[handle] ?? 0) + 1;
    const r = await fetch(`${svc.url}/api/v1/heartbeats`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${devices[handle]}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({
        sent_at: new Date().toISOString(),
        beats: [{ seq: seqs[handle], at: at.toISOString(), state, idle_s: state === 'active' ? 0 : 400 }],
      }),
    });
    const body = await r.text();
    expect(r.status === 200, `heartbeat of ${handle}: HTTP ${r.status} ${body}`);
  };
  const api = async (method, path, body) => {
    const r = await fetch(`${svc.url}${path}`, {
      method,
      headers: { Authorization: `Bearer ${adaToken}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await r.text();
    expect(r.ok, `${method} ${path}: HTTP ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };

  await step('set up a team with the lastseend CLI', async () => {
    for (const [handle, name] of people) {
      const tok = svc.admin('user', 'add', handle, '--name', name);
      userTokens[handle] = tok;
      if (handle === 'ada') adaToken = tok;
      svc.admin('user', 'set', handle, '--tz', tz);
    }
    devices.ada = svc.admin('device', 'add', 'ada', 'laptop');
    svc.admin('device', 'add', 'ada', 'desktop');
    for (const [handle] of people.slice(1, -1)) devices[handle] = svc.admin('device', 'add', handle, 'laptop');
    expect(adaToken.startsWith('ls_usr_') && devices.grace.startsWith('ls_dev_'), 'the CLI printed no tokens');
    await svc.start();
  });

  let imported = 0;
  await step('import a year of history', async () => {
    const until = Date.now() - 40 * 60_000;
    const spans = history(until);
    const me = await api('GET', '/api/v1/me');
    const devs = (await api('GET', '/api/v1/devices')).devices;
    const id = (name) => devs.find((d) => d.name === name).id;
    // The file names the devices by the ids it uses; the import matches them to ours by name.
    const file = (part) => ({
      version: 1,
      exported_at: new Date().toISOString(),
      user: { handle: me.handle, name: me.name, tz },
      devices: [
        { id: 1, name: 'laptop', os: 'linux' },
        { id: 2, name: 'desktop', os: 'linux' },
      ],
      spans: part,
      daily: [],
    });
    // In pieces well under the service's array limit.
    for (let i = 0; i < spans.length; i += 1500) {
      const r = await api('POST', '/api/v1/import', file(spans.slice(i, i + 1500)));
      imported += r.added;
    }
    expect(imported === spans.length, `imported ${imported} of ${spans.length} spans`);
    expect(id('laptop') > 0 && id('desktop') > 0, 'devices missing');
    console.log(`# ${spans.length} spans imported`);
  });

  const beatAll = async () => {
    for (const [handle, state] of Object.entries(now)) if (state !== 'offline') await beat(handle, state);
  };
  await step('post beats so some people are online', async () => {
    await beat('barbara', 'active', new Date(Date.now() - 3 * 3600_000));
    await beat('barbara', 'offline', new Date(Date.now() - 3 * 3600_000 + 50 * 60_000));
    await beat('ken', 'active', new Date(Date.now() - 25 * 60_000));
    await beat('margaret', 'active', new Date(Date.now() - 8 * 60_000));
    await beatAll();
    // Silence turns a device offline after a minute: keep them reporting.
    keepAlive = setInterval(() => void beatAll().catch(() => {}), 20_000);
    await api('PUT', '/api/v1/watches/grace');
    const p = (await api('GET', '/api/v1/presence')).users;
    const online = p.filter((u) => u.status === 'active' || u.status === 'idle').map((u) => u.handle).sort();
    expect(online.join(',') === 'ada,grace,linus,margaret', `online per the service: ${online.join(',')}`);
  });

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light', timezoneId: tz, locale: 'en-GB' });
  const page = await ctx.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource|EventSource/.test(m.text())) pageErrors.push(m.text());
  });
  const count = page.getByTestId('online-count');

  await step('sign in; Now leads with how many are online', async () => {
    await page.goto(svc.url);
    await page.getByText('Use an API token instead').click();
    await page.getByLabel('User token').fill(adaToken);
    await page.getByRole('button', { name: 'Sign in with token' }).click();
    await page.locator('[data-connection="live"]').waitFor({ timeout: 10_000 });
    await count.filter({ hasText: /^4$/ }).waitFor({ timeout: 5000 });
    const order = await page.locator('[data-testid="team"] li').evaluateAll((els) => els.map((e) => e.getAttribute('data-user')));
    // By state (active, idle, away, offline), then the most recently seen.
    expect(order.slice(3).join(',') === 'margaret,ken,barbara,alan', `team order: ${order.join(',')}`);
    expect(order.slice(0, 3).sort().join(',') === 'ada,grace,linus', `active first: ${order.join(',')}`);
    expect((await page.locator('[data-user="ada"] .bell').count()) === 0, 'a bell on your own row');
    expect((await page.locator('[data-user="grace"] .bell').getAttribute('aria-pressed')) === 'true', 'grace is watched but the bell is off');
  });

  await step('the count follows the stream without a reload', async () => {
    const navs = [];
    page.on('framenavigated', (f) => f === page.mainFrame() && navs.push(f.url()));
    delete now.linus;
    await beat('linus', 'offline');
    await count.filter({ hasText: /^3$/ }).waitFor({ timeout: 5000 });
    now.linus = 'active';
    await beat('linus', 'active');
    await count.filter({ hasText: /^4$/ }).waitFor({ timeout: 5000 });
    expect(navs.length === 0, `the page navigated: ${navs.join(', ')}`);
  });

  await step('the bell sets and clears a watch', async () => {
    const bell = page.locator('[data-user="margaret"] .bell');
    await bell.click();
    await page.locator('[data-user="margaret"] .bell[aria-pressed="true"]').waitFor({ timeout: 3000 });
    await expectWatches(['grace', 'margaret']);
    await bell.click();
    await page.locator('[data-user="margaret"] .bell[aria-pressed="false"]').waitFor({ timeout: 3000 });
    await expectWatches(['grace']);
  });
  async function expectWatches(want) {
    const deadline = Date.now() + 3000;
    let got = [];
    while (Date.now() < deadline) {
      got = (await api('GET', '/api/v1/watches')).watches.map((w) => w.handle).sort();
      if (got.join(',') === want.join(',')) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`watches: ${got.join(',')}, want ${want.join(',')}`);
  }

  // No hover or focus ring left from the clicks in the screenshots.
  const unfocus = async () => {
    await page.mouse.move(1270, 790);
    await page.evaluate(() => (document.activeElement instanceof HTMLElement ? document.activeElement.blur() : undefined));
  };
  await step('screenshot Now, light', async () => {
    await unfocus();
    await page.waitForTimeout(800); // the count's one-shot bump
    await page.screenshot({ path: join(shots, 'now-light.png') });
  });

  const bars = page.locator('[data-testid="stats"] .bar');
  await step('Stats draws stacked bars, devices and a heatmap from the history', async () => {
    await page.getByRole('tab', { name: 'Stats' }).click();
    await page.getByText(`Days cut at midnight, ${tz}`).waitFor({ timeout: 5000 });
    await bars.nth(6).waitFor({ timeout: 5000 });
    expect((await bars.count()) === 7, `7 bars expected, got ${await bars.count()}`);
    await page.getByRole('button', { name: '30 days' }).click();
    await bars.nth(29).waitFor({ timeout: 5000 });
    expect((await bars.count()) === 30, `30 bars expected, got ${await bars.count()}`);
    const stacked = await page.locator('[data-testid="stats"] .seg-active').count();
    expect(stacked >= 15, `only ${stacked} of 30 days have active time`);
    expect((await page.locator('[data-testid="stats"] .seg-idle').count()) >= 10, 'no idle in the stacks');
    const label = await bars.first().getAttribute('aria-label');
    expect(/: .+ active, .+ idle, .+ away$/.test(label ?? ''), `bar label: ${label}`);
    const cells = page.locator('[data-testid="heatmap"] .cell');
    expect((await cells.count()) === 7 * 24, `heatmap cells: ${await cells.count()}`);
    const darkest = await page.locator('[data-testid="heatmap"] .cell[data-level="4"]').count();
    const empty = await page.locator('[data-testid="heatmap"] .cell[data-level="0"]').count();
    expect(darkest >= 1 && empty >= 24, `heatmap levels: ${darkest} darkest, ${empty} empty`);
    // Nights are empty, weekday mornings are not.
    expect((await cells.nth(3).getAttribute('data-level')) === '0', 'Monday 03:00 has activity');
    expect((await cells.nth(10).getAttribute('data-level')) !== '0', 'Monday 10:00 has none');
    expect((await page.locator('[data-testid="stats-devices"] li').count()) === 2, 'two devices expected');
    expect(/vs last week so far|same as last week so far/.test(await page.locator('[data-period="week"]').innerText()), 'no week change');
  });

  await step('the table alternative lists the same days', async () => {
    await page.getByRole('button', { name: 'Show as table' }).click();
    const rows = page.locator('[data-testid="bars-table"] tbody tr');
    await rows.nth(29).waitFor({ timeout: 3000 });
    expect((await rows.count()) === 30, `table rows: ${await rows.count()}`);
    await page.getByRole('button', { name: 'Show chart' }).click();
    await bars.nth(29).waitFor({ timeout: 3000 });
  });

  const rows = page.locator('[data-testid="sessions"] tbody tr');
  const durations = () => rows.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-duration'))));
  await step('the sessions table sorts by duration on click and pages', async () => {
    await rows.first().waitFor({ timeout: 5000 });
    const total = await page.getByTestId('sessions-total').innerText();
    expect(/^[\d,]+ sessions · .+ in all$/.test(total), `total: ${total}`);
    const dur = page.getByRole('button', { name: 'Duration' });
    await dur.click();
    await page.locator('th[aria-sort="descending"]').filter({ hasText: 'Duration' }).waitFor({ timeout: 3000 });
    await page.waitForFunction(() => {
      const d = [...document.querySelectorAll('[data-testid="sessions"] tbody tr')].map((e) => Number(e.getAttribute('data-duration')));
      return d.length > 1 && d.every((x, i) => i === 0 || d[i - 1] >= x);
    }, null, { timeout: 5000 });
    const desc = await durations();
    expect(desc[0] > desc[desc.length - 1], `longest first: ${desc.join(',')}`);
    await dur.click();
    await page.waitForFunction(() => {
      const d = [...document.querySelectorAll('[data-testid="sessions"] tbody tr')].map((e) => Number(e.getAttribute('data-duration')));
      return d.length > 1 && d.every((x, i) => i === 0 || d[i - 1] <= x);
    }, null, { timeout: 5000 });
    const asc = await durations();
    await page.getByRole('button', { name: 'Next →' }).click();
    await page.getByTestId('sessions-page').filter({ hasText: /^Rows 21–40 of / }).waitFor({ timeout: 5000 });
    const p2 = await durations();
    expect(p2.length > 0 && p2[0] >= asc[asc.length - 1], `page 2 is not after page 1: ${p2.join(',')}`);
    await page.getByRole('button', { name: '← Previous' }).click();
    await page.getByTestId('sessions-page').filter({ hasText: /^Rows 1–20 of / }).waitFor({ timeout: 5000 });
    // Back to the newest first for the screenshots.
    await page.getByRole('button', { name: 'Start' }).click();
    await page.locator('th[aria-sort="descending"]').filter({ hasText: 'Start' }).waitFor({ timeout: 3000 });
  });

  await step('12 months draw one bar a month', async () => {
    await page.getByRole('button', { name: '12 months' }).click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="stats"] .bar').length === 12, null, { timeout: 10_000 });
    await page.getByRole('button', { name: '30 days' }).click();
    await bars.nth(29).waitFor({ timeout: 5000 });
  });

  await step('screenshot Stats, light', async () => {
    await unfocus();
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(shots, 'stats-light.png') });
  });

  await step('Settings previews the public status at each level', async () => {
    await page.getByRole('tab', { name: 'Settings' }).click();
    const preview = page.getByTestId('public-preview');
    await preview.getByTestId('not-public').waitFor({ timeout: 5000 });
    await page.getByLabel(/Show my status publicly/).check();
    const json = preview.getByTestId('public-json');
    await json.filter({ hasText: '"last_seen"' }).waitFor({ timeout: 5000 });
    await page.getByRole('radio', { name: /^Online/ }).check();
    await page.waitForFunction(() => {
      const t = document.querySelector('[data-testid="public-json"]')?.textContent ?? '';
      return t.includes('"online": true') && !t.includes('"status"');
    }, null, { timeout: 5000 });
    await page.getByRole('radio', { name: /^State/ }).check();
    await json.filter({ hasText: '"status": "active"' }).waitFor({ timeout: 5000 });
    expect(!(await json.innerText()).includes('last_seen'), 'state level shows last_seen');
    const embed = await page.locator('[data-copy="embed"] input').inputValue();
    expect(embed === `<script src="${svc.url}/embed/ada.js" data-handle="ada" async></script>`, `embed snippet: ${embed}`);
    await page.locator('[data-testid="public-preview"] img').evaluate((img) => img.decode());
    await page.getByTestId('public-status').screenshot({ path: join(shots, 'public-status-light.png') });
  });

  await step('dark mode screenshots', async () => {
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.getByTestId('public-status').screenshot({ path: join(shots, 'public-status-dark.png') });
    await page.getByRole('tab', { name: 'Stats' }).click();
    await page.getByRole('button', { name: '30 days' }).click();
    await bars.nth(29).waitFor({ timeout: 5000 });
    await unfocus();
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(shots, 'stats-dark.png') });
    await page.getByRole('tab', { name: 'Now' }).click();
    await count.waitFor();
    await page.waitForTimeout(800);
    await page.screenshot({ path: join(shots, 'now-dark.png') });
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(bg !== 'rgb(246, 247, 249)', `dark mode did not change the background (${bg})`);
  });

  await step('a new user sees the empty state, not empty charts', async () => {
    const ctx2 = await browser.newContext({ viewport: { width: 1280, height: 800 }, timezoneId: tz, locale: 'en-GB' });
    const p2 = await ctx2.newPage();
    p2.on('pageerror', (e) => pageErrors.push(e.message));
    await p2.goto(svc.url);
    await p2.getByText('Use an API token instead').click();
    await p2.getByLabel('User token').fill(userTokens.alan);
    await p2.getByRole('button', { name: 'Sign in with token' }).click();
    await p2.getByRole('tab', { name: 'Stats' }).click();
    await p2.getByTestId('stats-empty').waitFor({ timeout: 5000 });
    expect((await p2.locator('[data-testid="stats"], [data-testid="heatmap"], [data-testid="sessions"]').count()) === 0, 'empty charts drawn for a new user');
    await p2.screenshot({ path: join(here, 'screenshots', 'stats-empty-light.png') });
    await ctx2.close();
  });

  await step('no errors on the page', async () => {
    expect(pageErrors.length === 0, pageErrors.join('\n'));
  });
} catch {
  // The failing step has been reported.
} finally {
  clearInterval(keepAlive);
  await browser?.close().catch(() => {});
  if (svc && tally.failed > 0 && svc.log.length) console.log(`# lastseend log (tail):\n${svc.log.slice(-20).join('')}`);
  await svc?.stop().catch(() => {});
  tmp.remove();
}
tally.exit();
