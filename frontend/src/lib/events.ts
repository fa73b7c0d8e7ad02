// Decoding of live events. The service streams each change as an SSE message
// whose `event:` is the kind and whose `data:` is the JSON event (DESIGN §3);
// the desktop window relays the same three fields. Decoding accepts the full
// event object or its bare payload, and drops anything it cannot read rather
// than corrupt the view.

import type { LiveEvent, PresenceChange, Session, State, Why } from './types';
import { STATES, WHYS } from './types';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isState(v: unknown): v is State {
  return typeof v === 'string' && (STATES as readonly string[]).includes(v);
}

/**
 * The reason of an active status or span, kept only when it is one this
 * dashboard knows and the state is active: an unknown reason (a newer
 * service) reads as plain active rather than dropping the event.
 */
export function whyOf(state: State, v: unknown): Why | undefined {
  return state === 'active' && typeof v === 'string' && (WHYS as readonly string[]).includes(v) ? (v as Why) : undefined;
}

/** Sets o.why when there is one, so an event without a reason decodes to the same object as before. */
function withWhy<T extends object>(o: T, why: Why | undefined): T & { why?: Why } {
  return why ? { ...o, why } : o;
}

function presenceOf(o: Obj): PresenceChange | null {
  const p = isObj(o.presence) ? o.presence : o;
  if (typeof p.handle !== 'string' || typeof p.device_id !== 'number' || !isState(p.status)) {
    return null;
  }
  return withWhy(
    {
      handle: p.handle,
      device_id: p.device_id,
      device_name: typeof p.device_name === 'string' ? p.device_name : '',
      status: p.status,
      user_status: isState(p.user_status) ? p.user_status : p.status,
      last_seen: typeof p.last_seen === 'string' && !p.last_seen.startsWith('0001-') ? p.last_seen : null,
    },
    whyOf(p.status, p.why),
  );
}

/**
 * Why a span ended and whether it was replayed, and the lock's why on an
 * away span, when the event says so (read by the timeline's gap labels).
 */
function gapFields(s: Obj): object {
  const out: Record<string, unknown> = {};
  if (typeof s.end_reason === 'string' && s.end_reason) out.end_reason = s.end_reason;
  if (s.replayed === true) out.replayed = true;
  if (s.state === 'away' && s.why === 'locked') out.why = 'locked';
  return out;
}

function sessionOf(o: Obj): { session: Session; open: boolean } | null {
  const s = isObj(o.session) ? o.session : o;
  if (
    typeof s.id !== 'number' ||
    typeof s.device_id !== 'number' ||
    !isState(s.state) ||
    typeof s.start !== 'string' ||
    typeof s.end !== 'string'
  ) {
    return null;
  }
  const open = typeof o.open === 'boolean' ? o.open : s.open === true;
  const start = Date.parse(s.start);
  const end = Date.parse(s.end);
  if (Number.isNaN(start) || Number.isNaN(end)) return null;
  return {
    session: {
      ...withWhy(
        {
          id: s.id,
          device_id: s.device_id,
          state: s.state,
          start: s.start,
          end: s.end,
          duration_s: Math.max(0, Math.round((end - start) / 1000)),
          open,
        },
        whyOf(s.state, s.why),
      ),
      ...gapFields(s),
    },
    open,
  };
}

/**
 * Decodes one live message. `id` is the SSE id (or the relayed one), `kind`
 * the SSE event name, `data` the JSON text. Returns null for anything that is
 * not a presence or session event this dashboard understands.
 */
export function decodeEvent(id: string, kind: string, data: string): LiveEvent | null {
  let o: unknown;
  try {
    o = JSON.parse(data);
  } catch {
    return null;
  }
  if (!isObj(o)) return null;
  // A full store event carries its own kind and id; the service's SSE data is
  // the bare payload, whose "id" (a session's) is not the event id.
  const envelope = typeof o.kind === 'string';
  const k = kind || (envelope ? String(o.kind) : '');
  const eid = id || (envelope && o.id !== undefined ? String(o.id) : '');
  const at = typeof o.at === 'string' ? o.at : new Date().toISOString();
  if (k === 'presence') {
    const p = presenceOf(o);
    return p ? { id: eid, kind: 'presence', at, presence: p } : null;
  }
  if (k === 'session') {
    const s = sessionOf(o);
    if (!s) return null;
    const handle = typeof o.handle === 'string' ? o.handle : undefined;
    return { id: eid, kind: 'session', at, session: s.session, open: s.open, handle };
  }
  return null;
}
