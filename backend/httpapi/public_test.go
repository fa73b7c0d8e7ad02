package httpapi

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/ssestream"
)

// publicUser makes a user with a device and a public status.
func (e *env) publicUser(handle string) (presence.User, string, string) {
	e.t.Helper()
	u, tok := e.user(handle)
	_, dev := e.device(u, "laptop")
	yes := true
	if _, err := e.store.UpdateUser(e.ctx, u.ID, presence.UserUpdate{Public: &yes}); err != nil {
		e.t.Fatal(err)
	}
	return u, tok, dev
}

// setDetail changes the user's level through PATCH /api/v1/me.
func (e *env) setDetail(tok string, lv presence.PublicDetail) MeResponse {
	e.t.Helper()
	me, err := e.client(tok).UpdateMe(e.ctx, MeUpdate{PublicDetail: &lv})
	if err != nil {
		e.t.Fatalf("set public_detail %s: %v", lv, err)
	}
	return me
}

// publicJSON is GET /api/v1/public/{handle} as a generic object, so that
// absent members can be told from zero ones.
func (e *env) publicJSON(handle string) (int, map[string]any) {
	e.t.Helper()
	r := e.do(request{method: "GET", path: "/api/v1/public/" + handle})
	var m map[string]any
	if r.status == http.StatusOK {
		if err := json.Unmarshal(r.body, &m); err != nil {
			e.t.Fatalf("public JSON %q: %v", r.body, err)
		}
	}
	return r.status, m
}

// openPublic opens a public stream with the given extra headers.
func (e *env) openPublic(handle string, header map[string]string) (*EventStream, *http.Response) {
	e.t.Helper()
	return e.openPublicPath("/api/v1/public/"+handle+"/events", header)
}

func (e *env) openPublicPath(path string, header map[string]string) (*EventStream, *http.Response) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.ctx, "GET", e.ts.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, resp
	}
	s := &EventStream{body: resp.Body, r: ssestream.NewReader(resp.Body)}
	e.t.Cleanup(func() { s.Close() })
	return s, resp
}

func dataOf(t testing.TB, ev SSEEvent) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
		t.Fatalf("event data %q: %v", ev.Data, err)
	}
	return m
}

func keys(m map[string]any) string {
	var out []string
	for _, k := range []string{"handle", "online", "status", "last_seen"} {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	return strings.Join(out, ",")
}

func TestPublicViewLevels(t *testing.T) {
	seen := T0.Add(-12 * time.Minute)
	for _, tt := range []struct {
		level    presence.PublicDetail
		status   presence.State
		keys     string
		badge    string
		colour   string
		lastSeen bool
	}{
		{presence.PublicOnline, presence.Active, "handle,online", "online", colourActive, false},
		{presence.PublicOnline, presence.Idle, "handle,online", "online", colourActive, false},
		{presence.PublicOnline, presence.Away, "handle,online", "offline", colourOffline, false},
		{presence.PublicOnline, presence.Offline, "handle,online", "offline", colourOffline, false},
		{presence.PublicState, presence.Idle, "handle,online,status", "idle", colourIdle, false},
		{presence.PublicState, presence.Away, "handle,online,status", "away", colourAway, false},
		{presence.PublicState, presence.Offline, "handle,online,status", "offline", colourOffline, false},
		{presence.PublicLastSeen, presence.Idle, "handle,online,status,last_seen", "idle 12 min", colourIdle, true},
		{presence.PublicLastSeen, presence.Offline, "handle,online,status,last_seen", "last seen 12 min ago", colourOffline, true},
		{"", presence.Offline, "handle,online,status,last_seen", "last seen 12 min ago", colourOffline, true},
	} {
		v := presence.PublicViewOf("ann", tt.level, tt.status, seen)
		b, _ := json.Marshal(v)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		if got := keys(m); got != tt.keys {
			t.Errorf("level %q, %s: JSON %s has %s, want %s", tt.level, tt.status, b, got, tt.keys)
		}
		var ps PublicStatus
		if err := json.Unmarshal(b, &ps); err != nil || !samePublicStatus(ps, publicStatusOf(v)) {
			t.Errorf("level %q: a client reads %+v (%v), want %+v", tt.level, ps, err, publicStatusOf(v))
		}
		if msg, colour := badgeMessage(publicStatusOf(v), T0); msg != tt.badge || colour != tt.colour {
			t.Errorf("level %q, %s: badge %q %s, want %q %s", tt.level, tt.status, msg, colour, tt.badge, tt.colour)
		}
	}
}

// TestPublicLevelsEverywhere checks that each level hides what it promises
// in the JSON, the badge, the stream and the script's data.
func TestPublicLevelsEverywhere(t *testing.T) {
	e := newEnv(t)
	_, tok, dev := e.publicUser("ann")
	e.beats(dev, beat(1, T0.Add(-12*time.Minute), presence.Active), beat(2, T0.Add(-30*time.Second), presence.Idle))

	for _, tt := range []struct {
		level presence.PublicDetail
		keys  string
		badge string
	}{
		{presence.PublicOnline, "handle,online", ">online<"},
		{presence.PublicState, "handle,online,status", ">idle<"},
		{presence.PublicLastSeen, "handle,online,status,last_seen", ">idle 12 min<"},
	} {
		t.Run(string(tt.level), func(t *testing.T) {
			if me := e.setDetail(tok, tt.level); me.PublicDetail != tt.level {
				t.Errorf("PATCH answered public_detail %q", me.PublicDetail)
			}
			if me, err := e.client(tok).Me(e.ctx); err != nil || me.PublicDetail != tt.level {
				t.Errorf("GET /me: %+v, %v", me, err)
			}
			status, m := e.publicJSON("ann")
			if status != http.StatusOK || keys(m) != tt.keys {
				t.Errorf("JSON: %d %v, want keys %s", status, m, tt.keys)
			}
			if svg, err := e.client("").Badge(e.ctx, "ann"); err != nil || !strings.Contains(string(svg), tt.badge) {
				t.Errorf("badge %s (%v), want %s", svg, err, tt.badge)
			}
			s, _ := e.openPublic("ann", nil)
			ev := nextEvent(t, s, "status")
			if got := dataOf(t, ev); keys(got) != tt.keys || !jsonEqual(got, m) {
				t.Errorf("stream's first view %v, want the JSON %v", got, m)
			}
			s.Close()
			if r := e.do(request{method: "GET", path: "/embed/ann.js"}); r.status != http.StatusOK {
				t.Errorf("script: %d", r.status)
			}
		})
	}
}

func jsonEqual(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestPublicDetailRefusesBadValues(t *testing.T) {
	e := newEnv(t)
	_, tok := e.user("ann")
	for _, body := range []string{`{"public_detail":"everything"}`, `{"public_detail":"ONLINE"}`, `{"public_detail":3}`} {
		r := e.do(request{method: "PATCH", path: "/api/v1/me", token: tok, body: body})
		if r.status != http.StatusBadRequest || !strings.Contains(r.apiError(t).Message, "public_detail") {
			t.Errorf("%s: %d %s, want 400 naming public_detail", body, r.status, r.body)
		}
	}
	if me, err := e.client(tok).Me(e.ctx); err != nil || me.PublicDetail != presence.DefaultPublicDetail {
		t.Errorf("after refusals: %+v, %v; want the default level", me, err)
	}
}

// TestPublicDetailPersists: the level a user chose is still theirs on the
// next read.
func TestPublicDetailPersists(t *testing.T) {
	e := newEnv(t)
	_, tok := e.user("ann")
	e.setDetail(tok, presence.PublicOnline)
	me, err := e.client(tok).Me(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if me.PublicDetail != presence.PublicOnline {
		t.Errorf("GET /me after PATCH online: %q", me.PublicDetail)
	}
}

// TestPublicNotFoundParity: a user who did not opt in gets exactly the
// answer of a handle nobody has, from all four outputs.
func TestPublicNotFoundParity(t *testing.T) {
	e := newEnv(t)
	e.user("bob") // not public
	e.publicUser("ann")
	paths := []string{"/api/v1/public/%s", "/api/v1/public/%s/events", "/badge/%s.svg", "/embed/%s.js", "/embed.js?handle=%s"}
	for _, p := range paths {
		answers := map[string]response{}
		for _, h := range []string{"bob", "zed", "not-a-user"} {
			r := e.do(request{method: "GET", path: strings.ReplaceAll(p, "%s", h)})
			r.body = bytes.ReplaceAll(r.body, []byte(h), []byte("HANDLE"))
			answers[h] = r
		}
		bob, zed := answers["bob"], answers["zed"]
		if bob.status != http.StatusNotFound || zed.status != http.StatusNotFound {
			t.Errorf("%s: %d for a private user, %d for nobody; want 404 for both", p, bob.status, zed.status)
		}
		if !bytes.Equal(bob.body, zed.body) {
			t.Errorf("%s: bodies differ:\n%s\n%s", p, bob.body, zed.body)
		}
		for _, hd := range []string{"Content-Type", "Cache-Control", "Access-Control-Allow-Origin", "Content-Security-Policy"} {
			if bob.header.Get(hd) != zed.header.Get(hd) {
				t.Errorf("%s: %s %q vs %q", p, hd, bob.header.Get(hd), zed.header.Get(hd))
			}
		}
		if got := e.do(request{method: "HEAD", path: strings.ReplaceAll(p, "%s", "ann")}); got.status != http.StatusOK {
			t.Errorf("%s for a public user: %d", p, got.status)
		}
	}
}

func TestPublicCORSAndNoCredentials(t *testing.T) {
	e := newEnv(t)
	_, tok, _ := e.publicUser("ann")
	// Credentials, good or bad, change nothing: these routes never read them.
	for _, hdr := range []map[string]string{
		nil,
		{"Cookie": SessionCookie + "=ls_ses_nonsense", "Authorization": "Bearer ls_usr_nonsense"},
		{"Authorization": "Bearer " + tok, "Origin": "https://elsewhere.example"},
	} {
		for _, p := range []string{"/api/v1/public/ann", "/badge/ann.svg", "/embed/ann.js"} {
			r := e.do(request{method: "GET", path: p, header: hdr})
			if r.status != http.StatusOK || r.header.Get("Set-Cookie") != "" {
				t.Errorf("%s with %v: %d, Set-Cookie %q", p, hdr, r.status, r.header.Get("Set-Cookie"))
			}
			if p != "/badge/ann.svg" && r.header.Get("Access-Control-Allow-Origin") != "*" {
				t.Errorf("%s: Access-Control-Allow-Origin %q", p, r.header.Get("Access-Control-Allow-Origin"))
			}
		}
		s, resp := e.openPublic("ann", hdr)
		if s == nil {
			t.Fatalf("stream with %v: %d", hdr, resp.StatusCode)
		}
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Set-Cookie") != "" ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Errorf("stream headers: %v", resp.Header)
		}
		nextEvent(t, s, "status")
		s.Close()
	}

	r := e.do(request{method: "OPTIONS", path: "/api/v1/public/ann/events", header: map[string]string{
		"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "last-event-id",
	}})
	if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Headers"), "Last-Event-ID") {
		t.Errorf("preflight: %d %v", r.status, r.header)
	}
}

func TestEmbedScript(t *testing.T) {
	e := newEnv(t)
	e.publicUser("ann")
	for _, p := range []string{"/embed/ann.js", "/embed.js?handle=ann"} {
		r := e.do(request{method: "GET", path: p})
		h := r.header
		if r.status != http.StatusOK || !bytes.Equal(r.body, embedJS) ||
			h.Get("Content-Type") != "text/javascript; charset=utf-8" || h.Get("Cache-Control") != "public, max-age=300" ||
			h.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: %d %v", p, r.status, h)
		}
	}
	for _, p := range []string{"/embed/ann.txt", "/embed/ann", "/embed.js", "/embed/Ann.js"} {
		if r := e.do(request{method: "GET", path: p}); r.status != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, r.status)
		}
	}
}

func TestEmbedScriptIsSmall(t *testing.T) {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if _, err := zw.Write(embedJS); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("widget: %d bytes, %d gzipped", len(embedJS), b.Len())
	if b.Len() > embedMaxGzip {
		t.Errorf("the widget is %d bytes gzipped, more than %d", b.Len(), embedMaxGzip)
	}
	// What it puts on the page goes through textContent only.
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "import "} {
		if bytes.Contains(embedJS, []byte(bad)) {
			t.Errorf("the widget uses %s", bad)
		}
	}
}

func samePublicStatus(a, b PublicStatus) bool {
	if (a.LastSeen == nil) != (b.LastSeen == nil) || (a.LastSeen != nil && !a.LastSeen.Equal(*b.LastSeen)) {
		return false
	}
	a.LastSeen, b.LastSeen = nil, nil
	return a == b
}
