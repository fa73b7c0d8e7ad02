package agent

// Integration tests: the agent against the real presence service (SQLite
// store, HTTP handler, Go client) on loopback, with real time. The agent's
// backoff is shortened to milliseconds; beats are driven by lock and unlock
// events, which beat at once, so nothing waits for the interval.

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/agentdb"
	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/sqlite"
	"github.com/lastseen/lastseen/internal/testutil"
)

// liveService is a real service behind a fault-injecting front.
type liveService struct {
	t     *testing.T
	store *sqlite.Store
	api   *httpapi.Server
	addr  string

	mu    sync.Mutex
	hs    *http.Server
	fault func(w http.ResponseWriter, r *http.Request) bool // true: handled (the real service is not called)
	log   []hit
}

type hit struct {
	at     time.Time
	status int
	beats  int
	auth   string // the Authorization header: which token sent it
}

func newLiveService(t *testing.T, tweak func(*httpapi.Config)) *liveService {
	t.Helper()
	hub := httpapi.NewHub(256, slog.New(slog.DiscardHandler))
	metrics := httpapi.NewMetrics()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "service.db"), presence.Options{Notify: hub.Publish, Observe: metrics.ObserveBatch})
	if err != nil {
		t.Fatal(err)
	}
	cfg := httpapi.Config{Store: st, Hub: hub, Metrics: metrics,
		DeviceRate: httpapi.Rate{PerSecond: 1000, Burst: 1000}, UserRate: httpapi.Rate{PerSecond: 1000, Burst: 1000}}
	if tweak != nil {
		tweak(&cfg)
	}
	api, err := httpapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &liveService{t: t, store: st, api: api, addr: "127.0.0.1:0"}
	s.up()
	t.Cleanup(func() {
		s.down()
		api.Close()
		if err := st.Close(); err != nil {
			t.Errorf("close service store: %v", err)
		}
	})
	return s
}

func (s *liveService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	fault := s.fault
	s.mu.Unlock()
	if fault != nil && fault(w, r) {
		return
	}
	rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	s.api.ServeHTTP(rec, r)
	if r.URL.Path == "/api/v1/heartbeats" {
		s.mu.Lock()
		s.log = append(s.log, hit{at: time.Now(), status: rec.status, auth: r.Header.Get("Authorization")})
		s.mu.Unlock()
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// up listens (on the same port again after down: a real outage and return).
func (s *liveService) up() {
	s.t.Helper()
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	s.mu.Lock()
	s.hs = hs
	s.mu.Unlock()
	go hs.Serve(ln)
}

// down closes the listener and every connection: clients get refused.
func (s *liveService) down() {
	s.mu.Lock()
	hs := s.hs
	s.hs = nil
	s.mu.Unlock()
	if hs != nil {
		hs.Close()
	}
}

func (s *liveService) url() string { return "http://" + s.addr }

func (s *liveService) setFault(f func(w http.ResponseWriter, r *http.Request) bool) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

func (s *liveService) hits() []hit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]hit(nil), s.log...)
}

// device creates a user (once per handle) and a device, returning the
// device's id and token.
func (s *liveService) device(handle, name string) (userID, deviceID int64, token string) {
	s.t.Helper()
	ctx := context.Background()
	u, err := s.store.UserByHandle(ctx, handle)
	if err != nil {
		if u, _, err = s.store.CreateUser(ctx, handle, handle); err != nil {
			s.t.Fatal(err)
		}
	}
	d, tok, err := s.store.CreateDevice(ctx, u.ID, name)
	if err != nil {
		s.t.Fatal(err)
	}
	return u.ID, d.ID, tok
}

func (s *liveService) spans(userID, deviceID int64) []presence.Span {
	s.t.Helper()
	sp, err := s.store.Spans(context.Background(), presence.SpanQuery{UserID: userID, DeviceID: deviceID,
		From: time.Now().Add(-24 * time.Hour), To: time.Now().Add(time.Hour)})
	if err != nil {
		s.t.Fatal(err)
	}
	return sp
}

func (s *liveService) lastSeq(deviceID int64) int64 {
	s.t.Helper()
	d, err := s.store.DeviceStatus(context.Background(), deviceID)
	if err != nil {
		s.t.Fatal(err)
	}
	return d.Presence.LastSeq
}

// liveAgent is a running agent on real time.
type liveAgent struct {
	t      *testing.T
	a      *Agent
	db     *agentdb.DB
	events chan OSEvent
	logs   *logBuffer
	cancel context.CancelFunc
	done   chan struct{}
}

var liveConfig = Config{BackoffMin: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond, RequestTimeout: 5 * time.Second}

func startLiveAgent(t *testing.T, path string, now func() time.Time) *liveAgent {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "agent.db")
	}
	db, err := agentdb.Open(path, agentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	la := &liveAgent{t: t, db: db, events: make(chan OSEvent), logs: &logBuffer{}, done: make(chan struct{})}
	log := slog.New(slog.NewTextHandler(la.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	la.a, err = New(Deps{DB: db, Idle: constIdle(0), Events: la.events, Logger: log, Now: now,
		Facts: &presence.Facts{Hostname: "desk", OS: "linux"}}, liveConfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	la.cancel = cancel
	go func() {
		defer close(la.done)
		la.a.Run(ctx)
	}()
	t.Cleanup(func() {
		la.stop()
		db.Close()
	})
	return la
}

func (la *liveAgent) stop() {
	if la.cancel != nil {
		la.cancel()
		<-la.done
		la.cancel = nil
	}
}

func (la *liveAgent) connect(svc *liveService, token string) {
	la.t.Helper()
	c := httpapi.NewClient(svc.url(), token, &http.Client{Timeout: 5 * time.Second})
	if err := la.a.SetUploader(context.Background(), c, svc.url()+"|"+token); err != nil {
		la.t.Fatal(err)
	}
}

// toggle produces n state changes (away, active, away…), each beaten at
// once; it returns when the last beat is written.
func (la *liveAgent) toggle(n int) {
	for i := range n {
		kind := Locked
		if i%2 == 1 {
			kind = Unlocked
		}
		done := make(chan struct{})
		la.events <- OSEvent{Kind: kind, Done: func() { close(done) }}
		<-done
	}
}

type constIdle time.Duration

func (c constIdle) Idle(context.Context) (time.Duration, error) { return time.Duration(c), nil }

// eventually polls cond until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitUntil(t, what, 20*time.Second, cond)
}

func (la *liveAgent) drained() bool { return la.db.Depth() == 0 }

// spanStates are the states of the service's spans, oldest first.
func spanStates(sp []presence.Span) string {
	var b strings.Builder
	for _, s := range sp {
		fmt.Fprintf(&b, "%s ", s.State)
	}
	return strings.TrimSpace(b.String())
}

// localStates are the states of the agent's local history.
func (la *liveAgent) localStates() string {
	la.t.Helper()
	h, err := la.db.History(context.Background(), time.Now().Add(-24*time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		la.t.Fatal(err)
	}
	return spanStates(h)
}

func TestIntegrationOutageAndRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("real service")
	}
	svc := newLiveService(t, nil)
	uid, did, token := svc.device("ann", "desk")
	la := startLiveAgent(t, "", nil)
	la.connect(svc, token)
	la.toggle(2) // away, active
	eventually(t, "first beats delivered", la.drained)

	svc.down()
	la.toggle(6)
	eventually(t, "a failure noticed", func() bool { return la.a.Status().SyncError != "" })
	if st := la.a.Status(); st.Reachable {
		t.Fatalf("status during the outage: %+v", st)
	}
	if d := la.db.Depth(); d < 6 {
		t.Fatalf("only %d beats queued during the outage", d)
	}
	svc.up()
	eventually(t, "outbox drained after the outage", la.drained)
	eventually(t, "status recovered", func() bool { st := la.a.Status(); return st.Reachable && st.SyncError == "" })

	if got, want := svc.lastSeq(did), la.db.LastSeq(); got != want {
		t.Fatalf("service last_seq %d, agent %d", got, want)
	}
	// The service built the same spans as the agent's own history.
	if got, want := spanStates(svc.spans(uid, did)), la.localStates(); got != want {
		t.Fatalf("service spans %q, local history %q", got, want)
	}
	if n := la.logs.count("recovered after failures"); n != 1 {
		t.Fatalf("recovery logged %d times", n)
	}
	la.stop()
	// The quit beat reached the service: the device is offline by its own beat.
	ds, err := svc.store.DeviceStatus(context.Background(), did)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Presence.State != presence.Offline {
		t.Fatalf("device state after quit %s", ds.Presence.State)
	}
}

func TestIntegrationRateLimitHonoursRetryAfter(t *testing.T) {
	if testing.Short() {
		t.Skip("real service")
	}
	// One request, then one a second.
	svc := newLiveService(t, func(c *httpapi.Config) { c.DeviceRate = httpapi.Rate{PerSecond: 1, Burst: 1} })
	_, _, token := svc.device("ann", "desk")
	la := startLiveAgent(t, "", nil)
	la.toggle(4)
	la.connect(svc, token) // probe (1 request), then the rest
	eventually(t, "drained through the rate limit", la.drained)
	hs := svc.hits()
	limited := 0
	for i, h := range hs {
		if h.status != http.StatusTooManyRequests {
			continue
		}
		limited++
		if i+1 < len(hs) {
			// Retry-After is whole seconds, rounded up: never back before it.
			if gap := hs[i+1].at.Sub(h.at); gap < 900*time.Millisecond {
				t.Fatalf("retried %v after a 429", gap)
			}
		}
	}
	if limited == 0 {
		t.Fatalf("no 429 seen: %+v", hs)
	}
	if len(hs) > limited*2+2 {
		t.Fatalf("%d requests for %d refusals: hammering", len(hs), limited)
	}
}

func TestIntegrationRevokedDevice(t *testing.T) {
	if testing.Short() {
		t.Skip("real service")
	}
	svc := newLiveService(t, nil)
	uid, did, token := svc.device("ann", "desk")
	la := startLiveAgent(t, "", nil)
	la.connect(svc, token)
	la.toggle(2)
	eventually(t, "delivered", la.drained)
	if err := svc.store.RevokeDevice(context.Background(), uid, did); err != nil {
		t.Fatal(err)
	}
	la.toggle(2)
	eventually(t, "revocation noticed", func() bool { return la.a.Status().Revoked })
	if st := la.a.Status(); st.SyncError != RevokedMessage {
		t.Fatalf("status %+v", st)
	}
	n := len(svc.hits())
	la.toggle(4)
	// The sender has taken the wake-up of the last beat: a sender that
	// ignored the refusal would be sending now.
	eventually(t, "the sender to take the last beat's wake-up", func() bool { return len(la.a.s.wake) == 0 })
	if la.db.Depth() < 6 {
		t.Fatalf("beats were not kept while revoked: depth %d", la.db.Depth())
	}
	// A new device token: everything queued goes to the new device. It is
	// also the marker for what must not have happened: the service logs
	// requests in order, so any request made while revoked, with the old
	// token, comes before the new token's.
	_, did2, token2 := svc.device("ann", "desk again")
	la.connect(svc, token2)
	eventually(t, "delivered to the new device", la.drained)
	for i, h := range svc.hits()[n:] {
		if h.auth != "Bearer "+token2 {
			t.Fatalf("request %d after the 401 was sent with the revoked token", i+1)
		}
	}
	if st := la.a.Status(); st.Revoked || st.SyncError != "" {
		t.Fatalf("status after the new token %+v", st)
	}
	if got := spanStates(svc.spans(uid, did2)); got != "away active away active away active" {
		t.Fatalf("new device spans %q", got)
	}
}

func TestIntegrationLostResponsesCountOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("real service")
	}
	svc := newLiveService(t, nil)
	uid, did, token := svc.device("ann", "desk")
	la := startLiveAgent(t, "", nil)
	la.connect(svc, token)
	la.toggle(2)
	eventually(t, "delivered", la.drained)
	// The next three batches are committed by the service, but the answer is
	// lost on the way back.
	var lost atomic.Int32
	svc.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/api/v1/heartbeats" || lost.Add(1) > 3 {
			return false
		}
		svc.api.ServeHTTP(httptest.NewRecorder(), r)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return true
	})
	la.toggle(4)
	eventually(t, "delivered after lost answers", la.drained)
	if lost.Load() < 4 {
		t.Fatalf("fault hit %d times", lost.Load())
	}
	if got, want := svc.lastSeq(did), la.db.LastSeq(); got != want {
		t.Fatalf("service last_seq %d, agent %d (a resent batch was renumbered)", got, want)
	}
	if n := la.logs.count("renumbered"); n != 0 {
		t.Fatal("expected duplicates triggered a resync")
	}
	sp := svc.spans(uid, did)
	if got, want := spanStates(sp), la.localStates(); got != want {
		t.Fatalf("service spans %q, local %q", got, want)
	}
	d, _ := la.a.Diagnostics(context.Background())
	if d.QuarantineCount != 0 {
		t.Fatalf("quarantined %d", d.QuarantineCount)
	}
}

func TestIntegrationWipedAgentStore(t *testing.T) {
	if testing.Short() {
		t.Skip("real service")
	}
	svc := newLiveService(t, nil)
	uid, did, token := svc.device("ann", "desk")
	first := startLiveAgent(t, "", nil)
	first.connect(svc, token)
	first.toggle(20)
	eventually(t, "first install delivered", first.drained)
	first.stop()
	high := svc.lastSeq(did)
	if high < 20 {
		t.Fatalf("service last_seq %d", high)
	}
	before := len(svc.spans(uid, did))

	// The agent's data is wiped: a fresh database, the same token. It queues
	// beats before it reaches the service.
	second := startLiveAgent(t, "", nil)
	second.toggle(5)
	queued := second.db.Depth()
	if queued != 6 {
		t.Fatalf("queued %d, want the start beat and 5 changes", queued)
	}
	second.connect(svc, token)
	eventually(t, "wiped install delivered", second.drained)
	if got := svc.lastSeq(did); got != high+queued {
		t.Fatalf("service last_seq %d, want %d + %d: beats were swallowed as duplicates", got, high, queued)
	}
	// Every queued beat made a span: active, then 5 alternations.
	if got := len(svc.spans(uid, did)) - before; got != 6 {
		t.Fatalf("%d new spans, want 6: %s", got, spanStates(svc.spans(uid, did)))
	}
	if n := second.logs.count("renumbered the queue"); n != 1 {
		t.Fatalf("resync logged %d times", n)
	}
}

func TestIntegrationRejectedBeatsQuarantined(t *testing.T) {
	if testing.Short() {
		t.Skip("real service")
	}
	// The service keeps one hour of past.
	svc := newLiveService(t, func(c *httpapi.Config) {
		c.Limits = presence.Limits{MaxPast: time.Hour, MaxFuture: 2 * time.Minute, SkewTolerance: 5 * time.Second}
	})
	_, _, token := svc.device("ann", "desk")
	var offset atomic.Int64
	offset.Store(int64(-2 * time.Hour))
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	la := startLiveAgent(t, "", now)
	la.toggle(3) // queued two hours "ago"
	offset.Store(0)
	la.connect(svc, token)
	la.toggle(1)
	eventually(t, "outbox drained", la.drained)
	d, err := la.a.Diagnostics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d.QuarantineCount < 4 {
		t.Fatalf("quarantined %d, want the 4 old beats", d.QuarantineCount)
	}
	for _, q := range d.Quarantine {
		if !strings.Contains(q.Error, "older than") {
			t.Fatalf("quarantine reason %q", q.Error)
		}
	}
	if st := la.a.Status(); st.SyncError != "" || !st.Reachable {
		t.Fatalf("status %+v", st)
	}
}
