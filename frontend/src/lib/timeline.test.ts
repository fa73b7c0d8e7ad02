import { describe, expect, it } from 'vitest';
import { dayTicks, gapPhrase, type GapSession, layoutTimeline, ranges, visibleEnd, weekTicks } from './timeline';
import type { Session } from './types';

const T = (s: string) => Date.parse(s);
const span = (id: number, device_id: number, state: Session['state'], start: string, end: string, open = false): Session => ({
  id,
  device_id,
  state,
  start,
  end,
  duration_s: (T(end) - T(start)) / 1000,
  open,
});

const day = { from: T('2026-11-25T00:00:00Z'), to: T('2026-11-26T00:00:00Z') };

describe('layoutTimeline', () => {
  it('clips spans to the range and keeps their own times for the tooltip', () => {
    const lanes = layoutTimeline({
      ...day,
      now: T('2026-11-26T10:00:00Z'),
      tz: 'UTC',
      devices: [{ id: 1, name: 'laptop', status: 'offline' }],
      sessions: [
        span(1, 1, 'active', '2026-11-24T22:00:00Z', '2026-11-25T06:00:00Z'), // starts the day before
        span(2, 1, 'idle', '2026-11-25T18:00:00Z', '2026-11-26T06:00:00Z'), // ends the day after
        span(3, 1, 'away', '2026-11-23T01:00:00Z', '2026-11-23T02:00:00Z'), // outside
      ],
    });
    expect(lanes).toHaveLength(1);
    const [a, b] = lanes[0].segments;
    expect(lanes[0].segments).toHaveLength(2);
    expect(a.left).toBe(0);
    expect(a.width).toBeCloseTo(6 / 24);
    expect(a.start).toBe(T('2026-11-24T22:00:00Z'));
    expect(a.label).toContain('8 h');
    expect(b.left).toBeCloseTo(18 / 24);
    expect(b.left + b.width).toBeCloseTo(1);
    expect(b.label).toMatch(/^idle: .* 12 h$/);
  });

  it('leaves offline as gaps, only up to now', () => {
    const [lane] = layoutTimeline({
      ...day,
      now: T('2026-11-25T12:00:00Z'),
      tz: 'UTC',
      devices: [{ id: 1, name: 'laptop', status: 'offline' }],
      sessions: [
        span(1, 1, 'active', '2026-11-25T08:00:00Z', '2026-11-25T09:00:00Z'),
        span(2, 1, 'offline', '2026-11-25T09:00:00Z', '2026-11-25T10:00:00Z'),
        span(3, 1, 'away', '2026-11-25T10:00:00Z', '2026-11-25T11:00:00Z'),
      ],
    });
    expect(lane.segments.map((s) => s.state)).toEqual(['active', 'away']);
    expect(lane.gaps.map((g) => [new Date(g.start).toISOString(), new Date(g.end).toISOString()])).toEqual([
      ['2026-11-25T00:00:00.000Z', '2026-11-25T08:00:00.000Z'],
      ['2026-11-25T09:00:00.000Z', '2026-11-25T10:00:00.000Z'],
      ['2026-11-25T11:00:00.000Z', '2026-11-25T12:00:00.000Z'],
    ]);
  });

  it('ignores gaps shorter than minGapMs (beat jitter between adjacent spans)', () => {
    const [lane] = layoutTimeline({
      ...day,
      now: T('2026-11-25T09:00:00Z'),
      tz: 'UTC',
      minGapMs: 60_000,
      devices: [{ id: 1, name: 'laptop', status: 'active' }],
      sessions: [
        span(1, 1, 'active', '2026-11-25T00:00:00Z', '2026-11-25T08:00:00Z'),
        span(2, 1, 'idle', '2026-11-25T08:00:30Z', '2026-11-25T09:00:00Z'),
      ],
    });
    expect(lane.gaps).toEqual([]);
  });

  it('makes one lane per device, empty ones too, then unknown devices, then local history', () => {
    const lanes = layoutTimeline({
      ...day,
      now: T('2026-11-25T12:00:00Z'),
      tz: 'UTC',
      devices: [
        { id: 2, name: 'desktop', status: 'active' },
        { id: 1, name: 'laptop', status: 'offline' },
      ],
      sessions: [
        span(1, 1, 'active', '2026-11-25T08:00:00Z', '2026-11-25T09:00:00Z'),
        span(2, 9, 'active', '2026-11-25T08:00:00Z', '2026-11-25T09:00:00Z'),
      ],
      local: { deviceId: 2, name: 'This device', sessions: [span(7, 2, 'idle', '2026-11-25T10:00:00Z', '2026-11-25T11:00:00Z')] },
    });
    expect(lanes.map((l) => [l.name, l.segments.length, l.local])).toEqual([
      ['desktop', 0, false],
      ['laptop', 1, false],
      ['Device 9', 1, false],
      ['This device', 1, true],
    ]);
    expect(lanes[3].segments[0].label).toContain('(local)');
    expect(lanes[3].segments[0].key).toBe('l7');
  });

  it('tells and marks why an active span was present', () => {
    const [lane] = layoutTimeline({
      ...day,
      now: T('2026-11-25T12:00:00Z'),
      tz: 'UTC',
      devices: [{ id: 1, name: 'laptop', status: 'offline' }],
      sessions: [
        { ...span(1, 1, 'active', '2026-11-25T08:00:00Z', '2026-11-25T09:00:00Z'), why: 'input' },
        { ...span(2, 1, 'active', '2026-11-25T09:00:00Z', '2026-11-25T10:00:00Z'), why: 'call' },
        { ...span(3, 1, 'active', '2026-11-25T10:00:00Z', '2026-11-25T10:30:00Z'), why: 'media' },
        { ...span(4, 1, 'idle', '2026-11-25T10:30:00Z', '2026-11-25T11:00:00Z'), why: 'call' }, // not active: no reason
        span(5, 1, 'active', '2026-11-25T11:00:00Z', '2026-11-25T11:30:00Z'),
      ],
    });
    expect(lane.segments.map((g) => g.why)).toEqual([undefined, 'call', 'media', undefined, undefined]);
    expect(lane.segments.map((g) => g.label)).toEqual([
      'active: Wed 25 Nov, 08:00 – 09:00, 1 h',
      'active · in a call: Wed 25 Nov, 09:00 – 10:00, 1 h',
      'active · watching: Wed 25 Nov, 10:00 – 10:30, 30 min',
      'idle: Wed 25 Nov, 10:30 – 11:00, 30 min',
      'active: Wed 25 Nov, 11:00 – 11:30, 30 min',
    ]);
  });

  it('draws an open span to now while its device is still in that state', () => {
    const now = T('2026-11-25T12:00:00Z');
    const s = span(1, 1, 'active', '2026-11-25T10:00:00Z', '2026-11-25T11:59:30Z', true);
    expect(visibleEnd(s, 'active', now)).toBe(now);
    expect(visibleEnd(s, 'idle', now)).toBe(T(s.end));
    expect(visibleEnd({ ...s, open: false }, 'active', now)).toBe(T(s.end));
    const [lane] = layoutTimeline({ ...day, now, tz: 'UTC', devices: [{ id: 1, name: 'l', status: 'active' }], sessions: [s] });
    expect(lane.segments[0].open).toBe(true);
    expect(lane.segments[0].label).toContain('now, 2 h so far');
    expect(lane.gaps.at(-1)!.end).toBe(T('2026-11-25T10:00:00Z'));
  });
});

describe('why there is a gap', () => {
  const at = (h: string) => `2026-11-25T${h}:00Z`;
  const ended = (id: number, state: Session['state'], a: string, b: string, end_reason?: GapSession['end_reason'], extra: Partial<GapSession> = {}): GapSession => ({
    ...span(id, 1, state, at(a), at(b)),
    ...(end_reason ? { end_reason } : {}),
    ...extra,
  });
  const lay = (sessions: Session[], now = '23:00', status: Session['state'] = 'offline') =>
    layoutTimeline({ ...day, now: T(at(now)), tz: 'UTC', minGapMs: 90_000, devices: [{ id: 1, name: 'laptop', status }], sessions })[0];

  it('labels each gap by why the span before it ended', () => {
    const lane = lay([
      ended(1, 'active', '01:00', '02:00', 'sleep'),
      ended(2, 'active', '03:00', '04:00', 'shutdown'),
      ended(3, 'idle', '05:00', '06:00', 'quit'),
      ended(4, 'active', '07:00', '08:00', 'paused'),
      ended(5, 'active', '09:00', '10:00', 'invisible'),
      ended(6, 'active', '11:00', '12:00', 'silence'),
      ended(7, 'active', '13:00', '14:00'), // an older service or agent: nobody said why
      ended(8, 'active', '15:00', '16:00', 'sleep'),
    ]);
    expect(lane.gaps.map((g) => g.text)).toEqual([
      'offline', // before the first span of the day: nothing to tell by
      'asleep',
      'shut down',
      'quit',
      'paused',
      'invisible',
      'no signal',
      'offline',
      'asleep', // the offline stretch up to now
    ]);
    expect(lane.gaps[1].label).toBe('asleep · 1 h');
    expect(lane.gaps[1].reason).toBe('sleep');
    expect(lane.gaps[0].reason).toBeUndefined();
    expect(lane.gaps.at(-1)!.label).toBe('asleep · 7 h');
    expect(lane.segments[0].label).toBe('active: Wed 25 Nov, 01:00 – 02:00, 1 h, then asleep');
  });

  it('tells the stretch after a device fell silent as no signal', () => {
    // The service says silence for a tail past its TTL that no beat closed.
    const lane = lay([{ ...ended(1, 'active', '08:00', '09:00', 'silence'), open: false }], '10:00');
    expect(lane.gaps.map((g) => [g.text, new Date(g.start).toISOString()])).toEqual([
      ['offline', '2026-11-25T00:00:00.000Z'],
      ['no signal', '2026-11-25T09:00:00.000Z'],
    ]);
  });

  it('says nothing of a reason while the span still runs', () => {
    const open = { ...ended(1, 'active', '08:00', '09:59', 'sleep'), open: true };
    const lane = lay([open], '10:00', 'active');
    expect(lane.segments[0].endReason).toBeUndefined();
    expect(lane.segments[0].label).not.toContain('asleep');
  });

  it('marks away by the lock and spans replayed after a network outage', () => {
    const lane = lay([
      { ...ended(1, 'away', '08:00', '09:00'), why: 'locked' as Session['why'] },
      ended(2, 'away', '09:00', '10:00'),
      ended(3, 'active', '10:00', '11:00', 'quit', { replayed: true }),
    ]);
    expect(lane.segments.map((g) => [g.locked ?? false, g.replayed ?? false])).toEqual([
      [true, false],
      [false, false],
      [false, true],
    ]);
    expect(lane.segments[0].label).toBe('away · locked: Wed 25 Nov, 08:00 – 09:00, 1 h');
    expect(lane.segments[1].label).toBe('away: Wed 25 Nov, 09:00 – 10:00, 1 h');
    expect(lane.segments[2].label).toBe('active · no network — replayed later: Wed 25 Nov, 10:00 – 11:00, 1 h, then quit');
    expect(lane.gaps.at(-1)!.text).toBe('quit');
  });

  it('takes the reason of the span that reached furthest, and ignores one it does not know', () => {
    const lane = lay([
      ended(1, 'active', '08:00', '10:00', 'shutdown'),
      ended(2, 'idle', '08:30', '09:00', 'sleep'), // inside the first: not what the gap follows
      { ...ended(3, 'active', '11:00', '12:00'), end_reason: 'nap' as GapSession['end_reason'] },
    ]);
    expect(lane.gaps.map((g) => g.text)).toEqual(['offline', 'shut down', 'offline']);
    expect(gapPhrase(undefined)).toBe('offline');
  });
});

describe('ticks and ranges', () => {
  it('labels local hours on a 23-hour day in Paris', () => {
    const from = T('2026-03-28T23:00:00Z');
    const to = T('2026-03-29T22:00:00Z');
    const labels = dayTicks(from, to, 'Europe/Paris', 3).map((t) => t.label);
    expect(labels).toEqual(['00:00', '03:00', '06:00', '09:00', '12:00', '15:00', '18:00', '21:00', '00:00']);
  });
  it('labels local hours in a half-hour zone', () => {
    const from = T('2026-11-24T18:30:00Z');
    const labels = dayTicks(from, from + 24 * 3_600_000, 'Asia/Kolkata', 6).map((t) => t.label);
    expect(labels).toEqual(['00:00', '06:00', '12:00', '18:00', '00:00']);
  });
  it('week ticks sit at local midnights, 25-hour day included', () => {
    const ticks = weekTicks({ year: 2026, month: 10, day: 19 }, 'Europe/Paris');
    expect(ticks.map((t) => t.label)).toEqual(['Mon 19', 'Tue 20', 'Wed 21', 'Thu 22', 'Fri 23', 'Sat 24', 'Sun 25']);
    expect(ticks[0].left).toBe(0);
    expect(ticks[6].left).toBeCloseTo((6 * 24) / (7 * 24 + 1));
  });
  it('today and this week in the user zone', () => {
    // 23:30 UTC on Sunday 29 Nov is already Monday 30 Nov in Paris.
    const r = ranges(T('2026-11-29T23:30:00Z'), 'Europe/Paris');
    expect(new Date(r.today[0]).toISOString()).toBe('2026-11-29T23:00:00.000Z');
    expect(new Date(r.week[0]).toISOString()).toBe('2026-11-29T23:00:00.000Z');
    expect((r.week[1] - r.week[0]) / 3_600_000).toBe(168);
    const ny = ranges(T('2026-11-29T23:30:00Z'), 'America/New_York');
    expect(new Date(ny.week[0]).toISOString()).toBe('2026-11-23T05:00:00.000Z');
  });
});

import { activeUnion } from './timeline';

describe('activeUnion', () => {
  it('counts overlapping devices once and only active spans', () => {
    const sessions = [
      span(1, 1, 'active', '2026-11-25T08:00:00Z', '2026-11-25T10:00:00Z'),
      span(2, 2, 'active', '2026-11-25T09:00:00Z', '2026-11-25T11:00:00Z'),
      span(3, 2, 'idle', '2026-11-25T11:00:00Z', '2026-11-25T12:00:00Z'),
      span(4, 1, 'active', '2026-11-24T23:00:00Z', '2026-11-25T00:30:00Z'), // clipped at midnight
    ];
    expect(activeUnion(sessions, () => 'offline', day.from, day.to, T('2026-11-25T13:00:00Z'))).toBe(3.5 * 3600);
  });
  it('runs an open active span to now', () => {
    const sessions = [span(1, 1, 'active', '2026-11-25T08:00:00Z', '2026-11-25T08:30:00Z', true)];
    expect(activeUnion(sessions, () => 'active', day.from, day.to, T('2026-11-25T09:00:00Z'))).toBe(3600);
  });
});
