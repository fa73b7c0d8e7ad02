package agent

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// While active, nothing but the idle time reaching the threshold can change
// the state (locks and sleeps are events), so the idle time is read with the
// beats and once more when the threshold can first be reached: the idle
// beat lands on the threshold itself, not a tick after it.
func TestActiveReadsOnlyWhenTheThresholdCanPass(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{IdleAfter: 10 * time.Minute, Interval: 5 * time.Minute}, "")
		r.start()
		r.advance(4 * time.Minute)
		r.idle.touch()
		input := time.Now()
		threshold := input.Add(10 * time.Minute)
		for time.Now().Before(threshold.Add(-time.Second)) {
			r.advance(time.Second)
		}
		if st := r.a.Status(); st.State != presence.Active {
			t.Fatalf("a second before the threshold: %s", st.State)
		}
		r.advance(time.Second)
		bs := r.outbox()
		if last := bs[len(bs)-1]; last.State != presence.Idle || !last.At.Equal(threshold) {
			t.Fatalf("newest beat %+v, want idle at the threshold %v", last, threshold)
		}
		// 14 minutes at a 2 s tick would be 420 reads.
		if reads := r.idle.readCount(); reads > len(bs)+1 {
			t.Fatalf("%d idle reads for %d beats in 14 min", reads, len(bs))
		}
	})
}

// A lower threshold set while active is checked at once, not when the old
// one would have passed.
func TestLoweringTheThresholdReadsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{IdleAfter: 30 * time.Minute}, "")
		r.start()
		r.advance(3*time.Minute + time.Second)
		cfg := r.a.Config()
		cfg.IdleAfter = time.Minute
		if err := r.a.SetConfig(cfg); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		bs := r.outbox()
		if last := bs[len(bs)-1]; last.State != presence.Idle || !last.At.Equal(time.Now()) {
			t.Fatalf("newest beat %+v, want idle now (%v)", last, time.Now())
		}
	})
}

// With a reader that can wait for input, an idle machine is not polled: one
// wait runs through the idle time, input turns the state active at that
// instant, and a lock stops the wait.
func TestIdleWaitsForInputInsteadOfPolling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newWaitingRig(t, Config{})
		r.start()
		if _, running := r.idle.waitCounts(); running != 0 {
			t.Fatalf("%d waits while active", running)
		}
		r.advance(5*time.Minute + time.Second)
		if st := r.a.Status(); st.State != presence.Idle {
			t.Fatalf("after the threshold: %s", st.State)
		}
		if waits, running := r.idle.waitCounts(); waits != 1 || running != 1 {
			t.Fatalf("idle: %d waits, %d running, want one running", waits, running)
		}

		reads0, beats0 := r.idle.readCount(), len(r.outbox())
		const span = 30 * time.Minute
		for range int(span / time.Second) {
			r.advance(time.Second)
		}
		reads, beats := r.idle.readCount()-reads0, len(r.outbox())-beats0
		if reads > beats+1 {
			t.Fatalf("%d idle reads for %d beats in %v idle: the waiter should make polling needless", reads, beats, span)
		}
		if waits, running := r.idle.waitCounts(); waits != 1 || running != 1 {
			t.Fatalf("after %v idle: %d waits, %d running, want the same one", span, waits, running)
		}
		if perSec := float64(reads+beats) / span.Seconds(); perSec > 0.1 {
			t.Fatalf("%.3f wakeups a second while idle", perSec)
		}

		r.idle.touch()
		synctest.Wait()
		bs := r.outbox()
		if last := bs[len(bs)-1]; last.State != presence.Active || !last.At.Equal(time.Now()) {
			t.Fatalf("after input: newest beat %+v, want active at this instant %v", last, time.Now())
		}
		if _, running := r.idle.waitCounts(); running != 0 {
			t.Fatalf("%d waits running while active", running)
		}

		r.advance(5*time.Minute + time.Second)
		if _, running := r.idle.waitCounts(); running != 1 {
			t.Fatalf("idle again: %d waits running", running)
		}
		r.send(OSEvent{Kind: Locked})
		if _, running := r.idle.waitCounts(); running != 0 {
			t.Fatalf("locked: %d waits running", running)
		}
		r.send(OSEvent{Kind: Unlocked}) // no input: still idle, waiting again
		if st := r.a.Status(); st.State != presence.Idle {
			t.Fatalf("unlocked without input: %s", st.State)
		}
		if _, running := r.idle.waitCounts(); running != 1 {
			t.Fatalf("unlocked and idle: %d waits running", running)
		}

		// Quitting ends the wait before Run returns: the reader may be
		// closed right after.
		r.stop()
		if _, running := r.idle.waitCounts(); running != 0 {
			t.Fatalf("after Run returned: %d waits running", running)
		}
		if n := r.logs.count("cannot wait for input"); n != 0 {
			t.Fatalf("quitting logged a wait failure:\n%s", r.logs)
		}
		bs = r.outbox()
		if last := bs[len(bs)-1]; last.State != presence.Offline {
			t.Fatalf("final beat %+v, want offline", last)
		}
	})
}

// A reader that cannot wait after all: the loop polls every tick as without
// a waiter, says so once, and tries again a while later.
func TestFailingWaiterFallsBackToTicks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newWaitingRig(t, Config{})
		r.idle.setWait(errors.New("alarm refused"), false)
		r.start()
		r.advance(5*time.Minute + time.Second)
		reads0 := r.idle.readCount()
		r.advance(10 * time.Minute)
		if reads := r.idle.readCount() - reads0; reads < int(10*time.Minute/(2*time.Second))-1 {
			t.Fatalf("%d reads in 10 min idle with a failing waiter, want one per tick", reads)
		}
		waits, _ := r.idle.waitCounts()
		if waits < 9 || waits > 12 {
			t.Fatalf("%d waits in 10 min, want a retry a minute", waits)
		}
		if n := r.logs.count("cannot wait for input"); n != 1 {
			t.Fatalf("wait failure logged %d times, want once per streak", n)
		}
		r.idle.touch()
		r.advance(2 * time.Second)
		if st := r.a.Status(); st.State != presence.Active {
			t.Fatalf("input with a failing waiter: %s after a tick", st.State)
		}

		// It works again: the next idle stretch waits, and input ends it.
		r.idle.setWait(nil, false)
		r.advance(5*time.Minute + time.Second)
		if _, running := r.idle.waitCounts(); running != 1 {
			t.Fatalf("waiter working again: %d running", running)
		}
		r.idle.touch()
		synctest.Wait()
		if st := r.a.Status(); st.State != presence.Active {
			t.Fatalf("input: %s", st.State)
		}
		if n := r.logs.count("waiting for input works again"); n != 1 {
			t.Fatalf("recovery logged %d times", n)
		}
	})
}

// A waiter that returns at once without input cannot spin the loop: waits
// start at most once a tick, and the two-wakeups-a-second bound holds.
func TestSpuriousWaiterIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newWaitingRig(t, Config{})
		r.idle.setWait(nil, true)
		r.start()
		r.advance(5*time.Minute + time.Second)
		waits0, reads0, beats0 := r.waits(), r.idle.readCount(), len(r.outbox())
		const span = time.Minute
		r.advance(span)
		waits, reads, beats := r.waits()-waits0, r.idle.readCount()-reads0, len(r.outbox())-beats0
		if waits > int(span/(2*time.Second))+1 {
			t.Fatalf("%d waits in %v", waits, span)
		}
		if perSec := float64(reads+beats) / span.Seconds(); perSec > 2 {
			t.Fatalf("%.2f wakeups a second", perSec)
		}
		if st := r.a.Status(); st.State != presence.Idle {
			t.Fatalf("spurious wakes changed the state: %s", st.State)
		}
	})
}

func (r *rig) waits() int {
	w, _ := r.idle.waitCounts()
	return w
}

// stuckIdle is a reader whose counter stands still just under the
// threshold: the worst case for reading "when the threshold can pass".
type stuckIdle struct {
	mu    sync.Mutex
	d     time.Duration
	reads int
}

func (s *stuckIdle) Idle(context.Context) (time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	return s.d, nil
}

func (s *stuckIdle) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

func TestStuckCounterIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := openDB(t, filepath.Join(t.TempDir(), "agent.db"))
		idle := &stuckIdle{d: 5*time.Minute - time.Millisecond}
		a, err := New(Deps{DB: db, Idle: idle}, Config{Tick: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			a.Run(ctx)
		}()
		const span = 10 * time.Minute
		time.Sleep(span)
		synctest.Wait()
		reads := idle.count()
		cancel()
		<-done
		// One read per Tick (1 s here), plus the beats' reads.
		perSec := float64(reads) / span.Seconds()
		if perSec > 1.1 {
			t.Fatalf("%d reads in %v: %.2f a second", reads, span, perSec)
		}
		t.Logf("%d reads in %v: %.2f a second", reads, span, perSec)
		if st := a.Status(); st.State != presence.Offline {
			t.Fatalf("after quit: %s", st.State)
		}
	})
}
