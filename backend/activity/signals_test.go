package activity

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// setClock is a clock the test sets: the combiner stamps a change with the
// time set before the change was caused.
type setClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *setClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *setClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

// at is t0 plus n minutes: the steps' times.
func at(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }

func TestCombiner(t *testing.T) {
	const (
		video = 0 // a media watcher (e.g. the session manager's inhibitors)
		pm    = 1 // another media watcher
		mic   = 2 // a call watcher
	)
	steps := []struct {
		what    string
		watcher int
		on      bool
		want    Signal
		changed bool
	}{
		{"a video starts", video, true, Signal{Why: presence.ByMedia, Since: at(1)}, true},
		{"a second watcher sees media too", pm, true, Signal{Why: presence.ByMedia, Since: at(1)}, false},
		{"the first stops, the second goes on", video, false, Signal{Why: presence.ByMedia, Since: at(1)}, false},
		{"a call starts during the media: the call wins", mic, true, Signal{Why: presence.ByCall, Since: at(4)}, true},
		{"the same call reported again", mic, true, Signal{Why: presence.ByCall, Since: at(4)}, false},
		{"the call ends, the media went on all along", mic, false, Signal{Why: presence.ByMedia, Since: at(1)}, true},
		{"the media ends: nothing left", pm, false, Signal{Ended: at(7)}, true},
		{"an off watcher reports off", video, false, Signal{Ended: at(7)}, false},
		{"a call alone", mic, true, Signal{Why: presence.ByCall, Since: at(9), Ended: at(7)}, true},
		{"media starts during the call: the call still wins", video, true, Signal{Why: presence.ByCall, Since: at(9), Ended: at(7)}, false},
		{"the call ends: media, since it began", mic, false, Signal{Why: presence.ByMedia, Since: at(10), Ended: at(7)}, true},
		{"all ends", video, false, Signal{Ended: at(12)}, true},
	}
	clk := &setClock{}
	c := newCombiner(clk.Now, []presence.Why{presence.ByMedia, presence.ByMedia, presence.ByCall})
	for i, s := range steps {
		clk.set(at(i + 1))
		c.set(s.watcher, s.on)
		if got := c.signal(); got != s.want {
			t.Fatalf("step %d (%s): Signal = %+v, want %+v", i+1, s.what, got, s.want)
		}
		select {
		case <-c.changed:
			if !s.changed {
				t.Fatalf("step %d (%s): Changed fired, but the Signal did not change", i+1, s.what)
			}
		default:
			if s.changed {
				t.Fatalf("step %d (%s): Changed did not fire", i+1, s.what)
			}
		}
	}
}

func TestCombinerStartsOnWithoutNotice(t *testing.T) {
	clk := &setClock{t: at(0)}
	c := newCombiner(clk.Now, []presence.Why{presence.ByMedia, presence.ByCall})
	c.init(0, true)
	c.init(1, false)
	if got, want := c.signal(), (Signal{Why: presence.ByMedia, Since: at(0)}); got != want {
		t.Fatalf("Signal after init = %+v, want %+v (a signal on at start counts from the start)", got, want)
	}
	select {
	case <-c.changed:
		t.Fatal("Changed fired for the state at start")
	default:
	}
}

func TestCombinerCoalescesNotices(t *testing.T) {
	clk := &setClock{t: at(0)}
	c := newCombiner(clk.Now, []presence.Why{presence.ByCall})
	// Nobody reads Changed: the watcher must not block, and the reader
	// finds one notice and the latest Signal.
	for i := range 5 {
		clk.set(at(i))
		c.set(0, i%2 == 0)
	}
	<-c.changed
	select {
	case <-c.changed:
		t.Fatal("two notices pending; want them coalesced into one")
	default:
	}
	if got, want := c.signal(), (Signal{Why: presence.ByCall, Since: at(4), Ended: at(3)}); got != want {
		t.Fatalf("Signal = %+v, want the latest %+v", got, want)
	}
}

// fakeWatcher is a signalWatcher driven by the test.
func fakeWatcher(name string, why presence.Why, on bool, states <-chan bool, closed *bool) *signalWatcher {
	return &signalWatcher{
		name: name, why: why, on: on,
		run: func(ctx context.Context, report func(bool)) {
			for {
				select {
				case <-ctx.Done():
					return
				case on := <-states:
					report(on)
				}
			}
		},
		close: func() error { *closed = true; return nil },
	}
}

func TestSignalSource(t *testing.T) {
	clk := &setClock{t: at(0)}
	media, call := make(chan bool), make(chan bool)
	var mediaClosed, callClosed bool
	src := startSignals(clk.Now, []*signalWatcher{
		fakeWatcher("media-watcher", presence.ByMedia, true, media, &mediaClosed),
		fakeWatcher("call-watcher", presence.ByCall, false, call, &callClosed),
	})
	if got, want := src.Name(), "media-watcher + call-watcher"; got != want {
		t.Errorf("Name = %q, want %q", got, want)
	}
	if got, want := src.Signal(), (Signal{Why: presence.ByMedia, Since: at(0)}); got != want {
		t.Fatalf("Signal at start = %+v, want %+v", got, want)
	}

	clk.set(at(1))
	call <- true
	waitSignal(t, src, Signal{Why: presence.ByCall, Since: at(1)})
	clk.set(at(2))
	media <- false
	media <- false // taken only once the first was reported: the watchers run apart
	clk.set(at(3))
	call <- false
	waitSignal(t, src, Signal{Ended: at(3)})

	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if !mediaClosed || !callClosed {
		t.Fatalf("Close closed media %v, call %v; want both", mediaClosed, callClosed)
	}
	if err := src.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

// signalWait bounds the wait for a change that must come: a bus round trip
// on a loaded machine can take a while, and giving up early is a flake
// rather than a finding.
const signalWait = 10 * time.Second

// waitSignal waits for the next notice on Changed and checks that the
// Signal is then want: each step of a test makes one change, so an earlier
// change the test did not cause shows up as the wrong Signal.
func waitSignal(t *testing.T, src SignalSource, want Signal) {
	t.Helper()
	// Changed is coalesced and may still hold the notice of an earlier
	// change: wait for notices until the wanted state is there.
	deadline := time.After(signalWait)
	for src.Signal() != want {
		select {
		case <-src.Changed():
		case <-deadline:
			t.Fatalf("no change to %+v within %v; Signal = %+v", want, signalWait, src.Signal())
		}
	}
}
