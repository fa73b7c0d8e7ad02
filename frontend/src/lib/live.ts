// Merging live events into what the dashboard shows, without refetching:
// a presence event updates that user's and device's status and last seen; a
// session event inserts or replaces the span. Pure: each function returns new
// arrays and leaves its inputs alone, so Svelte sees the change.

import { whyPhrase } from './format';
import type { DeviceView, LiveEvent, PresenceChange, Session, State, UserPresence, Why } from './types';

/** A device as a presence event leaves it: the reason goes with the status, and only an active one has one. */
function deviceOf(d: DeviceView, p: PresenceChange): DeviceView {
  const out: DeviceView = { ...d, status: p.status };
  if (p.status === 'active' && p.why) out.why = p.why;
  else delete out.why;
  return out;
}

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
        ...deviceOf(d, p),
        // The event's last_seen is the user's latest active beat; when this
        // device has just been active, that beat is its own.
        last_seen: p.status === 'active' && p.last_seen ? later(d.last_seen, p.last_seen) : d.last_seen,
      };
    });
    if (!seenDevice) devices.push(newDevice(p));
    return { ...u, status: p.user_status, last_seen: later(u.last_seen, p.last_seen), devices };
  });
  if (!found) {
    out.push({
      handle: p.handle,
      name: p.handle,
      status: p.user_status,
      last_seen: p.last_seen,
      devices: [newDevice(p)],
    });
  }
  return out;
}

function newDevice(p: PresenceChange): DeviceView {
  const d: DeviceView = {
    id: p.device_id,
    name: p.device_name || `Device ${p.device_id}`,
    os: '',
    status: p.status,
    last_seen: p.status === 'active' ? p.last_seen : null,
  };
  return deviceOf(d, p);
}

/**
 * Why a person counts as present, from their active devices: input on any
 * of them says they are at a keyboard (plain "Active"); else a call wins
 * over media, as it does on one machine. Undefined unless some device is
 * active; an active device without a reason counts as input.
 */
export function userWhy(u: Pick<UserPresence, 'devices'> | null | undefined): Why | undefined {
  let best: Why | undefined;
  for (const d of u?.devices ?? []) {
    if (d.status !== 'active') continue;
    const w = d.why ?? 'input';
    if (w === 'input') return 'input';
    if (w === 'call' || best === undefined) best = w;
  }
  return best;
}

/**
 * Takes why a device is present from a span that opened: the service tells a
 * presence change only when the status changes, so a call that begins while
 * the device is already active (by input) arrives only as a new open span.
 * Changes nothing unless the span is open and active and the device is
 * active now (a device turning active gets its reason from the presence
 * event that follows).
 */
export function applySpanWhy(users: UserPresence[], handle: string, s: Session, open: boolean): UserPresence[] {
  if (!open || s.state !== 'active') return users;
  const why = s.why ?? 'input';
  const u = users.find((x) => x.handle === handle);
  const d = u?.devices.find((x) => x.id === s.device_id);
  if (!u || !d || d.status !== 'active' || (d.why ?? 'input') === why) return users;
  return users.map((x) => (x !== u ? x : { ...x, devices: x.devices.map((y) => (y !== d ? y : { ...y, why })) }));
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
  /** Why an active device is present (call, media), for the marker. */
  why?: Why;
  text: string;
  /** When this page received it (ms); only items received while shown flash. */
  received?: number;
}

/** A line for the live feed. deviceName resolves device ids of session events. */
export function feedItem(ev: LiveEvent, deviceName: (id: number) => string): FeedItem {
  if (ev.kind === 'presence') {
    const p = ev.presence;
    const phrase = whyPhrase(p.status, p.why);
    return withWhy(
      {
        id: ev.id,
        at: ev.at,
        kind: 'presence',
        state: p.status,
        text: `${p.handle} · ${p.device_name || deviceName(p.device_id)} is ${p.status}${phrase ? ` · ${phrase}` : ''}`,
      },
      phrase ? p.why : undefined,
    );
  }
  const s = ev.session;
  const dev = deviceName(s.device_id);
  const phrase = whyPhrase(s.state, s.why);
  return withWhy(
    {
      id: ev.id,
      at: ev.at,
      kind: 'session',
      state: s.state,
      text: `${dev}: ${s.state} span ${ev.open ? 'started' : 'ended'}${phrase ? ` · ${phrase}` : ''}`,
    },
    phrase ? s.why : undefined,
  );
}

function withWhy(f: FeedItem, why: Why | undefined): FeedItem {
  return why ? { ...f, why } : f;
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
