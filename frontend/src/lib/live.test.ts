import { describe, expect, it } from 'vitest';
import { applyPresence, applySession, applySpanWhy, feedItem, isNewEvent, pushFeed, userWhy } from './live';
import type { DeviceView, PresenceChange, Session, State, UserPresence, Why } from './types';

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

describe('why a device is present', () => {
  it('follows the events: set when active, gone when not', () => {
    let after = applyPresence(users(), change({ why: 'call' }));
    expect(after[0].devices[1].why).toBe('call');
    after = applyPresence(after, change({ why: 'media' }));
    expect(after[0].devices[1].why).toBe('media');
    after = applyPresence(after, change({})); // active again by input, from a service that omits it
    expect(after[0].devices[1]).not.toHaveProperty('why');
    after = applyPresence(applyPresence(after, change({ why: 'call' })), change({ status: 'idle', user_status: 'idle' }));
    expect(after[0].devices[1]).not.toHaveProperty('why');
    // A device or user first met through an event keeps its reason too.
    after = applyPresence(after, change({ handle: 'cy', device_id: 9, device_name: 'pc', why: 'media' }));
    expect(after[2].devices[0].why).toBe('media');
  });
});

describe('applySpanWhy', () => {
  const active = (): UserPresence[] => applyPresence(users(), change({ device_id: 1, status: 'active' }));
  const span = (p: Partial<Session>): Session => ({ id: 9, device_id: 1, state: 'active', start: 'x', end: 'x', open: true, ...p });
  it('takes the reason of a span that opens on an active device', () => {
    const before = active();
    const after = applySpanWhy(before, 'ada', span({ why: 'call' }), true);
    expect(after[0].devices[0].why).toBe('call');
    expect(before[0].devices[0]).not.toHaveProperty('why'); // not mutated
    expect(applySpanWhy(after, 'ada', span({}), true)[0].devices[0].why).toBe('input'); // back to typing
  });
  it.each<[string, Partial<Session>, boolean, string]>([
    ['a span that ended', { why: 'call' }, false, 'ada'],
    ['a span of another state', { state: 'idle', why: 'call' }, true, 'ada'],
    ['another user', { why: 'call' }, true, 'bob'],
    ['an unknown device', { device_id: 7, why: 'call' }, true, 'ada'],
    ['the reason it already has', { why: 'input' }, true, 'ada'],
  ])('leaves the users alone for %s', (_, p, open, handle) => {
    const before = active();
    expect(applySpanWhy(before, handle, span(p), open)).toBe(before);
  });
  it('leaves a device that is not active to its presence event', () => {
    const before = users(); // laptop idle
    expect(applySpanWhy(before, 'ada', span({ why: 'call' }), true)).toBe(before);
  });
});

describe('userWhy', () => {
  const dev = (status: State, why?: Why): DeviceView => ({ id: 1, name: 'd', os: '', status, last_seen: null, ...(why ? { why } : {}) });
  it.each<[string, DeviceView[], Why | undefined]>([
    ['no devices', [], undefined],
    ['nothing active', [dev('idle'), dev('away')], undefined],
    ['active without a reason is input', [dev('active')], 'input'],
    ['a call', [dev('idle'), dev('active', 'call')], 'call'],
    ['media', [dev('active', 'media')], 'media'],
    ['a call wins over media', [dev('active', 'media'), dev('active', 'call')], 'call'],
    ['input anywhere wins: at a keyboard', [dev('active', 'call'), dev('active', 'input')], 'input'],
  ])('%s', (_, devices, want) => {
    expect(userWhy({ devices })).toBe(want);
  });
  it('knows nobody', () => expect(userWhy(null)).toBeUndefined());
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
  it('says why an active device is present', () => {
    const call = feedItem({ id: '8', kind: 'presence', at: 'x', presence: change({ why: 'call' }) }, name);
    expect(call).toMatchObject({ text: 'ada · desktop is active · in a call', why: 'call' });
    const input = feedItem({ id: '9', kind: 'presence', at: 'x', presence: change({ why: 'input' }) }, name);
    expect(input.text).toBe('ada · desktop is active');
    expect(input).not.toHaveProperty('why');
    const media = feedItem({ id: '10', kind: 'session', at: 'x', session: { ...s(1, 'x'), why: 'media' }, open: true }, name);
    expect(media).toMatchObject({ text: 'laptop: active span started · watching', why: 'media' });
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
