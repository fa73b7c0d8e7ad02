import { describe, expect, it } from 'vitest';
import { applyPresence, applySession, feedItem, isNewEvent, pushFeed } from './live';
import type { PresenceChange, Session, UserPresence } from './types';

const users = (): UserPresence[] => [
  {
    handle: 'ada',
    name: 'Ada',
    status: 'idle',
    last_seen: '2026-11-25T10:00:00Z',
    devices: [
      { id: 1, name: 'laptop', os: 'linux', status: 'idle', last_seen: '2026-11-25T10:00:00Z' },
      { id: 2, name: 'desktop', os: 'linux', status: 'offline', last_seen: null },
    ],
  },
  { handle: 'bob', name: 'Bob', status: 'offline', last_seen: null, devices: [] },
];

const change = (p: Partial<PresenceChange>): PresenceChange => ({
  handle: 'ada',
  device_id: 2,
  device_name: 'desktop',
  status: 'active',
  user_status: 'active',
  last_seen: '2026-11-25T11:00:00Z',
  ...p,
});

describe('applyPresence', () => {
  it('updates the device and the user, leaving others and the input alone', () => {
    const before = users();
    const after = applyPresence(before, change({}));
    expect(after[0].status).toBe('active');
    expect(after[0].last_seen).toBe('2026-11-25T11:00:00Z');
    expect(after[0].devices[1]).toMatchObject({ status: 'active', last_seen: '2026-11-25T11:00:00Z' });
    expect(after[0].devices[0]).toBe(before[0].devices[0]);
    expect(after[1]).toBe(before[1]);
    expect(before[0].status).toBe('idle'); // not mutated
  });

  it('keeps a device last_seen when it is not the active one', () => {
    const after = applyPresence(users(), change({ device_id: 1, status: 'away', user_status: 'away', last_seen: '2026-11-25T10:00:00Z' }));
    expect(after[0].devices[0]).toMatchObject({ status: 'away', last_seen: '2026-11-25T10:00:00Z' });
    expect(after[0].status).toBe('away');
  });

  it('never moves last_seen back', () => {
    const after = applyPresence(users(), change({ device_id: 1, status: 'active', last_seen: '2026-11-25T09:00:00Z' }));
    expect(after[0].last_seen).toBe('2026-11-25T10:00:00Z');
    expect(after[0].devices[0].last_seen).toBe('2026-11-25T10:00:00Z');
  });

  it('adds unknown devices and users', () => {
    let after = applyPresence(users(), change({ device_id: 3, device_name: 'phone' }));
    expect(after[0].devices.map((d) => d.name)).toEqual(['laptop', 'desktop', 'phone']);
    after = applyPresence(after, change({ handle: 'cy', device_id: 9, device_name: 'pc' }));
    expect(after.map((u) => u.handle)).toEqual(['ada', 'bob', 'cy']);
    expect(after[2].devices[0]).toMatchObject({ id: 9, name: 'pc', status: 'active' });
  });
});

const s = (id: number, start: string, end = start, open = false): Session => ({ id, device_id: 1, state: 'active', start, end, open });

describe('applySession', () => {
  it('inserts in start order', () => {
    const list = [s(1, '2026-11-25T08:00:00Z'), s(3, '2026-11-25T10:00:00Z')];
    const out = applySession(list, s(2, '2026-11-25T09:00:00Z'));
    expect(out.map((x) => x.id)).toEqual([1, 2, 3]);
    expect(applySession(list, s(4, '2026-11-25T11:00:00Z')).map((x) => x.id)).toEqual([1, 3, 4]);
    expect(applySession([], s(4, '2026-11-25T11:00:00Z')).map((x) => x.id)).toEqual([4]);
    expect(list).toHaveLength(2);
  });
  it('replaces a span by id (an open span that ended)', () => {
    const list = [s(1, '2026-11-25T08:00:00Z', '2026-11-25T08:10:00Z', true)];
    const out = applySession(list, s(1, '2026-11-25T08:00:00Z', '2026-11-25T09:00:00Z', false));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ end: '2026-11-25T09:00:00Z', open: false });
  });
});

describe('feed', () => {
  const name = (id: number) => (id === 1 ? 'laptop' : `Device ${id}`);
  it('describes events', () => {
    expect(feedItem({ id: '5', kind: 'presence', at: 'x', presence: change({}) }, name).text).toBe('ada · desktop is active');
    expect(feedItem({ id: '6', kind: 'session', at: 'x', session: s(1, 'x'), open: true }, name).text).toBe('laptop: active span started');
    expect(feedItem({ id: '7', kind: 'session', at: 'x', session: s(1, 'x'), open: false }, name).text).toBe('laptop: active span ended');
  });
  it('drops replays and keeps the newest max', () => {
    let feed = pushFeed([], { id: '1', at: '', kind: 'presence', state: 'active', text: 'a' });
    feed = pushFeed(feed, { id: '1', at: '', kind: 'presence', state: 'active', text: 'a' });
    expect(feed).toHaveLength(1);
    for (let i = 2; i < 10; i++) feed = pushFeed(feed, { id: String(i), at: '', kind: 'presence', state: 'idle', text: '' }, 5);
    expect(feed.map((f) => f.id)).toEqual(['9', '8', '7', '6', '5']);
  });
  it('isNewEvent compares ids numerically', () => {
    expect(isNewEvent('', '1')).toBe(true);
    expect(isNewEvent('9', '10')).toBe(true);
    expect(isNewEvent('10', '9')).toBe(false);
    expect(isNewEvent('10', '10')).toBe(false);
    expect(isNewEvent('10', '')).toBe(true);
  });
});
