import { describe, expect, it } from 'vitest';
import { onlineCount, sortTeam, toggleWatch } from './team';
import type { State, UserPresence } from './types';

const u = (handle: string, status: State, last_seen: string | null, name = ''): UserPresence => ({ handle, name, status, last_seen, devices: [] });

describe('team', () => {
  it('counts active and idle people as online, not away or offline', () => {
    expect(onlineCount([u('a', 'active', null), u('b', 'idle', null), u('c', 'away', null), u('d', 'offline', null)])).toBe(2);
    expect(onlineCount([])).toBe(0);
  });

  it('sorts by state, then the most recently seen, never seen last, then by name', () => {
    const got = sortTeam([
      u('off-old', 'offline', '2026-12-01T10:00:00Z'),
      u('never', 'offline', null),
      u('away', 'away', '2026-12-01T09:00:00Z'),
      u('off-new', 'offline', '2026-12-02T10:00:00Z'),
      u('idle', 'idle', '2026-12-02T11:00:00Z'),
      u('zed', 'active', '2026-12-02T12:00:00Z', 'Zed'),
      u('amy', 'active', '2026-12-02T12:00:00Z', 'Amy'),
      u('act-old', 'active', '2026-12-02T11:59:00Z'),
    ]);
    expect(got.map((x) => x.handle)).toEqual(['amy', 'zed', 'act-old', 'idle', 'away', 'off-new', 'off-old', 'never']);
  });

  it('does not change the list it is given', () => {
    const list = [u('b', 'offline', null), u('a', 'active', null)];
    sortTeam(list);
    expect(list.map((x) => x.handle)).toEqual(['b', 'a']);
  });
});

describe('toggleWatch', () => {
  function store(init: string[]) {
    let cur = new Set(init);
    const seen: string[][] = [];
    return {
      get: () => cur,
      set: (s: Set<string>) => {
        cur = s;
        seen.push([...s].sort());
      },
      seen,
    };
  }

  it('shows the change before the service answers and keeps it', async () => {
    const s = store([]);
    let release!: () => void;
    const p = toggleWatch(s.get, s.set, 'ada', true, () => new Promise<void>((r) => (release = r)));
    expect([...s.get()]).toEqual(['ada']);
    release();
    await p;
    expect([...s.get()]).toEqual(['ada']);
  });

  it('puts back only the refused handle and throws the error on', async () => {
    const s = store(['ada']);
    let fail!: (e: Error) => void;
    const p = toggleWatch(s.get, s.set, 'ada', false, () => new Promise((_, rej) => (fail = rej)));
    expect(s.get().has('ada')).toBe(false);
    // Another switch flips while the first is in flight.
    await toggleWatch(s.get, s.set, 'grace', true, async () => {});
    fail(new Error('no'));
    await expect(p).rejects.toThrow('no');
    expect([...s.get()].sort()).toEqual(['ada', 'grace']);
  });

  it('asks nothing when the switch is already where it is asked to be', async () => {
    const s = store(['ada']);
    let calls = 0;
    await toggleWatch(s.get, s.set, 'ada', true, async () => void calls++);
    expect(calls).toBe(0);
    expect(s.seen).toEqual([]);
  });
});
