package httpapi

import (
	_ "embed" // the widget's script
	"net/http"
	"strconv"
	"strings"
)

// embedJS is the status widget sites include (embed/lastseen.js): no
// dependencies, small enough to include anywhere (a test holds it to
// embedMaxGzip).
//
//go:embed embed/lastseen.js
var embedJS []byte

// embedMaxGzip is the most the widget may weigh gzipped.
const embedMaxGzip = 3 << 10

// embedCache is how long the widget may be cached: it is the same script
// for every handle, and holds no status of its own.
const embedCache = "public, max-age=300"

// getEmbed is GET /embed/{handle}.js (and GET /embed.js?handle=): the
// widget, for a user with a public status. Anyone else gets the same 404
// as GET /api/v1/public/{handle}.
func (s *Server) getEmbed(w http.ResponseWriter, r *http.Request) error {
	handle := r.URL.Query().Get("handle")
	if file := r.PathValue("file"); file != "" || r.URL.Path != "/embed.js" {
		var ok bool
		if handle, ok = strings.CutSuffix(file, ".js"); !ok {
			handle = "" // not a script: no such handle
		}
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Cache-Control", publicCache)
	if _, err := s.publicLookup(r.Context(), handle); err != nil {
		return err
	}
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Cache-Control", embedCache)
	h.Set("Content-Length", strconv.Itoa(len(embedJS)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(embedJS)
	return nil
}
