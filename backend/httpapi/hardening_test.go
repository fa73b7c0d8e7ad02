package httpapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/apierror"
	"github.com/lastseen/lastseen/backend/presence"
)

// Each test here reproduces a way an attack from loopback, holding a user
// or device token (or none), hurt a running service.

// metric is the value of one series in /metrics ("" when absent).
func metric(t *testing.T, e *env, series string) string {
	t.Helper()
	for line := range strings.SplitSeq(string(e.do(request{method: http.MethodGet, path: "/metrics"}).body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// doWithin is e.do bounded in time: a request that should be refused but
// opens an event stream instead fails the test rather than hang it.
func doWithin(e *env, req request) response {
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
	defer cancel()
	saved := e.ctx
	e.ctx = ctx
	defer func() { e.ctx = saved }()
	return e.do(req)
}

// refusal checks a refused request: status, code, Retry-After and a
// message that says what happened.
func refusal(t *testing.T, resp response, status int, code, msg string) {
	t.Helper()
	if resp.status != status {
		t.Fatalf("status %d, want %d: %s", resp.status, status, resp.body)
	}
	d := resp.apiError(t)
	if d.Code != code || !strings.Contains(d.Message, msg) {
		t.Errorf("error %+v, want %s with %q", d, code, msg)
	}
	if status == http.StatusTooManyRequests {
		if s, err := strconv.Atoi(resp.header.Get("Retry-After")); err != nil || s < 1 {
			t.Errorf("Retry-After %q, want whole seconds", resp.header.Get("Retry-After"))
		}
	}
}

// TestStreamCapPerUser: 25 minted device tokens × 50 streams each took
// every descriptor, and /healthz and everyone else timed out. Streams are
// capped per user, over all the user's tokens; other users' streams and
// /healthz still answer.
func TestStreamCapPerUser(t *testing.T) {
	const limit = 3
	e := newEnv(t, func(c *Config) { c.MaxStreamsPerUser = limit; c.KeepAlive = 30 * time.Millisecond })
	ann, annTok := e.user("ann")
	_, bobTok := e.user("bob")
	var conns []net.Conn
	for i := range limit {
		tok := annTok
		if i > 0 {
			_, tok = e.device(ann, fmt.Sprintf("minted%d", i)) // fresh tokens do not buy more streams
		}
		conn, _, _ := rawStream(t, e, tok)
		conns = append(conns, conn)
	}
	_, another := e.device(ann, "one-more")
	for _, tok := range []string{annTok, another} {
		resp := doWithin(e, request{method: http.MethodGet, path: "/api/v1/events", token: tok})
		refusal(t, resp, http.StatusTooManyRequests, presence.ERATELIMIT, "event streams open, the most allowed")
	}

	// Everyone else is untouched.
	_, _, br := rawStream(t, e, bobTok)
	readUntil(t, br, ": keepalive")
	if resp := e.do(request{method: http.MethodGet, path: "/healthz"}); resp.status != http.StatusOK {
		t.Errorf("healthz: %d %s", resp.status, resp.body)
	}
	if v := metric(t, e, `lastseen_cap_rejections_total{cap="user_streams"}`); v != "2" {
		t.Errorf("user_streams rejections %q, want 2", v)
	}

	// A stream closed makes room again.
	conns[0].Close()
	within(t, "room for a stream", func() bool {
		e.srv.streamsMu.Lock()
		defer e.srv.streamsMu.Unlock()
		return e.srv.userStreams[ann.ID] < limit
	})
	rawStream(t, e, another)
}

// TestStreamCapServer: the server as a whole holds at most MaxStreams.
func TestStreamCapServer(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxStreams = 2 })
	for _, h := range []string{"ann", "bob"} {
		_, tok := e.user(h)
		rawStream(t, e, tok)
	}
	_, carolTok := e.user("carol")
	resp := doWithin(e, request{method: http.MethodGet, path: "/api/v1/events", token: carolTok})
	refusal(t, resp, http.StatusTooManyRequests, presence.ERATELIMIT, "as many event streams open as it allows")
	if resp := e.do(request{method: http.MethodGet, path: "/healthz"}); resp.status != http.StatusOK {
		t.Errorf("healthz: %d %s", resp.status, resp.body)
	}
	if v := metric(t, e, `lastseen_cap_rejections_total{cap="streams"}`); v != "1" {
		t.Errorf("streams rejections %q, want 1", v)
	}
}

// TestDeviceCap: each device token brought its own rate limit, and a user
// could mint any number. Past MaxDevicesPerUser, adding one is 409 until
// one is revoked.
func TestDeviceCap(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxDevicesPerUser = 2 })
	_, tok := e.user("ann")
	c := e.client(tok)
	first, err := c.AddDevice(e.ctx, "one")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddDevice(e.ctx, "two"); err != nil {
		t.Fatal(err)
	}
	resp := e.do(request{method: http.MethodPost, path: "/api/v1/devices", token: tok, body: `{"name":"three"}`})
	refusal(t, resp, http.StatusConflict, presence.ECONFLICT, "2 devices, the most allowed: revoke one")
	if v := metric(t, e, `lastseen_cap_rejections_total{cap="user_devices"}`); v != "1" {
		t.Errorf("user_devices rejections %q, want 1", v)
	}
	if err := c.RevokeDevice(e.ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddDevice(e.ctx, "three"); err != nil {
		t.Errorf("add after a revoke: %v", err)
	}
}

// TestConnectionLimit: past the server's connection limit a client is
// answered at once (503, Retry-After, the JSON error) instead of hanging,
// and a connection closed makes room.
func TestConnectionLimit(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: e.srv}
	go srv.Serve(LimitListener(ln, 2, nil, e.metrics))
	t.Cleanup(func() { srv.Close() })
	addr := "http://" + ln.Addr().String()

	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		held = append(held, c)
	}
	// The kernel queues connections in order, so the server takes the two
	// held ones before the request below.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := hc.Get(addr + "/healthz")
	if err != nil {
		t.Fatalf("over the limit: %v, want an answer", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over the limit: %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if d := apierror.Decode(resp.StatusCode, body); d.Code != presence.EUNAVAILABLE || !strings.Contains(d.Message, "connections") {
		t.Errorf("body %s", body)
	}
	if v := metric(t, e, `lastseen_cap_rejections_total{cap="connections"}`); v == "" || v == "0" {
		t.Errorf("connections rejections %q", v)
	}

	held[0].Close()
	within(t, "room for a connection", func() bool {
		resp, err := hc.Get(addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// TestRevokeEndsStream: a revoked device's open stream kept receiving
// everyone's presence. Revoking it through the API ends it at once; the
// user's other streams go on.
func TestRevokeEndsStream(t *testing.T) {
	e := newEnv(t)
	ann, annTok := e.user("ann")
	laptop, laptopTok := e.device(ann, "laptop")
	_, deskTok := e.device(ann, "desk")
	conn, _, br := rawStream(t, e, laptopTok)
	readUntil(t, br, "")
	_, _, userBr := rawStream(t, e, annTok)
	readUntil(t, userBr, "")

	if err := e.client(annTok).RevokeDevice(e.ctx, laptop.ID); err != nil {
		t.Fatal(err)
	}
	endsWithin(t, conn, br, time.Second)
	if v := metric(t, e, "lastseen_sse_revoked_total"); v != "1" {
		t.Errorf("revoked streams %q, want 1", v)
	}

	// The user's own stream still hears what happens.
	e.beats(deskTok, beat(1, T0, presence.Active))
	readUntil(t, userBr, "event: presence")
}

// TestRevokedElsewhereEndsStream: a device revoked outside this server
// (another instance, the command line in another process: the store only
// learns it from the database) loses its stream within a second too.
func TestRevokedElsewhereEndsStream(t *testing.T) {
	e := newEnv(t)
	ann, _ := e.user("ann")
	laptop, laptopTok := e.device(ann, "laptop")
	conn, _, br := rawStream(t, e, laptopTok)
	readUntil(t, br, "")

	// The store is the only one told; the server's own revoke path is not taken.
	if err := e.store.RevokeDevice(e.ctx, ann.ID, laptop.ID); err != nil {
		t.Fatal(err)
	}
	endsWithin(t, conn, br, time.Second+DefaultRevocationCheck/2)
}

// endsWithin reads the stream until it ends, which must be a clean end of
// the connection within d.
func endsWithin(t *testing.T, conn net.Conn, br *bufio.Reader, d time.Duration) {
	t.Helper()
	start := time.Now()
	_ = conn.SetReadDeadline(start.Add(d))
	for {
		line, err := br.ReadString('\n')
		if err == nil {
			if strings.HasPrefix(line, "data:") {
				t.Errorf("the revoked stream received %q", line)
			}
			continue
		}
		if !errors.Is(err, io.EOF) {
			t.Fatalf("the stream did not end within %v: %v", d, err)
		}
		t.Logf("stream ended after %v", time.Since(start).Round(time.Millisecond))
		return
	}
}

// TestFailedAuthLimitedPerAddress: 1,000 bad tokens in 0.8 s were all
// answered 401. Failures are limited per client address (429 with
// Retry-After), and a valid token from that same address still works.
func TestFailedAuthLimitedPerAddress(t *testing.T) {
	const burst = 5
	e := newEnv(t, func(c *Config) { c.FailedAuthRate = Rate{PerSecond: 1, Burst: burst} })
	ann, annTok := e.user("ann")
	_, devTok := e.device(ann, "laptop")
	bad := "ls_usr_" + strings.Repeat("A", 43)
	for i := range burst {
		resp := e.do(request{method: http.MethodGet, path: "/api/v1/me", token: bad})
		if resp.status != http.StatusUnauthorized {
			t.Fatalf("bad token %d: %d, want 401", i, resp.status)
		}
	}
	refusal(t, e.do(request{method: http.MethodGet, path: "/api/v1/me", token: bad}),
		http.StatusTooManyRequests, presence.ERATELIMIT, "too many failed sign-ins from this address")
	refusal(t, e.do(request{method: http.MethodPost, path: "/api/v1/login", body: `{"token":"` + bad + `"}`}),
		http.StatusTooManyRequests, presence.ERATELIMIT, "too many failed sign-ins")
	refusal(t, e.do(request{method: http.MethodGet, path: "/api/v1/me", token: "garbage"}),
		http.StatusTooManyRequests, presence.ERATELIMIT, "too many failed sign-ins")

	// Valid tokens from the same address are never held back.
	for i := range 3 * burst {
		if resp := e.do(request{method: http.MethodGet, path: "/api/v1/me", token: annTok}); resp.status != http.StatusOK {
			t.Fatalf("valid user token %d after the limit: %d %s", i, resp.status, resp.body)
		}
	}
	e.beats(devTok, beat(1, T0, presence.Active))
	// Nor is a request without any token: that is no guess.
	refusal(t, e.do(request{method: http.MethodGet, path: "/api/v1/me"}), http.StatusUnauthorized, presence.EUNAUTHORIZED, "sign in")

	if v := metric(t, e, `lastseen_auth_failures_total{answer="rate_limited"}`); v != "3" {
		t.Errorf("limited failures %q, want 3", v)
	}
	if v := metric(t, e, `lastseen_auth_failures_total{answer="unauthorized"}`); v != strconv.Itoa(burst) {
		t.Errorf("unauthorized failures %q, want %d", v, burst)
	}

	// The bucket refills.
	e.clock.Advance(time.Second)
	if resp := e.do(request{method: http.MethodGet, path: "/api/v1/me", token: bad}); resp.status != http.StatusUnauthorized {
		t.Errorf("a second later: %d, want 401", resp.status)
	}
}

func TestAddrKey(t *testing.T) {
	same := [][2]string{
		{"192.0.2.1:1234", "192.0.2.1:80"},
		{"[::ffff:192.0.2.1]:1", "192.0.2.1:2"},
		{"[2001:db8:1:2::1]:1", "[2001:db8:1:2:ffff::9]:2"}, // one /64
	}
	for _, p := range same {
		if addrKey(p[0]) != addrKey(p[1]) {
			t.Errorf("%s and %s have different keys", p[0], p[1])
		}
	}
	differ := [][2]string{
		{"192.0.2.1:1", "192.0.2.2:1"},
		{"[2001:db8:1:2::1]:1", "[2001:db8:1:3::1]:1"},
		{"0.0.0.0:1", "[::]:1"},
	}
	for _, p := range differ {
		if addrKey(p[0]) == addrKey(p[1]) {
			t.Errorf("%s and %s share a key", p[0], p[1])
		}
	}
}

// TestBoundedLimiter: the address limiter's memory stays bounded however
// many addresses fail.
func TestBoundedLimiter(t *testing.T) {
	c := &clock{now: T0}
	l := newBoundedLimiter(c.Now, 100)
	r := Rate{PerSecond: 1, Burst: 2}
	for i := range 10_000 {
		l.allow([32]byte{byte(i), byte(i >> 8)}, r)
		if n := l.size(); n > 100 {
			t.Fatalf("%d buckets after %d addresses", n, i+1)
		}
	}
}

// TestCutOffBody: a request body cut off mid-way was a 500 and an ERROR in
// the log, for anyone, without signing in. It is the caller's 400.
func TestCutOffBody(t *testing.T) {
	e := newEnv(t)
	conn, err := net.Dial("tcp", e.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "POST /api/v1/login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"token\":")
	_ = conn.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	refusal(t, response{status: resp.StatusCode, header: resp.Header, body: body}, http.StatusBadRequest, presence.EINVALID, "ended early")
	if logs := e.logs.String(); strings.Contains(logs, "level=ERROR") || strings.Contains(logs, "level=WARN") {
		t.Errorf("a cut-off body was logged as a failure:\n%s", logs)
	}
}

// TestSlowBody: a body still arriving when the server's read timeout
// passes is 408, not a 500.
func TestSlowBody(t *testing.T) {
	e := newEnv(t)
	ts := httptest.NewUnstartedServer(e.srv)
	ts.Config.ReadTimeout = 300 * time.Millisecond
	ts.Start()
	defer ts.Close()
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "POST /api/v1/login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"token\":")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil) // the server answers when its timeout passes
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	refusal(t, response{status: resp.StatusCode, header: resp.Header, body: body}, http.StatusRequestTimeout, presence.EINVALID, "did not arrive in time")
	if logs := e.logs.String(); strings.Contains(logs, "level=ERROR") {
		t.Errorf("a slow body was logged as an error:\n%s", logs)
	}
}

// TestDeviceTokenCannotChangeUser: a device token could PATCH /api/v1/me,
// public opt-in included; DESIGN says only the user may. It still reads.
func TestDeviceTokenCannotChangeUser(t *testing.T) {
	e := newEnv(t)
	ann, annTok := e.user("ann")
	_, devTok := e.device(ann, "laptop")
	refusal(t, e.do(request{method: http.MethodPatch, path: "/api/v1/me", token: devTok, body: `{"public":true}`}),
		http.StatusForbidden, presence.EFORBIDDEN, "needs a user token")
	if me, err := e.client(devTok).Me(e.ctx); err != nil || me.Public {
		t.Errorf("me as read by the device: %+v, %v; want private", me, err)
	}
	if _, err := e.client(annTok).UpdateMe(e.ctx, MeUpdate{Public: new(true)}); err != nil {
		t.Errorf("the user may: %v", err)
	}
}

// TestBadFactsDropAlone: a fact over 128 bytes made the service refuse the
// whole batch, beats and all. The fact is dropped alone and the answer
// says which.
func TestBadFactsDropAlone(t *testing.T) {
	e := newEnv(t)
	ann, _ := e.user("ann")
	laptop, devTok := e.device(ann, "laptop")
	body := `{"sent_at":"2026-11-25T09:00:00Z","beats":[` + beatJSON(1, T0, "active") + `],` +
		`"facts":{"hostname":"` + strings.Repeat("h", 200) + `","os":"linux","platform":"ubuntu 24.04"}}`
	resp := e.do(request{method: http.MethodPost, path: "/api/v1/heartbeats", token: devTok, body: body})
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	var res presence.BatchResult
	if err := decodeStrict(resp.body, &res); err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 1 || len(res.FactsRejected) != 1 || res.FactsRejected[0].Fact != "hostname" ||
		!strings.Contains(res.FactsRejected[0].Error, "longer than 128 bytes") {
		t.Errorf("answer %+v, want the beat accepted and the hostname rejected", res)
	}
	st, err := e.store.DeviceStatus(e.ctx, laptop.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.OS != "linux" || st.Platform != "ubuntu 24.04" || st.Hostname != "" {
		t.Errorf("stored facts %q %q %q, want the good ones only", st.OS, st.Platform, st.Hostname)
	}
	// A batch with good facts says nothing of them.
	resp = e.do(request{method: http.MethodPost, path: "/api/v1/heartbeats", token: devTok,
		body: `{"sent_at":"2026-11-25T09:00:00Z","beats":[` + beatJSON(2, T0, "active") + `],"facts":{"hostname":"box"}}`})
	if strings.Contains(string(resp.body), "facts_rejected") {
		t.Errorf("good facts answered %s", resp.body)
	}
}

func TestCleanFacts(t *testing.T) {
	long := strings.Repeat("x", maxFactLen+1)
	f, rej := cleanFacts(&presence.Facts{Hostname: "box", OS: "\xff\xfe", Platform: long})
	if f == nil || *f != (presence.Facts{Hostname: "box"}) || len(rej) != 2 || rej[0].Fact != "os" || rej[1].Fact != "platform" {
		t.Errorf("cleanFacts = %+v, %+v", f, rej)
	}
	if f, rej := cleanFacts(&presence.Facts{OS: long}); f != nil || len(rej) != 1 {
		t.Errorf("nothing left: %+v, %+v; want nil and one rejection", f, rej)
	}
	if f, rej := cleanFacts(nil); f != nil || rej != nil {
		t.Errorf("no facts: %+v, %+v", f, rej)
	}
}

// TestHubEndDevice: ending a device's streams cuts exactly those, at once,
// whatever is still unread.
func TestHubEndDevice(t *testing.T) {
	h := NewHub(16, nil)
	_, laptop := h.subscribe(0, false, 1, 7)
	_, desk := h.subscribe(0, false, 1, 8)
	_, user := h.subscribe(0, false, 1, 0)
	h.Publish(presence.Event{ID: 1, Kind: presence.EventPresence, Presence: &presence.PresenceChange{Handle: "ann"}})
	if got := h.streamDevices(); len(got) != 2 {
		t.Errorf("stream devices %v, want 7 and 8", got)
	}
	if n := h.endDevice(7); n != 1 {
		t.Fatalf("ended %d streams, want 1", n)
	}
	var buf [4]*frame
	if frames, done := h.take(laptop, buf[:0]); len(frames) != 0 || !done {
		t.Errorf("the ended stream took %d frames (done %v), want none and done", len(frames), done)
	}
	for _, s := range []*subscription{desk, user} {
		if frames, done := h.take(s, buf[:0]); len(frames) != 1 || done {
			t.Errorf("another stream took %d frames (done %v), want 1 and going on", len(frames), done)
		}
	}
	if h.subscribers() != 2 || h.wasDropped(laptop) {
		t.Errorf("%d subscribers left, dropped %v", h.subscribers(), h.wasDropped(laptop))
	}
}
