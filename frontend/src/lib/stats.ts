// Daily totals shaped for a hand-drawn bar chart.

import type { DayTotal } from './types';
import { addDays, isoDate, parseIsoDate, weekday, type CivilDate } from './zone';

export interface Bar {
  date: string;
  label: string;
  weekday: number;
  active_s: number;
  idle_s: number;
  away_s: number;
  /** Active height as a fraction of the scale, 0..1. */
  h: number;
}

/** The n calendar dates ending with last, oldest first. */
export function lastDays(last: CivilDate, n: number): string[] {
  return Array.from({ length: n }, (_, i) => isoDate(addDays(last, i - n + 1)));
}

/** A round scale top (seconds) at or above max: whole hours, at least one. */
export function niceMax(maxS: number): number {
  const h = Math.max(1, Math.ceil(maxS / 3600));
  const steps = [1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24];
  return (steps.find((s) => s >= h) ?? h) * 3600;
}

/**
 * Bars for every date in `dates`, zero where the service sent no day, scaled
 * to a round number of hours.
 */
export function bars(days: DayTotal[], dates: string[]): { bars: Bar[]; scale: number; total: number; average: number } {
  const by = new Map(days.map((d) => [d.date, d]));
  const raw = dates.map((date) => {
    const d = by.get(date);
    return { date, active_s: d?.active_s ?? 0, idle_s: d?.idle_s ?? 0, away_s: d?.away_s ?? 0 };
  });
  const max = raw.reduce((m, d) => Math.max(m, d.active_s), 0);
  const scale = niceMax(max);
  const names = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
  const out = raw.map((d) => {
    const c = parseIsoDate(d.date);
    const wd = weekday(c);
    return { ...d, weekday: wd, label: `${names[wd]} ${c.day}`, h: d.active_s / scale };
  });
  const total = raw.reduce((s, d) => s + d.active_s, 0);
  return { bars: out, scale, total, average: dates.length ? total / dates.length : 0 };
}
