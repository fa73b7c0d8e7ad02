// Browser walk-through of People against a real lastseend and a real
// lastseen-agent: an invite link from the CLI, a password set on /welcome,
// sign-in by handle and password, a pairing started by `lastseen-agent pair`
// and approved on /pair (signing in on the way), the paired agent's beats
// turning the device active on the page, sessions, API tokens and invites in
// Settings, sign-out ending the session server-side, and wrong passwords
// rate limited while the right one still works from another address.
//
// Needs what run.mjs needs (a built dashboard embedded in lastseend, or
// LASTSEEND_BIN; Chromium at CHROMIUM_PATH or /usr/bin/chromium), plus the
// agent (LASTSEEN_AGENT_BIN, else built from this checkout), Xvfb and
// xdotool (the agent sees real X input), and 127.0.0.2 on the loopback
// interface (Linux has all of 127/8). Screenshots land in e2e/screenshots/.
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { agentBinary, expect, freePort, Lastseend, lastseendBinary, newTally, tempDir } from './lastseend.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const shots = join(here, 'screenshots');
mkdirSync(shots, { recursive: true });

const tally = newTally();
const step = tally.step;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A child process whose output is kept (the tail shown on failure) and can be waited on. */
function run(bin, args, opts = {}) {
  const p = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  const out = { text: '', proc: p };
  p.stdout.on('data', (b) => (out.text += b.toString()));
  p.stderr.on('data', (b) => (out.text += b.toString()));
  // 'close', not 'exit': the output is all read by then.
  out.exited = new Promise((res) => p.once('close', (code, sig) => res(code ?? sig)));
  let closed = false;
  out.exited.then(() => (closed = true));
  /** Waits until the output matches re; the match. */
  out.waitFor = async (re, ms, what) => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const m = re.exec(out.text);
      if (m) return m;
      if (closed) break;
      await sleep(100);
    }
    throw new Error(`${what}: not seen within ${ms} ms (exit ${p.exitCode}); output:\n${out.text.slice(-2000)}`);
  };
  out.stop = async () => {
    if (closed || p.exitCode !== null || p.signalCode !== null) return;
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 5000);
    await out.exited;
    clearTimeout(t);
  };
  return out;
}

/** An X server on a display it picks itself (-displayfd), for the agent's idle detection. */
async function startXvfb() {
  const p = spawn('Xvfb', ['-displayfd', '3', '-nolisten', 'tcp', '-noreset', '-screen', '0', '1024x768x24'], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
  });
  let err = '';
  p.stderr.on('data', (b) => (err += b.toString()));
  const display = await new Promise((res, rej) => {
    let buf = '';
    const t = setTimeout(() => rej(new Error(`Xvfb reported no display within 10 s: ${err}`)), 10_000);
    p.stdio[3].on('data', (b) => {
      buf += b.toString();
      if (buf.includes('\n')) {
        clearTimeout(t);
        res(`:${buf.trim()}`);
      }
    });
    p.once('error', (e) => {
      clearTimeout(t);
      rej(e);
    });
    p.once('exit', (code) => {
      clearTimeout(t);
      rej(new Error(`Xvfb exited with ${code}: ${err}`));
    });
  });
  return {
    display,
    stop: () => {
      if (p.exitCode === null) p.kill('SIGTERM');
    },
  };
}

/**
 * A TCP relay on 127.0.0.1 whose connections reach the service from
 * 127.0.0.2: to the service, whoever uses it comes from another address
 * (the service rate limits per client address), while it keeps listening on
 * loopback only.
 */
async function otherAddress(target) {
  const conns = new Set();
  const srv = createServer((c) => {
    const up = connect({ host: '127.0.0.1', port: target, localAddress: '127.0.0.2' });
    conns.add(c).add(up);
    c.pipe(up).pipe(c);
    const close = () => {
      c.destroy();
      up.destroy();
      conns.delete(c);
      conns.delete(up);
    };
    c.on('error', close).on('close', close);
    up.on('error', close).on('close', close);
  });
  await new Promise((res, rej) => srv.once('error', rej).listen(0, '127.0.0.1', res));
  return {
    url: `http://127.0.0.1:${srv.address().port}`,
    close: () => {
      for (const c of conns) c.destroy();
      srv.close();
    },
  };
}

const tmp = tempDir();
const password = 'correct horse battery staple';
let svc;
let browser;
let agent;
let pairCmd;
let xvfb;
let relay;
let dump;
try {
  const bin = lastseendBinary(tmp.dir);
  const agentBin = agentBinary(tmp.dir);
  const agentDir = join(tmp.dir, 'agent');
  svc = new Lastseend(bin, tmp.dir, await freePort());
  let invite = '';

  await step('invite ada with the lastseend CLI', async () => {
    invite = svc.admin('user', 'invite', 'ada', '--name', 'Ada Lovelace', '--admin', '--base-url', svc.url);
    expect(invite.startsWith(`${svc.url}/welcome#ls_inv_`), `user invite printed ${invite}`);
    await svc.start();
  });

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  // A zone the service would never guess: the page must take the browser's.
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 820 }, colorScheme: 'light', timezoneId: 'Pacific/Auckland' });
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: svc.url });
  const page = await ctx.newPage();
  const pageErrors = [];
  const watch = (p) => {
    p.on('pageerror', (e) => pageErrors.push(e.message));
    p.on('console', (m) => {
      if (m.type() === 'error' && !/Failed to load resource|ERR_CONNECTION_REFUSED|EventSource/.test(m.text())) pageErrors.push(m.text());
    });
  };
  watch(page);
  dump = async () =>
    [`url: ${page.url()}`, `body: ${(await page.locator('body').innerText({ timeout: 1000 })).replace(/\n+/g, ' | ')}`, `errors: ${pageErrors.join(' / ')}`].join(
      '\n',
    );
  const me = () => page.evaluate(async () => {
    const r = await fetch('/api/v1/me');
    return { status: r.status, body: r.status === 200 ? await r.json() : null };
  });
  const signIn = async (p, pw) => {
    await p.getByLabel('Handle').fill('ada');
    await p.getByLabel('Password', { exact: true }).fill(pw);
    const [res] = await Promise.all([
      p.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/login'),
      p.getByRole('button', { name: 'Sign in', exact: true }).click(),
    ]);
    return res;
  };

  await step('the invite link welcomes ada and leaves the address bar', async () => {
    await page.goto(invite);
    await page.getByRole('heading', { name: 'Welcome, @ada' }).waitFor({ timeout: 5000 });
    expect(!page.url().includes('#') && !page.url().includes('ls_inv_'), `the secret is still in the address: ${page.url()}`);
    expect(new URL(page.url()).pathname === '/welcome', `address after the link: ${page.url()}`);
    expect((await page.getByLabel('Display name').inputValue()) === 'Ada Lovelace', 'the display name is not prefilled');
    expect((await page.getByLabel('Time zone').inputValue()) === 'Pacific/Auckland', `time zone prefilled: ${await page.getByLabel('Time zone').inputValue()}`);
  });

  await step('a short or mismatched password is refused on the page', async () => {
    await page.getByLabel('Password', { exact: true }).fill('short');
    await page.getByLabel('Confirm password').fill('short');
    await page.getByRole('button', { name: 'Create my account' }).click();
    await page.getByRole('alert').filter({ hasText: 'at least 8' }).waitFor({ timeout: 3000 });
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByLabel('Confirm password').fill(`${password}!`);
    await page.getByRole('button', { name: 'Create my account' }).click();
    await page.getByRole('alert').filter({ hasText: 'differ' }).waitFor({ timeout: 3000 });
  });

  await step('setting a password signs ada in and opens the dashboard', async () => {
    await page.getByLabel('Confirm password').fill(password);
    await page.screenshot({ path: join(shots, 'welcome-light.png') });
    await page.getByRole('button', { name: 'Create my account' }).click();
    await page.getByRole('tab', { name: 'Now' }).waitFor({ timeout: 10_000 });
    expect(new URL(page.url()).pathname === '/', `address after signing up: ${page.url()}`);
    await page.locator('[data-connection="live"]').waitFor({ timeout: 10_000 });
    const m = await me();
    expect(m.status === 200, `/api/v1/me answered ${m.status}`);
    expect(
      m.body.handle === 'ada' && m.body.name === 'Ada Lovelace' && m.body.tz === 'Pacific/Auckland' && m.body.admin === true && m.body.has_password === true,
      `me after signup: ${JSON.stringify(m.body)}`,
    );
  });

  await step('the used link is dead, and says so kindly', async () => {
    const p2 = await ctx.newPage();
    watch(p2);
    await p2.goto(invite);
    const dead = p2.getByTestId('dead-link');
    await dead.waitFor({ timeout: 5000 });
    expect((await dead.innerText()).includes('This link has expired or was already used; ask for a new one'), `dead link says: ${await dead.innerText()}`);
    await p2.close();
  });

  await step('sign out ends the session; its old cookie gets 401', async () => {
    const cookie = (await ctx.cookies(svc.url)).find((c) => c.name === 'lastseen_session');
    expect(cookie && cookie.httpOnly && cookie.sameSite === 'Strict', `session cookie: ${JSON.stringify(cookie)}`);
    const with_ = (c) => fetch(`${svc.url}/api/v1/me`, { headers: { Cookie: `${c.name}=${c.value}` } });
    expect((await with_(cookie)).status === 200, 'the session cookie does not work before sign-out');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Handle').waitFor({ timeout: 5000 });
    const after = await with_(cookie);
    expect(after.status === 401, `the old cookie after sign-out: HTTP ${after.status}`);
  });

  let code = '';
  let verifyURL = '';
  await step('lastseen-agent pair prints a code and the page to approve it on', async () => {
    pairCmd = run(agentBin, ['pair', '--data-dir', agentDir, '--name', 'desk', svc.url], {
      env: { ...process.env, XDG_CONFIG_HOME: join(tmp.dir, 'config') },
    });
    code = (await pairCmd.waitFor(/\b([B-DF-HJ-NP-TV-XZ]{4}-[B-DF-HJ-NP-TV-XZ]{4})\b/, 15_000, 'a pairing code'))[1];
    verifyURL = (await pairCmd.waitFor(/(http\S+\/pair\?code=[A-Z-]+)/, 5000, 'the verification URL'))[1];
    expect(verifyURL.startsWith(`${svc.url}/pair?code=`), `verification URL ${verifyURL}`);
  });

  await step('the pairing page asks to sign in first, then shows the device', async () => {
    await page.goto(verifyURL);
    await page.getByText('Sign in to approve the device').waitFor({ timeout: 5000 });
    const res = await signIn(page, password);
    expect(res.status() === 200, `sign-in answered ${res.status()}`);
    await page.getByTestId('pair-device').filter({ hasText: 'desk' }).waitFor({ timeout: 10_000 });
    expect(new URL(page.url()).pathname === '/pair', `left the pairing page: ${page.url()}`);
    expect((await page.locator('.facts').innerText()).includes(code), `the page does not show the code ${code}`);
    await page.screenshot({ path: join(shots, 'pair-light.png') });
  });

  await step('approving it pairs the agent', async () => {
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.getByTestId('pair-result').filter({ hasText: 'Approved' }).waitFor({ timeout: 5000 });
    await pairCmd.waitFor(/Paired\b.* desk of ada\b/, 30_000, '"Paired … desk of ada"');
    const exit = await Promise.race([pairCmd.exited, sleep(5000).then(() => 'still running')]);
    expect(exit === 0, `lastseen-agent pair exited with ${exit}:\n${pairCmd.text}`);
  });

  const desk = page.locator('[data-testid="devices"] li[data-device="desk"]');
  await step("the paired agent's beats turn desk active on the page", async () => {
    await page.getByRole('button', { name: 'Go to the dashboard' }).click();
    await page.getByRole('tab', { name: 'Now' }).waitFor({ timeout: 5000 });
    await page.locator('[data-connection="live"]').waitFor({ timeout: 10_000 });
    xvfb = await startXvfb();
    const xenv = { ...process.env, DISPLAY: xvfb.display, XDG_SESSION_TYPE: 'x11', XDG_CONFIG_HOME: join(tmp.dir, 'config'), TZ: 'UTC' };
    const move = () =>
      new Promise((res) => {
        const p = spawn('xdotool', ['mousemove', String(100 + Math.floor(Math.random() * 400)), '200'], { env: xenv, stdio: 'ignore' });
        p.once('exit', res);
        p.once('error', res);
      });
    await move();
    agent = run(agentBin, ['--data-dir', agentDir, '--headless', '--interval', '10s', '--idle-after', '60s'], { env: xenv });
    const deadline = Date.now() + 45_000;
    while (!(await desk.locator('[data-state="active"]').count())) {
      expect(Date.now() < deadline, `desk did not turn active within 45 s; agent output:\n${agent.text.slice(-3000)}`);
      expect(agent.proc.exitCode === null, `the agent exited with ${agent.proc.exitCode}:\n${agent.text.slice(-3000)}`);
      await move();
      await sleep(500);
    }
    // The page learnt it from the live stream: nothing was reloaded.
    expect(new URL(page.url()).pathname === '/', `address: ${page.url()}`);
    await page.screenshot({ path: join(shots, 'paired-active-light.png') });
  });

  await step('settings: this browser is marked among the sessions', async () => {
    await page.getByRole('tab', { name: 'Settings' }).click();
    const cur = page.locator('[data-testid="sessions"] li[data-current="true"]');
    await cur.waitFor({ timeout: 5000 });
    expect((await cur.innerText()).includes('This browser'), `current session row: ${await cur.innerText()}`);
    expect((await cur.innerText()).includes('127.0.0.1'), `current session address: ${await cur.innerText()}`);
  });

  await step('settings: an API token is shown once, works, and is revoked', async () => {
    const sec = page.getByTestId('api-tokens');
    await sec.getByLabel('New API token name').fill('backup script');
    await sec.getByRole('button', { name: 'Create token' }).click();
    const tok = sec.locator('[data-testid="new-api-token"] input');
    await tok.waitFor({ timeout: 5000 });
    const token = await tok.inputValue();
    expect(token.startsWith('ls_usr_'), `API token shown: ${token}`);
    const ok = await fetch(`${svc.url}/api/v1/me`, { headers: { Authorization: `Bearer ${token}` } });
    expect(ok.status === 200, `the new token: HTTP ${ok.status}`);
    await sec.getByRole('button', { name: 'Done' }).click();
    const row = sec.locator('li[data-token="backup script"]');
    await row.getByRole('button', { name: /^Revoke/ }).click();
    await row.getByRole('button', { name: 'Revoke', exact: true }).click();
    await row.waitFor({ state: 'detached', timeout: 5000 });
    const gone = await fetch(`${svc.url}/api/v1/me`, { headers: { Authorization: `Bearer ${token}` } });
    expect(gone.status === 401, `the revoked token: HTTP ${gone.status}`);
  });

  await step('settings: an admin invites someone, sees the link once, and revokes the invite', async () => {
    const sec = page.getByTestId('people');
    await sec.locator('li[data-person="ada"]').waitFor({ timeout: 5000 });
    await sec.getByLabel('Handle').fill('grace');
    await sec.getByLabel(/^Name/).fill('Grace Hopper');
    await sec.getByRole('button', { name: 'Create invite link' }).click();
    const url = sec.locator('[data-copy="invite-url"] input');
    await url.waitFor({ timeout: 5000 });
    const link = await url.inputValue();
    expect(link.startsWith(`${svc.url}/welcome#ls_inv_`), `invite URL: ${link}`);
    const pending = sec.locator('li[data-invite="grace"]');
    await pending.waitFor({ timeout: 5000 });
    await sec.scrollIntoViewIfNeeded();
    await sec.screenshot({ path: join(shots, 'people-light.png') });
    await pending.getByRole('button', { name: 'Revoke the invite for @grace' }).click();
    await pending.waitFor({ state: 'detached', timeout: 5000 });
    // The link shown once goes with its invite.
    expect((await url.count()) === 0, 'the revoked invite link is still shown');
    const peek = await fetch(`${svc.url}/api/v1/links/peek`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ secret: decodeURIComponent(new URL(link).hash.slice(1)) }),
    });
    expect(peek.status === 404, `a revoked invite peeks as HTTP ${peek.status}`);
  });

  await step('dark mode screenshots', async () => {
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.getByTestId('people').screenshot({ path: join(shots, 'people-dark.png') });
    await page.emulateMedia({ colorScheme: 'light' });
  });

  await step('sign out returns to the sign-in page', async () => {
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.getByLabel('Handle').waitFor({ timeout: 5000 });
    expect((await me()).status === 401, 'still signed in after sign-out');
  });

  let tries = 0;
  await step('wrong passwords are refused, then rate limited with a wait', async () => {
    const alert = page.getByRole('alert');
    for (;;) {
      tries++;
      expect(tries <= 30, 'no 429 after 30 wrong passwords');
      const res = await signIn(page, `wrong password ${tries}`);
      if (res.status() === 429) {
        const wait = Number(res.headers()['retry-after']);
        expect(wait > 0, `429 without a Retry-After: ${JSON.stringify(res.headers())}`);
        await alert.filter({ hasText: /^Too many attempts; try again in \d+ s\.$/ }).waitFor({ timeout: 3000 });
        break;
      }
      expect(res.status() === 401, `wrong password ${tries}: HTTP ${res.status()}`);
      await alert.filter({ hasText: 'Wrong handle or password.' }).waitFor({ timeout: 3000 });
    }
    expect(tries >= 2, `rate limited at the first wrong password`);
    console.log(`#    429 after ${tries - 1} wrong passwords: "${await alert.innerText()}"`);
    await page.screenshot({ path: join(shots, 'signin-429-light.png') });
  });

  await step('the right password still works from another address', async () => {
    relay = await otherAddress(svc.port);
    const ctx2 = await browser.newContext({ viewport: { width: 1200, height: 820 }, colorScheme: 'light' });
    const p2 = await ctx2.newPage();
    watch(p2);
    await p2.goto(relay.url);
    const res = await signIn(p2, password);
    expect(res.status() === 200, `right password from 127.0.0.2: HTTP ${res.status()}`);
    await p2.getByRole('tab', { name: 'Now' }).waitFor({ timeout: 10_000 });
    // The service saw the other address.
    await p2.getByRole('tab', { name: 'Settings' }).click();
    const cur = p2.locator('[data-testid="sessions"] li[data-current="true"]');
    await cur.waitFor({ timeout: 5000 });
    expect((await cur.innerText()).includes('127.0.0.2'), `the session from the relay: ${await cur.innerText()}`);
    await ctx2.close();
  });

  await step('no errors on the page', async () => {
    expect(pageErrors.length === 0, pageErrors.join('\n'));
  });
} catch {
  if (dump) console.log(`# page state:\n${await dump().catch((e) => String(e))}`);
} finally {
  await browser?.close().catch(() => {});
  if (tally.failed > 0) {
    if (svc?.log.length) console.log(`# lastseend log (tail):\n${svc.log.slice(-20).join('')}`);
    if (agent?.text) console.log(`# agent output (tail):\n${agent.text.slice(-2000)}`);
  }
  await pairCmd?.stop().catch(() => {});
  await agent?.stop().catch(() => {});
  xvfb?.stop();
  relay?.close();
  await svc?.stop().catch(() => {});
  tmp.remove();
}
tally.exit();
