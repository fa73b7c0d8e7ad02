// Browser test of the dashboard against a real lastseend: sign in, watch a
// device turn active and its span appear without a reload, copy the badge
// snippet, export and import (an ActivityWatch file, twice), and follow the
// live indicator through a service restart.
//
// Needs: a built dashboard embedded in lastseend (npm run build, then build
// lastseend; or set LASTSEEND_BIN), and Chromium (CHROMIUM_PATH, default
// /usr/bin/chromium). Screenshots land in e2e/screenshots/.
import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, freePort, Lastseend, lastseendBinary, newTally, tempDir } from './lastseend.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const shots = join(here, 'screenshots');
// The ActivityWatch export the importer's tests use (aw-server 0.12 output).
const awExport = join(here, '..', '..', 'backend', 'importer', 'testdata', 'activitywatch-export.json');
mkdirSync(shots, { recursive: true });

const tally = newTally();
const step = tally.step;

// The user's zone: one where the three hours of history below fall on today,
// whatever time the test runs.
const tz = ['Europe/Paris', 'America/New_York', 'Asia/Tokyo', 'Pacific/Auckland'].find(
  (z) => Number(new Intl.DateTimeFormat('en-GB', { timeZone: z, hour: 'numeric', hourCycle: 'h23' }).format(Date.now())) >= 4,
);
console.log(`# user time zone ${tz}`);

const tmp = tempDir();
let svc;
let browser;
let dump;
try {
  const bin = lastseendBinary(tmp.dir);
  svc = new Lastseend(bin, tmp.dir, await freePort());
  let userToken = '';
  let deviceToken = '';
  let seq = 0;
  const beat = async (state, at = new Date()) => {
    seq++;
    const r = await fetch(`${svc.url}/api/v1/heartbeats`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${deviceToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ sent_at: new Date().toISOString(), beats: [{ seq, at: at.toISOString(), state, idle_s: 0 }] }),
    });
    const body = await r.text();
    expect(r.status === 200, `heartbeat: HTTP ${r.status} ${body}`);
    return JSON.parse(body);
  };

  await step('set up users and a device with the lastseend CLI', async () => {
    userToken = svc.admin('user', 'add', 'ada', '--name', 'Ada Lovelace');
    expect(userToken.startsWith('ls_usr_'), `user add printed ${userToken}`);
    svc.admin('user', 'set', 'ada', '--tz', tz);
    svc.admin('user', 'add', 'grace', '--name', 'Grace Hopper');
    deviceToken = svc.admin('device', 'add', 'ada', 'laptop');
    expect(deviceToken.startsWith('ls_dev_'), `device add printed ${deviceToken}`);
  });

  await step('post the last hours of a day as one batch', async () => {
    // active, idle, active, a gap (offline), away, active, then offline half
    // an hour ago: the device is offline when the page opens.
    const plan = [
      ['active', 45],
      ['idle', 12],
      ['active', 25],
      ['offline', 20],
      ['away', 10],
      ['active', 30],
    ];
    let t = Date.now() - 170 * 60_000; // ends 28 min ago
    const beats = [];
    for (const [state, minutes] of plan) {
      const end = t + minutes * 60_000;
      if (state === 'offline') {
        beats.push({ seq: ++seq, at: new Date(t).toISOString(), state, idle_s: 0 });
      } else {
        for (let at = t; at < end; at += 30_000) beats.push({ seq: ++seq, at: new Date(at).toISOString(), state, idle_s: state === 'active' ? 0 : 400 });
      }
      t = end;
    }
    beats.push({ seq: ++seq, at: new Date(t).toISOString(), state: 'offline', idle_s: 0 });
    await svc.start();
    const r = await fetch(`${svc.url}/api/v1/heartbeats`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${deviceToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ sent_at: new Date().toISOString(), beats }),
    });
    const res = await r.json();
    expect(r.status === 200 && res.accepted === beats.length, `history batch: HTTP ${r.status} ${JSON.stringify(res)}`);
    expect(res.device.status === 'offline', `device after history: ${res.device.status}`);
  });

  await step('serve the built dashboard', async () => {
    const r = await fetch(`${svc.url}/`);
    const html = await r.text();
    expect(r.status === 200 && html.includes('<div id="app">'), `GET / answered ${r.status}; build the dashboard before lastseend (npm run build)`);
  });

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 820 }, colorScheme: 'light' });
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: svc.url });
  const page = await ctx.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource|ERR_CONNECTION_REFUSED|EventSource/.test(m.text())) pageErrors.push(m.text());
  });
  const conn = page.locator('[data-connection]');
  dump = async () =>
    [
      `connection: ${await conn.getAttribute('data-connection', { timeout: 1000 })}`,
      `main: ${(await page.locator('main').innerText({ timeout: 1000 })).replace(/\n+/g, ' | ')}`,
      `errors: ${pageErrors.join(' / ')}`,
    ].join('\n');
  const laptop = page.locator('[data-testid="devices"] li[data-device="laptop"]');

  await step('a bad token is refused with a message', async () => {
    await page.goto(svc.url);
    // Handle and password lead; the token path is one click away.
    await page.getByLabel('Handle').waitFor({ timeout: 5000 });
    await page.getByText('Use an API token instead').click();
    await page.getByLabel('User token').fill('ls_usr_not-a-real-token');
    await page.getByRole('button', { name: 'Sign in with token' }).click();
    await page.getByRole('alert').filter({ hasText: 'not accepted' }).waitFor({ timeout: 5000 });
    await page.screenshot({ path: join(shots, 'signin-light.png') });
  });

  await step('sign in with the user token and go live', async () => {
    await page.getByLabel('User token').fill(userToken);
    await page.getByRole('button', { name: 'Sign in with token' }).click();
    await page.getByRole('tab', { name: 'Now' }).waitFor({ timeout: 5000 });
    await conn.and(page.locator('[data-connection="live"]')).waitFor({ timeout: 10_000 });
    expect((await laptop.innerText()).toLowerCase().includes('offline'), `laptop before any beat: ${await laptop.innerText()}`);
    expect(await page.locator('[data-testid="team"] li[data-user="grace"]').count() === 1, 'grace is not listed in the team');
  });

  await step('a posted beat turns the device active without a reload', async () => {
    const navs = [];
    page.on('framenavigated', (f) => f === page.mainFrame() && navs.push(f.url()));
    await beat('active', new Date(Date.now() - 20_000));
    await laptop.locator('[data-state="active"]').waitFor({ timeout: 5000 });
    await page.locator('[data-testid="my-state"] [data-state="active"]').waitFor({ timeout: 5000 });
    await page.locator('[data-testid="feed"] li').filter({ hasText: 'laptop is active' }).waitFor({ timeout: 5000 });
    await beat('active');
    expect(navs.length === 0, `the page navigated: ${navs.join(', ')}`);
    // New feed items flash once; nothing on the page animates for ever.
    const anims = await page.evaluate(() =>
      document.getAnimations().map((a) => ({ name: a.animationName ?? '', iterations: a.effect?.getTiming().iterations })),
    );
    expect(anims.some((a) => a.name.includes('flash')), `no flash on the new feed item: ${JSON.stringify(anims)}`);
    expect(anims.every((a) => a.iterations !== Infinity), `an infinite animation runs: ${JSON.stringify(anims)}`);
    await page.waitForTimeout(1700);
    expect((await page.evaluate(() => document.getAnimations().length)) === 0, 'animations still running after the flash');
    await page.screenshot({ path: join(shots, 'now-light.png') });
  });

  await step('the span shows on the timeline, with its times on hover and focus', async () => {
    await page.getByRole('tab', { name: 'Timeline' }).click();
    const span = page.locator('[data-lane="laptop"] .span[data-state="active"][title$="so far"]');
    await span.waitFor({ timeout: 5000 });
    const label = await span.getAttribute('title');
    expect(/^active: .+ – now, \d+ s so far$/.test(label ?? ''), `span title: ${label}`);
    await span.focus();
    expect(await span.evaluate((el) => el === document.activeElement), 'the span cannot take keyboard focus');
    const lane = page.locator('[data-lane="laptop"]');
    const states = await lane.locator('.span').evaluateAll((els) => els.map((e) => e.getAttribute('data-state')));
    // The batch's history plus the live span.
    expect(states.join(',') === 'active,idle,active,away,active,active', `spans on the lane: ${states.join(', ')}`);
    expect((await lane.locator('.gap').count()) >= 1, 'the offline gap is not shown');
    await page.getByRole('button', { name: 'This week' }).click();
    await span.waitFor({ timeout: 5000 });
    expect((await lane.locator('.span').count()) === 6, `week view spans: ${await lane.locator('.span').count()}`);
    await page.getByRole('button', { name: 'Today' }).click();
    await page.screenshot({ path: join(shots, 'timeline-light.png') });
  });

  await step('stats show today in the user time zone', async () => {
    await page.getByRole('tab', { name: 'Stats' }).click();
    await page.getByText(`Days cut at midnight, ${tz}`).waitFor({ timeout: 5000 });
    await page.locator('[data-testid="stats"] .bar').nth(6).waitFor();
    expect((await page.locator('[data-testid="stats"] .bar').count()) === 7, '7 bars expected');
    await page.screenshot({ path: join(shots, 'stats-light.png') });
  });

  await step('public status on, the widget snippet copies to the clipboard', async () => {
    await page.getByRole('tab', { name: 'Settings' }).click();
    await page.getByLabel(/Show my status publicly/).check();
    const snippetBox = page.locator('[data-copy="embed"] input');
    await snippetBox.waitFor({ timeout: 5000 });
    const want = `<script src="${svc.url}/embed/ada.js" data-handle="ada" async></script>`;
    expect((await snippetBox.inputValue()) === want, `snippet: ${await snippetBox.inputValue()}`);
    const fallback = await page.locator('[data-copy="fallback"] input').inputValue();
    expect(fallback === `<img src="${svc.url}/badge/ada.svg" alt="Ada Lovelace on Lastseen">`, `fallback: ${fallback}`);
    const copy = page.locator('[data-copy="embed"] button');
    await copy.click();
    await copy.filter({ hasText: 'Copied' }).waitFor({ timeout: 3000 });
    const clip = await page.evaluate(() => navigator.clipboard.readText());
    expect(clip === want, `clipboard holds ${clip}`);
    const badge = await fetch(`${svc.url}/badge/ada.svg`);
    expect(badge.ok && (badge.headers.get('content-type') ?? '').includes('svg'), `badge answered ${badge.status}`);
    const pub = await (await fetch(`${svc.url}/api/v1/public/ada`)).json();
    expect(pub.handle === 'ada' && pub.status === 'active', `public status: ${JSON.stringify(pub)}`);
    await page.locator('[data-testid="public-preview"] img').evaluate((img) => img.decode());
    await page.screenshot({ path: join(shots, 'settings-light.png'), fullPage: true });
  });

  await step('add a device: its token is shown once and can be revoked', async () => {
    await page.getByLabel('New device name').fill('desktop');
    await page.getByRole('button', { name: 'Add device' }).click();
    const tok = page.locator('[data-testid="new-token"] input');
    await tok.waitFor({ timeout: 5000 });
    expect((await tok.inputValue()).startsWith('ls_dev_'), 'no device token shown');
    await page.getByRole('button', { name: 'Done' }).click();
    const row = page.locator('.devs li').filter({ hasText: 'desktop' });
    await row.getByRole('button', { name: 'Revoke…' }).click();
    await row.getByRole('button', { name: 'Revoke', exact: true }).click();
    await row.waitFor({ state: 'detached', timeout: 5000 });
  });

  const yourData = page.getByTestId('your-data');

  await step('export JSON and CSV download under the service file names', async () => {
    const [json] = await Promise.all([page.waitForEvent('download'), yourData.getByRole('button', { name: 'Export (JSON)' }).click()]);
    expect(/^lastseen-ada-\d{4}-\d{2}-\d{2}\.json$/.test(json.suggestedFilename()), `JSON export named ${json.suggestedFilename()}`);
    const doc = JSON.parse(readFileSync(await json.path(), 'utf8'));
    expect(doc.version === 1 && doc.user.handle === 'ada', `export head: ${JSON.stringify({ version: doc.version, user: doc.user })}`);
    expect(doc.spans.length >= 6 && doc.devices.some((d) => d.name === 'laptop'), `export holds ${doc.spans.length} spans of ${JSON.stringify(doc.devices)}`);
    await yourData.getByTestId('export-note').filter({ hasText: json.suggestedFilename() }).waitFor({ timeout: 3000 });
    const [csv] = await Promise.all([page.waitForEvent('download'), yourData.getByRole('button', { name: 'Export (CSV)' }).click()]);
    expect(csv.suggestedFilename().endsWith('.csv'), `CSV export named ${csv.suggestedFilename()}`);
    const rows = readFileSync(await csv.path(), 'utf8').trim().split('\n');
    expect(rows[0].startsWith('device,state,why,start,end,duration_s') && rows.length === doc.spans.length + 1, `CSV: ${rows.length} rows, first ${rows[0]}`);
  });

  await step('importing the ActivityWatch export shows what it added', async () => {
    const form = yourData.locator('[data-import="activitywatch"]');
    expect((await form.getByLabel('Into').inputValue()) === 'file', 'ActivityWatch imports do not default to a device named after the host');
    await form.getByLabel('File').setInputFiles(awExport);
    await form.getByRole('button', { name: 'Import' }).click();
    const result = form.getByTestId('import-result');
    await result.waitFor({ timeout: 10_000 });
    const text = await result.innerText();
    const m = /^vm \(new device\): Added ([\d,]+) sessions?$/.exec(text.trim());
    expect(m && Number(m[1].replace(/,/g, '')) > 0, `first import says: ${text}`);
    const added = Number(m[1].replace(/,/g, ''));
    // The count is what the service now holds for the new device.
    const auth = { headers: { Authorization: `Bearer ${userToken}` } };
    const devs = (await (await fetch(`${svc.url}/api/v1/devices`, auth)).json()).devices;
    const vm = devs.find((d) => d.name === 'vm');
    expect(vm, `no device vm after the import: ${JSON.stringify(devs)}`);
    const q = new URLSearchParams({ from: '2026-01-01T00:00:00Z', to: new Date(Date.now() + 3600_000).toISOString(), state: 'active,idle,away' });
    const spans = (await (await fetch(`${svc.url}/api/v1/sessions?${q}`, auth)).json()).sessions.filter((s) => s.device_id === vm.id);
    expect(spans.length === added, `the result says ${added} added, the service holds ${spans.length}`);
    await page.locator('.devs li').filter({ hasText: 'vm' }).waitFor({ timeout: 5000 });

    await form.getByRole('button', { name: 'Import' }).click();
    const again = `vm: Added 0 sessions, skipped ${m[1]} already there`;
    await result.filter({ hasText: again }).waitFor({ timeout: 10_000 });
    expect((await result.innerText()).trim() === again, `second import says: ${await result.innerText()}`);
  });

  await step('an import the service refuses shows its message', async () => {
    const form = yourData.locator('[data-import="lastseen"]');
    await form.getByLabel('File').setInputFiles({ name: 'notes.json', mimeType: 'application/json', buffer: Buffer.from('{"hello":"world"}') });
    await form.getByRole('button', { name: 'Import' }).click();
    const alert = form.getByRole('alert');
    await alert.waitFor({ timeout: 5000 });
    const text = await alert.innerText();
    expect(text.startsWith('Import failed: ') && text.length > 'Import failed: '.length + 10, `error shown: ${text}`);
    // Clear the error for the screenshots: the ActivityWatch result stays.
    await form.getByLabel('File').setInputFiles([]);
    await yourData.scrollIntoViewIfNeeded();
    await yourData.screenshot({ path: join(shots, 'your-data-light.png') });
  });

  await step('dark mode screenshots', async () => {
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: join(shots, 'settings-dark.png'), fullPage: true });
    await yourData.screenshot({ path: join(shots, 'your-data-dark.png') });
    for (const [tab, file] of [
      ['Now', 'now-dark.png'],
      ['Timeline', 'timeline-dark.png'],
      ['Stats', 'stats-dark.png'],
    ]) {
      await page.getByRole('tab', { name: tab }).click();
      await page.waitForTimeout(200);
      await page.screenshot({ path: join(shots, file) });
    }
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(bg !== 'rgb(246, 247, 249)', `dark mode did not change the background (${bg})`);
  });

  await step('stopping the service shows reconnecting', async () => {
    await svc.stop();
    await page.locator('[data-connection="reconnecting"], [data-connection="offline"]').waitFor({ timeout: 10_000 });
    // Stay down long enough for the browser's own retries to fail too.
    await page.waitForTimeout(3000);
    expect((await conn.getAttribute('data-connection')) === 'reconnecting', `indicator says ${await conn.getAttribute('data-connection')}`);
    await page.screenshot({ path: join(shots, 'reconnecting-dark.png') });
  });

  await step('restarting it on the same port and database goes live again', async () => {
    await svc.start();
    await page.locator('[data-connection="live"]').waitFor({ timeout: 45_000 });
    await page.getByRole('tab', { name: 'Now' }).click();
    await beat('idle');
    await laptop.locator('[data-state="idle"]').waitFor({ timeout: 5000 });
  });

  await step('sign out returns to the sign-in page', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Handle').waitFor({ timeout: 5000 });
    const r = await page.evaluate(async () => (await fetch('/api/v1/me')).status);
    expect(r === 401, `after sign-out /api/v1/me answered ${r}`);
  });

  await step('no errors on the page', async () => {
    expect(pageErrors.length === 0, pageErrors.join('\n'));
  });
} catch {
  // The failing step has been reported; show what the page showed.
  if (dump) console.log(`# page state:\n${await dump().catch((e) => String(e))}`);
} finally {
  await browser?.close().catch(() => {});
  if (svc && tally.failed > 0 && svc.log.length) console.log(`# lastseend log (tail):\n${svc.log.slice(-20).join('')}`);
  await svc?.stop().catch(() => {});
  tmp.remove();
}
tally.exit();
