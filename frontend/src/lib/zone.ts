// Calendar arithmetic in a named IANA time zone with Intl only. A day runs
// from one local midnight to the next, so it lasts 23 or 25 hours on a
// daylight-saving change; the service cuts daily totals the same way.

export interface CivilDate {
  year: number;
  month: number; // 1-12
  day: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function partsFormatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(tz, f);
  }
  return f;
}

/** Whether tz is a time zone name this runtime knows. */
export function validZone(tz: string): boolean {
  if (!tz) return false;
  try {
    partsFormatter(tz);
    return true;
  } catch {
    return false;
  }
}

/** The zone to use for a user: theirs when valid, else UTC. */
export function zoneOr(tz: string | undefined | null): string {
  return tz && validZone(tz) ? tz : 'UTC';
}

interface Wall extends CivilDate {
  hour: number;
  minute: number;
  second: number;
}

function wallClock(ms: number, tz: string): Wall {
  const w: Record<string, number> = {};
  for (const p of partsFormatter(tz).formatToParts(ms)) {
    if (p.type !== 'literal') w[p.type] = Number(p.value);
  }
  return {
    year: w.year,
    month: w.month,
    day: w.day,
    hour: w.hour === 24 ? 0 : w.hour,
    minute: w.minute,
    second: w.second,
  };
}

/** The zone's offset from UTC at instant ms, in milliseconds (Paris in winter: +3600000). */
export function zoneOffset(ms: number, tz: string): number {
  const w = wallClock(ms, tz);
  const asUTC = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return asUTC - (ms - (((ms % 1000) + 1000) % 1000));
}

/** The calendar date in tz at instant ms. */
export function civilDate(ms: number, tz: string): CivilDate {
  const w = wallClock(ms, tz);
  return { year: w.year, month: w.month, day: w.day };
}

/** "YYYY-MM-DD". */
export function isoDate(d: CivilDate): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.year, 4)}-${p(d.month)}-${p(d.day)}`;
}

export function parseIsoDate(s: string): CivilDate {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) throw new Error(`not a date: ${s}`);
  return { year: Number(m[1]), month: Number(m[2]), day: Number(m[3]) };
}

/** The date n days after d (n may be negative); pure calendar arithmetic. */
export function addDays(d: CivilDate, n: number): CivilDate {
  const t = new Date(Date.UTC(d.year, d.month - 1, d.day + n));
  return { year: t.getUTCFullYear(), month: t.getUTCMonth() + 1, day: t.getUTCDate() };
}

/** Day of the week, 0 = Monday … 6 = Sunday. */
export function weekday(d: CivilDate): number {
  return (new Date(Date.UTC(d.year, d.month - 1, d.day)).getUTCDay() + 6) % 7;
}

/**
 * The instant the date starts in tz: its first moment, local midnight. Where
 * a zone skips midnight itself (a few zones change clocks at 00:00), the day
 * starts at the first wall time that exists.
 */
export function startOfDay(d: CivilDate, tz: string): number {
  const wall = Date.UTC(d.year, d.month - 1, d.day);
  // Two rounds settle the offset on either side of a change.
  let t = wall - zoneOffset(wall, tz);
  t = wall - zoneOffset(t, tz);
  const got = civilDate(t, tz);
  if (got.year !== d.year || got.month !== d.month || got.day !== d.day) {
    // Midnight does not exist that day: it fell in a gap and we landed on the
    // previous day. Step forward to the first instant of d (gaps are ≤ 1 h,
    // well within the hour we search).
    const base = t;
    for (let m = 1; m <= 120; m++) {
      const c = civilDate(base + m * 60_000, tz);
      if (c.day === d.day && c.month === d.month) return base + m * 60_000;
    }
  }
  return t;
}

/** [start, end) of the calendar date in tz, as epoch milliseconds. */
export function dayRange(d: CivilDate, tz: string): [number, number] {
  return [startOfDay(d, tz), startOfDay(addDays(d, 1), tz)];
}

/** The Monday that starts the week holding d. */
export function weekStart(d: CivilDate): CivilDate {
  return addDays(d, -weekday(d));
}
