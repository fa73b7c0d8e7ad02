package httpapi

import (
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/lastseen/lastseen/backend/presence"
)

// serveFrontend serves the built dashboard as a single-page app: files as
// they are, and index.html for any extension-less path (the app routes it).
// Vite puts content-hashed files under assets/, which may be cached forever;
// everything else is revalidated so a new build shows at once.
func (s *Server) serveFrontend(w http.ResponseWriter, r *http.Request) error {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		s.unmatched(w, r) // an unknown API path is never the dashboard
		return nil
	}
	if !s.hasIndex {
		notBuilt(w)
		return nil
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name != "" && name != "index.html" {
		if st, err := fs.Stat(s.frontend, name); err == nil && !st.IsDir() {
			if strings.HasPrefix(name, "assets/") {
				w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
			} else {
				w.Header().Set("Cache-Control", "no-cache")
			}
			http.ServeFileFS(w, r, s.frontend, name)
			return nil
		}
		if path.Ext(name) != "" {
			return presence.Errorf(presence.ENOTFOUND, "no such file: /%s", name)
		}
	}
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, s.frontend, "index.html")
	return nil
}

const notBuiltPage = `<!doctype html>
<html lang="en">
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Lastseen</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}code{background:#f2f2f2;padding:.1rem .3rem;border-radius:3px}</style>
<h1>Lastseen</h1>
<p>The dashboard is not built. Run <code>make build</code> and restart the service.</p>
<p>The API under <code>/api/v1/</code> works meanwhile; <a href="/healthz">/healthz</a> says whether the service is up.</p>
`

// notBuilt answers 503: the service is fine, but the page asked for does not
// exist yet, and a 200 would tell monitors otherwise.
func notBuilt(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte(notBuiltPage))
}
