// Browser test of the embeddable status widget against a real lastseend: a
// page served from another origin embeds /embed/HANDLE.js for a user with a
// public status; a posted beat changes the dot within a second, without a
// reload; the widget rides through a service restart on its own, follows the
// user's level of detail, and says "unknown" once they opt out. For a user
// who did not opt in, the stream, the JSON, the badge and the script answer
// 404, and the page keeps its fallback badge.
//
// Needs lastseend (LASTSEEND_BIN, else built from this checkout) and
// Chromium (CHROMIUM_PATH, default /usr/bin/chromium). The dashboard need
// not be built.
import { chromium } from 'playwright-core';
import { createServer } from 'node:http';
import { expect, freePort, Lastseend, lastseendBinary, newTally, tempDir } from './lastseend.mjs';

const tally = newTally();
const step = tally.step;

// A site on another origin: one page per handle, each with a placeholder
// holding the fallback badge, and the script.
function sitePage(svcURL, handle) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${handle}'s site</title></head>
<body>
<p>${handle} is <span id="status" data-lastseen="${handle}"><img src="${svcURL}/badge/${handle}.svg" alt="${handle} on Lastseen"></span></p>
<script src="${svcURL}/embed/${handle}.js" data-handle="${handle}" async></script>
</body></html>`;
}

async function startSite(svcURL) {
  const port = await freePort();
  const srv = createServer((req, res) => {
    const m = /^\/(\w+)\.html$/.exec(req.url ?? '');
    if (!m) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(sitePage(svcURL, m[1]));
  });
  await new Promise((res) => srv.listen(port, 'localhost', res));
  return { url: `http://localhost:${port}`, close: () => new Promise((res) => srv.close(res)) };
}

const tmp = tempDir();
let svc;
let site;
let browser;
let page;
try {
  const bin = lastseendBinary(tmp.dir);
  svc = new Lastseend(bin, tmp.dir, await freePort());
  let deviceToken = '';
  let userToken = '';
  let seq = 0;
  const beat = async (state) => {
    seq++;
    const r = await fetch(`${svc.url}/api/v1/heartbeats`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${deviceToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ sent_at: new Date().toISOString(), beats: [{ seq, at: new Date().toISOString(), state, idle_s: 0 }] }),
    });
    const body = await r.text();
    expect(r.status === 200, `heartbeat: HTTP ${r.status} ${body}`);
  };

  await step('a public user, a private one, and the service', async () => {
    userToken = svc.admin('user', 'add', 'ada', '--name', 'Ada Lovelace');
    expect(userToken.startsWith('ls_usr_'), `user add printed ${userToken}`);
    svc.admin('user', 'set', 'ada', '--public=true');
    svc.admin('user', 'add', 'grace', '--name', 'Grace Hopper');
    deviceToken = svc.admin('device', 'add', 'ada', 'laptop');
    expect(deviceToken.startsWith('ls_dev_'), `device add printed ${deviceToken}`);
    await svc.start();
    site = await startSite(svc.url);
  });

  await step('for a user who did not opt in, all four outputs answer 404', async () => {
    for (const path of ['/api/v1/public/grace', '/api/v1/public/grace/events', '/badge/grace.svg', '/embed/grace.js']) {
      const r = await fetch(svc.url + path);
      await r.arrayBuffer();
      expect(r.status === 404, `${path} answered ${r.status}`);
    }
  });

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const ctx = await browser.newContext();
  page = await ctx.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource|ERR_CONNECTION_REFUSED|EventSource/.test(m.text())) pageErrors.push(m.text());
  });
  const status = page.locator('#status');
  const stateIs = (st, timeout) => page.locator(`#status[data-lastseen-state="${st}"]`).waitFor({ timeout });

  await step('the widget replaces the fallback badge on a page of another origin', async () => {
    expect(new URL(site.url).origin !== new URL(svc.url).origin, 'the site must be another origin');
    await page.goto(`${site.url}/ada.html`);
    await stateIs('offline', 5000);
    expect((await status.innerText()).trim() === 'offline', `widget says ${await status.innerText()}`);
    expect((await status.locator('img').count()) === 0, 'the fallback badge is still there');
  });

  await step('a posted beat changes the dot within a second, without a reload', async () => {
    const navs = [];
    page.on('framenavigated', (f) => f === page.mainFrame() && navs.push(f.url()));
    await beat('active');
    const t0 = Date.now();
    await stateIs('active', 1000);
    const took = Date.now() - t0;
    expect((await status.innerText()).trim() === 'online', `widget says ${await status.innerText()}`);
    const dot = await status.locator('span').first().evaluate((el) => getComputedStyle(el).backgroundColor);
    expect(dot === 'rgb(68, 204, 17)', `the dot is ${dot}, not green`);
    await beat('idle');
    await stateIs('idle', 1000);
    expect(/^idle \d+ min$/.test((await status.innerText()).trim()), `widget says ${await status.innerText()}`);
    expect(navs.length === 0, `the page navigated: ${navs.join(', ')}`);
    console.log(`#    active shown ${took} ms after the beat was committed`);
  });

  await step('stopping and restarting the service: the widget reconnects by itself', async () => {
    await svc.stop();
    // Down long enough for the browser's own retries to fail.
    await page.waitForTimeout(3000);
    await svc.start();
    const t0 = Date.now();
    // The first event after the reconnect is the current view: idle.
    await beat('away');
    await stateIs('away', 15_000);
    expect((await status.innerText()).trim() === 'away', `widget says ${await status.innerText()}`);
    console.log(`#    live again ${Date.now() - t0} ms after the restart`);
    await beat('active');
    await stateIs('active', 1000);
  });

  await step('at level online the widget says online or offline, nothing more', async () => {
    const r = await fetch(`${svc.url}/api/v1/me`, {
      method: 'PATCH',
      headers: { Authorization: `Bearer ${userToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ public_detail: 'online' }),
    });
    const me = await r.json();
    expect(r.status === 200 && me.public_detail === 'online', `PATCH /api/v1/me: HTTP ${r.status} ${JSON.stringify(me)}`);
    await beat('idle'); // still online at this level: the widget keeps saying so
    await beat('away');
    await stateIs('offline', 1000);
    expect((await status.innerText()).trim() === 'offline', `widget says ${await status.innerText()}`);
    await beat('active');
    await stateIs('active', 1000);
    expect((await status.innerText()).trim() === 'online', `widget says ${await status.innerText()}`);
    const pub = await (await fetch(`${svc.url}/api/v1/public/ada`)).json();
    expect(JSON.stringify(Object.keys(pub)) === '["handle","online"]', `public JSON at level online: ${JSON.stringify(pub)}`);
  });

  await step('opting out: the stream ends and the widget says unknown', async () => {
    const r = await fetch(`${svc.url}/api/v1/me`, {
      method: 'PATCH',
      headers: { Authorization: `Bearer ${userToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ public: false }),
    });
    expect(r.status === 200, `PATCH /api/v1/me: HTTP ${r.status}`);
    // The browser retries the ended stream (2 s), is refused, and reads the JSON: 404.
    await stateIs('unknown', 10_000);
    expect((await status.innerText()).trim() === 'unknown', `widget says ${await status.innerText()}`);
  });

  await step('a private user keeps the fallback badge', async () => {
    const page2 = await ctx.newPage();
    // A 404 script either arrives as a response or, its JSON body blocked
    // as a script, as a failed request: either way it never runs.
    const isScript = (r) => r.url().endsWith('/embed/grace.js');
    const never = () => new Promise(() => {}); // the other outcome, when the page closes
    const script = Promise.race([
      page2.waitForResponse(isScript).then((r) => `HTTP ${r.status()}`, never),
      page2.waitForEvent('requestfailed', isScript).then((r) => `failed: ${r.failure()?.errorText}`, never),
    ]);
    await page2.goto(`${site.url}/grace.html`);
    const outcome = await script;
    expect(outcome === 'HTTP 404' || outcome.startsWith('failed'), `the script for grace: ${outcome}`);
    console.log(`#    grace.js: ${outcome}`);
    await page2.locator('#status img').waitFor({ timeout: 5000 });
    expect((await page2.locator('#status[data-lastseen-state]').count()) === 0, 'a widget rendered for a private user');
    await page2.close();
  });

  await step('no errors on the page', async () => {
    expect(pageErrors.length === 0, pageErrors.join('\n'));
  });
} catch {
  if (page) console.log(`# widget: ${await page.locator('#status').innerHTML({ timeout: 1000 }).catch((e) => String(e))}`);
} finally {
  await browser?.close().catch(() => {});
  if (svc && tally.failed > 0 && svc.log.length) console.log(`# lastseend log (tail):\n${svc.log.slice(-20).join('')}`);
  await svc?.stop().catch(() => {});
  await site?.close().catch(() => {});
  tmp.remove();
}
tally.exit();
