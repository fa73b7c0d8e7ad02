import { describe, expect, it } from 'vitest';
import { addDays, civilDate, dayRange, isoDate, startOfDay, validZone, weekday, weekStart, zoneOffset, zoneOr } from './zone';

const H = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString();

describe('startOfDay and dayRange', () => {
  it.each([
    // [zone, date, first instant (UTC), hours in the day]
    ['Europe/Paris', '2026-03-29', '2026-03-28T23:00:00.000Z', 23], // spring forward 02:00 → 03:00
    ['Europe/Paris', '2026-10-25', '2026-10-24T22:00:00.000Z', 25], // fall back 03:00 → 02:00
    ['Europe/Paris', '2026-11-25', '2026-11-24T23:00:00.000Z', 24],
    ['Europe/Paris', '2026-07-14', '2026-07-13T22:00:00.000Z', 24],
    ['America/New_York', '2026-03-08', '2026-03-08T05:00:00.000Z', 23],
    ['America/New_York', '2026-11-01', '2026-11-01T04:00:00.000Z', 25],
    ['America/New_York', '2026-11-02', '2026-11-02T05:00:00.000Z', 24],
    ['UTC', '2026-11-25', '2026-11-25T00:00:00.000Z', 24],
    ['Asia/Kolkata', '2026-11-25', '2026-11-24T18:30:00.000Z', 24],
    ['America/Santiago', '2026-09-06', '2026-09-06T04:00:00.000Z', 23], // clocks jump at midnight: the day starts at 01:00
    ['Pacific/Chatham', '2026-11-25', '2026-11-24T10:15:00.000Z', 24], // +13:45
  ])('%s %s starts at %s and lasts %s h', (tz, date, first, hours) => {
    const [y, m, d] = date.split('-').map(Number);
    const [a, b] = dayRange({ year: y, month: m, day: d }, tz);
    expect(iso(a)).toBe(first);
    expect((b - a) / H).toBe(hours);
  });

  it('lands on the first instant of the date even where midnight does not exist', () => {
    // Some zones change clocks at midnight; whatever the rules, the day must
    // start on that date with the instant before it on the previous date.
    for (const tz of ['America/Santiago', 'America/Havana', 'Asia/Beirut', 'America/Asuncion']) {
      let d = { year: 2026, month: 1, day: 1 };
      for (let i = 0; i < 366; i++, d = addDays(d, 1)) {
        const t = startOfDay(d, tz);
        expect(isoDate(civilDate(t, tz)), `${tz} ${isoDate(d)}`).toBe(isoDate(d));
        expect(isoDate(civilDate(t - 60_000, tz)), `${tz} ${isoDate(d)}`).toBe(isoDate(addDays(d, -1)));
      }
    }
  });
});

describe('civil dates', () => {
  it('civilDate reads the date in the zone', () => {
    const t = Date.parse('2026-11-25T23:30:00Z');
    expect(isoDate(civilDate(t, 'UTC'))).toBe('2026-11-25');
    expect(isoDate(civilDate(t, 'Europe/Paris'))).toBe('2026-11-26');
    expect(isoDate(civilDate(t, 'America/New_York'))).toBe('2026-11-25');
  });
  it('addDays crosses months and years', () => {
    expect(isoDate(addDays({ year: 2026, month: 12, day: 30 }, 3))).toBe('2027-01-02');
    expect(isoDate(addDays({ year: 2028, month: 3, day: 1 }, -1))).toBe('2028-02-29');
  });
  it('weeks start on Monday', () => {
    expect(weekday({ year: 2026, month: 11, day: 23 })).toBe(0); // a Monday
    expect(weekday({ year: 2026, month: 11, day: 29 })).toBe(6);
    expect(isoDate(weekStart({ year: 2026, month: 11, day: 25 }))).toBe('2026-11-23');
  });
  it('zoneOffset follows daylight saving', () => {
    expect(zoneOffset(Date.parse('2026-01-15T12:00:00Z'), 'Europe/Paris')).toBe(H);
    expect(zoneOffset(Date.parse('2026-07-15T12:00:00Z'), 'Europe/Paris')).toBe(2 * H);
    expect(zoneOffset(Date.parse('2026-07-15T12:00:00Z'), 'America/New_York')).toBe(-4 * H);
  });
  it('falls back to UTC for unknown zones', () => {
    expect(validZone('Europe/Paris')).toBe(true);
    expect(validZone('Mars/Olympus')).toBe(false);
    expect(validZone('')).toBe(false);
    expect(zoneOr('Mars/Olympus')).toBe('UTC');
    expect(zoneOr('Asia/Tokyo')).toBe('Asia/Tokyo');
  });
});
