// The dashboard's live state: loaded once, then kept current by merging live
// events (see live.ts) rather than refetching. Views read it; only this
// module talks to the API for the shared data.

import { Api, ApiError } from './api';
import { applyPresence, applySession, applySpanWhy, feedItem, isNewEvent, pushFeed, userWhy, type FeedItem } from './live';
import { ranges } from './timeline';
import type { Connection, LiveEvent, Me, PresenceChange, Session, UserPresence } from './types';
import { zoneOr } from './zone';

export type Phase = 'loading' | 'signed-out' | 'ready' | 'failed';

/** A refresh period for relative times: often enough to read right, rare enough to cost nothing. */
const TICK_MS = 30_000;

export class Dashboard {
  readonly api: Api;
  phase = $state<Phase>('loading');
  error = $state('');
  me = $state<Me | null>(null);
  users = $state<UserPresence[]>([]);
  /** This week's spans of every visible state (the timeline's and today's data). */
  sessions = $state<Session[]>([]);
  sessionsError = $state('');
  /** This device's own history when the service cannot be reached (window only). */
  localSessions = $state<Session[] | null>(null);
  localDevice = $state<{ id: number; name: string } | null>(null);
  feed = $state<FeedItem[]>([]);
  connection = $state<Connection>('reconnecting');
  now = $state(Date.now());
  /** The week the spans cover, [from, to) ms. */
  week = $state<[number, number]>([0, 0]);

  #lastId = '';
  #stopStream: (() => void) | null = null;
  #timer: ReturnType<typeof setInterval> | undefined;
  #wasDown = false;
  #pendingPresence = new Set<PresenceChange[]>();
  #pendingSessions = new Set<Session[]>();

  constructor(api: Api) {
    this.api = api;
  }

  get tz(): string {
    return zoneOr(this.me?.tz || Intl.DateTimeFormat().resolvedOptions().timeZone);
  }

  get self(): UserPresence | null {
    return this.users.find((u) => u.handle === this.me?.handle) ?? null;
  }

  get others(): UserPresence[] {
    return this.users.filter((u) => u.handle !== this.me?.handle);
  }

  deviceName = (id: number): string => {
    for (const u of this.users) for (const d of u.devices) if (d.id === id) return d.name;
    return `Device ${id}`;
  };

  /** Starts everything: the first load, the live stream and the clock. */
  async start(): Promise<void> {
    this.#startClock();
    await this.load();
  }

  stop(): void {
    this.#stopStream?.();
    this.#stopStream = null;
    clearInterval(this.#timer);
    this.#timer = undefined;
    document.removeEventListener('visibilitychange', this.#onVisibility);
  }

  async load(): Promise<void> {
    this.error = '';
    try {
      this.me = await this.api.me();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401 && this.api.session) {
        this.#signedOut();
        return;
      }
      this.phase = 'failed';
      this.error = message(err);
      return;
    }
    // Subscribe before reading the snapshots, and replay on top of each
    // snapshot whatever arrived while it was in flight: nothing falls between.
    if (!this.#stopStream) {
      this.#stopStream = this.api.subscribe({ event: (e) => this.onEvent(e), connection: (c) => this.#onConnection(c) });
    }
    try {
      await this.refreshPresence();
      this.phase = 'ready';
    } catch (err) {
      if (this.#unauthorized(err)) return;
      this.phase = 'failed';
      this.error = message(err);
      return;
    }
    await this.loadSessions();
  }

  /** Reads every user's presence anew, keeping changes that arrive meanwhile. */
  async refreshPresence(): Promise<void> {
    const pending: PresenceChange[] = [];
    this.#pendingPresence.add(pending);
    try {
      const snap = await this.api.presence();
      this.users = pending.reduce(applyPresence, snap);
      this.#showState();
    } finally {
      this.#pendingPresence.delete(pending);
    }
  }

  async loadSessions(): Promise<void> {
    const r = ranges(this.now, this.tz);
    this.week = r.week;
    this.sessionsError = '';
    const pending: Session[] = [];
    this.#pendingSessions.add(pending);
    try {
      const snap = await this.api.sessions(r.week[0], r.week[1]);
      this.sessions = pending.reduce(applySession, snap);
      this.localSessions = null;
    } catch (err) {
      if (this.#unauthorized(err)) return;
      this.sessionsError = message(err);
      // In the window, the agent keeps this device's history even when the
      // remote service is out of reach: show that, marked local.
      if (this.api.local && err instanceof ApiError && err.status === 502) {
        try {
          const [hist, st] = await Promise.all([this.api.history(r.week[0], r.week[1]), this.api.localStatus()]);
          this.localSessions = hist.filter((s) => s.state !== 'offline');
          this.localDevice = st.device;
        } catch (e2) {
          this.sessionsError += ` — local history: ${message(e2)}`;
        }
      }
    } finally {
      this.#pendingSessions.delete(pending);
    }
  }

  async signIn(token: string): Promise<void> {
    await this.api.login(token.trim());
    await this.signedIn();
  }

  /** Signs in with a handle and password. */
  async signInPassword(handle: string, password: string): Promise<void> {
    await this.api.loginPassword(handle.trim().replace(/^@/, ''), password);
    await this.signedIn();
  }

  /** Loads everything for a browser that has just been signed in (by a form or a one-time link). */
  async signedIn(): Promise<void> {
    // Another user may have been signed in here (a link opened in a signed-in
    // browser): nothing of theirs stays, and the stream reopens as the new one.
    if (this.me || this.#stopStream) this.#signedOut();
    this.phase = 'loading';
    await this.load();
  }

  async signOut(): Promise<void> {
    await this.api.logout();
    this.#signedOut();
  }

  onEvent(ev: LiveEvent): void {
    if (!isNewEvent(this.#lastId, ev.id)) return;
    if (ev.id) this.#lastId = ev.id;
    if (ev.kind === 'presence') {
      this.users = applyPresence(this.users, ev.presence);
      this.#showState();
      for (const p of this.#pendingPresence) p.push(ev.presence);
    } else {
      const [from, to] = this.week;
      const s = ev.session;
      const owner = ev.handle || this.me?.handle;
      if (owner) {
        const users = applySpanWhy(this.users, owner, s, ev.open);
        if (users !== this.users) {
          this.users = users;
          this.#showState();
        }
      }
      if (ev.handle && ev.handle !== this.me?.handle) return; // the timeline is ours only
      if (Date.parse(s.end) >= from && Date.parse(s.start) < to) {
        this.sessions = applySession(this.sessions, s);
        for (const p of this.#pendingSessions) p.push(s);
      }
    }
    this.feed = pushFeed(this.feed, { ...feedItem(ev, this.deviceName), received: Date.now() });
  }

  #onConnection(c: Connection): void {
    if (c !== 'live') this.#wasDown = true;
    else if (this.#wasDown) {
      // Back after an outage: events resume from the last id, but a service
      // that restarted may have expired devices meanwhile; one cheap snapshot
      // of presence puts the statuses right.
      this.#wasDown = false;
      this.refreshPresence().catch(() => {
        // The stream is back but the read failed: the events keep the view
        // current, and the next outage tries again.
      });
    }
    this.connection = c;
  }

  #unauthorized(err: unknown): boolean {
    if (err instanceof ApiError && err.status === 401 && this.api.session) {
      this.#signedOut();
      return true;
    }
    return false;
  }

  #signedOut(): void {
    this.#stopStream?.();
    this.#stopStream = null;
    this.me = null;
    this.users = [];
    this.sessions = [];
    this.feed = [];
    this.#lastId = '';
    this.phase = 'signed-out';
    this.#showState();
  }

  /** Hands the user's own state, and why they are present, to the host (the window's title). */
  #showState(): void {
    const self = this.self;
    this.api.showState(self?.status ?? null, userWhy(self));
  }

  #onVisibility = () => {
    if (document.hidden) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    } else {
      this.#tick();
      this.#startClock();
    }
  };

  #tick(): void {
    const before = ranges(this.now, this.tz).week[0];
    this.now = Date.now();
    // A new week began while the page was open: load its spans.
    if (this.phase === 'ready' && ranges(this.now, this.tz).week[0] !== before) void this.loadSessions();
  }

  #startClock(): void {
    document.removeEventListener('visibilitychange', this.#onVisibility);
    document.addEventListener('visibilitychange', this.#onVisibility);
    if (this.#timer === undefined && !document.hidden) this.#timer = setInterval(() => this.#tick(), TICK_MS);
  }
}

export function message(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
