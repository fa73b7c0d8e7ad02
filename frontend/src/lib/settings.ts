// The agent settings form (window only): what it shows for the agent's
// settings and what it sends back. The window and the agent are separate
// programs and may be of different versions: a setting the agent does not
// report is not sent, since the agent refuses unknown fields, and the form
// says it needs a newer agent instead.

import type { LocalSettings } from './types';

/** The form's fields, in the units people type. */
export interface AgentForm {
  idleMin: number;
  intervalS: number;
  startAtLogin: boolean;
  countCallsAndMedia: boolean;
  notifications: boolean;
}

export type SettingsUpdate = Partial<
  Pick<LocalSettings, 'idle_after_s' | 'interval_s' | 'start_at_login' | 'count_calls_and_media' | 'notifications'>
>;

/** Whether this agent knows the "count calls and videos as present" setting. */
export function knowsCallsAndMedia(s: LocalSettings | null | undefined): boolean {
  return typeof s?.count_calls_and_media === 'boolean';
}

/** Whether this agent knows the "notify me when watched people come online" setting. */
export function knowsNotifications(s: LocalSettings | null | undefined): boolean {
  return typeof s?.notifications === 'boolean';
}

/** The form filled from the agent's settings; calls and media stay off (the default) where the agent has no such setting. */
export function formOf(s: LocalSettings): AgentForm {
  return {
    idleMin: Math.round(s.idle_after_s / 60),
    intervalS: s.interval_s,
    startAtLogin: s.start_at_login,
    countCallsAndMedia: s.count_calls_and_media === true,
    notifications: s.notifications !== false,
  };
}

/** The PUT /local/v1/settings body for the form, against the settings the agent last answered. */
export function settingsUpdate(f: AgentForm, current: LocalSettings | null | undefined): SettingsUpdate {
  const u: SettingsUpdate = {
    idle_after_s: Math.round(f.idleMin * 60),
    interval_s: Math.round(f.intervalS),
    start_at_login: f.startAtLogin,
  };
  if (knowsCallsAndMedia(current)) u.count_calls_and_media = f.countCallsAndMedia;
  if (knowsNotifications(current)) u.notifications = f.notifications;
  return u;
}
