import { describe, expect, it } from 'vitest';
import { clockTime, formatBytes, formatDuration, formatHours, relativeTime, stateLabel, whyPhrase } from './format';
import type { State, Why } from './types';

describe('stateLabel', () => {
  it.each<[State, Why | null | undefined, string]>([
    ['active', 'call', 'Active · in a call'],
    ['active', 'media', 'Active · watching'],
    ['active', 'input', 'Active'],
    ['active', undefined, 'Active'], // an older service sends no reason: input
    ['active', null, 'Active'],
    ['active', 'sneezing' as Why, 'Active'], // a reason this dashboard does not know
    ['idle', undefined, 'Idle'],
    ['idle', 'call', 'Idle'], // only active has a reason
    ['away', 'media', 'Away'],
    ['offline', undefined, 'Offline'],
  ])('%s, %s → %s', (state, why, want) => {
    expect(stateLabel(state, why)).toBe(want);
  });
});

describe('whyPhrase', () => {
  it.each<[State, Why | undefined, string]>([
    ['active', 'call', 'in a call'],
    ['active', 'media', 'watching'],
    ['active', 'input', ''],
    ['active', undefined, ''],
    ['away', 'call', ''],
  ])('%s, %s → %j', (state, why, want) => expect(whyPhrase(state, why)).toBe(want));
});

describe('formatDuration', () => {
  it.each([
    [0, '0 s'],
    [45, '45 s'],
    [59.9, '59 s'],
    [60, '1 min'],
    [3599, '59 min'],
    [3600, '1 h'],
    [4320, '1 h 12 min'],
    [25 * 3600 + 60, '25 h 1 min'],
    [48 * 3600, '2 d'],
    [51 * 3600 + 120, '2 d 3 h'],
    [-5, '0 s'],
    [NaN, '0 s'],
  ])('%s s → %s', (s, want) => {
    expect(formatDuration(s)).toBe(want);
  });
});

describe('formatHours', () => {
  it.each([
    [0, '0'],
    [1800, '30 min'],
    [7200, '2 h'],
    [5400, '1.5 h'],
  ])('%s → %s', (s, want) => expect(formatHours(s)).toBe(want));
});

describe('relativeTime', () => {
  const now = Date.parse('2026-11-25T12:00:00Z');
  it.each([
    [null, 'never'],
    ['garbage', 'unknown'],
    ['2026-11-25T12:00:05Z', 'just now'], // a little in the future: clock skew
    ['2026-11-25T11:59:55Z', 'just now'],
    ['2026-11-25T11:59:15Z', '45 s ago'],
    ['2026-11-25T11:57:00Z', '3 min ago'],
    ['2026-11-25T09:00:00Z', '3 h ago'],
    ['2026-11-23T13:00:00Z', '47 h ago'],
    ['2026-11-22T12:00:00Z', '3 d ago'],
  ])('%s → %s', (iso, want) => expect(relativeTime(iso, now)).toBe(want));
});

describe('clockTime', () => {
  it('uses the named zone, not the machine one', () => {
    const t = Date.parse('2026-07-01T12:00:00Z');
    expect(clockTime(t, 'Europe/Paris')).toBe('14:00');
    expect(clockTime(t, 'America/New_York')).toBe('08:00');
    expect(clockTime(t, 'Asia/Kolkata')).toBe('17:30');
  });
});

describe('formatBytes', () => {
  it.each([
    [512, '512 B'],
    [2048, '2.0 KB'],
    [12.3 * 1024 * 1024, '12 MB'],
    [3.5 * 1024 ** 3, '3.5 GB'],
  ])('%s → %s', (n, want) => expect(formatBytes(n)).toBe(want));
});
