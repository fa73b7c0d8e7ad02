package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/lastseen/lastseen/backend/presence"
)

func watchHandles(t *testing.T, r response) []string {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("GET /api/v1/watches = %d %s", r.status, r.body)
	}
	var out struct {
		Watches []presence.Watch `json:"watches"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil || out.Watches == nil {
		t.Fatalf("watches body %s: %v (want a list, even an empty one)", r.body, err)
	}
	hs := []string{}
	for _, w := range out.Watches {
		hs = append(hs, w.Handle)
	}
	return hs
}

func TestWatchesAPI(t *testing.T) {
	e := newEnv(t)
	_, annTok := e.user("ann")
	bob, bobTok := e.user("bob")
	e.user("cat")
	_, bobDev := e.device(bob, "laptop")

	list := func(tok string) string {
		t.Helper()
		return fmt.Sprint(watchHandles(t, e.do(request{method: "GET", path: "/api/v1/watches", token: tok})))
	}

	if got := list(annTok); got != "[]" {
		t.Fatalf("a new user watches %s", got)
	}

	t.Run("put answers the watch, twice the same", func(t *testing.T) {
		r := e.do(request{method: "PUT", path: "/api/v1/watches/cat", token: annTok})
		if r.status != http.StatusOK {
			t.Fatalf("PUT = %d %s", r.status, r.body)
		}
		var w1 presence.Watch
		if err := json.Unmarshal(r.body, &w1); err != nil || w1.Handle != "cat" || w1.Name != "Cat" || w1.CreatedAt.IsZero() {
			t.Fatalf("PUT body %s (%v)", r.body, err)
		}
		r = e.do(request{method: "PUT", path: "/api/v1/watches/cat", token: annTok})
		var w2 presence.Watch
		if r.status != http.StatusOK || json.Unmarshal(r.body, &w2) != nil || !w2.CreatedAt.Equal(w1.CreatedAt) {
			t.Fatalf("PUT again = %d %s; want the first watch", r.status, r.body)
		}
		if r := e.do(request{method: "PUT", path: "/api/v1/watches/bob", token: annTok}); r.status != http.StatusOK {
			t.Fatalf("PUT bob = %d %s", r.status, r.body)
		}
		if got := list(annTok); got != "[bob cat]" {
			t.Errorf("ann watches %s, want [bob cat]", got)
		}
	})

	t.Run("another user's list is their own", func(t *testing.T) {
		if got := list(bobTok); got != "[]" {
			t.Errorf("bob sees %s; ann's watches must not show", got)
		}
	})

	t.Run("a device token acts for its user", func(t *testing.T) {
		if r := e.do(request{method: "PUT", path: "/api/v1/watches/cat", token: bobDev}); r.status != http.StatusOK {
			t.Fatalf("PUT with a device token = %d %s", r.status, r.body)
		}
		if got := list(bobTok); got != "[cat]" {
			t.Errorf("bob (user token) watches %s after his device watched cat", got)
		}
		if got := list(bobDev); got != "[cat]" {
			t.Errorf("bob (device token) watches %s", got)
		}
		if r := e.do(request{method: "DELETE", path: "/api/v1/watches/cat", token: bobDev}); r.status != http.StatusNoContent {
			t.Fatalf("DELETE with a device token = %d %s", r.status, r.body)
		}
		if got := list(bobTok); got != "[]" {
			t.Errorf("bob watches %s after unwatching", got)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		for _, tt := range []struct {
			name       string
			req        request
			status     int
			code       string
			wantHeader string
		}{
			{"unknown handle", request{method: "PUT", path: "/api/v1/watches/nobody", token: annTok}, 404, presence.ENOTFOUND, ""},
			{"handle nobody can have", request{method: "PUT", path: "/api/v1/watches/NO%20ONE", token: annTok}, 404, presence.ENOTFOUND, ""},
			{"oneself", request{method: "PUT", path: "/api/v1/watches/ann", token: annTok}, 400, presence.EINVALID, ""},
			{"unwatch someone not watched", request{method: "DELETE", path: "/api/v1/watches/bob", token: bobTok}, 404, presence.ENOTFOUND, ""},
			{"no token: list", request{method: "GET", path: "/api/v1/watches"}, 401, presence.EUNAUTHORIZED, "WWW-Authenticate"},
			{"no token: put", request{method: "PUT", path: "/api/v1/watches/cat"}, 401, presence.EUNAUTHORIZED, "WWW-Authenticate"},
			{"no token: delete", request{method: "DELETE", path: "/api/v1/watches/cat"}, 401, presence.EUNAUTHORIZED, "WWW-Authenticate"},
			{"a bad token", request{method: "PUT", path: "/api/v1/watches/cat", token: "ls_usr_nope"}, 401, presence.EUNAUTHORIZED, ""},
		} {
			r := e.do(tt.req)
			if r.status != tt.status || r.apiError(t).Code != tt.code {
				t.Errorf("%s: %d %s, want %d %s", tt.name, r.status, r.body, tt.status, tt.code)
			}
			if tt.wantHeader != "" && r.header.Get(tt.wantHeader) == "" {
				t.Errorf("%s: no %s header", tt.name, tt.wantHeader)
			}
		}
		if got := list(annTok); got != "[bob cat]" {
			t.Errorf("after the refusals ann watches %s, want [bob cat]", got)
		}
	})

	t.Run("delete", func(t *testing.T) {
		r := e.do(request{method: "DELETE", path: "/api/v1/watches/bob", token: annTok})
		if r.status != http.StatusNoContent || len(r.body) != 0 {
			t.Fatalf("DELETE = %d %q", r.status, r.body)
		}
		if got := list(annTok); got != "[cat]" {
			t.Errorf("after unwatching bob ann watches %s", got)
		}
	})

	t.Run("409 past the bound", func(t *testing.T) {
		_, tok := e.user("many")
		for i := range presence.MaxWatches + 1 {
			h := fmt.Sprintf("w%03d", i)
			e.user(h)
			r := e.do(request{method: "PUT", path: "/api/v1/watches/" + h, token: tok})
			want := http.StatusOK
			if i == presence.MaxWatches {
				want = http.StatusConflict
			}
			if r.status != want {
				t.Fatalf("watch #%d = %d %s, want %d", i+1, r.status, r.body, want)
			}
		}
		if n := len(watchHandles(t, e.do(request{method: "GET", path: "/api/v1/watches", token: tok}))); n != presence.MaxWatches {
			t.Errorf("%d watched, want %d", n, presence.MaxWatches)
		}
	})
}

// A browser session may manage its watches from the dashboard's own
// origin, and not from another site's page.
func TestWatchesCookieKeepsTheCSRFRule(t *testing.T) {
	e := newEnv(t)
	_, annTok := e.user("ann")
	e.user("bob")
	c, hc := e.jarClient()
	if _, err := c.Login(e.ctx, annTok); err != nil {
		t.Fatal(err)
	}
	put := func(site string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(e.ctx, "PUT", e.ts.URL+"/api/v1/watches/bob", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Sec-Fetch-Site", site)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := put("cross-site"); got != http.StatusForbidden {
		t.Errorf("cross-site PUT with the cookie = %d, want 403", got)
	}
	if got := put("same-origin"); got != http.StatusOK {
		t.Errorf("same-origin PUT with the cookie = %d, want 200", got)
	}
}

// The Go client speaks the routes (the agent uses it).
func TestWatchesClient(t *testing.T) {
	e := newEnv(t)
	ann, _ := e.user("ann")
	e.user("bob")
	_, dev := e.device(ann, "laptop")
	c := e.client(dev)
	if w, err := c.Watch(e.ctx, "bob"); err != nil || w.Handle != "bob" || w.Name != "Bob" {
		t.Fatalf("Watch = %+v, %v", w, err)
	}
	ws, err := c.Watches(e.ctx)
	if err != nil || len(ws) != 1 || ws[0].Handle != "bob" {
		t.Fatalf("Watches = %+v, %v", ws, err)
	}
	if err := c.Unwatch(e.ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if err := c.Unwatch(e.ctx, "bob"); presence.ErrorCode(err) != presence.ENOTFOUND {
		t.Fatalf("Unwatch again = %v, want not found", err)
	}
}

// Watch writes count against the caller's token like every authenticated
// request.
func TestWatchesAreRateLimited(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DeviceRate = Rate{PerSecond: 0.001, Burst: 2} })
	ann, _ := e.user("ann")
	e.user("bob")
	_, dev := e.device(ann, "laptop")
	var codes []int
	for range 3 {
		codes = append(codes, e.do(request{method: "PUT", path: "/api/v1/watches/bob", token: dev}).status)
	}
	if fmt.Sprint(codes) != "[200 200 429]" {
		t.Errorf("three PUTs within the burst of 2 answered %v, want [200 200 429]", codes)
	}
}
