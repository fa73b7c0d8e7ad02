// Which page a browser shows: the dashboard, a one-time link's page
// (/welcome#secret) or the device approval page (/pair?code=). lastseend
// answers index.html for these paths; the page picks the view. The window
// has one page only and never routes.

import { linkSecret, routeOf, type Route } from './people';

export class Router {
  route = $state<Route>({ page: 'dashboard' });
  /**
   * The one-time link's secret, taken from the address's fragment as the
   * page loaded (or as a new link was opened on the same page, which only
   * changes the fragment). The fragment is removed from the address bar at
   * once, so the secret stays out of history, bookmarks and screenshots.
   */
  secret = $state('');

  constructor(enabled: boolean) {
    if (!enabled) return;
    this.#read();
    window.addEventListener('popstate', () => this.#read());
    window.addEventListener('hashchange', () => this.#read());
  }

  #read(): void {
    this.route = routeOf(location.pathname, location.search);
    if (this.route.page === 'welcome' && location.hash) {
      this.secret = linkSecret(location.hash);
      history.replaceState(history.state, '', location.pathname + location.search);
    }
  }

  /** Shows another page without loading the app again. */
  go(path: string): void {
    history.pushState(null, '', path);
    this.route = routeOf(location.pathname, location.search);
  }
}
