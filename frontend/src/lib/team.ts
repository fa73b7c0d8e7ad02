// Who is here now: the team in the order the Now view lists it, how many are
// online, and the "tell me when they come online" switches, changed at once
// on screen and put back when the service refuses.

import type { State, UserPresence } from './types';

const rank: Record<State, number> = { active: 0, idle: 1, away: 2, offline: 3 };

/** Online as the service counts it: active or idle (away and offline are not). */
export function isOnline(s: State): boolean {
  return s === 'active' || s === 'idle';
}

/** How many of the people are online now. */
export function onlineCount(users: readonly UserPresence[]): number {
  return users.reduce((n, u) => n + (isOnline(u.status) ? 1 : 0), 0);
}

/**
 * The team by state (active, idle, away, offline), then the most recently
 * seen first (never seen last), then by name: a stable order that does not
 * shuffle people of the same state as the clock moves.
 */
export function sortTeam(users: readonly UserPresence[]): UserPresence[] {
  const seen = (u: UserPresence) => (u.last_seen ? Date.parse(u.last_seen) || 0 : -Infinity);
  const label = (u: UserPresence) => (u.name || u.handle).toLocaleLowerCase();
  return [...users].sort(
    (a, b) =>
      (rank[a.status] ?? 9) - (rank[b.status] ?? 9) ||
      seen(b) - seen(a) ||
      label(a).localeCompare(label(b)) ||
      a.handle.localeCompare(b.handle),
  );
}

/**
 * Turns the watch on one handle on or off optimistically: `set` shows the
 * change at once, `call` tells the service, and on failure only that handle
 * is put back (other switches flipped meanwhile keep their state) before the
 * error is thrown on. `get` reads the current set each time, never a copy
 * taken before the call.
 */
export async function toggleWatch(
  get: () => ReadonlySet<string>,
  set: (next: Set<string>) => void,
  handle: string,
  on: boolean,
  call: (handle: string, on: boolean) => Promise<unknown>,
): Promise<void> {
  const was = get().has(handle);
  if (was === on) return;
  const put = (v: boolean) => {
    const next = new Set(get());
    if (v) next.add(handle);
    else next.delete(handle);
    set(next);
  };
  put(on);
  try {
    await call(handle, on);
  } catch (err) {
    put(was);
    throw err;
  }
}
