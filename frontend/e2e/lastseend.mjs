// Runs a real lastseend for the browser tests: admin commands against a temp
// database, and the service itself on a loopback port it can be stopped and
// restarted on.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The lastseend binary: $LASTSEEND_BIN, else built from this checkout into dir. */
export function lastseendBinary(dir) {
  const env = process.env.LASTSEEND_BIN;
  if (env) {
    if (!existsSync(env)) throw new Error(`LASTSEEND_BIN=${env} does not exist`);
    return resolve(env);
  }
  const out = join(dir, 'lastseend');
  console.log('# LASTSEEND_BIN not set: building backend/cmd/lastseend');
  execFileSync('go', ['build', '-o', out, './backend/cmd/lastseend'], { cwd: repo, stdio: 'inherit' });
  return out;
}

/** The lastseen-agent binary: $LASTSEEN_AGENT_BIN, else built from this checkout into dir. */
export function agentBinary(dir) {
  const env = process.env.LASTSEEN_AGENT_BIN;
  if (env) {
    if (!existsSync(env)) throw new Error(`LASTSEEN_AGENT_BIN=${env} does not exist`);
    return resolve(env);
  }
  const out = join(dir, 'lastseen-agent');
  console.log('# LASTSEEN_AGENT_BIN not set: building app/cmd/lastseen-agent');
  execFileSync('go', ['build', '-o', out, './app/cmd/lastseen-agent'], { cwd: repo, stdio: 'inherit' });
  return out;
}

export async function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

export class Lastseend {
  constructor(bin, dir, port) {
    this.bin = bin;
    this.db = join(dir, 'lastseen.db');
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.proc = null;
    this.log = [];
  }

  /** Runs an admin command and returns the last line of its output (where tokens are printed). */
  admin(...args) {
    const out = execFileSync(this.bin, [...args, '--db', this.db], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = out.trim().split('\n');
    return lines[lines.length - 1].trim();
  }

  async start() {
    const p = spawn(this.bin, ['serve', '--addr', `127.0.0.1:${this.port}`, '--db', this.db], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = p;
    const keep = (b) => {
      this.log.push(b.toString());
      if (this.log.length > 200) this.log.shift();
    };
    p.stdout.on('data', keep);
    p.stderr.on('data', keep);
    const exited = new Promise((res) => p.once('exit', (code) => res(code)));
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r(undefined), 100))]);
      if (code !== undefined) throw new Error(`lastseend exited with ${code}:\n${this.log.join('')}`);
      try {
        const r = await fetch(`${this.url}/healthz`);
        if (r.ok) return;
      } catch {
        // not listening yet
      }
    }
    throw new Error(`lastseend did not answer /healthz within 15 s:\n${this.log.join('')}`);
  }

  async stop() {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    this.proc = null;
    const gone = new Promise((res) => p.once('exit', res));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(t);
  }
}

export function tempDir() {
  const dir = mkdtempSync(join(tmpdir(), 'lastseen-e2e-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A walk-through's steps: each is timed and printed as "ok" or "FAIL", the
 * first failure ends the walk (its error is rethrown), and exit() prints the
 * count and exits non-zero unless every step passed.
 */
export function newTally() {
  const t = {
    passed: 0,
    failed: 0,
    async step(name, fn) {
      const t0 = Date.now();
      try {
        await fn();
        t.passed++;
        console.log(`ok   ${name} (${Date.now() - t0} ms)`);
      } catch (err) {
        t.failed++;
        console.log(`FAIL ${name}\n     ${String(err?.stack ?? err).split('\n').slice(0, 6).join('\n     ')}`);
        throw err;
      }
    },
    exit() {
      console.log(`${t.passed} passed, ${t.failed} failed`);
      process.exit(t.failed > 0 || t.passed === 0 ? 1 : 0);
    },
  };
  return t;
}

/** expect throws msg unless cond holds. */
export function expect(cond, msg) {
  if (!cond) throw new Error(msg);
}
