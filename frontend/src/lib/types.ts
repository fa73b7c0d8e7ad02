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

export interface Me {
  handle: string;
  name: string;
  tz: string;
  public: boolean;
}

export interface DeviceView {
  id: number;
  name: string;
  os: string;
  status: State;
  /** Active devices only. */
  why?: Why;
  last_seen: string | null;
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
