import { describe, expect, it } from 'vitest';
import { bars, lastDays, niceMax } from './stats';
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
  });
});
