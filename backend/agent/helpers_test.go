package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lastseen/lastseen/backend/agentdb"
	"github.com/lastseen/lastseen/backend/presence"
)

// fakeIdle reports the time since the last simulated input, on the bubble's
// clock, or a set error. It cannot wait for input (waitingIdle can).
type fakeIdle struct {
	mu        sync.Mutex
	lastInput time.Time
	err       error
	reads     int

	touched  chan struct{} // closed by the next touch
	waits    int           // WaitInput calls
	running  int           // WaitInput calls not returned yet
	waitErr  error         // WaitInput fails with it at once
	spurious bool          // WaitInput returns nil at once, input or not
}

func newFakeIdle() *fakeIdle { return &fakeIdle{lastInput: time.Now(), touched: make(chan struct{})} }

func (f *fakeIdle) Idle(ctx context.Context) (time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.err != nil {
		return 0, f.err
	}
	return time.Since(f.lastInput), nil
}

func (f *fakeIdle) touch() {
	f.mu.Lock()
	f.lastInput = time.Now()
	close(f.touched)
	f.touched = make(chan struct{})
	f.mu.Unlock()
}

// age moves the last input d into the past without any input.
func (f *fakeIdle) age(d time.Duration) {
	f.mu.Lock()
	f.lastInput = f.lastInput.Add(-d)
	f.mu.Unlock()
}

// waitingIdle is a fakeIdle that can also wait for input, as the X11 source
// does with a SYNC alarm.
type waitingIdle struct{ *fakeIdle }

var _ InputWaiter = waitingIdle{}

func (w waitingIdle) WaitInput(ctx context.Context) error {
	f := w.fakeIdle
	f.mu.Lock()
	f.waits++
	touched, err, spurious := f.touched, f.waitErr, f.spurious
	f.running++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.running--
		f.mu.Unlock()
	}()
	switch {
	case err != nil:
		return err
	case spurious:
		return nil
	}
	select {
	case <-touched:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for input: %w", ctx.Err())
	}
}

// waitCounts is how many waits began and how many are still running.
func (f *fakeIdle) waitCounts() (waits, running int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.waits, f.running
}

func (f *fakeIdle) setWait(err error, spurious bool) {
	f.mu.Lock()
	f.waitErr, f.spurious = err, spurious
	f.mu.Unlock()
}

func (f *fakeIdle) setErr(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

func (f *fakeIdle) readCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

// fakeService is an in-memory Uploader for loop tests inside a synctest
// bubble (where real sockets cannot be used). By default it applies the
// service's seq rule: beats at or below its mark are duplicates. fail, when
// set, decides a failure per call (nil: answer normally).
type fakeService struct {
	mu       sync.Mutex
	lastSeq  int64
	accepted []presence.Beat
	calls    []call
	fail     func(n int, b presence.Batch) error
	reject   func(b presence.Beat) string // per-beat rejection reason ("" accepts)
	hook     func(b presence.Batch)       // called first, outside the lock
}

type call struct {
	at    time.Time
	batch presence.Batch
	err   error
}

func (s *fakeService) PostHeartbeats(ctx context.Context, b presence.Batch) (presence.BatchResult, error) {
	s.mu.Lock()
	hook := s.hook
	s.mu.Unlock()
	if hook != nil {
		hook(b)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := call{at: time.Now(), batch: b}
	if s.fail != nil {
		if err := s.fail(len(s.calls), b); err != nil {
			c.err = err
			s.calls = append(s.calls, c)
			return presence.BatchResult{}, err
		}
	}
	s.calls = append(s.calls, c)
	var res presence.BatchResult
	valid := make([]presence.Beat, 0, len(b.Beats))
	for _, x := range b.Beats {
		if s.reject != nil {
			if why := s.reject(x); why != "" {
				res.Rejected = append(res.Rejected, presence.Rejection{Seq: x.Seq, Error: why})
				continue
			}
		}
		valid = append(valid, x)
	}
	for _, x := range valid {
		if x.Seq <= s.lastSeq {
			res.Duplicates++
			continue
		}
		s.lastSeq = x.Seq
		s.accepted = append(s.accepted, x)
		res.Accepted++
	}
	res.LastSeq = s.lastSeq
	return res, nil
}

func (s *fakeService) setHook(h func(presence.Batch)) {
	s.mu.Lock()
	s.hook = h
	s.mu.Unlock()
}

func (s *fakeService) got() []presence.Beat {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]presence.Beat(nil), s.accepted...)
}

func (s *fakeService) callList() []call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]call(nil), s.calls...)
}

func states(bs []presence.Beat) []presence.State {
	out := make([]presence.State, len(bs))
	for i, b := range bs {
		out[i] = b.State
	}
	return out
}

// apiError is what the HTTP client returns for an error answer.
type apiError struct {
	err   *presence.Error
	after time.Duration
}

func (e *apiError) Error() string             { return e.err.Error() }
func (e *apiError) Unwrap() error             { return e.err }
func (e *apiError) RetryAfter() time.Duration { return e.after }
func errCode(code string, after time.Duration) error {
	return &apiError{err: presence.Errorf(code, "%s from the service", code), after: after}
}

var errNetwork = errors.New(`post heartbeats: dial tcp 127.0.0.1:9: connect: connection refused`)

// logBuffer collects log lines safely.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), sub)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// fakeSignals is a call and media source driven by the test: start and end
// a signal on the bubble's clock; each change is announced once.
type fakeSignals struct {
	mu      sync.Mutex
	sig     Signal
	changed chan struct{}
	reads   int
}

func newFakeSignals() *fakeSignals { return &fakeSignals{changed: make(chan struct{}, 1)} }

func (f *fakeSignals) Signal() Signal {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return f.sig
}

func (f *fakeSignals) Changed() <-chan struct{} { return f.changed }
func (f *fakeSignals) Name() string             { return "fake-signals" }
func (f *fakeSignals) Close() error             { return nil }

func (f *fakeSignals) set(s Signal) {
	f.mu.Lock()
	f.sig = s
	f.mu.Unlock()
	select {
	case f.changed <- struct{}{}:
	default:
	}
	synctest.Wait()
}

// start begins a signal of why now; end ends it now.
func (f *fakeSignals) start(why presence.Why) { f.set(Signal{Why: why, Since: time.Now()}) }
func (f *fakeSignals) end()                   { f.set(Signal{Ended: time.Now()}) }

// rig is one agent under test inside a synctest bubble.
type rig struct {
	t      *testing.T
	a      *Agent
	db     *agentdb.DB
	path   string
	idle   *fakeIdle
	sig    *fakeSignals
	events chan OSEvent
	logs   *logBuffer
	cancel context.CancelFunc
	done   chan struct{}
	t0     time.Time // when the test's clock reads zero (see at)
	// skew is added to the agent's wall clock (Deps.Now): a jump of it is
	// what a suspend looks like to a process whose timers and idle counter
	// run on a monotonic clock that stopped meanwhile.
	skew atomic.Int64
}

// wall is the agent's clock: the bubble's plus the skew.
func (r *rig) wall() time.Time { return time.Now().Add(time.Duration(r.skew.Load())) }

// suspend makes d pass on the wall clock and nowhere else, as a silent
// suspend does.
func (r *rig) suspend(d time.Duration) { r.skew.Add(int64(d)) }

func openDB(t *testing.T, path string) *agentdb.DB {
	t.Helper()
	db, err := agentdb.Open(path, agentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newRig builds an agent on a fresh database (or path, when given), whose
// idle reader cannot wait for input.
func newRig(t *testing.T, cfg Config, path string) *rig {
	t.Helper()
	return buildRig(t, cfg, path, false)
}

// newWaitingRig is newRig with an idle reader that can wait for input.
func newWaitingRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	return buildRig(t, cfg, "", true)
}

func buildRig(t *testing.T, cfg Config, path string, waits bool) *rig {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "agent.db")
	}
	return buildRigOn(t, cfg, path, openDB(t, path), waits)
}

// buildRigOn is buildRig on a database the test opened (at path).
func buildRigOn(t *testing.T, cfg Config, path string, db *agentdb.DB, waits bool) *rig {
	t.Helper()
	r := &rig{t: t, path: path, db: db, idle: newFakeIdle(), sig: newFakeSignals(), events: make(chan OSEvent), logs: &logBuffer{}, t0: time.Now()}
	log := slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var idle IdleReader = r.idle
	if waits {
		idle = waitingIdle{r.idle}
	}
	a, err := New(Deps{DB: r.db, Idle: idle, Events: r.events, Signals: r.sig, Logger: log, Location: time.UTC, Now: r.wall}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.a = a
	return r
}

// start runs the agent; stop (also registered as cleanup) quits it.
func (r *rig) start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go func() {
		defer close(r.done)
		if err := r.a.Run(ctx); err != nil {
			r.t.Errorf("Run: %v", err)
		}
	}()
	synctest.Wait()
	r.t.Cleanup(r.stop)
}

func (r *rig) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.cancel = nil
}

func (r *rig) send(ev OSEvent) {
	r.events <- ev
	synctest.Wait()
}

func (r *rig) advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

func (r *rig) outbox() []presence.Beat {
	r.t.Helper()
	bs, err := r.db.Outbox(context.Background(), 1<<30)
	if err != nil {
		r.t.Fatal(err)
	}
	return bs
}

func (r *rig) history() []presence.Span {
	r.t.Helper()
	h, err := r.db.History(context.Background(), time.Time{}, time.Now().Add(time.Hour))
	if err != nil {
		r.t.Fatal(err)
	}
	return h
}

func (r *rig) setUploader(u Uploader, target string) {
	r.t.Helper()
	if err := r.a.SetUploader(context.Background(), u, target); err != nil {
		r.t.Fatal(err)
	}
	synctest.Wait()
}
