import { describe, expect, it } from 'vitest';
import {
  bars,
  changeDirection,
  daysBetween,
  formatChange,
  heatCells,
  hoursMinutes,
  lastDays,
  nextSort,
  niceMax,
  niceScale,
  paging,
  rangeDates,
  stackBars,
} from './stats';
import { badgeLinks } from './badge';

describe('stats', () => {
  it('lastDays counts back across a month', () => {
    expect(lastDays({ year: 2026, month: 12, day: 2 }, 4)).toEqual(['2026-11-29', '2026-11-30', '2026-12-01', '2026-12-02']);
  });
  it.each([
    [0, 3600],
    [1, 3600],
    [3600, 3600],
    [3601, 7200],
    [5 * 3600, 6 * 3600],
    [23 * 3600, 24 * 3600],
    [25 * 3600, 25 * 3600], // a 25-hour day can exceed 24 h of union only in theory; keep it whole
  ])('niceMax(%s) = %s', (max, want) => expect(niceMax(max)).toBe(want));
  it('fills missing days with zero and scales to a round top', () => {
    const r = bars(
      [
        { date: '2026-11-24', active_s: 3 * 3600, idle_s: 60, away_s: 0 },
        { date: '2026-11-26', active_s: 5 * 3600, idle_s: 0, away_s: 0 },
        { date: '2026-10-01', active_s: 99999, idle_s: 0, away_s: 0 }, // outside the asked dates
      ],
      ['2026-11-23', '2026-11-24', '2026-11-25', '2026-11-26'],
    );
    expect(r.scale).toBe(6 * 3600);
    expect(r.bars.map((b) => [b.label, b.active_s])).toEqual([
      ['Mon 23', 0],
      ['Tue 24', 3 * 3600],
      ['Wed 25', 0],
      ['Thu 26', 5 * 3600],
    ]);
    expect(r.bars[3].h).toBeCloseTo(5 / 6);
    expect(r.total).toBe(8 * 3600);
    expect(r.average).toBe(2 * 3600);
  });
});

describe('badgeLinks', () => {
  it('builds the badge, JSON and an escaped snippet', () => {
    const l = badgeLinks('https://ls.example.org/', 'ada', 'Ada "A" <L>');
    expect(l.badge).toBe('https://ls.example.org/badge/ada.svg');
    expect(l.json).toBe('https://ls.example.org/api/v1/public/ada');
    expect(l.snippet).toBe(
      '<a href="https://ls.example.org/api/v1/public/ada"><img src="https://ls.example.org/badge/ada.svg" alt="Ada &quot;A&quot; &lt;L&gt; on Lastseen"></a>',
    );
    expect(l.embed).toBe('<script src="https://ls.example.org/embed/ada.js" data-handle="ada" async></script>');
    expect(l.fallback).toBe('<img src="https://ls.example.org/badge/ada.svg" alt="Ada &quot;A&quot; &lt;L&gt; on Lastseen">');
  });
});

describe('period changes', () => {
  it.each([
    [0, '0 m'],
    [29, '0 m'],
    [30, '1 m'],
    [45 * 60, '45 m'],
    [2 * 3600, '2 h'],
    [80 * 60, '1 h 20 m'],
    [-80 * 60, '1 h 20 m'],
    [50 * 3600 + 60, '50 h 1 m'],
  ])('hoursMinutes(%s) = %s', (s, want) => expect(hoursMinutes(s)).toBe(want));

  it('says the change against the last period so far, with its sign', () => {
    expect(formatChange(5 * 3600 + 20 * 60, 4 * 3600, 'week')).toBe('+1 h 20 m vs last week so far');
    expect(formatChange(3600, 3600 + 45 * 60, 'month')).toBe('\u221245 m vs last month so far');
    expect(formatChange(3600, 3600 + 20, 'week')).toBe('same as last week so far');
    expect(formatChange(2 * 3600, 0, 'week')).toBe('+2 h vs last week so far');
  });

  it('tells the direction for the colour', () => {
    expect(changeDirection(100, 0)).toBe('up');
    expect(changeDirection(0, 100)).toBe('down');
    expect(changeDirection(100, 90)).toBe('flat');
  });
});

describe('ranges', () => {
  const today = { year: 2026, month: 12, day: 3 };
  it('7 and 30 days end today', () => {
    expect(rangeDates('7d', today)).toEqual({ from: '2026-11-27', to: '2026-12-03' });
    expect(rangeDates('30d', today)).toEqual({ from: '2026-11-04', to: '2026-12-03' });
  });
  it('12 months start on the first of the month eleven months back', () => {
    expect(rangeDates('12m', today)).toEqual({ from: '2026-01-01', to: '2026-12-03' });
    expect(rangeDates('12m', { year: 2026, month: 3, day: 31 })).toEqual({ from: '2025-04-01', to: '2026-03-31' });
    const r = rangeDates('12m', { year: 2024, month: 12, day: 31 }) as { from: string; to: string };
    expect(daysBetween(r.from, r.to)).toBeLessThanOrEqual(366);
  });
  it('a custom range is checked', () => {
    expect(rangeDates('custom', today, { from: '2026-02-01', to: '2026-02-28' })).toEqual({ from: '2026-02-01', to: '2026-02-28' });
    expect(rangeDates('custom', today, { from: '2026-03-01', to: '2026-02-28' })).toHaveProperty('error');
    expect(rangeDates('custom', today, { from: '2025-01-01', to: '2026-02-28' })).toHaveProperty('error');
    expect(rangeDates('custom', today, { from: '', to: '2026-02-28' })).toHaveProperty('error');
  });
  it('counts days by the calendar', () => {
    expect(daysBetween('2026-03-28', '2026-03-30')).toBe(3); // across a daylight-saving change in Europe
    expect(daysBetween('2024-01-01', '2024-12-31')).toBe(366);
  });
});

describe('stacked bars', () => {
  it('one bar a day, the stack scaled to a round top', () => {
    const r = stackBars(
      [
        { date: '2026-11-28', active_s: 3 * 3600, idle_s: 1800, away_s: 1800 },
        { date: '2026-11-30', active_s: 5 * 3600, idle_s: 0, away_s: 0 },
      ],
      '2026-11-28',
      '2026-11-30',
    );
    expect(r.unit).toBe('day');
    expect(r.scale).toBe(6 * 3600);
    expect(r.bars.map((b) => [b.key, b.label, b.weekend])).toEqual([
      ['2026-11-28', 'Sat 28', true],
      ['2026-11-29', 'Sun 29', true],
      ['2026-11-30', 'Mon 30', false],
    ]);
    expect(r.bars[0].h).toEqual({ active: 0.5, idle: 1 / 12, away: 1 / 12 });
    expect(r.bars[0].long).toBe('Sat 28 Nov 2026');
    expect(r.bars[1].h.active).toBe(0);
  });
  it('one bar a month over a long range, summing its days', () => {
    const r = stackBars(
      [
        { date: '2026-01-05', active_s: 100 * 3600, idle_s: 0, away_s: 0 },
        { date: '2026-01-06', active_s: 20 * 3600, idle_s: 3600, away_s: 0 },
        { date: '2026-03-01', active_s: 3600, idle_s: 0, away_s: 0 },
      ],
      '2026-01-01',
      '2026-03-31',
    );
    expect(r.unit).toBe('month');
    expect(r.bars.map((b) => [b.label, b.active_s, b.idle_s])).toEqual([
      ['Jan', 120 * 3600, 3600],
      ['Feb', 0, 0],
      ['Mar', 3600, 0],
    ]);
    expect(r.bars[0].long).toBe('January 2026');
    expect(r.scale).toBe(200 * 3600);
  });
  it.each([
    [0, 3600],
    [5 * 3600, 6 * 3600],
    [30 * 3600, 50 * 3600],
    [121 * 3600, 200 * 3600],
    [201 * 3600, 250 * 3600],
  ])('niceScale(%s) = %s', (max, want) => expect(niceScale(max)).toBe(want));
});

describe('heatmap', () => {
  it('shades each cell by its share of the busiest one', () => {
    const hm = Array.from({ length: 7 }, () => Array(24).fill(0));
    hm[0][9] = 3600; // Monday 09:00, the busiest
    hm[0][10] = 1800;
    hm[6][23] = 1;
    hm[2][14] = 2700;
    const { cells, max, bounds } = heatCells(hm);
    expect(cells).toHaveLength(7 * 24);
    expect(max).toBe(3600);
    const at = (w: number, h: number) => cells[w * 24 + h];
    expect(at(0, 9)).toEqual({ weekday: 0, hour: 9, s: 3600, level: 4 });
    expect(at(0, 10).level).toBe(2);
    expect(at(2, 14).level).toBe(3);
    expect(at(6, 23).level).toBe(1); // any time at all is visible
    expect(at(3, 3).level).toBe(0);
    expect(bounds).toEqual([900, 1800, 2700, 3600]);
  });
  it('an empty or missing map is all level 0', () => {
    expect(heatCells(null).cells.every((c) => c.level === 0)).toBe(true);
    expect(heatCells([[5]]).cells.filter((c) => c.level > 0)).toHaveLength(1);
  });
});

describe('paging', () => {
  it('places a page in the table', () => {
    expect(paging(312, 50, 0)).toEqual({ page: 1, pages: 7, first: 1, last: 50, prev: null, next: 50 });
    expect(paging(312, 50, 50)).toEqual({ page: 2, pages: 7, first: 51, last: 100, prev: 0, next: 100 });
    expect(paging(312, 50, 300)).toEqual({ page: 7, pages: 7, first: 301, last: 312, prev: 250, next: null });
    expect(paging(100, 50, 50)).toEqual({ page: 2, pages: 2, first: 51, last: 100, prev: 0, next: null });
  });
  it('an empty table is one empty page', () => {
    expect(paging(0, 50, 0)).toEqual({ page: 1, pages: 1, first: 0, last: 0, prev: null, next: null });
  });
  it('an offset past the end (rows removed meanwhile) shows nothing but can go back', () => {
    expect(paging(40, 50, 50)).toEqual({ page: 1, pages: 1, first: 0, last: 0, prev: 0, next: null });
  });
});

describe('nextSort', () => {
  it('flips the same column and starts another its natural way', () => {
    expect(nextSort({ sort: 'start', order: 'desc' }, 'start')).toEqual({ sort: 'start', order: 'asc' });
    expect(nextSort({ sort: 'start', order: 'desc' }, 'duration')).toEqual({ sort: 'duration', order: 'desc' });
    expect(nextSort({ sort: 'duration', order: 'desc' }, 'device')).toEqual({ sort: 'device', order: 'asc' });
    expect(nextSort({ sort: 'device', order: 'asc' }, 'device')).toEqual({ sort: 'device', order: 'desc' });
  });
});
