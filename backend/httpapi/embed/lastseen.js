// Lastseen status widget. A site includes
//   <script src="https://SERVER/embed/HANDLE.js" data-handle="HANDLE" async></script>
// and, optionally, placeholders <span data-lastseen="HANDLE">…</span> (with
// the badge <img> inside for browsers without JavaScript). Each placeholder,
// or a span after the script when there is none, shows a dot and a short
// text ("online", "idle 12 min", "away", "last seen 3 h ago": only what the
// user's level provides), kept live by the public events stream. When the
// stream fails, the JSON is polled every minute until the stream is back.
// Everything reaches the page through textContent and style properties.
(function () {
  var me = document.currentScript;
  if (!me || !me.src) return;
  var src = new URL(me.src, location.href);
  var m = /\/embed\/([^\/]+)\.js$/.exec(src.pathname);
  var handle = me.getAttribute('data-handle') || (m && decodeURIComponent(m[1])) || src.searchParams.get('handle');
  if (!handle) return;
  var base = src.origin + '/api/v1/public/' + encodeURIComponent(handle);
  var colours = { active: '#4c1', idle: '#dfb317', away: '#fe7d37', offline: '#9f9f9f', unknown: '#9f9f9f' };
  var view = null, es = null, poll = 0, tick = 0, nodes = null;

  function ago(t) {
    var min = Math.max(0, (Date.now() - Date.parse(t)) / 60000);
    return min < 60 ? Math.max(1, Math.floor(min)) + ' min' : min < 2880 ? Math.floor(min / 60) + ' h' : Math.floor(min / 1440) + ' d';
  }

  function text(v) {
    var s = v.status, t = v.last_seen;
    if (v.unknown) return 'unknown';
    if (!s) return v.online ? 'online' : 'offline';
    if (s === 'active') return 'online';
    if (s === 'idle') return t ? 'idle ' + ago(t) : 'idle';
    if (s === 'away') return 'away';
    if (!t) return 'offline';
    return Date.now() - Date.parse(t) < 60000 ? 'last seen just now' : 'last seen ' + ago(t) + ' ago';
  }

  function targets() {
    var out = [], all = document.querySelectorAll('[data-lastseen]');
    for (var i = 0; i < all.length; i++) {
      var el = all[i];
      if (el.getAttribute('data-lastseen') === handle && !el.hasAttribute('data-lastseen-state')) out.push(el);
    }
    var p = me.parentNode;
    if (!out.length && p && p !== document.head) {
      var span = document.createElement('span');
      span.setAttribute('data-lastseen', handle);
      p.insertBefore(span, me.nextSibling);
      out.push(span);
    }
    return out.map(function (el) {
      var dot = document.createElement('span'), label = document.createElement('span');
      dot.style.cssText = 'display:inline-block;width:.6em;height:.6em;border-radius:50%;margin-right:.35em;vertical-align:middle';
      dot.setAttribute('aria-hidden', 'true');
      el.textContent = ''; // the fallback badge goes
      el.appendChild(dot);
      el.appendChild(label);
      return { el: el, dot: dot, label: label };
    });
  }

  function render() {
    if (!view) return;
    if (!nodes) {
      if (document.readyState === 'loading') return document.addEventListener('DOMContentLoaded', render);
      nodes = targets();
      tick = setInterval(render, 30000); // "idle 12 min" ages
    }
    var state = view.unknown ? 'unknown' : view.status || (view.online ? 'active' : 'offline');
    var words = text(view);
    nodes.forEach(function (n) {
      n.dot.style.background = colours[state] || colours.offline;
      n.label.textContent = words;
      n.el.setAttribute('data-lastseen-state', state);
      n.el.title = handle + ': ' + words;
    });
  }

  function show(v) {
    view = v;
    render();
  }

  function stopPolling() {
    clearInterval(poll);
    poll = 0;
  }

  // fetchOnce reads the JSON; a 404 means the user is not public (any
  // more): everything stops. With retry, a stream that gave up is opened
  // again (at most once a poll, so a refused stream is not hammered).
  function fetchOnce(retry) {
    fetch(base, { credentials: 'omit' })
      .then(function (r) {
        if (r.status === 404) {
          stopPolling();
          if (es) es.close();
          es = null;
          clearInterval(tick);
          if (view) show({ unknown: true });
          return null;
        }
        return r.ok ? r.json() : null;
      })
      .then(function (v) {
        if (!v) return;
        show(v);
        if (retry === true && !es) connect();
      }, function () {});
  }

  function connect() {
    es = new EventSource(base + '/events');
    es.addEventListener('status', function (e) {
      stopPolling();
      try {
        show(JSON.parse(e.data));
      } catch (x) {}
    });
    es.onerror = function () {
      // The browser retries a dropped stream by itself, but not one the
      // server refused; either way the JSON keeps the widget current.
      if (es && es.readyState === 2) {
        es = null;
        fetchOnce(false);
      }
      if (!poll) poll = setInterval(fetchOnce, 60000, true);
    };
  }

  connect();
})();
