import { describe, expect, it } from 'vitest';
import { formOf, knowsCallsAndMedia, knowsNotifications, settingsUpdate } from './settings';
import type { LocalSettings } from './types';

const old: LocalSettings = { server_url: '', has_token: false, idle_after_s: 300, interval_s: 30, start_at_login: true };
const current: LocalSettings = { ...old, count_calls_and_media: false, notifications: true };

describe('agent settings form', () => {
  it('fills the form from the agent, calls and media off by default', () => {
    expect(formOf(current)).toEqual({ idleMin: 5, intervalS: 30, startAtLogin: true, countCallsAndMedia: false, notifications: true });
    expect(formOf({ ...current, count_calls_and_media: true }).countCallsAndMedia).toBe(true);
    expect(formOf(old).countCallsAndMedia).toBe(false);
  });

  it('sends count_calls_and_media to an agent that has it', () => {
    const u = settingsUpdate({ idleMin: 10, intervalS: 60, startAtLogin: false, countCallsAndMedia: true, notifications: false }, current);
    expect(u).toEqual({ idle_after_s: 600, interval_s: 60, start_at_login: false, count_calls_and_media: true, notifications: false });
    expect(settingsUpdate({ ...formOf(current), countCallsAndMedia: false }, current).count_calls_and_media).toBe(false);
  });

  it('leaves it out for an agent without it, which would refuse the unknown field', () => {
    expect(knowsCallsAndMedia(old)).toBe(false);
    expect(knowsCallsAndMedia(null)).toBe(false);
    expect(knowsCallsAndMedia(current)).toBe(true);
    expect(knowsNotifications(old)).toBe(false);
    expect(formOf(old).notifications).toBe(true);
    const u = settingsUpdate({ idleMin: 5, intervalS: 30, startAtLogin: true, countCallsAndMedia: true, notifications: false }, old);
    expect(u).toEqual({ idle_after_s: 300, interval_s: 30, start_at_login: true });
  });
});
