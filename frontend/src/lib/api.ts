// The one place that knows how the dashboard reaches its data. In a browser
// it is served by lastseend: same-origin fetch with the sign-in cookie and an
// EventSource. In the desktop window it goes through the Wails bridge to the
// agent's local API, and live events arrive as Wails runtime events. Views
// ask `api` for data and for what it can do (capabilities), never which
// transport it is.

import { decodeEvent } from './events';
import { stateLabel } from './format';
import { attachmentName, exportPath, exportType, importPath, type ExportFormat, type ImportResult, type ImportTarget } from './portable';
import type {
  Connection,
  DayTotal,
  DeviceView,
  Diagnostics,
  LiveEvent,
  LocalSettings,
  LocalStatus,
  Me,
  Mode,
  NewDevice,
  Session,
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
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

export interface RawResponse {
  status: number;
  body: string;
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
      return { status: res.status, body: await res.text() };
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
    if (r.status >= 400 || r.status === 0) throw failure(method, path, r.status, r.body, parsed);
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

  /** Shows the user's own state where the host can (see Transport.showState). */
  showState(s: State | null, why?: Why): void {
    this.t.showState?.(s, why);
  }

  me = () => this.call<Me>('GET', '/api/v1/me');
  updateMe = (patch: Partial<Pick<Me, 'name' | 'tz' | 'public'>>) => this.call<Me>('PATCH', '/api/v1/me', patch);
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

  login = (token: string) => this.call<unknown>('POST', '/api/v1/login', { token });
  logout = () => this.call<unknown>('POST', '/api/v1/logout');

  // The agent's local controls (window only).
  localStatus = () => this.call<LocalStatus>('GET', '/local/v1/status');
  setMode = (mode: Mode, opts: { for_s?: number; until?: 'tomorrow' } = {}) =>
    this.call<LocalStatus>('PUT', '/local/v1/mode', { mode, ...opts });
  settings = () => this.call<LocalSettings>('GET', '/local/v1/settings');
  putSettings = (s: Partial<Pick<LocalSettings, 'idle_after_s' | 'interval_s' | 'start_at_login' | 'count_calls_and_media'>>) =>
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
}

/** The ApiError for a failed answer: the error envelope's code and message, else the status and the start of the text. */
function failure(method: string, path: string, status: number, body: string, parsed: unknown): ApiError {
  const e = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
  return new ApiError(
    status,
    e?.code ?? 'http',
    e?.message ?? `${method} ${path} failed with HTTP ${status}${body && !parsed ? `: ${body.slice(0, 200)}` : ''}`,
  );
}

/** The API for wherever the dashboard runs. */
export function detectApi(): Api {
  const bridge = window.go?.app?.Bridge;
  if (bridge) return new Api(windowTransport(bridge, window.runtime));
  return new Api(browserTransport());
}
