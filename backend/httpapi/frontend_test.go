package httpapi

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestFrontend(t *testing.T) {
	dist := fstest.MapFS{
		"index.html":             {Data: []byte("<!doctype html><title>Lastseen</title><div id=app></div>")},
		"assets/app-1a2b3c4d.js": {Data: []byte("console.log('hi')")},
		"favicon.svg":            {Data: []byte("<svg/>")},
	}
	e := newEnv(t, func(c *Config) { c.Frontend = dist })
	tests := []struct {
		path, body, cache string
		status            int
	}{
		{"/", "<div id=app>", "no-cache", 200},
		{"/sessions", "<div id=app>", "no-cache", 200},
		{"/settings/devices", "<div id=app>", "no-cache", 200},
		{"/assets/app-1a2b3c4d.js", "console.log", "public, max-age=31536000, immutable", 200},
		{"/favicon.svg", "<svg/>", "no-cache", 200},
		{"/assets/missing-0000.js", `"not_found"`, "no-store", 404},
		{"/api/v1/unknown", `"not_found"`, "no-store", 404},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp := e.do(request{method: "GET", path: tt.path})
			if resp.status != tt.status || !strings.Contains(string(resp.body), tt.body) || resp.header.Get("Cache-Control") != tt.cache {
				t.Errorf("%d %q Cache-Control %q; want %d, %q, %q", resp.status, resp.body, resp.header.Get("Cache-Control"), tt.status, tt.body, tt.cache)
			}
			for h, want := range map[string]string{
				"X-Content-Type-Options": "nosniff",
				"Referrer-Policy":        "no-referrer",
			} {
				if got := resp.header.Get(h); got != want {
					t.Errorf("%s %q, want %q", h, got, want)
				}
			}
			if csp := resp.header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'self'") {
				t.Errorf("CSP %q", csp)
			}
		})
	}
}

func TestFrontendNotBuilt(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Frontend = fstest.MapFS{".gitkeep": {}} })
	for _, p := range []string{"/", "/sessions"} {
		resp := e.do(request{method: "GET", path: p})
		if resp.status != 503 || !strings.Contains(string(resp.body), "make build") || !strings.HasPrefix(resp.header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %s", p, resp.status, resp.body)
		}
	}
	// The API is unaffected.
	if resp := e.do(request{method: "GET", path: "/healthz"}); resp.status != 200 {
		t.Errorf("health: %d", resp.status)
	}
}
