package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// fakeService is the presence service as the Watcher sees it. Each
// Events call opens a stream the test feeds through push and ends with
// drop.
type fakeService struct {
	mu         sync.Mutex
	watches    []presence.Watch
	people     map[string]presence.State
	watchReads int
	opens      int
	stream     *fakeStream
}

func (s *fakeService) Watches(context.Context) ([]presence.Watch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watchReads++
	return append([]presence.Watch(nil), s.watches...), nil
}

func (s *fakeService) Presence(context.Context) (map[string]presence.State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]presence.State{}
	for h, st := range s.people {
		out[h] = st
	}
	return out, nil
}

func (s *fakeService) Events(context.Context) (Stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opens++
	s.stream = &fakeStream{c: make(chan Change), end: make(chan struct{})}
	return s.stream, nil
}

func (s *fakeService) set(f func(*fakeService)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// push delivers a live change on the open stream, and records it as the
// person's status for the next snapshot.
func (s *fakeService) push(h, device string, st presence.State) {
	s.mu.Lock()
	s.people[h] = st
	stream := s.stream
	s.mu.Unlock()
	stream.c <- Change{Handle: h, Device: device, Status: st}
}

func (s *fakeService) openCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opens
}

// drop ends the open stream from the service's side.
func (s *fakeService) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stream.close()
}

type fakeStream struct {
	c    chan Change
	end  chan struct{}
	once sync.Once
}

func (f *fakeStream) Next() (Change, error) {
	select {
	case c := <-f.c:
		return c, nil
	case <-f.end:
		return Change{}, io.EOF
	}
}

func (f *fakeStream) close()       { f.once.Do(func() { close(f.end) }) }
func (f *fakeStream) Close() error { f.close(); return nil }

type recorder struct {
	mu   sync.Mutex
	sent []Notification
}

func (r *recorder) Send(_ context.Context, n Notification) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, n)
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sent)
}

func (r *recorder) titles() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ts []string
	for _, n := range r.sent {
		ts = append(ts, n.Title+" ("+n.Body+")")
	}
	return fmt.Sprint(ts)
}

// run starts a Watcher of svc in the bubble and returns what it sent; the
// Watcher stops when the test's bubble ends.
func run(t *testing.T, svc *fakeService, tweak ...func(*Config)) (*Watcher, *recorder) {
	t.Helper()
	rec := &recorder{}
	cfg := Config{Service: svc, Sender: rec, Self: func() string { return "ann" }}
	for _, f := range tweak {
		f(&cfg)
	}
	w := NewWatcher(cfg)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	synctest.Wait()
	return w, rec
}

func newService() *fakeService {
	return &fakeService{
		watches: watches("bob", "cat"),
		people:  map[string]presence.State{"ann": presence.Active, "bob": presence.Offline, "cat": presence.Active, "dan": presence.Offline},
	}
}

func TestWatcherAnnouncesLiveTransitionsOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := newService()
		_, rec := run(t, svc)
		// cat was online at connect: her next change is no transition.
		svc.push("cat", "phone", presence.Active)
		// dan is not watched.
		svc.push("dan", "pc", presence.Active)
		synctest.Wait()
		if got := rec.titles(); got != "[]" {
			t.Fatalf("before any watched transition: sent %s", got)
		}
		svc.push("bob", "laptop", presence.Idle)
		synctest.Wait()
		if got := rec.titles(); got != "[Nbob is online (laptop)]" {
			t.Fatalf("bob came online: sent %s", got)
		}
	})
}

func TestWatcherRateLimitsInTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := newService()
		_, rec := run(t, svc)
		flap := func() {
			svc.push("bob", "laptop", presence.Offline)
			svc.push("bob", "laptop", presence.Active)
			synctest.Wait()
		}
		flap()
		time.Sleep(9 * time.Minute)
		flap()
		if got := rec.count(); got != 1 {
			t.Fatalf("bob online twice within 9 minutes: %d notifications, want 1", got)
		}
		time.Sleep(time.Minute)
		flap()
		if got := rec.count(); got != 2 {
			t.Fatalf("10 minutes after the first: %d notifications, want 2", got)
		}
	})
}

func TestWatcherUnwatchAndRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := newService()
		w, rec := run(t, svc)

		// The window unwatched bob and nudged the agent.
		svc.set(func(s *fakeService) { s.watches = watches("cat") })
		w.Nudge()
		synctest.Wait()
		svc.push("bob", "laptop", presence.Active)
		synctest.Wait()
		if got := rec.titles(); got != "[]" {
			t.Fatalf("bob unwatched: sent %s", got)
		}

		// dan was watched elsewhere: the periodic read picks it up.
		svc.set(func(s *fakeService) { s.watches = watches("cat", "dan") })
		reads := func() int {
			svc.mu.Lock()
			defer svc.mu.Unlock()
			return svc.watchReads
		}
		before := reads()
		time.Sleep(DefaultRefresh)
		synctest.Wait()
		if reads() != before+1 {
			t.Fatalf("watch list read %d times in %s, want once", reads()-before, DefaultRefresh)
		}
		svc.push("dan", "pc", presence.Active)
		synctest.Wait()
		if got := rec.titles(); got != "[Ndan is online (pc)]" {
			t.Fatalf("dan watched since the refresh: sent %s", got)
		}
	})
}

func TestWatcherReconnectAnnouncesNobodyTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := newService()
		_, rec := run(t, svc)
		svc.push("bob", "laptop", presence.Active)
		synctest.Wait()
		if rec.count() != 1 {
			t.Fatalf("bob online: %s", rec.titles())
		}
		// Past the per-person limit, the stream drops and comes back.
		time.Sleep(PerPerson + time.Minute)
		svc.drop()
		synctest.Wait()
		time.Sleep(retryMin)
		synctest.Wait()
		if n := svc.openCount(); n != 2 {
			t.Fatalf("stream opened %d times, want 2 (a reconnect)", n)
		}
		// bob is still online: the new snapshot knows it.
		svc.push("bob", "phone", presence.Active)
		synctest.Wait()
		if rec.count() != 1 {
			t.Fatalf("after the reconnect: %s; bob was online all along", rec.titles())
		}
		// And a real transition after the reconnect is announced.
		svc.push("cat", "pc", presence.Away)
		svc.push("cat", "pc", presence.Active)
		synctest.Wait()
		if got := rec.titles(); got != "[Nbob is online (laptop) Ncat is online (pc)]" {
			t.Fatalf("cat came online after the reconnect: sent %s", got)
		}
	})
}

func TestWatcherSilencedAndSelf(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := newService()
		svc.watches = watches("ann", "bob")
		var mu sync.Mutex
		on := false
		_, rec := run(t, svc, func(c *Config) {
			c.Enabled = func() bool { mu.Lock(); defer mu.Unlock(); return on }
		})
		svc.push("bob", "laptop", presence.Active)
		svc.push("ann", "pc", presence.Offline)
		synctest.Wait()
		mu.Lock()
		on = true
		mu.Unlock()
		svc.push("ann", "pc", presence.Active)
		synctest.Wait()
		if got := rec.titles(); got != "[]" {
			t.Fatalf("silenced, then oneself: sent %s", got)
		}
	})
}

// A service that cannot be reached is retried with a growing wait, and
// the Watcher ends with its context.
func TestWatcherRetriesWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := &failingService{}
		w := NewWatcher(Config{Service: svc, Sender: &recorder{}})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); w.Run(ctx) }()
		start := time.Now()
		time.Sleep(time.Minute)
		synctest.Wait()
		// Attempts at 0, 2, 6, 14, 30 s and 62 s: five within the minute.
		if got := svc.n(); got != 5 {
			t.Errorf("%d attempts in %s, want 5 (2 s doubling)", got, time.Since(start))
		}
		cancel()
		<-done
	})
}

type failingService struct {
	mu       sync.Mutex
	attempts int
	err      error // errors.New("down") when nil
}

func (f *failingService) fail() error {
	if f.err != nil {
		return f.err
	}
	return errors.New("down")
}

func (f *failingService) n() int { f.mu.Lock(); defer f.mu.Unlock(); return f.attempts }

func (f *failingService) Watches(context.Context) ([]presence.Watch, error) {
	return nil, f.fail()
}

func (f *failingService) Presence(context.Context) (map[string]presence.State, error) {
	return nil, f.fail()
}

func (f *failingService) Events(context.Context) (Stream, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts++
	return nil, f.fail()
}

// A token the service refuses (a revoked device) ends the Watcher: it
// would never be accepted again.
func TestWatcherStopsWhenTheTokenIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := &failingService{err: presence.Errorf(presence.EUNAUTHORIZED, "revoked")}
		done := make(chan struct{})
		go func() { defer close(done); NewWatcher(Config{Service: svc, Sender: &recorder{}}).Run(t.Context()) }()
		<-done
		if n := svc.n(); n != 1 {
			t.Errorf("%d attempts, want 1", n)
		}
	})
}
