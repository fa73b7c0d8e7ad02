import { describe, expect, it } from 'vitest';
import { ApiError } from './api';
import {
  browserLabel,
  formatUserCode,
  linkSecret,
  loginErrorMessage,
  normalizeUserCode,
  parseRetryAfter,
  passwordProblem,
  routeOf,
  timeZones,
  tooManyMessage,
} from './people';

describe('normalizeUserCode', () => {
  it('forgives case, dashes and spaces', () => {
    for (const typed of ['BDFGHJKL', 'bdfg-hjkl', ' Bdfg hjkl ', 'BD-FG-HJ-KL', 'bdfg\thjkl']) expect(normalizeUserCode(typed)).toBe('BDFGHJKL');
  });
  it('refuses what cannot be a code', () => {
    expect(normalizeUserCode('')).toBeNull();
    expect(normalizeUserCode('BDFG-HJK')).toBeNull(); // 7 letters
    expect(normalizeUserCode('BDFG-HJKLM')).toBeNull(); // 9 letters
    expect(normalizeUserCode('BDFG-HJKA')).toBeNull(); // a vowel is never in a code
    expect(normalizeUserCode('BDFG-HJK1')).toBeNull();
    expect(normalizeUserCode('BDFG_HJKL')).toBeNull();
  });
  it('formats a code in two halves and leaves anything else alone', () => {
    expect(formatUserCode('bdfghjkl')).toBe('BDFG-HJKL');
    expect(formatUserCode('BDFG-HJKL')).toBe('BDFG-HJKL');
    expect(formatUserCode('nope')).toBe('nope');
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-12-03T14:00:00Z');
  it('reads delay-seconds', () => {
    expect(parseRetryAfter('30', now)).toBe(30);
    expect(parseRetryAfter(' 7 ', now)).toBe(7);
    expect(parseRetryAfter('0', now)).toBe(0);
  });
  it('reads an HTTP date as the seconds until it, rounded up', () => {
    expect(parseRetryAfter('Thu, 03 Dec 2026 14:01:00 GMT', now)).toBe(60);
    expect(parseRetryAfter('Thu, 03 Dec 2026 14:00:00 GMT', now + 1500)).toBe(0); // already past
    expect(parseRetryAfter('Thu, 03 Dec 2026 14:00:02 GMT', now + 500)).toBe(2);
  });
  it('gives null for a missing or unreadable header', () => {
    for (const v of [null, undefined, '', '  ', '-3', '1.5', 'soon', '3 s']) expect(parseRetryAfter(v, now)).toBeNull();
  });
});

describe('loginErrorMessage', () => {
  it('says wrong handle or password for a 401, whatever the service words', () => {
    expect(loginErrorMessage(new ApiError(401, 'unauthorized', 'wrong handle or password'))).toBe('Wrong handle or password.');
  });
  it('says how long to wait for a 429', () => {
    expect(loginErrorMessage(new ApiError(429, 'rate_limited', 'slow down', 42))).toBe('Too many attempts; try again in 42 s.');
    expect(loginErrorMessage(new ApiError(429, 'rate_limited', 'slow down'))).toBe('Too many attempts; try again later.');
    expect(tooManyMessage(0)).toBe('Too many attempts; try again later.');
  });
  it('passes other failures on', () => {
    expect(loginErrorMessage(new ApiError(0, 'unavailable', 'cannot reach the service'))).toBe('Sign-in failed: cannot reach the service');
    expect(loginErrorMessage(new Error('boom'))).toBe('Sign-in failed: boom');
  });
});

describe('linkSecret and routes', () => {
  it('takes the secret from the fragment', () => {
    expect(linkSecret('#ls_inv_abc-DEF_1')).toBe('ls_inv_abc-DEF_1');
    expect(linkSecret('ls_inv_x')).toBe('ls_inv_x');
    expect(linkSecret('#ls_inv_%41')).toBe('ls_inv_A');
    expect(linkSecret('#ls_inv_%')).toBe('ls_inv_%');
    expect(linkSecret('')).toBe('');
    expect(linkSecret('#')).toBe('');
  });
  it('knows the welcome and pair pages, with or without a trailing slash', () => {
    expect(routeOf('/welcome', '')).toEqual({ page: 'welcome' });
    expect(routeOf('/welcome/', '')).toEqual({ page: 'welcome' });
    expect(routeOf('/pair', '?code=bdfg-hjkl')).toEqual({ page: 'pair', code: 'bdfg-hjkl' });
    expect(routeOf('/pair', '')).toEqual({ page: 'pair', code: '' });
    expect(routeOf('/', '')).toEqual({ page: 'dashboard' });
    expect(routeOf('/index.html', '?code=x')).toEqual({ page: 'dashboard' });
    expect(routeOf('/pairs', '')).toEqual({ page: 'dashboard' });
  });
});

describe('passwordProblem', () => {
  it('asks for 8 bytes and two equal entries', () => {
    expect(passwordProblem('short', 'short')).toMatch(/at least 8/);
    expect(passwordProblem('long enough', 'long enougH')).toMatch(/differ/);
    expect(passwordProblem('long enough', 'long enough')).toBe('');
    // The service counts bytes: four 2-byte letters are enough.
    expect(passwordProblem('éééé', 'éééé')).toBe('');
  });
});

describe('browserLabel', () => {
  it('names common browsers and systems', () => {
    expect(browserLabel('Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0')).toBe('Firefox on Linux');
    expect(browserLabel('Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0')).toBe(
      'Edge on Windows',
    );
    expect(browserLabel('Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15')).toBe(
      'Safari on macOS',
    );
    expect(browserLabel('Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36')).toBe('Chrome on Android');
    expect(browserLabel('curl/8.5.0')).toBe('curl');
    expect(browserLabel('')).toBe('Unknown browser');
    expect(browserLabel('x'.repeat(80))).toHaveLength(58);
  });
});

describe('timeZones', () => {
  it('lists the own zone and UTC', () => {
    const z = timeZones('Mars/Olympus_Mons');
    expect(z[0]).toBe('Mars/Olympus_Mons');
    expect(z).toContain('UTC');
    expect(z).toContain('Europe/Paris');
  });
});
