package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/apierror"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/sqlite"
	"github.com/lastseen/lastseen/internal/testutil"
)

// T0 is the tests' "now": the service's clock stands here unless moved.
var T0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

// clock is a settable clock shared by the store and the server.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// logBuffer collects log lines from many goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// env is a real service: SQLite in a temp dir, the handler behind httptest.
type env struct {
	t       testing.TB
	ctx     context.Context
	clock   *clock
	store   *sqlite.Store
	hub     *Hub
	metrics *Metrics
	srv     *Server
	ts      *httptest.Server
	logs    *logBuffer
}

// newEnv starts a service; tweak adjusts its config (and may swap the store
// for a wrapper around the real one).
func newEnv(t testing.TB, tweak ...func(*Config)) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), clock: &clock{now: T0}, logs: &logBuffer{}}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.hub = NewHub(256, logger)
	e.metrics = NewMetrics()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "lastseen.db"), presence.Options{
		Now:     e.clock.Now,
		Notify:  e.hub.Publish,
		Observe: e.metrics.ObserveBatch,
	})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	e.store = st
	cfg := Config{
		Store:      st,
		Hub:        e.hub,
		Metrics:    e.metrics,
		Logger:     logger,
		Now:        e.clock.Now,
		UserRate:   Rate{PerSecond: 1000, Burst: 1000},
		DeviceRate: Rate{PerSecond: 1000, Burst: 1000},
	}
	for _, f := range tweak {
		f(&cfg)
	}
	e.srv, err = New(cfg)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	e.ts = httptest.NewServer(e.srv)
	t.Cleanup(func() {
		e.srv.Close()
		e.ts.Close()
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return e
}

// user creates a user and returns it with its token.
func (e *env) user(handle string) (presence.User, string) {
	e.t.Helper()
	u, tok, err := e.store.CreateUser(e.ctx, handle, strings.ToUpper(handle[:1])+handle[1:])
	if err != nil {
		e.t.Fatalf("create user %s: %v", handle, err)
	}
	return u, tok
}

// device adds a device to a user and returns it with its token.
func (e *env) device(u presence.User, name string) (presence.Device, string) {
	e.t.Helper()
	d, tok, err := e.store.CreateDevice(e.ctx, u.ID, name)
	if err != nil {
		e.t.Fatalf("create device %s: %v", name, err)
	}
	return d, tok
}

func (e *env) client(token string) *Client {
	return NewClient(e.ts.URL, token, e.ts.Client())
}

// jarClient is a browser-like client: no token, a cookie jar.
func (e *env) jarClient() (*Client, *http.Client) {
	e.t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	hc := &http.Client{Jar: jar, Transport: e.ts.Client().Transport}
	return NewClient(e.ts.URL, "", hc), hc
}

// beats posts beats for a device and fails the test on any error.
func (e *env) beats(token string, beats ...presence.Beat) presence.BatchResult {
	e.t.Helper()
	res, err := e.client(token).PostHeartbeats(e.ctx, presence.Batch{SentAt: e.clock.Now(), Beats: beats})
	if err != nil {
		e.t.Fatalf("post beats: %v", err)
	}
	return res
}

func beat(seq int64, at time.Time, st presence.State) presence.Beat {
	return presence.Beat{Seq: seq, At: at, State: st}
}

// request is a raw request for the error tables.
type request struct {
	method, path, token, body string
	header                    map[string]string
}

// response is a raw answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) apiError(t testing.TB) apierror.Detail {
	t.Helper()
	var b apierror.Body
	if err := json.Unmarshal(r.body, &b); err != nil || b.Error.Code == "" {
		t.Fatalf("status %d body %q is not an API error (%v)", r.status, r.body, err)
	}
	return b.Error
}

func (e *env) do(req request) response {
	e.t.Helper()
	var body io.Reader
	if req.body != "" {
		body = strings.NewReader(req.body)
	}
	r, err := http.NewRequestWithContext(e.ctx, req.method, e.ts.URL+req.path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if req.token != "" {
		r.Header.Set("Authorization", "Bearer "+req.token)
	}
	for k, v := range req.header {
		r.Header.Set(k, v)
	}
	resp, err := e.ts.Client().Do(r)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.method, req.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// batchJSON renders a batch body by hand, to send what the Go types could not.
func batchJSON(beats ...string) string {
	return fmt.Sprintf(`{"sent_at":%q,"beats":[%s]}`, T0.Format(time.RFC3339), strings.Join(beats, ","))
}

func beatJSON(seq int64, at time.Time, st string) string {
	return fmt.Sprintf(`{"seq":%d,"at":%q,"state":%q,"idle_s":0}`, seq, at.Format(time.RFC3339), st)
}

// within waits for cond, which should hold almost at once; the bound is
// generous so that a loaded machine is slow rather than failing.
func within(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testutil.WaitUntil(t, what, 10*time.Second, cond)
}

func asRetry(err error, target *presence.RetryAfterer) bool { return errors.As(err, target) }
