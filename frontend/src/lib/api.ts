// The one place that knows how the dashboard reaches its data. In a browser
// it is served by lastseend: same-origin fetch with the sign-in cookie and an
// EventSource. In the desktop window it goes through the Wails bridge to the
// agent's local API, and live events arrive as Wails runtime events. Views
// ask `api` for data and for what it can do (capabilities), never which
// transport it is.

import { decodeEvent } from './events';
import { stateLabel } from './format';
import { parseRetryAfter } from './retryafter';
import { attachmentName, exportPath, exportType, importPath, type ExportFormat, type ImportResult, type ImportTarget } from './portable';
import type {
  ApiToken,
  Connection,
  DayTotal,
  DeviceView,
  Diagnostics,
  Invite,
  LinkPeek,
  LinkURL,
  LiveEvent,
  LocalPairStart,
  LocalPairStatus,
  LocalSettings,
  LocalStatus,
  Me,
  Mode,
  NewApiToken,
  NewDevice,
  NewInvite,
  PairDecision,
  PairRequest,
  Person,
  PublicDetail,
  PublicStatus,
  Session,
  SessionSort,
  SortOrder,
  StatsSessionsPage,
  StatsSummary,
  Watch,
  UserSession,
  ServiceTest,
  State,
  UserPresence,
  Why,
} from './types';

/**
 * A failed request: the HTTP status (0 when the service could not be reached) and the API's error code.
 * Both 503 and 502 carry the code 'unavailable': 503 is the server that answered failing (lastseend,
 * or the agent not running), 502 the agent saying the remote service behind it is down, while its
 * own local history still answers (docs/LOCALAPI.md).
 */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  /** Seconds to wait before trying again, from a 429's Retry-After; null when not said. */
  readonly retryAfterS: number | null;
  constructor(status: number, code: string, message: string, retryAfterS: number | null = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfterS = retryAfterS;
  }
}

export interface RawResponse {
  status: number;
  body: string;
  /** The Retry-After header, where the transport sees headers (the browser's). */
  retryAfter?: string | null;
}

/** A file the service sends (an export): its bytes, and the name and type its headers give ('' where they do not arrive). */
export interface RawFile {
  status: number;
  name: string;
  type: string;
  data: Blob;
}

/** A request body: JSON text, or a file the user picked, sent as it is. */
export type Body = string | Blob;

export interface StreamHandlers {
  event(ev: LiveEvent): void;
  connection(c: Connection): void;
}

export interface Transport {
  request(method: string, path: string, body?: Body): Promise<RawResponse>;
  /** GETs a file; an error answer comes back as a file too, with its status. */
  file(path: string): Promise<RawFile>;
  /** Starts the live stream; the returned function stops it. */
  subscribe(h: StreamHandlers): () => void;
  /** The agent's /local/v1 endpoints are there (desktop window). */
  readonly local: boolean;
  /** Sign-in with a user token and sign-out exist (browser). */
  readonly session: boolean;
  /** Where the service answers for others (badge links); '' when unknown. */
  readonly origin: string;
  /**
   * Shows the user's own state where the host can (the desktop window's
   * native title, so taskbars and window lists carry it), with why an
   * active user is present; null when it is not known. Absent where there
   * is nowhere to show it.
   */
  showState?(s: State | null, why?: Why): void;
  /** Opens a web page in the user's browser, where the host has its own way (the window). */
  openURL?(url: string): void;
}

// ---------------------------------------------------------------- browser

export interface BrowserStreamOptions {
  /** Longest wait between two attempts to recreate a closed stream. */
  maxBackoffMs?: number;
  /** How long the stream may be down before the indicator says offline. */
  offlineAfterMs?: number;
  eventSource?: (url: string) => EventSource;
}

/**
 * Keeps an EventSource open on /api/v1/events. EventSource reconnects by
 * itself after a dropped connection and resends Last-Event-ID; when the
 * server refuses or ends the stream for good (readyState CLOSED), it is
 * recreated here after a growing backoff with ?last_event_id= so nothing
 * seen is replayed and nothing missed is lost.
 */
export function browserStream(h: StreamHandlers, opts: BrowserStreamOptions = {}): () => void {
  const maxBackoff = opts.maxBackoffMs ?? 30_000;
  const offlineAfter = opts.offlineAfterMs ?? 30_000;
  const make = opts.eventSource ?? ((url: string) => new EventSource(url));
  let es: EventSource | null = null;
  let lastId = '';
  let attempt = 0;
  let stopped = false;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let offlineTimer: ReturnType<typeof setTimeout> | undefined;
  let state: Connection | '' = '';

  const set = (c: Connection) => {
    if (c === state) return;
    state = c;
    h.connection(c);
  };
  const down = () => {
    if (state === 'offline') return;
    set(navigator.onLine === false ? 'offline' : 'reconnecting');
    // One timer per outage, not a poll: after a while "reconnecting" turns
    // into "offline", while the attempts go on in the background.
    if (offlineTimer === undefined) {
      offlineTimer = setTimeout(() => set('offline'), offlineAfter);
    }
  };
  const up = () => {
    attempt = 0;
    clearTimeout(offlineTimer);
    offlineTimer = undefined;
    set('live');
  };
  const onMessage = (kind: string) => (m: MessageEvent<string>) => {
    if (m.lastEventId) lastId = m.lastEventId;
    const ev = decodeEvent(m.lastEventId, kind, m.data);
    if (ev) h.event(ev);
  };
  const open = () => {
    retryTimer = undefined;
    if (stopped) return;
    const url = '/api/v1/events' + (lastId ? `?last_event_id=${encodeURIComponent(lastId)}` : '');
    const s = make(url);
    es = s;
    s.onopen = up;
    s.addEventListener('presence', onMessage('presence'));
    s.addEventListener('session', onMessage('session'));
    s.onerror = () => {
      if (s !== es) return;
      down();
      if (s.readyState === 2 /* CLOSED */) {
        s.close();
        es = null;
        const base = Math.min(maxBackoff, 1000 * 2 ** attempt);
        attempt++;
        retryTimer = setTimeout(open, base / 2 + Math.random() * (base / 2));
      }
    };
  };
  const online = () => {
    // The network is back: try now instead of waiting out the backoff.
    if (!es && retryTimer !== undefined) {
      clearTimeout(retryTimer);
      open();
    }
  };
  const offline = () => set('offline');
  window.addEventListener('online', online);
  window.addEventListener('offline', offline);
  set('reconnecting');
  open();
  return () => {
    stopped = true;
    clearTimeout(retryTimer);
    clearTimeout(offlineTimer);
    es?.close();
    es = null;
    window.removeEventListener('online', online);
    window.removeEventListener('offline', offline);
  };
}

export function browserTransport(): Transport {
  return {
    local: false,
    session: true,
    origin: location.origin,
    async request(method, path, body) {
      let res: Response;
      try {
        res = await fetch(path, {
          method,
          credentials: 'same-origin',
          headers: body !== undefined ? { 'Content-Type': 'application/json' } : {},
          body,
        });
      } catch (err) {
        throw new ApiError(0, 'unavailable', `cannot reach the service: ${(err as Error).message}`);
      }
      return { status: res.status, body: await res.text(), retryAfter: res.headers.get('Retry-After') };
    },
    async file(path) {
      let res: Response;
      try {
        res = await fetch(path, { credentials: 'same-origin' });
      } catch (err) {
        throw new ApiError(0, 'unavailable', `cannot reach the service: ${(err as Error).message}`);
      }
      return {
        status: res.status,
        name: attachmentName(res.headers.get('Content-Disposition')),
        type: res.headers.get('Content-Type') ?? '',
        data: await res.blob(),
      };
    },
    subscribe: (h) => browserStream(h),
  };
}

// ----------------------------------------------------------------- window

interface WailsBridge {
  Request(method: string, path: string, body: string): Promise<RawResponse>;
  /** Optional: the window's current stream state, for a page (re)loaded after the last report. */
  Connection?(): Promise<string>;
}

interface WailsRuntime {
  EventsOn(name: string, cb: (...data: unknown[]) => void): (() => void) | void;
  EventsOff?(name: string, ...more: string[]): void;
  WindowSetTitle?(title: string): void;
  /** Opens a URL in the system's default browser (Wails runtime). */
  BrowserOpenURL?(url: string): void;
}

declare global {
  interface Window {
    go?: { app?: { Bridge?: WailsBridge } };
    runtime?: WailsRuntime;
  }
}

/**
 * The window's title for the user's own state: "Lastseen — Idle",
 * "Lastseen — Active · in a call", or plain "Lastseen" when unknown.
 */
export function windowTitle(s: State | null, why?: Why): string {
  return s ? `Lastseen — ${stateLabel(s, why)}` : 'Lastseen';
}

function isConnection(v: unknown): v is Connection {
  return v === 'live' || v === 'reconnecting' || v === 'offline';
}

export function windowTransport(bridge: WailsBridge, runtime: WailsRuntime | undefined, origin = ''): Transport {
  // The title last set: every presence event reaches showState, and a
  // native call per event would be waste when nothing changed.
  let title = '';
  const request = async (method: string, path: string, body?: Body): Promise<RawResponse> => {
    // The bridge carries text only (a picked file is JSON, read as UTF-8)
    // and sends it as application/json.
    const text = body === undefined ? '' : typeof body === 'string' ? body : await body.text();
    try {
      const r = await bridge.Request(method, path, text);
      return { status: r.status, body: r.body };
    } catch (err) {
      throw new ApiError(0, 'unavailable', `cannot reach the agent: ${String(err)}`);
    }
  };
  return {
    local: true,
    session: false,
    origin,
    showState(s, why) {
      const next = windowTitle(s, why);
      if (next === title || !runtime?.WindowSetTitle) return;
      title = next;
      runtime.WindowSetTitle(next);
    },
    request,
    openURL: runtime?.BrowserOpenURL ? (url) => runtime.BrowserOpenURL!(url) : undefined,
    async file(path) {
      // Only the body crosses the bridge: no headers, so no name or type,
      // and an answer is at most what the bridge holds in memory (16 MiB).
      const r = await request('GET', path);
      return { status: r.status, name: '', type: '', data: new Blob([r.body]) };
    },
    subscribe(h) {
      if (!runtime) {
        h.connection('offline');
        return () => {};
      }
      let known = false;
      h.connection('reconnecting');
      const offEvent = runtime.EventsOn('lastseen:event', (p) => {
        if (typeof p !== 'object' || p === null) return;
        const { id, event, data } = p as { id?: unknown; event?: unknown; data?: unknown };
        const ev = decodeEvent(String(id ?? ''), String(event ?? ''), typeof data === 'string' ? data : JSON.stringify(data));
        if (ev) h.event(ev);
      });
      const offConn = runtime.EventsOn('lastseen:connection', (c) => {
        if (isConnection(c)) {
          known = true;
          h.connection(c);
        }
      });
      bridge.Connection?.().then(
        (c) => {
          if (!known && isConnection(c)) h.connection(c);
        },
        () => {},
      );
      return () => {
        if (typeof offEvent === 'function') offEvent();
        else runtime.EventsOff?.('lastseen:event');
        if (typeof offConn === 'function') offConn();
        else runtime.EventsOff?.('lastseen:connection');
      };
    },
  };
}

// ------------------------------------------------------------------- API

function qs(params: Record<string, string | number | undefined>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}

/** The typed API over a transport. */
export class Api {
  readonly t: Transport;
  constructor(t: Transport) {
    this.t = t;
  }

  get local(): boolean {
    return this.t.local;
  }
  get session(): boolean {
    return this.t.session;
  }
  get origin(): string {
    return this.t.origin;
  }

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    return this.send<T>(method, path, body === undefined ? undefined : JSON.stringify(body));
  }

  /** A request with a body sent as it is (JSON text or a file); the answer is JSON. */
  async send<T>(method: string, path: string, body?: Body): Promise<T> {
    const r = await this.t.request(method, path, body);
    let parsed: unknown = undefined;
    if (r.body) {
      try {
        parsed = JSON.parse(r.body);
      } catch {
        if (r.status < 400) throw new ApiError(r.status, 'invalid', `${method} ${path}: the answer is not JSON`);
      }
    }
    if (r.status >= 400 || r.status === 0) throw failure(method, path, r.status, r.body, parsed, r.retryAfter);
    return parsed as T;
  }

  /**
   * GETs a file: its bytes, name and type. An error answer throws as
   * call's do; name and type are '' where the transport cannot tell them.
   */
  async fetchFile(path: string): Promise<RawFile> {
    const f = await this.t.file(path);
    if (f.status >= 400 || f.status === 0) {
      const text = await f.data.text();
      let parsed: unknown = undefined;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not the error envelope: failure quotes the text
      }
      throw failure('GET', path, f.status, text, parsed);
    }
    return f;
  }

  subscribe(h: StreamHandlers): () => void {
    return this.t.subscribe(h);
  }

  /**
   * Opens a web page in the user's browser: the window's own way where it
   * has one (the page must not replace the dashboard), else a new tab.
   */
  openURL(url: string): void {
    if (this.t.openURL) this.t.openURL(url);
    else window.open(url, '_blank', 'noopener');
  }

  /** Shows the user's own state where the host can (see Transport.showState). */
  showState(s: State | null, why?: Why): void {
    this.t.showState?.(s, why);
  }

  me = () => this.call<Me>('GET', '/api/v1/me');
  updateMe = (patch: Partial<Pick<Me, 'name' | 'tz' | 'public'>> & { public_detail?: PublicDetail }) =>
    this.call<Me>('PATCH', '/api/v1/me', patch);
  presence = async () => (await this.call<{ users: UserPresence[] | null }>('GET', '/api/v1/presence')).users ?? [];

  /** Spans in [from, to) of the given states (all three visible ones by default), oldest first. */
  async sessions(from: number, to: number, states: State[] = ['active', 'idle', 'away']): Promise<Session[]> {
    const r = await this.call<{ sessions: Session[] | null }>(
      'GET',
      `/api/v1/sessions${qs({ from: new Date(from).toISOString(), to: new Date(to).toISOString(), state: states.join(',') })}`,
    );
    return (r.sessions ?? []).sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
  }

  /** Daily totals for the calendar dates from..to (inclusive, YYYY-MM-DD) in tz. */
  statsDaily = async (from: string, to: string, tz: string) =>
    (await this.call<{ days: DayTotal[] | null }>('GET', `/api/v1/stats/daily${qs({ from, to, tz })}`)).days ?? [];

  /**
   * The stats of the calendar dates from..to (inclusive, YYYY-MM-DD): in tz
   * when given, else in the user's own zone (the service's default).
   */
  statsSummary = (from: string, to: string, tz?: string) =>
    this.call<StatsSummary>('GET', `/api/v1/stats/summary${qs({ from, to, tz })}`);

  /** One page of the sessions table of from..to. */
  statsSessions = (q: { from: string; to: string; tz?: string; device?: number; sort?: SessionSort; order?: SortOrder; limit?: number; offset?: number }) =>
    this.call<StatsSessionsPage>('GET', `/api/v1/stats/sessions${qs(q)}`);

  // "Tell me when they come online": the user's watch list.
  watches = async () => (await this.call<{ watches: Watch[] | null }>('GET', '/api/v1/watches')).watches ?? [];
  watch = (handle: string) => this.call<Watch>('PUT', `/api/v1/watches/${encodeURIComponent(handle)}`);
  unwatch = (handle: string) => this.call<unknown>('DELETE', `/api/v1/watches/${encodeURIComponent(handle)}`);

  /**
   * A user's public status exactly as anyone may read it (404 when not
   * public). The answer may be cached for 15 s, so each read asks afresh:
   * a preview must show the level just chosen, not the one before.
   */
  publicStatus = (handle: string) =>
    this.call<PublicStatus>('GET', `/api/v1/public/${encodeURIComponent(handle)}?fresh=${Date.now().toString(36)}`);

  devices = async () => (await this.call<{ devices: DeviceView[] | null }>('GET', '/api/v1/devices')).devices ?? [];
  addDevice = (name: string) => this.call<NewDevice>('POST', '/api/v1/devices', { name });
  revokeDevice = (id: number) => this.call<unknown>('DELETE', `/api/v1/devices/${id}`);

  /** Everything of the user as a file (user token or sign-in only; not a device token). */
  async exportFile(format: ExportFormat): Promise<RawFile> {
    const f = await this.fetchFile(exportPath(format));
    return f.type ? f : { ...f, type: exportType(format), data: new Blob([f.data], { type: exportType(format) }) };
  }
  /** Sends a Lastseen or ActivityWatch export, as picked, into the user's history. */
  importFile = (file: Blob, target: ImportTarget) => this.send<ImportResult>('POST', importPath(target), file);

  /** Signs in with a user token (the API-token path of the sign-in page). */
  login = (token: string) => this.call<Me>('POST', '/api/v1/login', { token });
  /** Signs in with a handle and password; a 429 carries how long to wait (ApiError.retryAfterS). */
  loginPassword = (handle: string, password: string) => this.call<Me>('POST', '/api/v1/login', { handle, password });
  logout = () => this.call<unknown>('POST', '/api/v1/logout');

  // The signed-in user's password, browsers and API tokens (a user credential only).
  changePassword = (current: string, next: string) =>
    this.call<unknown>('PUT', '/api/v1/me/password', current ? { current, new: next } : { new: next });
  mySessions = async () => (await this.call<UserSession[] | null>('GET', '/api/v1/me/sessions')) ?? [];
  endSession = (id: number) => this.call<unknown>('DELETE', `/api/v1/me/sessions/${encodeURIComponent(String(id))}`);
  myTokens = async () => (await this.call<ApiToken[] | null>('GET', '/api/v1/me/tokens')) ?? [];
  createToken = (name: string) => this.call<NewApiToken>('POST', '/api/v1/me/tokens', { name });
  revokeToken = (id: string) => this.call<unknown>('DELETE', `/api/v1/me/tokens/${encodeURIComponent(id)}`);

  // One-time links (invites and password resets): the secret travels in the body only.
  peekLink = (secret: string) => this.call<LinkPeek>('POST', '/api/v1/links/peek', { secret });
  redeemLink = (secret: string, password: string, name?: string, tz?: string) =>
    this.call<Me>('POST', '/api/v1/links/redeem', { secret, password, ...(name !== undefined ? { name } : {}), ...(tz !== undefined ? { tz } : {}) });

  // Admins: people and invites.
  people = async () => (await this.call<Person[] | null>('GET', '/api/v1/people')) ?? [];
  updatePerson = (handle: string, patch: { disabled?: boolean; admin?: boolean }) =>
    this.call<Person>('PATCH', `/api/v1/people/${encodeURIComponent(handle)}`, patch);
  endPersonSessions = (handle: string) => this.call<{ ended: number }>('DELETE', `/api/v1/people/${encodeURIComponent(handle)}/sessions`);
  resetLink = (handle: string) => this.call<LinkURL>('POST', `/api/v1/people/${encodeURIComponent(handle)}/reset`);
  invites = async () => (await this.call<Invite[] | null>('GET', '/api/v1/invites')) ?? [];
  createInvite = (handle: string, name: string, admin: boolean) =>
    this.call<NewInvite>('POST', '/api/v1/invites', { handle, ...(name ? { name } : {}), admin });
  revokeInvite = (id: number) => this.call<unknown>('DELETE', `/api/v1/invites/${encodeURIComponent(String(id))}`);

  // Approving a device that asks to pair (code in canonical form, BDFGHJKL).
  pairRequest = (code: string) => this.call<PairRequest>('GET', `/api/v1/pair/${encodeURIComponent(code)}`);
  decidePair = (code: string, approve: boolean) => this.call<PairDecision>('POST', `/api/v1/pair/${encodeURIComponent(code)}`, { approve });

  // The agent's local controls (window only).
  localStatus = () => this.call<LocalStatus>('GET', '/local/v1/status');
  setMode = (mode: Mode, opts: { for_s?: number; until?: 'tomorrow' } = {}) =>
    this.call<LocalStatus>('PUT', '/local/v1/mode', { mode, ...opts });
  settings = () => this.call<LocalSettings>('GET', '/local/v1/settings');
  putSettings = (s: Partial<Pick<LocalSettings, 'idle_after_s' | 'interval_s' | 'start_at_login' | 'count_calls_and_media' | 'notifications'>>) =>
    this.call<LocalSettings>('PUT', '/local/v1/settings', s);
  testService = (server_url: string, token: string) =>
    this.call<ServiceTest>('POST', '/local/v1/service/test', { server_url, token });
  putService = (server_url: string, token: string) =>
    this.call<LocalSettings>('PUT', '/local/v1/service', server_url ? { server_url, token } : { server_url: '' });
  history = async (from: number, to: number) =>
    (
      await this.call<{ local: boolean; sessions: Session[] | null }>(
        'GET',
        `/local/v1/history${qs({ from: new Date(from).toISOString(), to: new Date(to).toISOString() })}`,
      )
    ).sessions ?? [];
  diagnostics = () => this.call<Diagnostics>('GET', '/local/v1/diagnostics');
  /** Starts pairing this computer with a server: the code to approve there. */
  startPairing = (url: string) => this.call<LocalPairStart>('POST', '/local/v1/pair', { url });
  pairingStatus = () => this.call<LocalPairStatus>('GET', '/local/v1/pair');
  cancelPairing = () => this.call<unknown>('DELETE', '/local/v1/pair');
}

/** The ApiError for a failed answer: the error envelope's code and message, else the status and the start of the text. */
function failure(method: string, path: string, status: number, body: string, parsed: unknown, retryAfter?: string | null): ApiError {
  const e = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
  return new ApiError(
    status,
    e?.code ?? 'http',
    e?.message ?? `${method} ${path} failed with HTTP ${status}${body && !parsed ? `: ${body.slice(0, 200)}` : ''}`,
    parseRetryAfter(retryAfter),
  );
}

/** The API for wherever the dashboard runs. */
export function detectApi(): Api {
  const bridge = window.go?.app?.Bridge;
  if (bridge) return new Api(windowTransport(bridge, window.runtime));
  return new Api(browserTransport());
}
