import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Api, ApiError, browserStream, browserTransport, windowTitle, windowTransport, type RawResponse, type Transport } from './api';
import type { Connection, LiveEvent } from './types';

function fixed(res: RawResponse, seen: string[] = []): Transport {
  return {
    local: false,
    session: true,
    origin: '',
    request: async (m, p, b) => {
      seen.push(`${m} ${p} ${b ?? ''}`);
      return res;
    },
    file: async (p) => {
      seen.push(`GET ${p} (file)`);
      return { status: res.status, name: '', type: '', data: new Blob([res.body]) };
    },
    subscribe: () => () => {},
  };
}

describe('Api.call', () => {
  it('returns parsed JSON', async () => {
    const seen: string[] = [];
    const api = new Api(fixed({ status: 200, body: '{"handle":"ada","name":"Ada","tz":"UTC","public":false}' }, seen));
    expect((await api.me()).handle).toBe('ada');
    await api.updateMe({ public: true });
    expect(seen).toEqual(['GET /api/v1/me ', 'PATCH /api/v1/me {"public":true}']);
  });
  it('turns the error envelope into an ApiError', async () => {
    const api = new Api(fixed({ status: 401, body: '{"error":{"code":"unauthorized","message":"no token"}}' }));
    const err = await api.me().catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 401, code: 'unauthorized', message: 'no token' });
  });
  it('reports a non-JSON failure with its status and text', async () => {
    const err = await new Api(fixed({ status: 502, body: 'Bad Gateway' })).me().catch((e) => e);
    expect(err).toMatchObject({ status: 502, code: 'http' });
    expect(err.message).toContain('HTTP 502: Bad Gateway');
  });
  it('rejects a 200 that is not JSON', async () => {
    await expect(new Api(fixed({ status: 200, body: '<html>' })).me()).rejects.toThrow('not JSON');
  });
  it('asks sessions of the visible states at once and orders them by start', async () => {
    const seen: string[] = [];
    const t: Transport = {
      ...fixed({ status: 200, body: '' }),
      request: async (_m, p) => {
        seen.push(p);
        const mk = (id: number, state: string, start: string) => ({ id, device_id: 1, state, start, end: start });
        return { status: 200, body: JSON.stringify({ sessions: [mk(2, 'active', '2026-11-25T09:00:00Z'), mk(1, 'idle', '2026-11-25T08:00:00Z')] }) };
      },
    };
    const out = await new Api(t).sessions(Date.parse('2026-11-25T00:00:00Z'), Date.parse('2026-11-26T00:00:00Z'));
    expect(out.map((s) => s.id)).toEqual([1, 2]);
    expect(seen).toEqual(['/api/v1/sessions?from=2026-11-25T00%3A00%3A00.000Z&to=2026-11-26T00%3A00%3A00.000Z&state=active%2Cidle%2Caway']);
  });
  it('asks daily stats by calendar date in a zone', async () => {
    const seen: string[] = [];
    const api = new Api(fixed({ status: 200, body: '{"days":null}' }, seen));
    expect(await api.statsDaily('2026-11-19', '2026-11-25', 'Europe/Paris')).toEqual([]);
    expect(seen).toEqual(['GET /api/v1/stats/daily?from=2026-11-19&to=2026-11-25&tz=Europe%2FParis ']);
  });
});

describe('windowTransport', () => {
  it('forwards requests through the bridge and relays runtime events', async () => {
    const calls: unknown[][] = [];
    const handlers = new Map<string, (...d: unknown[]) => void>();
    const off: string[] = [];
    const t = windowTransport(
      {
        Request: async (...a) => {
          calls.push(a);
          return { status: 200, body: '{"ok":true}' };
        },
      },
      {
        EventsOn: (name, cb) => {
          handlers.set(name, cb);
          return () => off.push(name);
        },
      },
    );
    expect(await new Api(t).call('PUT', '/local/v1/mode', { mode: 'away' })).toEqual({ ok: true });
    expect(calls).toEqual([['PUT', '/local/v1/mode', '{"mode":"away"}']]);
    const events: LiveEvent[] = [];
    const conns: Connection[] = [];
    const stop = t.subscribe({ event: (e) => events.push(e), connection: (c) => conns.push(c) });
    handlers.get('lastseen:connection')!('live');
    handlers.get('lastseen:connection')!('bogus');
    handlers.get('lastseen:event')!({ id: '5', event: 'presence', data: '{"presence":{"handle":"a","device_id":1,"status":"idle"}}' });
    expect(conns).toEqual(['reconnecting', 'live']);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ id: '5', kind: 'presence' });
    stop();
    expect(off.sort()).toEqual(['lastseen:connection', 'lastseen:event']);
  });
  it('sets the native title to the user\'s state, once per change', () => {
    const titles: string[] = [];
    const t = windowTransport(
      { Request: async () => ({ status: 200, body: '' }) },
      { EventsOn: () => () => {}, WindowSetTitle: (s) => titles.push(s) },
    );
    const api = new Api(t);
    api.showState('active');
    api.showState('active'); // a beat that changes nothing
    api.showState('idle');
    api.showState('away');
    api.showState('offline');
    api.showState(null);
    expect(titles).toEqual(['Lastseen — Active', 'Lastseen — Idle', 'Lastseen — Away', 'Lastseen — Offline', 'Lastseen']);
  });
  it('says in the title why the user is present', () => {
    const titles: string[] = [];
    const api = new Api(
      windowTransport({ Request: async () => ({ status: 200, body: '' }) }, { EventsOn: () => () => {}, WindowSetTitle: (s) => titles.push(s) }),
    );
    api.showState('active', 'input');
    api.showState('active', 'call');
    api.showState('active', 'call');
    api.showState('active', 'media');
    api.showState('idle', 'media');
    expect(titles).toEqual(['Lastseen — Active', 'Lastseen — Active · in a call', 'Lastseen — Active · watching', 'Lastseen — Idle']);
  });
  it('shows no state where there is no window', () => {
    expect(() => new Api(fixed({ status: 200, body: '' })).showState('active')).not.toThrow();
    expect(() => windowTransport({ Request: async () => ({ status: 200, body: '' }) }, undefined).showState?.('idle')).not.toThrow();
    expect(windowTitle(null)).toBe('Lastseen');
  });
  it('maps a rejected bridge call to an unavailable error', async () => {
    const t = windowTransport({ Request: () => Promise.reject('agent not running') }, undefined);
    await expect(new Api(t).me()).rejects.toMatchObject({ status: 0, code: 'unavailable' });
  });
});

describe('export and import', () => {
  afterEach(() => vi.unstubAllGlobals());

  const result = { format: 'activitywatch', added: 2, skipped: 0, devices: [{ id: 3, name: 'vm', created: true, added: 2, skipped: 0 }] };

  it('downloads an export in the browser under the name the service gives', async () => {
    const seen: [string, RequestInit | undefined][] = [];
    vi.stubGlobal('location', { origin: 'http://svc' });
    vi.stubGlobal('fetch', async (path: string, init?: RequestInit) => {
      seen.push([path, init]);
      return new Response('device,state\n', {
        headers: { 'Content-Type': 'text/csv; charset=utf-8', 'Content-Disposition': 'attachment; filename="lastseen-ada-2026-12-03.csv"' },
      });
    });
    const f = await new Api(browserTransport()).exportFile('csv');
    expect(f).toMatchObject({ status: 200, name: 'lastseen-ada-2026-12-03.csv', type: 'text/csv; charset=utf-8' });
    expect(await f.data.text()).toBe('device,state\n');
    expect(seen).toEqual([['/api/v1/export?format=csv', { credentials: 'same-origin' }]]);
  });

  it('turns a refused export into an ApiError with the service message', async () => {
    vi.stubGlobal('location', { origin: 'http://svc' });
    vi.stubGlobal('fetch', async () => new Response('{"error":{"code":"forbidden","message":"this needs a user token"}}', { status: 403 }));
    await expect(new Api(browserTransport()).exportFile('json')).rejects.toMatchObject({ status: 403, code: 'forbidden', message: 'this needs a user token' });
    vi.stubGlobal('fetch', async () => new Response('Bad Gateway', { status: 502 }));
    await expect(new Api(browserTransport()).exportFile('json')).rejects.toThrow('GET /api/v1/export failed with HTTP 502: Bad Gateway');
  });

  it('sends a picked file as it is in the browser', async () => {
    const seen: [string, RequestInit | undefined][] = [];
    vi.stubGlobal('location', { origin: 'http://svc' });
    vi.stubGlobal('fetch', async (path: string, init?: RequestInit) => {
      seen.push([path, init]);
      return new Response(JSON.stringify(result));
    });
    const file = new Blob(['{"buckets":{}}']);
    expect(await new Api(browserTransport()).importFile(file, { kind: 'named', name: 'old pc' })).toEqual(result);
    expect(seen[0][0]).toBe('/api/v1/import?device_name=old%20pc');
    expect(seen[0][1]).toMatchObject({ method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' } });
    expect(seen[0][1]?.body).toBe(file);
  });

  it('reads a picked file as text for the window bridge, and names a window export itself', async () => {
    const calls: string[][] = [];
    const t = windowTransport(
      {
        Request: async (m, p, b) => {
          calls.push([m, p, b]);
          if (p.startsWith('/api/v1/export')) return { status: 200, body: '{"version":1}' };
          return { status: 200, body: JSON.stringify(result) };
        },
      },
      undefined,
    );
    const api = new Api(t);
    expect(await api.importFile(new Blob(['{"buckets":{}}']), { kind: 'device', id: 9 })).toEqual(result);
    const f = await api.exportFile('json');
    expect(f.name).toBe(''); // no headers cross the bridge
    expect(f.type).toBe('application/json;charset=utf-8');
    expect(await f.data.text()).toBe('{"version":1}');
    expect(calls).toEqual([
      ['POST', '/api/v1/import?device=9', '{"buckets":{}}'],
      ['GET', '/api/v1/export', ''],
    ]);
  });

  it('shows an import refused by the service with its message', async () => {
    const api = new Api(fixed({ status: 400, body: '{"error":{"code":"invalid","message":"buckets.x.events[3].timestamp: not a time"}}' }));
    await expect(api.importFile(new Blob(['{}']), { kind: 'file' })).rejects.toMatchObject({
      status: 400,
      message: 'buckets.x.events[3].timestamp: not a time',
    });
  });
});

// A stand-in for the browser's EventSource: tests drive its life by hand.
class FakeES {
  static all: FakeES[] = [];
  readyState = 0;
  onopen: (() => void) | null = null;
  onerror: (() => void) | null = null;
  listeners = new Map<string, (m: MessageEvent<string>) => void>();
  closed = false;
  constructor(readonly url: string) {
    FakeES.all.push(this);
  }
  addEventListener(kind: string, cb: (m: MessageEvent<string>) => void) {
    this.listeners.set(kind, cb);
  }
  close() {
    this.closed = true;
    this.readyState = 2;
  }
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  send(kind: string, id: string, data: unknown) {
    this.listeners.get(kind)?.({ lastEventId: id, data: JSON.stringify(data) } as MessageEvent<string>);
  }
  fail(closed: boolean) {
    this.readyState = closed ? 2 : 0;
    this.onerror?.();
  }
}

describe('browserStream', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    FakeES.all = [];
    vi.stubGlobal('window', new EventTarget());
    vi.stubGlobal('navigator', { onLine: true });
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it('goes live, passes events on, and rides native reconnects', () => {
    const conns: Connection[] = [];
    const events: LiveEvent[] = [];
    const stop = browserStream(
      { event: (e) => events.push(e), connection: (c) => conns.push(c) },
      { eventSource: (u) => new FakeES(u) as unknown as EventSource },
    );
    const es = FakeES.all[0];
    expect(es.url).toBe('/api/v1/events');
    es.open();
    es.send('presence', '7', { presence: { handle: 'a', device_id: 1, status: 'active' } });
    es.fail(false); // dropped: EventSource retries by itself
    es.open();
    expect(conns).toEqual(['reconnecting', 'live', 'reconnecting', 'live']);
    expect(events).toHaveLength(1);
    expect(FakeES.all).toHaveLength(1);
    stop();
    expect(es.closed).toBe(true);
  });

  it('recreates a closed stream after a backoff, resuming from the last id, and says offline when it stays down', () => {
    const conns: Connection[] = [];
    browserStream(
      { event: () => {}, connection: (c) => conns.push(c) },
      { eventSource: (u) => new FakeES(u) as unknown as EventSource, offlineAfterMs: 10_000, maxBackoffMs: 4_000 },
    );
    FakeES.all[0].open();
    FakeES.all[0].send('session', '41', {});
    FakeES.all[0].fail(true); // the server refused: EventSource gives up
    expect(conns.at(-1)).toBe('reconnecting');
    vi.advanceTimersByTime(1_000);
    expect(FakeES.all).toHaveLength(2);
    expect(FakeES.all[1].url).toBe('/api/v1/events?last_event_id=41');
    FakeES.all[1].fail(true);
    vi.advanceTimersByTime(10_000);
    expect(conns.at(-1)).toBe('offline');
    const n = FakeES.all.length;
    expect(n).toBeGreaterThan(2);
    expect(n).toBeLessThan(8); // backoff, not a tight loop
    FakeES.all[n - 1].open();
    expect(conns.at(-1)).toBe('live');
  });

  it('retries at once when the network comes back', () => {
    browserStream({ event: () => {}, connection: () => {} }, { eventSource: (u) => new FakeES(u) as unknown as EventSource, maxBackoffMs: 30_000 });
    FakeES.all[0].fail(true);
    expect(FakeES.all).toHaveLength(1); // waiting out the backoff
    (window as unknown as EventTarget).dispatchEvent(new Event('online'));
    expect(FakeES.all).toHaveLength(2);
  });
});

describe('people endpoints', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('signs in with a handle and password and carries Retry-After on a 429', async () => {
    const seen: [string, RequestInit | undefined][] = [];
    vi.stubGlobal('location', { origin: 'http://svc' });
    vi.stubGlobal('fetch', async (path: string, init?: RequestInit) => {
      seen.push([path, init]);
      return new Response('{"error":{"code":"rate_limited","message":"too many failed sign-ins"}}', {
        status: 429,
        headers: { 'Retry-After': '17', 'Content-Type': 'application/json' },
      });
    });
    const err = await new Api(browserTransport()).loginPassword('ada', 'pw 1234!').catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 429, code: 'rate_limited', retryAfterS: 17 });
    expect(seen[0][0]).toBe('/api/v1/login');
    expect(seen[0][1]).toMatchObject({ method: 'POST', credentials: 'same-origin' });
    expect(JSON.parse(String(seen[0][1]?.body))).toEqual({ handle: 'ada', password: 'pw 1234!' });
  });

  it('has no wait for an answer without Retry-After', async () => {
    const err = await new Api(fixed({ status: 401, body: '{"error":{"code":"unauthorized","message":"wrong handle or password"}}' }))
      .loginPassword('ada', 'x')
      .catch((e) => e);
    expect(err).toMatchObject({ status: 401, retryAfterS: null });
  });

  it('sends each request to its route with its body', async () => {
    const seen: string[] = [];
    const api = new Api(fixed({ status: 200, body: '' }, seen));
    await api.changePassword('old password', 'new password');
    await api.changePassword('', 'first password');
    await api.endSession(7);
    await api.revokeToken('a1b2/c3');
    await api.createToken('backup');
    await api.peekLink('ls_inv_x');
    await api.redeemLink('ls_inv_x', 'pw12345678', 'Grace', 'Europe/Paris');
    await api.redeemLink('ls_inv_y', 'pw12345678');
    await api.updatePerson('grace', { disabled: true });
    await api.endPersonSessions('grace');
    await api.resetLink('grace');
    await api.createInvite('grace', '', true);
    await api.revokeInvite(3);
    await api.pairRequest('BDFGHJKL');
    await api.decidePair('BDFGHJKL', false);
    await api.logout();
    expect(seen).toEqual([
      'PUT /api/v1/me/password {"current":"old password","new":"new password"}',
      'PUT /api/v1/me/password {"new":"first password"}',
      'DELETE /api/v1/me/sessions/7 ',
      'DELETE /api/v1/me/tokens/a1b2%2Fc3 ',
      'POST /api/v1/me/tokens {"name":"backup"}',
      'POST /api/v1/links/peek {"secret":"ls_inv_x"}',
      'POST /api/v1/links/redeem {"secret":"ls_inv_x","password":"pw12345678","name":"Grace","tz":"Europe/Paris"}',
      'POST /api/v1/links/redeem {"secret":"ls_inv_y","password":"pw12345678"}',
      'PATCH /api/v1/people/grace {"disabled":true}',
      'DELETE /api/v1/people/grace/sessions ',
      'POST /api/v1/people/grace/reset ',
      'POST /api/v1/invites {"handle":"grace","admin":true}',
      'DELETE /api/v1/invites/3 ',
      'GET /api/v1/pair/BDFGHJKL ',
      'POST /api/v1/pair/BDFGHJKL {"approve":false}',
      'POST /api/v1/logout ',
    ]);
  });

  it('reads lists, null as empty', async () => {
    const api = new Api(fixed({ status: 200, body: 'null' }));
    expect(await api.mySessions()).toEqual([]);
    expect(await api.myTokens()).toEqual([]);
    expect(await api.people()).toEqual([]);
    expect(await api.invites()).toEqual([]);
  });

  it('drives the agent pairing through the window bridge', async () => {
    const calls: string[] = [];
    const t = windowTransport(
      {
        Request: async (m, p, b) => {
          calls.push(`${m} ${p} ${b}`);
          return { status: 200, body: m === 'DELETE' ? '' : '{"state":"pending","user_code":"BDFGHJKL"}' };
        },
      },
      { EventsOn: () => () => {} },
    );
    const api = new Api(t);
    await api.startPairing('https://ls.example.org');
    expect((await api.pairingStatus()).user_code).toBe('BDFGHJKL');
    await api.cancelPairing();
    expect(calls).toEqual(['POST /local/v1/pair {"url":"https://ls.example.org"}', 'GET /local/v1/pair ', 'DELETE /local/v1/pair ']);
  });

  it('opens pages with the window runtime where it can, else in a new tab', () => {
    const opened: string[] = [];
    const bridge = { Request: async () => ({ status: 200, body: '' }) };
    new Api(windowTransport(bridge, { EventsOn: () => {}, BrowserOpenURL: (u) => opened.push(`runtime ${u}`) })).openURL('https://x/pair?code=B');
    vi.stubGlobal('window', { open: (u: string, target: string) => opened.push(`open ${u} ${target}`) });
    new Api(windowTransport(bridge, { EventsOn: () => {} })).openURL('https://y/pair');
    expect(opened).toEqual(['runtime https://x/pair?code=B', 'open https://y/pair _blank']);
  });
});

describe('stats, watches and the public status', () => {
  it('asks the stats in the user zone unless one is chosen, and the table with its sort and page', async () => {
    const seen: string[] = [];
    const api = new Api(fixed({ status: 200, body: '{}' }, seen));
    await api.statsSummary('2026-11-01', '2026-11-30');
    await api.statsSummary('2026-11-01', '2026-11-30', 'Asia/Tokyo');
    await api.statsSessions({ from: '2026-11-01', to: '2026-11-30', sort: 'duration', order: 'desc', limit: 20, offset: 40 });
    expect(seen).toEqual([
      'GET /api/v1/stats/summary?from=2026-11-01&to=2026-11-30 ',
      'GET /api/v1/stats/summary?from=2026-11-01&to=2026-11-30&tz=Asia%2FTokyo ',
      'GET /api/v1/stats/sessions?from=2026-11-01&to=2026-11-30&sort=duration&order=desc&limit=20&offset=40 ',
    ]);
  });
  it('lists, sets and clears watches by handle', async () => {
    const seen: string[] = [];
    const api = new Api(fixed({ status: 200, body: '{"watches":null}' }, seen));
    expect(await api.watches()).toEqual([]);
    await api.watch('grace');
    await api.unwatch('grace');
    expect(seen).toEqual(['GET /api/v1/watches ', 'PUT /api/v1/watches/grace ', 'DELETE /api/v1/watches/grace ']);
  });
  it('reads the public status afresh each time, and sends the level', async () => {
    const seen: string[] = [];
    const api = new Api(fixed({ status: 200, body: '{"handle":"ada","online":true}' }, seen));
    await api.publicStatus('ada');
    await api.updateMe({ public_detail: 'state' });
    expect(seen[0]).toMatch(/^GET \/api\/v1\/public\/ada\?fresh=[0-9a-z]+ $/);
    expect(seen[1]).toBe('PATCH /api/v1/me {"public_detail":"state"}');
  });
});
