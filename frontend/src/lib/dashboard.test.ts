import { describe, expect, it } from 'vitest';
import { Api, type RawResponse, type StreamHandlers, type Transport } from './api';
import { Dashboard } from './dashboard.svelte';
import type { LiveEvent } from './types';

// A transport whose answers the test releases by hand, to order responses
// and live events the way a network may.
function scripted(routes: Record<string, () => RawResponse>) {
  const waiting: { path: string; release: () => void }[] = [];
  let handlers: StreamHandlers | null = null;
  const t: Transport = {
    local: false,
    session: true,
    origin: 'http://svc',
    request: (_m, path) =>
      new Promise((resolve) => {
        const key = Object.keys(routes).find((k) => path.startsWith(k));
        if (!key) throw new Error(`unexpected ${path}`);
        waiting.push({ path, release: () => resolve(routes[key]()) });
      }),
    file: (path) => Promise.reject(new Error(`unexpected file ${path}`)),
    subscribe: (h) => {
      handlers = h;
      return () => (handlers = null);
    },
  };
  const release = async (prefix: string) => {
    for (let i = 0; i < 50; i++) {
      const j = waiting.findIndex((w) => w.path.startsWith(prefix));
      if (j >= 0) {
        waiting.splice(j, 1)[0].release();
        await new Promise((r) => setTimeout(r, 0));
        return;
      }
      await new Promise((r) => setTimeout(r, 0));
    }
    throw new Error(`no request for ${prefix}`);
  };
  return { t, release, emit: (e: LiveEvent) => handlers!.event(e), connect: (c: 'live' | 'reconnecting') => handlers!.connection(c) };
}

const ok = (v: unknown) => () => ({ status: 200, body: JSON.stringify(v) });
const me = { handle: 'ada', name: 'Ada', tz: 'Europe/Paris', public: false };
const snapshot = {
  users: [{ handle: 'ada', name: 'Ada', status: 'offline', last_seen: null, devices: [{ id: 1, name: 'laptop', os: '', status: 'offline', last_seen: null }] }],
};
const presence = (id: string, status: 'active' | 'idle'): LiveEvent => ({
  id,
  kind: 'presence',
  at: '2026-11-25T10:00:00Z',
  presence: { handle: 'ada', device_id: 1, device_name: 'laptop', status, user_status: status, last_seen: '2026-11-25T10:00:00Z' },
});

describe('Dashboard', () => {
  it('keeps an event that arrives while the presence snapshot is in flight', async () => {
    const s = scripted({ '/api/v1/me': ok(me), '/api/v1/presence': ok(snapshot), '/api/v1/sessions': ok({ sessions: [] }) });
    const d = new Dashboard(new Api(s.t));
    const loading = d.load();
    await s.release('/api/v1/me');
    s.emit(presence('10', 'active')); // the snapshot below was taken before this
    await s.release('/api/v1/presence');
    await s.release('/api/v1/sessions');
    await loading;
    expect(d.phase).toBe('ready');
    expect(d.self?.status).toBe('active');
    expect(d.self?.devices[0].status).toBe('active');
    expect(d.feed.map((f) => f.text)).toEqual(['ada · laptop is active']);
  });

  it('drops replayed events and merges session events into the week', async () => {
    const s = scripted({ '/api/v1/me': ok(me), '/api/v1/presence': ok(snapshot), '/api/v1/sessions': ok({ sessions: [] }) });
    const d = new Dashboard(new Api(s.t));
    const loading = d.load();
    await s.release('/api/v1/me');
    await s.release('/api/v1/presence');
    await s.release('/api/v1/sessions');
    await loading;
    s.emit(presence('20', 'active'));
    s.emit(presence('19', 'idle')); // a replay from before: ignored
    expect(d.self?.status).toBe('active');
    const start = new Date(d.week[0] + 3_600_000).toISOString();
    s.emit({ id: '21', kind: 'session', at: start, session: { id: 5, device_id: 1, state: 'active', start, end: start, open: true }, open: true, handle: 'ada' });
    s.emit({ id: '22', kind: 'session', at: start, session: { id: 6, device_id: 9, state: 'active', start, end: start }, open: true, handle: 'grace' });
    expect(d.sessions.map((x) => x.id)).toEqual([5]);
    expect(d.feed).toHaveLength(2);
  });

  it('hands the user\'s own state to the host as it changes', async () => {
    const s = scripted({ '/api/v1/me': ok(me), '/api/v1/presence': ok(snapshot), '/api/v1/sessions': ok({ sessions: [] }) });
    const shown: (string | null)[] = [];
    const d = new Dashboard(new Api({ ...s.t, showState: (st) => shown.push(st) }));
    const loading = d.load();
    await s.release('/api/v1/me');
    await s.release('/api/v1/presence');
    await s.release('/api/v1/sessions');
    await loading;
    s.emit(presence('30', 'active'));
    s.emit(presence('31', 'idle'));
    // Someone else's change is not ours: our state is shown again, unchanged.
    const other = presence('32', 'active');
    if (other.kind === 'presence') other.presence = { ...other.presence, handle: 'grace', device_id: 9, device_name: 'pc' };
    s.emit(other);
    expect(shown).toEqual(['offline', 'active', 'idle', 'idle']);
  });

  it('hands the host why the user is present, over all their devices', async () => {
    const two = {
      users: [
        {
          ...snapshot.users[0],
          status: 'active',
          devices: [...snapshot.users[0].devices, { id: 2, name: 'desk', os: '', status: 'active', why: 'media', last_seen: '2026-11-25T09:00:00Z' }],
        },
      ],
    };
    const s = scripted({ '/api/v1/me': ok(me), '/api/v1/presence': ok(two), '/api/v1/sessions': ok({ sessions: [] }) });
    const shown: string[] = [];
    const d = new Dashboard(new Api({ ...s.t, showState: (st, why) => shown.push(`${st}/${why ?? ''}`) }));
    const loading = d.load();
    await s.release('/api/v1/me');
    await s.release('/api/v1/presence');
    await s.release('/api/v1/sessions');
    await loading;
    const call = presence('40', 'active');
    if (call.kind === 'presence') call.presence.why = 'call';
    s.emit(call);
    s.emit(presence('41', 'active')); // typing on the laptop: at a keyboard
    // A call that begins while typing changes no status: the service tells it
    // by the span that opens.
    const start = new Date(d.week[0] + 3_600_000).toISOString();
    s.emit({ id: '42', kind: 'session', at: start, session: { id: 5, device_id: 1, state: 'active', why: 'call', start, end: start, open: true }, open: true, handle: 'ada' });
    expect(d.self?.devices[0].why).toBe('call');
    expect(shown).toEqual(['active/media', 'active/call', 'active/input', 'active/call']);
    expect(d.feed.map((f) => f.text)).toEqual(['laptop: active span started · in a call', 'ada · laptop is active', 'ada · laptop is active · in a call']);
  });

  it('sends a signed-out browser to the sign-in page', async () => {
    const s = scripted({ '/api/v1/me': () => ({ status: 401, body: '{"error":{"code":"unauthorized","message":"sign in"}}' }) });
    const d = new Dashboard(new Api(s.t));
    const loading = d.load();
    await s.release('/api/v1/me');
    await loading;
    expect(d.phase).toBe('signed-out');
  });

  it('shows why the dashboard could not load', async () => {
    const s = scripted({ '/api/v1/me': () => ({ status: 500, body: '{"error":{"code":"internal","message":"database is locked"}}' }) });
    const d = new Dashboard(new Api(s.t));
    const loading = d.load();
    await s.release('/api/v1/me');
    await loading;
    expect(d.phase).toBe('failed');
    expect(d.error).toBe('database is locked');
  });
});

describe('Dashboard sign-in', () => {
  it('signs in by handle and password, trimmed and without a leading @, then loads', async () => {
    const sent: string[] = [];
    let signedIn = false;
    const t: Transport = {
      local: false,
      session: true,
      origin: 'http://svc',
      request: async (m, path, body) => {
        sent.push(`${m} ${path.split('?')[0]} ${body ?? ''}`);
        if (path === '/api/v1/login') {
          signedIn = true;
          return { status: 200, body: JSON.stringify(me) };
        }
        if (path === '/api/v1/logout') {
          signedIn = false;
          return { status: 204, body: '' };
        }
        if (!signedIn) return { status: 401, body: '{"error":{"code":"unauthorized","message":"sign in"}}' };
        if (path === '/api/v1/me') return { status: 200, body: JSON.stringify(me) };
        if (path === '/api/v1/presence') return { status: 200, body: JSON.stringify(snapshot) };
        return { status: 200, body: '{"sessions":[]}' };
      },
      file: (path) => Promise.reject(new Error(`unexpected file ${path}`)),
      subscribe: () => () => {},
    };
    const d = new Dashboard(new Api(t));
    await d.load();
    expect(d.phase).toBe('signed-out');
    await d.signInPassword('  @ada ', 'pw with spaces ');
    expect(d.phase).toBe('ready');
    expect(d.me?.handle).toBe('ada');
    expect(sent).toContain('POST /api/v1/login {"handle":"ada","password":"pw with spaces "}');
    await d.signOut();
    expect(d.phase).toBe('signed-out');
    expect(d.me).toBeNull();
    expect(sent.at(-1)).toBe('POST /api/v1/logout ');
  });
});
