// The people pages' rules that are not layout: reading a pairing code as
// people type it, how long a rate-limited sign-in must wait, what to say for
// a failed sign-in, where a one-time link's secret is and which page an
// address means. Pure functions, so each rule is tested on its own.

import { ApiError } from './api';

export { parseRetryAfter } from './retryafter';

/** The letters of a pairing code (no vowels, nothing misread in pairs); the service's own alphabet. */
export const USER_CODE_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ';
export const USER_CODE_LENGTH = 8;

/**
 * A pairing code as typed (any case, spaces and dashes anywhere) in the
 * canonical form the service takes, "BDFGHJKL"; null when it is not one.
 */
export function normalizeUserCode(input: string): string | null {
  const s = input.replace(/[\s-]/g, '').toUpperCase();
  if (s.length !== USER_CODE_LENGTH) return null;
  for (const c of s) if (!USER_CODE_ALPHABET.includes(c)) return null;
  return s;
}

/** A pairing code as shown and read aloud: "BDFG-HJKL". Anything else is shown as it is. */
export function formatUserCode(code: string): string {
  const n = normalizeUserCode(code);
  return n ? `${n.slice(0, 4)}-${n.slice(4)}` : code;
}

/** "Too many attempts; try again in N s" (or "later" when the service did not say). */
export function tooManyMessage(retryAfterS: number | null | undefined): string {
  return retryAfterS != null && retryAfterS > 0 ? `Too many attempts; try again in ${retryAfterS} s.` : 'Too many attempts; try again later.';
}

/** What the sign-in form says when a handle-and-password sign-in fails. */
export function loginErrorMessage(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 401) return 'Wrong handle or password.';
    if (err.status === 429) return tooManyMessage(err.retryAfterS);
    if (err.status === 403) return `This account cannot sign in: ${err.message}`;
    return `Sign-in failed: ${err.message}`;
  }
  return `Sign-in failed: ${err instanceof Error ? err.message : String(err)}`;
}

/** The one-time secret from a link's fragment ("#ls_inv_…"); '' when there is none. */
export function linkSecret(hash: string): string {
  let s = hash.startsWith('#') ? hash.slice(1) : hash;
  try {
    s = decodeURIComponent(s);
  } catch {
    // a stray % — use it as it is; the service says whether it is a link
  }
  return s.trim();
}

/** The pages a browser can be sent to; everything else is the dashboard. */
export type Route = { page: 'dashboard' } | { page: 'welcome' } | { page: 'pair'; code: string };

export function routeOf(pathname: string, search: string): Route {
  const path = pathname.replace(/\/+$/, '');
  if (path.endsWith('/welcome')) return { page: 'welcome' };
  if (path.endsWith('/pair')) return { page: 'pair', code: new URLSearchParams(search).get('code') ?? '' };
  return { page: 'dashboard' };
}

/** Why a new password cannot be used, or '' when it can (the service's floor is 8 bytes). */
export function passwordProblem(pw: string, confirm: string): string {
  if (new TextEncoder().encode(pw).length < 8) return 'Use at least 8 characters.';
  if (pw !== confirm) return 'The two passwords differ.';
  return '';
}

/** A short name for a browser from its User-Agent: "Firefox on Linux". */
export function browserLabel(ua: string): string {
  if (!ua) return 'Unknown browser';
  const browser = /Edg\//.test(ua)
    ? 'Edge'
    : /OPR\/|Opera/.test(ua)
      ? 'Opera'
      : /Firefox\//.test(ua)
        ? 'Firefox'
        : /Chrom(e|ium)\//.test(ua)
          ? 'Chrome'
          : /Safari\//.test(ua)
            ? 'Safari'
            : /curl\//.test(ua)
              ? 'curl'
              : '';
  const os = /Android/.test(ua)
    ? 'Android'
    : /iPhone|iPad|iPod/.test(ua)
      ? 'iOS'
      : /Windows/.test(ua)
        ? 'Windows'
        : /Mac OS X|Macintosh/.test(ua)
          ? 'macOS'
          : /CrOS/.test(ua)
            ? 'ChromeOS'
            : /Linux|X11/.test(ua)
              ? 'Linux'
              : '';
  if (!browser && !os) return ua.length > 60 ? `${ua.slice(0, 57)}…` : ua;
  return [browser || 'A browser', os].filter(Boolean).join(' on ');
}

/** The zones a browser knows, for a picker; the user's own first when it is missing. */
export function timeZones(own: string): string[] {
  let all: string[] = [];
  try {
    all = (Intl as unknown as { supportedValuesOf?: (k: string) => string[] }).supportedValuesOf?.('timeZone') ?? [];
  } catch {
    all = [];
  }
  if (own && !all.includes(own)) all = [own, ...all];
  if (!all.includes('UTC')) all = [...all, 'UTC'];
  return all;
}

/** The device's own time zone, or UTC where the browser cannot tell. */
export function ownTimeZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}
