// Merging live events into what the dashboard shows, without refetching:
// a presence event updates that user's and device's status and last seen; a
// session event inserts or replaces the span. Pure: each function returns new
// arrays and leaves its inputs alone, so Svelte sees the change.

import type { LiveEvent, PresenceChange, Session, State, UserPresence } from './types';

export function applyPresence(users: UserPresence[], p: PresenceChange): UserPresence[] {
  let found = false;
  const out = users.map((u) => {
    if (u.handle !== p.handle) return u;
    found = true;
    let seenDevice = false;
    const devices = u.devices.map((d) => {
      if (d.id !== p.device_id) return d;
      seenDevice = true;
      return {
        ...d,
        status: p.status,
        // The event's last_seen is the user's latest active beat; when this
        // device has just been active, that beat is its own.
        last_seen: p.status === 'active' && p.last_seen ? later(d.last_seen, p.last_seen) : d.last_seen,
      };
    });
    if (!seenDevice) {
      devices.push({
        id: p.device_id,
        name: p.device_name || `Device ${p.device_id}`,
        os: '',
        status: p.status,
        last_seen: p.status === 'active' ? p.last_seen : null,
      });
    }
    return { ...u, status: p.user_status, last_seen: later(u.last_seen, p.last_seen), devices };
  });
  if (!found) {
    out.push({
      handle: p.handle,
      name: p.handle,
      status: p.user_status,
      last_seen: p.last_seen,
      devices: [
        {
          id: p.device_id,
          name: p.device_name || `Device ${p.device_id}`,
          os: '',
          status: p.status,
          last_seen: p.status === 'active' ? p.last_seen : null,
        },
      ],
    });
  }
  return out;
}

function later(a: string | null, b: string | null): string | null {
  if (!a) return b;
  if (!b) return a;
  return Date.parse(b) > Date.parse(a) ? b : a;
}

/** Inserts or replaces a span (by id), keeping the list ordered by start. */
export function applySession(sessions: Session[], s: Session): Session[] {
  const i = sessions.findIndex((x) => x.id === s.id);
  if (i >= 0) {
    const out = sessions.slice();
    out[i] = s;
    return out;
  }
  const t = Date.parse(s.start);
  let j = sessions.length;
  while (j > 0 && Date.parse(sessions[j - 1].start) > t) j--;
  return [...sessions.slice(0, j), s, ...sessions.slice(j)];
}

export interface FeedItem {
  id: string;
  at: string;
  kind: 'presence' | 'session';
  state: State;
  text: string;
  /** When this page received it (ms); only items received while shown flash. */
  received?: number;
}

/** A line for the live feed. deviceName resolves device ids of session events. */
export function feedItem(ev: LiveEvent, deviceName: (id: number) => string): FeedItem {
  if (ev.kind === 'presence') {
    const p = ev.presence;
    return {
      id: ev.id,
      at: ev.at,
      kind: 'presence',
      state: p.status,
      text: `${p.handle} · ${p.device_name || deviceName(p.device_id)} is ${p.status}`,
    };
  }
  const s = ev.session;
  const dev = deviceName(s.device_id);
  return {
    id: ev.id,
    at: ev.at,
    kind: 'session',
    state: s.state,
    text: ev.open ? `${dev}: ${s.state} span started` : `${dev}: ${s.state} span ended`,
  };
}

/** Prepends an item, drops duplicates (a resumed stream may replay) and keeps at most max. */
export function pushFeed(feed: FeedItem[], item: FeedItem, max = 50): FeedItem[] {
  if (item.id && feed.some((f) => f.id === item.id)) return feed;
  return [item, ...feed].slice(0, max);
}

/**
 * Whether an event id is new. Ids increase across the whole service, so
 * anything at or below the last one seen is a replay.
 */
export function isNewEvent(lastId: string, id: string): boolean {
  if (!id || !lastId) return true;
  const a = Number(lastId);
  const b = Number(id);
  if (Number.isFinite(a) && Number.isFinite(b)) return b > a;
  return id !== lastId;
}
