import { afterEach, describe, expect, it, vi } from 'vitest';
import { Router } from './router.svelte';

function browserAt(href: string) {
  const url = new URL(href);
  const replaced: string[] = [];
  const pushed: string[] = [];
  const loc = {
    get pathname() {
      return url.pathname;
    },
    get search() {
      return url.search;
    },
    get hash() {
      return url.hash;
    },
  };
  const move = (to: string) => {
    const next = new URL(to, url);
    url.pathname = next.pathname;
    url.search = next.search;
    url.hash = next.hash;
  };
  vi.stubGlobal('location', loc);
  vi.stubGlobal('history', {
    state: null,
    replaceState: (_s: unknown, _t: string, to: string) => {
      replaced.push(to);
      move(to);
    },
    pushState: (_s: unknown, _t: string, to: string) => {
      pushed.push(to);
      move(to);
    },
  });
  vi.stubGlobal('window', new EventTarget());
  return { url, replaced, pushed };
}

describe('Router', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('takes a link secret and clears it from the address bar', () => {
    const b = browserAt('https://ls.example.org/welcome#ls_inv_secret');
    const r = new Router(true);
    expect(r.route).toEqual({ page: 'welcome' });
    expect(r.secret).toBe('ls_inv_secret');
    expect(b.replaced).toEqual(['/welcome']);
    expect(b.url.href).toBe('https://ls.example.org/welcome');
  });

  it('takes a new link opened on the same page, which changes only the fragment', () => {
    const b = browserAt('https://ls.example.org/welcome#ls_inv_first');
    const r = new Router(true);
    expect(r.secret).toBe('ls_inv_first');
    b.url.hash = '#ls_inv_second';
    window.dispatchEvent(new Event('hashchange'));
    expect(r.secret).toBe('ls_inv_second');
    expect(b.url.href).toBe('https://ls.example.org/welcome');
    expect(b.replaced).toEqual(['/welcome', '/welcome']);
  });

  it('reads the pairing code and moves between pages', () => {
    const b = browserAt('https://ls.example.org/pair?code=bdfg-hjkl');
    const r = new Router(true);
    expect(r.route).toEqual({ page: 'pair', code: 'bdfg-hjkl' });
    expect(r.secret).toBe('');
    r.go('/');
    expect(r.route).toEqual({ page: 'dashboard' });
    expect(b.pushed).toEqual(['/']);
    b.url.pathname = '/pair';
    window.dispatchEvent(new Event('popstate'));
    expect(r.route).toEqual({ page: 'pair', code: '' }); // go('/') left no query
  });

  it('never routes in the window', () => {
    const b = browserAt('https://wails.localhost/welcome#ls_inv_x');
    const r = new Router(false);
    expect(r.route).toEqual({ page: 'dashboard' });
    expect(r.secret).toBe('');
    expect(b.replaced).toEqual([]);
  });
});
