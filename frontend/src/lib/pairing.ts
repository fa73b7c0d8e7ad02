// Connecting the desktop window's agent to a server by pairing: the window
// asks the agent to start (POST /local/v1/pair), shows the code, and asks
// every 2 s how it stands until the person approved or denied it in their
// browser, or it expired. The agent does the RFC 8628 polling of the server;
// the window only watches the agent.

import type { LocalPairState, LocalPairStatus } from './types';

/** How often the window asks the agent (the agent itself polls the server at the server's interval). */
export const PAIR_POLL_MS = 2000;

/** States after which nothing changes any more. */
export function pairingOver(state: LocalPairState): boolean {
  return state !== 'pending';
}

export interface PollOptions {
  intervalMs?: number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (t: unknown) => void;
}

/**
 * Asks get() every intervalMs (counted from each answer, so slow answers
 * never pile up) and hands each status to onStatus, until a status is over
 * (approved, denied, expired, failed, none) or the returned stop is called.
 * A failed ask goes to onError and the polling goes on: the agent may be
 * restarting.
 */
export function pollPairing(
  get: () => Promise<LocalPairStatus>,
  onStatus: (s: LocalPairStatus) => void,
  onError: (err: unknown) => void,
  opts: PollOptions = {},
): () => void {
  const interval = opts.intervalMs ?? PAIR_POLL_MS;
  const setTimer = opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
  const clearTimer = opts.clearTimer ?? ((t) => clearTimeout(t as ReturnType<typeof setTimeout>));
  let stopped = false;
  let timer: unknown;
  const tick = async () => {
    timer = undefined;
    let s: LocalPairStatus;
    try {
      s = await get();
    } catch (err) {
      if (stopped) return;
      onError(err);
      timer = setTimer(tick, interval);
      return;
    }
    if (stopped) return;
    onStatus(s);
    if (!pairingOver(s.state)) timer = setTimer(tick, interval);
  };
  timer = setTimer(tick, interval);
  return () => {
    stopped = true;
    if (timer !== undefined) clearTimer(timer);
    timer = undefined;
  };
}

/**
 * The server URL as typed, made whole: https:// when no scheme is given,
 * no trailing slash. '' for an empty field. The agent checks the rest.
 */
export function serverURL(input: string): string {
  let s = input.trim();
  if (!s) return '';
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) s = `https://${s}`;
  return s.replace(/\/+$/, '');
}

/** The device name a status gives, whichever way the agent says it. */
export function pairedDevice(s: LocalPairStatus): string {
  if (typeof s.device === 'string') return s.device;
  return s.device?.name || s.device_name || '';
}

/** The server a status names, whichever way the agent says it. */
export function pairedServer(s: LocalPairStatus): string {
  return s.server_url || s.url || '';
}

/** What the window says when a pairing ended. */
export function pairingOutcome(s: LocalPairStatus, server: string, device: string): { ok: boolean; text: string } {
  switch (s.state) {
    case 'approved':
      return { ok: true, text: `Connected to ${server || 'the server'}${device ? ` as ${device}` : ''}.` };
    case 'denied':
      return { ok: false, text: 'The pairing was denied in the browser. Nothing changed.' };
    case 'expired':
      return { ok: false, text: 'The code expired before it was approved. Start again to get a new one.' };
    case 'failed':
      return { ok: false, text: `Pairing failed${s.error ? `: ${s.error}` : '.'}` };
    case 'none':
      return { ok: false, text: 'The pairing was cancelled.' };
    default:
      return { ok: false, text: '' };
  }
}
