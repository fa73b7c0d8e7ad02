// Wire types of the Lastseen HTTP API (DESIGN §3) and the agent's local API.
// Field names are the JSON names; timestamps are RFC 3339 strings.

export type State = 'active' | 'idle' | 'away' | 'offline';

export const STATES: readonly State[] = ['active', 'idle', 'away', 'offline'];

/**
 * What makes an active device count as present: keyboard or pointer input, a
 * call (the microphone in use) or media (an application keeping the screen
 * awake, such as a video). The API sends it for active devices and spans only;
 * absent means input.
 */
export type Why = 'input' | 'call' | 'media';

export const WHYS: readonly Why[] = ['input', 'call', 'media'];

/** How much the public status shows: online or not; plus the state; plus the last-seen time. */
export type PublicDetail = 'online' | 'state' | 'last_seen';

export const PUBLIC_DETAILS: readonly PublicDetail[] = ['online', 'state', 'last_seen'];

export interface Me {
  handle: string;
  name: string;
  tz: string;
  public: boolean;
  /** The public status's level (absent from services that predate it: last_seen). */
  public_detail?: PublicDetail;
  /** May invite people and manage them (absent from services that predate people). */
  admin?: boolean;
  /** Whether the user has a password (one created by token only has none). */
  has_password?: boolean;
}

// ---- people: sign-in sessions, API tokens, one-time links, pairing ----

/** A signed-in browser of the user (GET /api/v1/me/sessions). */
export interface UserSession {
  id: number;
  created_at: string;
  last_used: string;
  user_agent: string;
  addr: string;
  /** The session this browser is signed in with. */
  current: boolean;
}

/** A named user token for scripts; the token itself is shown only when created. */
export interface ApiToken {
  id: string;
  name: string;
  created_at: string;
  last_used?: string;
}

export interface NewApiToken extends ApiToken {
  token: string;
}

/** A person on the server, as an admin sees them. */
export interface Person {
  handle: string;
  name: string;
  admin: boolean;
  disabled: boolean;
  status: State;
  last_seen: string | null;
  /** Signed-in browsers. */
  sessions: number;
}

/** A pending invite (a signup link not yet used). */
export interface Invite {
  id: number;
  handle: string;
  name?: string;
  admin?: boolean;
  created_at: string;
  expires_at: string;
}

export interface NewInvite extends Invite {
  /** The link to hand on; it holds the secret and is shown only once. */
  url: string;
}

export interface LinkURL {
  url: string;
  expires_at: string;
}

export type LinkPurpose = 'signup' | 'reset';

/** What a one-time link is for, before it is used (POST /api/v1/links/peek). */
export interface LinkPeek {
  purpose: LinkPurpose;
  handle: string;
  name?: string;
  expires_at: string;
}

/** A device waiting for its user's approval (GET /api/v1/pair/{code}). */
export interface PairRequest {
  user_code: string;
  device_name: string;
  os: string;
  state: string;
  expires_at: string;
}

export interface PairDecision {
  state: 'approved' | 'denied';
  device_name: string;
}

export interface DeviceView {
  id: number;
  name: string;
  os: string;
  status: State;
  /** Active devices only. */
  why?: Why;
  last_seen: string | null;
  /** The agent version the device last reported. */
  version?: string;
}

export interface UserPresence {
  handle: string;
  name: string;
  status: State;
  last_seen: string | null;
  devices: DeviceView[];
}

export interface Session {
  id: number;
  device_id: number;
  state: State;
  /** Active spans only. */
  why?: Why;
  start: string;
  end: string;
  duration_s?: number;
  open?: boolean;
}

export interface DayTotal {
  date: string; // YYYY-MM-DD in the user's zone
  active_s: number;
  idle_s: number;
  away_s: number;
}

/** A device's own active time (two devices active at once both count). */
export interface DeviceSeconds {
  device_id: number;
  active_s: number;
}

/** One day of GET /api/v1/stats/summary: the union's states, and each device's active time. */
export interface SummaryDay extends DayTotal {
  devices: DeviceSeconds[] | null;
}

/** A running period (this week, this month) against the one before it. */
export interface PeriodChange {
  /** The current period's start. */
  start: string;
  /** Active time from start to now. */
  active_s: number;
  /** The previous period's active time up to the same point into it. */
  previous_to_date_s: number;
  /** The whole previous period's active time. */
  previous_s: number;
}

/** GET /api/v1/stats/summary. */
export interface StatsSummary {
  from: string;
  to: string;
  tz: string;
  days: SummaryDay[] | null;
  /** Active seconds by weekday (Monday first) × hour, in the user's zone. */
  heatmap: number[][] | null;
  /** Active per device over the range, most first, named. */
  devices: (DeviceSeconds & { name: string })[] | null;
  active_s: number;
  idle_s: number;
  away_s: number;
  periods: { week: PeriodChange; month: PeriodChange };
}

/** A row of the sessions table: a device's run of active time. */
export interface StatsSession {
  device_id: number;
  device_name: string;
  start: string;
  end: string;
  duration_s: number;
  /** What made the person present, in the order it first did. */
  why: Why[] | null;
  open?: boolean;
}

export type SessionSort = 'start' | 'duration' | 'device';
export type SortOrder = 'asc' | 'desc';

/** GET /api/v1/stats/sessions: one page of the table, with the whole table's count and time. */
export interface StatsSessionsPage {
  sessions: StatsSession[] | null;
  total: number;
  total_s: number;
  limit: number;
  offset: number;
}

/** Someone the user asked to be told about when they come online. */
export interface Watch {
  handle: string;
  name: string;
  created_at: string;
}

/** GET /api/v1/public/{handle}: as much as the user's level shows. */
export interface PublicStatus {
  handle: string;
  online: boolean;
  status?: State;
  last_seen?: string;
}

export interface NewDevice {
  id: number;
  name: string;
  token: string;
}

/** The payload of a `presence` live event. */
export interface PresenceChange {
  handle: string;
  device_id: number;
  device_name: string;
  status: State;
  /** When the new status is active. */
  why?: Why;
  user_status: State;
  last_seen: string | null;
}

/** A live event as the stream delivers it, already decoded. */
export type LiveEvent =
  | { id: string; kind: 'presence'; at: string; presence: PresenceChange }
  | { id: string; kind: 'session'; at: string; session: Session; open: boolean; handle?: string };

export type Connection = 'live' | 'reconnecting' | 'offline';

// ---- the agent's local API (desktop window only) ----

export type Mode = 'auto' | 'online' | 'away' | 'invisible' | 'pause';

export interface LocalStatus {
  mode: Mode;
  mode_until: string | null;
  state: State;
  sent_state: State;
  /** Why the user counts as present when state is active; '' otherwise. */
  why?: Why | '';
  idle_s: number;
  activity_backend: string;
  service: {
    kind: 'local' | 'remote';
    url: string;
    reachable: boolean;
    last_sync: string | null;
    error: string;
  };
  device: { id: number; name: string };
  handle: string;
  today_active_s: number;
}

export interface LocalSettings {
  server_url: string;
  has_token: boolean;
  idle_after_s: number;
  interval_s: number;
  start_at_login: boolean;
  /**
   * Whether a call (the microphone in use) or media keeping the screen awake
   * keeps the user active. Absent from an agent that predates the setting.
   */
  count_calls_and_media?: boolean;
  /**
   * Whether the agent shows a notification when someone you watch comes
   * online (default on). Absent from an agent that predates watches.
   */
  notifications?: boolean;
}

export interface ServiceTest {
  ok: boolean;
  handle: string;
  device: string;
}

export interface Quarantined {
  seq: number;
  at: string;
  state: State;
  error: string;
  quarantined_at: string;
}

export interface Diagnostics {
  activity_backend: string;
  /** The idle backends in the order they are tried; activity_backend is the one in use. */
  idle_order?: string[];
  /** What tells of calls and media (e.g. "gnome-session-inhibitor + alsa-capture"); "none" when nothing does. */
  signal_backend?: string;
  lock_backend: string;
  outbox_depth: number;
  outbox_dropped: number;
  quarantine: Quarantined[];
  last_sync: string | null;
  last_error: string;
  cpu_percent: number;
  rss_bytes: number;
  version: string;
  data_dir: string;
  uptime_s: number;
}

/** A pairing the agent started with a server (POST /local/v1/pair). */
export interface LocalPairStart {
  user_code: string;
  verification_uri: string;
  verification_uri_complete: string;
  expires_at: string;
}

export type LocalPairState = 'pending' | 'approved' | 'denied' | 'expired' | 'failed' | 'none';

/** Where the agent's pairing stands (GET /local/v1/pair). */
export interface LocalPairStatus extends Partial<LocalPairStart> {
  state: LocalPairState;
  error?: string;
  /** The server the pairing is with, where the agent says it. */
  url?: string;
  server_url?: string;
  /** The device's name on the server once approved, where the agent says it. */
  device?: string | { name?: string };
  device_name?: string;
  handle?: string;
}
