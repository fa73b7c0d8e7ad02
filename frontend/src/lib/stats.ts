// Stats shaped for hand-drawn charts: daily and monthly stacked bars, the
// hour × weekday heatmap, period changes and the sessions table's paging.

import type { DayTotal, SessionSort, SortOrder } from './types';
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

// ---------------------------------------------------------------- the Stats view

/** The ranges the Stats view offers. */
export type RangeKind = '7d' | '30d' | '12m' | 'custom';

/** The most days the service answers at once. */
export const MAX_RANGE_DAYS = 366;

/** Days from..to inclusive, by the calendar. */
export function daysBetween(from: string, to: string): number {
  const a = parseIsoDate(from);
  const b = parseIsoDate(to);
  return Math.round((Date.UTC(b.year, b.month - 1, b.day) - Date.UTC(a.year, a.month - 1, a.day)) / 86_400_000) + 1;
}

/**
 * The dates a range covers, ending today: the last 7 or 30 days, or this
 * month and the 11 before it (at most 337 days, within what the service
 * answers). A custom range is checked: an error text when it cannot be asked.
 */
export function rangeDates(
  kind: RangeKind,
  today: CivilDate,
  custom: { from: string; to: string } = { from: '', to: '' },
): { from: string; to: string } | { error: string } {
  switch (kind) {
    case '7d':
    case '30d': {
      const d = lastDays(today, kind === '7d' ? 7 : 30);
      return { from: d[0], to: d[d.length - 1] };
    }
    case '12m': {
      const m = today.month - 11;
      const first = m >= 1 ? { year: today.year, month: m, day: 1 } : { year: today.year - 1, month: m + 12, day: 1 };
      return { from: isoDate(first), to: isoDate(today) };
    }
    case 'custom': {
      const ok = (s: string) => /^\d{4}-\d{2}-\d{2}$/.test(s);
      if (!ok(custom.from) || !ok(custom.to)) return { error: 'Pick a first and a last day.' };
      const n = daysBetween(custom.from, custom.to);
      if (n < 1) return { error: 'The first day must not be after the last.' };
      if (n > MAX_RANGE_DAYS) return { error: `At most ${MAX_RANGE_DAYS} days at once (that is ${n}).` };
      return { from: custom.from, to: custom.to };
    }
  }
}

/**
 * A round scale top (seconds) at or above max for any size of bar: the
 * day steps of niceMax up to a day, then 1, 2, 2.5 or 5 × 10ⁿ hours (a
 * month of evenings is 60-odd hours, a busy one 200).
 */
export function niceScale(maxS: number): number {
  const h = maxS / 3600;
  if (h <= 24) return niceMax(maxS);
  const p = 10 ** Math.floor(Math.log10(h));
  const m = [1, 2, 2.5, 5, 10].find((x) => x * p >= h) ?? 10;
  return m * p * 3600;
}

export interface StackBar {
  /** The first date the bar covers (YYYY-MM-DD). */
  key: string;
  /** Short axis label: "Mon 23", "Nov". */
  label: string;
  /** Long label for the bar's title and the table: "Mon 23 Nov 2026", "November 2026". */
  long: string;
  active_s: number;
  idle_s: number;
  away_s: number;
  weekend: boolean;
  /** Each state's height as a fraction of the scale, 0..1, active at the bottom. */
  h: { active: number; idle: number; away: number };
}

const shortMonths = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const longMonths = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const shortDays = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

/** Ranges longer than this are drawn one bar a month rather than one a day. */
export const DAILY_BARS_MAX = 62;

/**
 * Stacked bars of from..to: one a day (zero where the service sent no day),
 * or one a calendar month for ranges over DAILY_BARS_MAX days; scaled so the
 * tallest stack fits under a round top.
 */
export function stackBars(days: DayTotal[], from: string, to: string): { bars: StackBar[]; scale: number; unit: 'day' | 'month' } {
  const n = daysBetween(from, to);
  const by = new Map(days.map((d) => [d.date, d]));
  const unit = n > DAILY_BARS_MAX ? 'month' : 'day';
  const raw: Omit<StackBar, 'h'>[] = [];
  const start = parseIsoDate(from);
  for (let i = 0; i < n; i++) {
    const c = addDays(start, i);
    const date = isoDate(c);
    const d = by.get(date);
    const [a, id, aw] = [d?.active_s ?? 0, d?.idle_s ?? 0, d?.away_s ?? 0];
    if (unit === 'day') {
      const wd = weekday(c);
      raw.push({
        key: date,
        label: `${shortDays[wd]} ${c.day}`,
        long: `${shortDays[wd]} ${c.day} ${shortMonths[c.month - 1]} ${c.year}`,
        active_s: a,
        idle_s: id,
        away_s: aw,
        weekend: wd >= 5,
      });
      continue;
    }
    const last = raw[raw.length - 1];
    if (last && last.key.slice(0, 7) === date.slice(0, 7)) {
      last.active_s += a;
      last.idle_s += id;
      last.away_s += aw;
    } else {
      raw.push({
        key: date,
        label: shortMonths[c.month - 1],
        long: `${longMonths[c.month - 1]} ${c.year}`,
        active_s: a,
        idle_s: id,
        away_s: aw,
        weekend: false,
      });
    }
  }
  const max = raw.reduce((m, b) => Math.max(m, b.active_s + b.idle_s + b.away_s), 0);
  const scale = niceScale(max);
  return {
    unit,
    scale,
    bars: raw.map((b) => ({ ...b, h: { active: b.active_s / scale, idle: b.idle_s / scale, away: b.away_s / scale } })),
  };
}

/** A duration in hours and minutes, as the period totals say it: "1 h 20 m", "45 m", "2 h", "0 m". */
export function hoursMinutes(seconds: number): string {
  const min = Math.round(Math.abs(seconds) / 60);
  const h = Math.floor(min / 60);
  const m = min % 60;
  if (h === 0) return `${m} m`;
  return m === 0 ? `${h} h` : `${h} h ${m} m`;
}

/**
 * This period against the last one up to the same point: "+1 h 20 m vs last
 * week so far", "−45 m vs last month so far", "same as last week so far"
 * (within a minute).
 */
export function formatChange(currentS: number, previousToDateS: number, period: 'week' | 'month'): string {
  const d = currentS - previousToDateS;
  const tail = `last ${period} so far`;
  if (Math.round(Math.abs(d) / 60) === 0) return `same as ${tail}`;
  return `${d > 0 ? '+' : '\u2212'}${hoursMinutes(d)} vs ${tail}`;
}

/** The direction of a change, for its colour: up, down or flat (within a minute). */
export function changeDirection(currentS: number, previousToDateS: number): 'up' | 'down' | 'flat' {
  const d = currentS - previousToDateS;
  if (Math.round(Math.abs(d) / 60) === 0) return 'flat';
  return d > 0 ? 'up' : 'down';
}

export interface HeatCell {
  weekday: number; // 0 = Monday
  hour: number;
  s: number;
  /** 0 for nothing, else 1..HEAT_LEVELS by the share of the busiest cell. */
  level: number;
}

/** The shades of the heatmap above empty. */
export const HEAT_LEVELS = 4;

/**
 * The hour × weekday grid with each cell's shade: a cell with any active
 * time gets at least the lightest, the busiest the darkest; the legend's
 * bounds are the upper edge of each shade. Rows or hours missing from the
 * answer count as empty.
 */
export function heatCells(heatmap: number[][] | null | undefined): { cells: HeatCell[]; max: number; bounds: number[] } {
  const cells: HeatCell[] = [];
  let max = 0;
  for (let w = 0; w < 7; w++) for (let h = 0; h < 24; h++) max = Math.max(max, heatmap?.[w]?.[h] ?? 0);
  for (let w = 0; w < 7; w++) {
    for (let h = 0; h < 24; h++) {
      const s = heatmap?.[w]?.[h] ?? 0;
      const level = s <= 0 || max <= 0 ? 0 : Math.max(1, Math.ceil((s / max) * HEAT_LEVELS));
      cells.push({ weekday: w, hour: h, s, level });
    }
  }
  const bounds = Array.from({ length: HEAT_LEVELS }, (_, i) => (max * (i + 1)) / HEAT_LEVELS);
  return { cells, max, bounds };
}

export interface Paging {
  /** 1-based page number and page count (at least 1). */
  page: number;
  pages: number;
  /** 1-based numbers of the first and last row shown; 0 and 0 when there are none. */
  first: number;
  last: number;
  prev: number | null;
  next: number | null;
}

/** Where a page of `limit` rows at `offset` sits in a table of `total` rows. */
export function paging(total: number, limit: number, offset: number): Paging {
  const size = Math.max(1, limit);
  const pages = Math.max(1, Math.ceil(total / size));
  const page = Math.min(pages, Math.floor(Math.max(0, offset) / size) + 1);
  const first = total > 0 && offset < total ? offset + 1 : 0;
  const last = first ? Math.min(total, offset + size) : 0;
  return {
    page,
    pages,
    first,
    last,
    prev: offset > 0 ? Math.max(0, offset - size) : null,
    next: offset + size < total ? offset + size : null,
  };
}

/**
 * The sort after a click on a column header: the same column flips its
 * order; another starts the way people read it first (newest and longest
 * first, devices A to Z).
 */
export function nextSort(
  cur: { sort: SessionSort; order: SortOrder },
  clicked: SessionSort,
): { sort: SessionSort; order: SortOrder } {
  if (cur.sort === clicked) return { sort: clicked, order: cur.order === 'asc' ? 'desc' : 'asc' };
  return { sort: clicked, order: clicked === 'device' ? 'asc' : 'desc' };
}
