import { describe, expect, it } from 'vitest';
import { pairedDevice, pairingOutcome, pollPairing, serverURL } from './pairing';
import type { LocalPairStatus } from './types';

/** A hand-driven timer: run() fires what is due, in order. */
function clock() {
  const timers: { fn: () => void; ms: number; id: number }[] = [];
  let next = 1;
  return {
    timers,
    setTimer: (fn: () => void, ms: number) => {
      const id = next++;
      timers.push({ fn, ms, id });
      return id;
    },
    clearTimer: (id: unknown) => {
      const i = timers.findIndex((t) => t.id === id);
      if (i >= 0) timers.splice(i, 1);
    },
    /** Fires the one pending timer and lets its ask settle. */
    async fire() {
      const t = timers.shift();
      if (!t) throw new Error('no timer pending');
      t.fn();
      for (let i = 0; i < 5; i++) await Promise.resolve();
    },
  };
}

const status = (state: LocalPairStatus['state'], extra: Partial<LocalPairStatus> = {}): LocalPairStatus => ({ state, ...extra });

describe('pollPairing', () => {
  it('asks every interval until the pairing is over', async () => {
    const c = clock();
    const answers = [status('pending', { user_code: 'BDFGHJKL' }), status('pending'), status('approved', { device_name: 'desk' })];
    const seen: string[] = [];
    let asks = 0;
    pollPairing(
      async () => answers[asks++],
      (s) => seen.push(s.state),
      () => seen.push('error'),
      { intervalMs: 2000, setTimer: c.setTimer, clearTimer: c.clearTimer },
    );
    expect(c.timers.map((t) => t.ms)).toEqual([2000]);
    await c.fire();
    await c.fire();
    await c.fire();
    expect(seen).toEqual(['pending', 'pending', 'approved']);
    expect(c.timers).toHaveLength(0); // nothing more is asked
    expect(asks).toBe(3);
  });

  it('keeps asking after a failed ask', async () => {
    const c = clock();
    let asks = 0;
    const seen: string[] = [];
    pollPairing(
      async () => {
        asks++;
        if (asks === 1) throw new Error('agent restarting');
        return status('denied');
      },
      (s) => seen.push(s.state),
      (e) => seen.push(String((e as Error).message)),
      { setTimer: c.setTimer, clearTimer: c.clearTimer },
    );
    await c.fire();
    await c.fire();
    expect(seen).toEqual(['agent restarting', 'denied']);
    expect(c.timers).toHaveLength(0);
  });

  it('stops at once when told, even with an ask in flight', async () => {
    const c = clock();
    let release: (s: LocalPairStatus) => void = () => {};
    const seen: string[] = [];
    const stop = pollPairing(
      () => new Promise<LocalPairStatus>((r) => (release = r)),
      (s) => seen.push(s.state),
      () => seen.push('error'),
      { setTimer: c.setTimer, clearTimer: c.clearTimer },
    );
    await c.fire(); // the ask is now in flight
    stop();
    release(status('pending'));
    for (let i = 0; i < 5; i++) await Promise.resolve();
    expect(seen).toEqual([]);
    expect(c.timers).toHaveLength(0);

    const c2 = clock();
    const stop2 = pollPairing(async () => status('pending'), () => {}, () => {}, { setTimer: c2.setTimer, clearTimer: c2.clearTimer });
    stop2();
    expect(c2.timers).toHaveLength(0);
  });
});

describe('serverURL', () => {
  it('adds https:// and drops trailing slashes', () => {
    expect(serverURL(' lastseen.example.org/ ')).toBe('https://lastseen.example.org');
    expect(serverURL('http://127.0.0.1:8080//')).toBe('http://127.0.0.1:8080');
    expect(serverURL('HTTPS://x.org/base')).toBe('HTTPS://x.org/base');
    expect(serverURL('   ')).toBe('');
  });
});

describe('pairing outcome', () => {
  it('names the server and the device when approved', () => {
    expect(pairingOutcome(status('approved'), 'https://ls.example.org', 'desk')).toEqual({ ok: true, text: 'Connected to https://ls.example.org as desk.' });
    expect(pairingOutcome(status('approved'), '', '')).toEqual({ ok: true, text: 'Connected to the server.' });
  });
  it('explains the other endings', () => {
    expect(pairingOutcome(status('denied'), 'u', 'd').text).toMatch(/denied/);
    expect(pairingOutcome(status('expired'), 'u', 'd').text).toMatch(/expired/);
    expect(pairingOutcome(status('failed', { error: 'TLS handshake' }), 'u', 'd').text).toBe('Pairing failed: TLS handshake');
    expect(pairingOutcome(status('failed'), 'u', 'd').ok).toBe(false);
  });
  it('reads the device name whichever way the agent gives it', () => {
    expect(pairedDevice(status('approved', { device: 'desk' }))).toBe('desk');
    expect(pairedDevice(status('approved', { device: { name: 'desk' } }))).toBe('desk');
    expect(pairedDevice(status('approved', { device_name: 'desk' }))).toBe('desk');
    expect(pairedDevice(status('approved'))).toBe('');
  });
});
