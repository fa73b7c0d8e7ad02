// Timeline layout: spans clipped to a range, one lane per device, offline
// left as visible gaps. Pure: positions are fractions of the range, so the
// view only multiplies by 100%.

import type { DeviceView, Session, State, Why } from './types';
import { clockTime, dateTime, formatDuration, whyPhrase } from './format';
import { addDays, civilDate, type CivilDate, startOfDay, weekday } from './zone';

/**
 * Why nothing followed a span (the service's `end_reason`): what the
 * device's final beat said, or `silence` when no final beat came (a crash,
 * power lost, the network gone with nothing replayed).
 */
export type EndReason = 'sleep' | 'shutdown' | 'quit' | 'paused' | 'invisible' | 'silence';

/** A span as the service (or the local history) sends it, with why it ended and whether it came late. */
export type GapSession = Session & { end_reason?: EndReason; replayed?: boolean };

/** How a gap, or an offline stretch after a span, is told. */
export const GAP_PHRASES: Record<EndReason, string> = {
  sleep: 'asleep',
  shutdown: 'shut down',
  quit: 'quit',
  paused: 'paused',
  invisible: 'invisible',
  silence: 'no signal',
};

/** What a replayed span says: its beats were queued while the network was gone and sent later. */
export const REPLAYED_PHRASE = 'no network — replayed later';

/** The phrase for a gap after a span that ended for reason; plain "offline" when nobody said why. */
export function gapPhrase(reason: EndReason | undefined): string {
  return (reason && GAP_PHRASES[reason]) || 'offline';
}

export interface Segment {
  key: string;
  state: State;
  /** What kept an active span present, when not input: drawn apart and told in the label. */
  why?: Exclude<Why, 'input'>;
  /** Away because the screen locked. */
  locked?: boolean;
  /** Some of its beats reached the service late (no network, replayed later). */
  replayed?: boolean;
  /** Why nothing followed it, when it ended so. */
  endReason?: EndReason;
  /** The span's own times (ms), unclipped: what the tooltip tells. */
  start: number;
  end: number;
  /** Position within the range, 0..1. */
  left: number;
  width: number;
  open: boolean;
  local: boolean;
  label: string;
}

export interface Gap {
  start: number;
  end: number;
  left: number;
  width: number;
  /** Why the device was gone: the end reason of the span the gap follows (none when unknown). */
  reason?: EndReason;
  /** "asleep", "shut down", "no signal", … ("offline" when unknown): the short text drawn in the gap. */
  text: string;
  /** The tooltip: "asleep · 1 h 20 min". */
  label: string;
}

export interface Lane {
  deviceId: number;
  name: string;
  local: boolean;
  segments: Segment[];
  gaps: Gap[];
}

export interface LayoutInput {
  sessions: Session[];
  devices: Pick<DeviceView, 'id' | 'name' | 'status'>[];
  from: number;
  to: number;
  now: number;
  tz: string;
  /** Spans from this device's local history (window, service unreachable). */
  local?: { deviceId: number; name: string; sessions: Session[] };
  /** Shortest gap worth showing, ms (shorter ones are beat jitter). */
  minGapMs?: number;
}

/**
 * Where an open span ends for drawing: a span still open whose device still
 * reports that state runs on to now; otherwise its last beat.
 */
export function visibleEnd(s: Session, deviceStatus: State | undefined, now: number): number {
  const end = Date.parse(s.end);
  if (s.open && deviceStatus === s.state && now > end) return now;
  return end;
}

/**
 * "active · in a call: Wed 25 Nov, 14:05 – now, 12 min so far"; an input span is plain "active: …";
 * "away · locked: …" for the lock; "… · no network — replayed later" for a replayed span; "…, then asleep"
 * when the device went after it.
 */
function spanLabel(s: GapSession, start: number, end: number, open: boolean, tz: string, local: boolean): string {
  const range = `${dateTime(start, tz)} – ${open ? 'now' : clockTime(end, tz)}`;
  const dur = formatDuration((end - start) / 1000);
  const phrases = [whyPhrase(s.state, s.why), isLocked(s) ? 'locked' : '', s.replayed ? REPLAYED_PHRASE : ''].filter((p) => p);
  const then = !open && s.end_reason ? `, then ${gapPhrase(s.end_reason)}` : '';
  return `${s.state}${phrases.map((p) => ` · ${p}`).join('')}${local ? ' (local)' : ''}: ${range}, ${dur}${open ? ' so far' : ''}${then}`;
}

/** Away because the screen locked (why "locked", which the Why type of active spans does not name). */
function isLocked(s: Session): boolean {
  return s.state === 'away' && (s.why as string | undefined) === 'locked';
}

function laneOf(
  deviceId: number,
  name: string,
  local: boolean,
  spans: Session[],
  status: State | undefined,
  inp: LayoutInput,
): Lane {
  const span = inp.to - inp.from;
  const horizon = Math.min(inp.to, inp.now);
  const minGap = inp.minGapMs ?? 0;
  const segs: Segment[] = [];
  const sorted = [...spans].sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
  for (const s of sorted as GapSession[]) {
    if (s.state === 'offline') continue; // offline is the absence of a span
    const start = Date.parse(s.start);
    const end = visibleEnd(s, status, inp.now);
    if (Number.isNaN(start) || Number.isNaN(end)) continue;
    const a = Math.max(start, inp.from);
    const b = Math.min(end, inp.to);
    if (b < a || end <= inp.from || start >= inp.to) continue;
    const open = !!s.open && end >= inp.now;
    const seg: Segment = {
      key: `${local ? 'l' : 's'}${s.id}`,
      state: s.state,
      start,
      end,
      left: (a - inp.from) / span,
      width: (b - a) / span,
      open,
      local,
      label: spanLabel(s, start, end, open, inp.tz, local),
    };
    if (s.state === 'active' && (s.why === 'call' || s.why === 'media')) seg.why = s.why;
    if (isLocked(s)) seg.locked = true;
    if (s.replayed) seg.replayed = true;
    if (!open && s.end_reason && s.end_reason in GAP_PHRASES) seg.endReason = s.end_reason;
    segs.push(seg);
  }
  // Gaps: the stretches up to now that no span covers, each told by the
  // span it follows (the one that reached furthest): why that one ended.
  const gaps: Gap[] = [];
  let cursor = inp.from;
  let before: Segment | undefined;
  const addGap = (a: number, b: number) => {
    if (!(b - a > minGap && b > a)) return;
    const reason = before?.endReason;
    const text = gapPhrase(reason);
    const gap: Gap = { start: a, end: b, left: (a - inp.from) / span, width: (b - a) / span, text, label: `${text} · ${formatDuration((b - a) / 1000)}` };
    if (reason) gap.reason = reason;
    gaps.push(gap);
  };
  for (const g of segs) {
    const a = Math.max(g.start, inp.from);
    if (a > cursor) addGap(cursor, Math.min(a, horizon));
    const reach = Math.min(g.end, inp.to);
    if (reach >= cursor) {
      cursor = reach;
      before = g;
    }
  }
  if (horizon > cursor) addGap(cursor, horizon);
  return { deviceId, name, local, segments: segs, gaps };
}

/** One lane per device (devices without spans too), then lanes for spans of unknown devices. */
export function layoutTimeline(inp: LayoutInput): Lane[] {
  const byDevice = new Map<number, Session[]>();
  for (const s of inp.sessions) {
    const l = byDevice.get(s.device_id);
    if (l) l.push(s);
    else byDevice.set(s.device_id, [s]);
  }
  const lanes: Lane[] = [];
  for (const d of inp.devices) {
    lanes.push(laneOf(d.id, d.name, false, byDevice.get(d.id) ?? [], d.status, inp));
    byDevice.delete(d.id);
  }
  for (const [id, spans] of [...byDevice].sort((a, b) => a[0] - b[0])) {
    lanes.push(laneOf(id, `Device ${id}`, false, spans, undefined, inp));
  }
  if (inp.local) {
    const dev = inp.devices.find((d) => d.id === inp.local!.deviceId);
    lanes.push(laneOf(inp.local.deviceId, inp.local.name, true, inp.local.sessions, dev?.status, inp));
  }
  return lanes;
}

export interface Tick {
  at: number;
  left: number;
  label: string;
}

/** Hour ticks for a day in tz, labelled every `every` hours of local time. */
export function dayTicks(from: number, to: number, tz: string, every = 3): Tick[] {
  const out: Tick[] = [];
  // From local midnight, real hours land on local whole hours, also in zones
  // with half-hour offsets; on a daylight-saving day one hour is skipped or
  // repeated, exactly as the wall clock does.
  for (let t = from; t <= to && out.length < 60; t += 3_600_000) {
    const label = clockTime(t, tz);
    const [h, m] = label.split(':').map(Number);
    if (m === 0 && h % every === 0) out.push({ at: t, left: (t - from) / (to - from), label });
  }
  return out;
}

/** Day ticks for a week starting at monday, in tz. */
export function weekTicks(monday: CivilDate, tz: string): Tick[] {
  const from = startOfDay(monday, tz);
  const to = startOfDay(addDays(monday, 7), tz);
  const names = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
  const out: Tick[] = [];
  for (let i = 0; i < 7; i++) {
    const d = addDays(monday, i);
    const at = startOfDay(d, tz);
    out.push({ at, left: (at - from) / (to - from), label: `${names[weekday(d)]} ${d.day}` });
  }
  return out;
}

/** Today and this week (Monday first) in tz, at now. */
export function ranges(now: number, tz: string): { today: [number, number]; week: [number, number]; monday: CivilDate; date: CivilDate } {
  const date = civilDate(now, tz);
  const monday = addDays(date, -weekday(date));
  return {
    today: [startOfDay(date, tz), startOfDay(addDays(date, 1), tz)],
    week: [startOfDay(monday, tz), startOfDay(addDays(monday, 7), tz)],
    monday,
    date,
  };
}

/**
 * Active time in [from, to): the union of active spans over all devices, so
 * two machines on at once count once (as the service's daily totals do).
 * Open spans are drawn to now while their device is still active.
 */
export function activeUnion(sessions: Session[], statusOf: (deviceId: number) => State | undefined, from: number, to: number, now: number): number {
  const iv: [number, number][] = [];
  for (const s of sessions) {
    if (s.state !== 'active') continue;
    const a = Math.max(Date.parse(s.start), from);
    const b = Math.min(visibleEnd(s, statusOf(s.device_id), now), to);
    if (b > a) iv.push([a, b]);
  }
  iv.sort((x, y) => x[0] - y[0]);
  let total = 0;
  let cs = -Infinity;
  let ce = -Infinity;
  for (const [a, b] of iv) {
    if (a > ce) {
      if (ce > cs) total += ce - cs;
      cs = a;
      ce = b;
    } else if (b > ce) ce = b;
  }
  if (ce > cs) total += ce - cs;
  return total / 1000;
}
