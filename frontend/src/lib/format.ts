// Text for states, durations, relative times and clock times. Pure functions:
// the clock is always passed in, so tests never depend on when they run.

import type { State, Why } from './types';

const stateNames: Record<State, string> = { active: 'Active', idle: 'Idle', away: 'Away', offline: 'Offline' };

/**
 * What keeps an active device or person present without input, as a phrase:
 * "in a call", "watching"; '' for input (the plain case), for no reason, and
 * for any state but active (only active carries a reason).
 */
export function whyPhrase(state: State, why: Why | null | undefined): string {
  if (state !== 'active') return '';
  if (why === 'call') return 'in a call';
  if (why === 'media') return 'watching';
  return '';
}

/**
 * A state as the dashboard shows it: "Active · in a call", "Active · watching",
 * plain "Active" when present by input (or the reason is unknown), "Idle",
 * "Away", "Offline".
 */
export function stateLabel(state: State, why?: Why | null): string {
  const name = stateNames[state] ?? String(state);
  const phrase = whyPhrase(state, why);
  return phrase ? `${name} · ${phrase}` : name;
}

/** A duration in seconds as people say it: "45 s", "12 min", "1 h 12 min", "2 d 3 h". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '0 s';
  const s = Math.floor(seconds);
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  const m = min % 60;
  if (h < 48) return m === 0 ? `${h} h` : `${h} h ${m} min`;
  const d = Math.floor(h / 24);
  const hr = h % 24;
  return hr === 0 ? `${d} d` : `${d} d ${hr} h`;
}

/** Compact hours for chart axes: "0", "30 min", "2 h", "1.5 h". */
export function formatHours(seconds: number): string {
  if (seconds <= 0) return '0';
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  const h = seconds / 3600;
  return `${Number.isInteger(h) ? h : h.toFixed(1)} h`;
}

/**
 * How long ago `iso` was, seen at `now`: "just now", "45 s ago", "3 min ago",
 * "3 h ago", "2 d ago", or "never" for a missing time. A time slightly in the
 * future (clock skew between machines) reads as "just now".
 */
export function relativeTime(iso: string | null | undefined, now: number): string {
  if (!iso) return 'never';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return 'unknown';
  const s = Math.floor((now - t) / 1000);
  if (s < 10) return 'just now';
  if (s < 60) return `${s} s ago`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min ago`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h ago`;
  const d = Math.floor(h / 24);
  return `${d} d ago`;
}

/** A clock time "14:05" in the zone. */
export function clockTime(ms: number, tz: string): string {
  return new Intl.DateTimeFormat('en-GB', {
    timeZone: tz,
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).format(ms);
}

/** A date and time "Wed 25 Nov, 14:05" in the zone. */
export function dateTime(ms: number, tz: string): string {
  return new Intl.DateTimeFormat('en-GB', {
    timeZone: tz,
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).format(ms);
}

/** Bytes as "12.3 MB". */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '—';
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
