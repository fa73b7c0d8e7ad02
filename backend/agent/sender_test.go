package agent

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

func TestSenderDeliversInOrderWithProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{BatchSize: 10}, "")
		facts := &presence.Facts{Hostname: "desk", OS: "linux"}
		r.a.s.facts = facts
		r.start()
		// An hour offline from any service: beats queue up.
		for range 60 {
			r.idle.touch()
			r.advance(time.Minute)
		}
		r.send(OSEvent{Kind: Locked})
		queued := r.outbox()
		svc := &fakeService{}
		r.setUploader(svc, "svc-1")
		if d := r.db.Depth(); d != 0 {
			t.Fatalf("outbox still holds %d beats", d)
		}
		if got := svc.got(); !reflect.DeepEqual(got, queued) {
			t.Fatalf("service got %d beats, want the %d queued in order", len(got), len(queued))
		}
		calls := svc.callList()
		if len(calls[0].batch.Beats) != 1 {
			t.Fatalf("first exchange sent %d beats, want a one-beat probe", len(calls[0].batch.Beats))
		}
		for i, c := range calls {
			if len(c.batch.Beats) > 10 {
				t.Fatalf("batch %d has %d beats (limit 10)", i, len(c.batch.Beats))
			}
			if (c.batch.Facts != nil) != (i == 0) {
				t.Fatalf("batch %d facts %v", i, c.batch.Facts)
			}
			if !c.batch.SentAt.Equal(c.at) {
				t.Fatalf("sent_at %v, sent at %v", c.batch.SentAt, c.at)
			}
		}
		st := r.a.Status()
		if !st.Connected || !st.Reachable || !st.LastSync.Equal(time.Now()) || st.SyncError != "" {
			t.Fatalf("status %+v", st)
		}
		// From now on each beat goes out as it is made, no probe again.
		r.send(OSEvent{Kind: Unlocked})
		if got := svc.got(); got[len(got)-1].State != presence.Active || r.db.Depth() != 0 {
			t.Fatalf("unlock beat not delivered at once: depth %d", r.db.Depth())
		}
		n := len(svc.callList())
		r.setUploader(svc, "svc-1") // same target: no probe
		r.idle.touch()
		r.advance(34 * time.Second)
		if c := svc.callList(); len(c) != n+1 {
			t.Fatalf("%d calls after one more beat", len(c)-n)
		}
	})
}

func TestBackoffGrowsAndHonoursRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{}, "")
		r.a.s.rand = func() float64 { return 0.999999 } // the top of each jitter range
		const netFailures = 11
		svc := &fakeService{fail: func(n int, b presence.Batch) error {
			switch {
			case n < netFailures:
				return errNetwork
			case n == netFailures:
				return errCode(presence.ERATELIMIT, 10*time.Minute)
			}
			return nil
		}}
		r.setUploader(svc, "svc")
		r.start()
		r.advance(time.Second)
		if st := r.a.Status(); st.Reachable || !strings.Contains(st.SyncError, "connection refused") {
			t.Fatalf("status after a network failure: %+v", st)
		}
		for i := 0; i < 40 && len(svc.callList()) < netFailures+2; i++ {
			r.idle.touch()
			r.advance(time.Minute)
		}
		calls := svc.callList()
		if len(calls) < netFailures+2 {
			t.Fatalf("only %d attempts", len(calls))
		}
		want := []time.Duration{1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300}
		for i, w := range want {
			gap := calls[i+1].at.Sub(calls[i].at)
			if gap < w*time.Second-10*time.Millisecond || gap > w*time.Second {
				t.Fatalf("wait after failure %d = %v, want ≈ %v s", i+1, gap, w)
			}
		}
		// 429 with Retry-After: 10 min, although the backoff alone says ≤ 5 min.
		if gap := calls[netFailures+1].at.Sub(calls[netFailures].at); gap < 10*time.Minute {
			t.Fatalf("retried %v after a 429 asking for 10 min", gap)
		}
		if d := r.db.Depth(); d != 0 {
			t.Fatalf("after recovery %d beats still queued", d)
		}
	})
}

func TestBackoffJitterStaysInRange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{}, "")
		svc := &fakeService{fail: func(int, presence.Batch) error { return errNetwork }}
		r.setUploader(svc, "svc")
		r.start()
		r.advance(30 * time.Minute)
		calls := svc.callList()
		if len(calls) < 10 {
			t.Fatalf("%d attempts in 30 min", len(calls))
		}
		distinct := map[time.Duration]bool{}
		for i := 1; i < len(calls); i++ {
			gap := calls[i].at.Sub(calls[i-1].at)
			ceil := min(time.Second<<(i-1), 5*time.Minute)
			if gap < time.Second || gap > ceil {
				t.Fatalf("wait %d = %v, want within 1 s..%v", i, gap, ceil)
			}
			distinct[gap] = true
		}
		if len(distinct) < len(calls)/2 {
			t.Fatalf("waits look unjittered: %v", distinct)
		}
		if f := r.a.s.status().failures; f != len(calls) {
			t.Fatalf("failures %d, attempts %d", f, len(calls))
		}
	})
}

func TestUnauthorizedStopsUntilTokenChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{}, "")
		revoked := &fakeService{fail: func(int, presence.Batch) error { return errCode(presence.EUNAUTHORIZED, 0) }}
		r.setUploader(revoked, "old-token")
		r.start()
		r.advance(10 * time.Minute)
		if n := len(revoked.callList()); n != 1 {
			t.Fatalf("%d attempts with a revoked token, want 1", n)
		}
		st := r.a.Status()
		if !st.Revoked || st.SyncError != RevokedMessage {
			t.Fatalf("status %+v", st)
		}
		if d, _ := r.a.Diagnostics(context.Background()); !d.Revoked || d.LastError != RevokedMessage || d.OutboxDepth < 20 {
			t.Fatalf("diagnostics %+v", d)
		}
		if n := r.logs.count("sending stopped"); n != 1 {
			t.Fatalf("stop logged %d times", n)
		}
		fresh := &fakeService{}
		r.setUploader(fresh, "new-token")
		if r.db.Depth() != 0 || len(fresh.got()) < 20 {
			t.Fatalf("new token: depth %d, delivered %d", r.db.Depth(), len(fresh.got()))
		}
		if st := r.a.Status(); st.Revoked || st.SyncError != "" {
			t.Fatalf("status after new token %+v", st)
		}
	})
}

func TestRejectedBeatsAreQuarantinedAndDoNotBlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{}, "")
		svc := &fakeService{reject: func(b presence.Beat) string {
			if b.State == presence.Idle {
				return "idle beats refused here"
			}
			return ""
		}}
		r.setUploader(svc, "svc")
		r.start()
		r.advance(6 * time.Minute) // active, then idle at 5 min
		r.idle.touch()
		r.advance(time.Minute)
		if d := r.db.Depth(); d != 0 {
			t.Fatalf("%d beats stuck behind rejections", d)
		}
		got := dedupe(states(svc.got()))
		if !reflect.DeepEqual(got, []presence.State{presence.Active}) {
			t.Fatalf("service got %v", got)
		}
		if got := svc.got(); got[len(got)-1].At.Before(time.Now().Add(-time.Minute)) {
			t.Fatal("beats after the rejected ones were not delivered")
		}
		d, err := r.a.Diagnostics(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if d.QuarantineCount == 0 || int64(len(d.Quarantine)) != d.QuarantineCount {
			t.Fatalf("quarantine %d listed of %d", len(d.Quarantine), d.QuarantineCount)
		}
		for _, q := range d.Quarantine {
			if q.Beat.State != presence.Idle || q.Error != "idle beats refused here" || q.QuarantinedAt.IsZero() {
				t.Fatalf("quarantined %+v", q)
			}
		}
	})
}

func TestRecoveredLoggedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{}, "")
		svc := &fakeService{fail: func(n int, b presence.Batch) error {
			if n < 3 {
				return errNetwork
			}
			return nil
		}}
		r.setUploader(svc, "svc")
		r.start()
		r.advance(10 * time.Minute)
		if n := r.logs.count("recovered after failures"); n != 1 {
			t.Fatalf("recovery logged %d times:\n%s", n, r.logs)
		}
		if !strings.Contains(r.logs.String(), "failures=3") {
			t.Fatalf("recovery line lacks the count:\n%s", r.logs)
		}
		if n := r.logs.count("sending failed; will retry"); n != 1 {
			t.Fatalf("first failure logged %d times", n)
		}
	})
}

func TestFinalBeatOnQuitServiceDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{}, "")
		svc := &fakeService{fail: func(int, presence.Batch) error { return errNetwork }}
		r.setUploader(svc, "svc")
		r.start()
		r.advance(10 * time.Minute)
		t0 := time.Now()
		r.stop()
		if took := time.Since(t0); took > 2*time.Second {
			t.Fatalf("quit took %v", took)
		}
		bs := r.outbox()
		if last := bs[len(bs)-1]; last.State != presence.Offline || !last.At.Equal(t0) {
			t.Fatalf("final beat %+v, want offline at %v", last, t0)
		}
		// The flush made one extra attempt despite the long backoff.
		calls := svc.callList()
		if last := calls[len(calls)-1]; !last.at.Equal(t0) {
			t.Fatalf("no attempt at quit: last at %v", last.at)
		}
		h := r.history()
		if !h[len(h)-1].Closed {
			t.Fatal("local history left open at quit")
		}
	})
}

func TestFinalBeatWrittenBeforeSend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{}, "")
		var sawQueued bool
		svc := &fakeService{}
		svc.setHook(func(b presence.Batch) {
			last := b.Beats[len(b.Beats)-1]
			if last.State != presence.Offline {
				return
			}
			// When the final beat is being sent it is already committed.
			bs, _ := r.db.Outbox(context.Background(), 1<<20)
			sawQueued = len(bs) > 0 && bs[len(bs)-1].Seq == last.Seq
		})
		r.setUploader(svc, "svc")
		r.start()
		r.advance(time.Minute)
		r.stop()
		if !sawQueued {
			t.Fatal("final beat was not in the outbox when sent")
		}
		got := svc.got()
		if got[len(got)-1].State != presence.Offline || r.db.Depth() != 0 {
			t.Fatalf("final beat not delivered: %v, depth %d", states(got), r.db.Depth())
		}
	})
}

func TestSleepSendsFinalBeatBeforeDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{}, "")
		svc := &fakeService{}
		r.setUploader(svc, "svc")
		r.start()
		r.advance(time.Minute)
		var delivered bool
		done := make(chan struct{})
		r.events <- OSEvent{Kind: Sleeping, Done: func() {
			got := svc.got()
			delivered = got[len(got)-1].State == presence.Offline
			close(done)
		}}
		<-done
		if !delivered {
			t.Fatal("Done called before the final beat was delivered")
		}

		// A hanging service: Done still comes, at the deadline.
		r.idle.touch()
		r.send(OSEvent{Kind: Woke})
		release := make(chan struct{})
		defer close(release)
		svc.setHook(func(presence.Batch) { <-release })
		r.advance(time.Minute) // the sender is now stuck in a request
		t0 := time.Now()
		done2 := make(chan struct{})
		r.events <- OSEvent{Kind: LoggingOut, Done: func() { close(done2) }}
		<-done2
		if took := time.Since(t0); took != 2*time.Second {
			t.Fatalf("Done after %v, want the 2 s deadline", took)
		}
		bs := r.outbox()
		if bs[len(bs)-1].State != presence.Offline {
			t.Fatalf("logout beat not queued: %v", states(bs))
		}
	})
}

func TestWipedStoreResyncsSeq(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The service knew this device up to seq 1000 from a previous install.
		svc := &fakeService{lastSeq: 1000}
		r := newRig(t, Config{}, "")
		r.start()
		r.advance(10 * time.Minute)
		r.send(OSEvent{Kind: Locked})
		queued := r.outbox()
		r.setUploader(svc, "svc")
		got := svc.got()
		if len(got) != len(queued) || r.db.Depth() != 0 {
			t.Fatalf("delivered %d of %d (depth %d)", len(got), len(queued), r.db.Depth())
		}
		for i, b := range got {
			if b.Seq <= 1000 || !b.At.Equal(queued[i].At) || b.State != queued[i].State {
				t.Fatalf("beat %d delivered as %+v, queued %+v", i, b, queued[i])
			}
		}
		if n := r.logs.count("renumbered the queue"); n != 1 {
			t.Fatalf("resync logged %d times", n)
		}
		// New beats number on from there.
		r.send(OSEvent{Kind: Unlocked})
		if last := svc.got()[len(svc.got())-1]; last.Seq != got[len(got)-1].Seq+1 {
			t.Fatalf("next seq %d after %d", last.Seq, got[len(got)-1].Seq)
		}
	})
}

func TestReusedTokenBelowOurCounterResyncs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The service holds seq 5 for this device (another install used the
		// token briefly); our counter is far past it, but our oldest queued
		// beats are not.
		svc := &fakeService{lastSeq: 5}
		r := newRig(t, Config{}, "")
		r.start()
		r.advance(10 * time.Minute)
		queued := r.outbox()
		if queued[0].Seq != 1 || len(queued) < 10 {
			t.Fatalf("queued %v", queued)
		}
		r.setUploader(svc, "svc")
		if got := svc.got(); len(got) != len(queued) {
			t.Fatalf("delivered %d of %d: some were swallowed as duplicates", len(got), len(queued))
		}
	})
}

func TestTooLargeHalvesTheBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{}, "")
		r.start()
		for range 60 {
			r.idle.touch()
			r.advance(time.Minute)
		}
		queued := len(r.outbox())
		svc := &fakeService{fail: func(n int, b presence.Batch) error {
			if len(b.Beats) > 40 {
				return errCode(presence.ETOOLARGE, 0)
			}
			return nil
		}}
		r.setUploader(svc, "svc")
		d, _ := r.a.Diagnostics(context.Background())
		if len(svc.got()) != queued || d.QuarantineCount != 0 || d.OutboxDepth != 0 {
			t.Fatalf("delivered %d of %d, quarantined %d", len(svc.got()), queued, d.QuarantineCount)
		}
		if d.Failures != 0 {
			t.Fatalf("halving counted as failures: %d", d.Failures)
		}
	})
}

func TestNewUploaderEndsBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{}, "")
		down := &fakeService{fail: func(int, presence.Batch) error { return errNetwork }}
		r.setUploader(down, "a")
		r.start()
		r.advance(20 * time.Minute) // deep in backoff
		if d := r.a.s.status(); d.nextRetry.Sub(time.Now()) < 10*time.Second && d.failures < 5 {
			t.Fatalf("not backing off: %+v", d)
		}
		up := &fakeService{}
		r.setUploader(up, "b")
		if r.db.Depth() != 0 {
			t.Fatalf("switching service left %d queued", r.db.Depth())
		}
	})
}

func TestNoUploaderQueuesEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{}, "")
		r.start()
		r.advance(time.Hour)
		st := r.a.Status()
		if st.Connected || st.SyncError != "" || r.db.Depth() < 100 {
			t.Fatalf("status %+v depth %d", st, r.db.Depth())
		}
		r.stop() // quits at once: nothing to flush to
	})
}

// Switching services at run time: the new one hears the current state at
// once, not an interval later; an invisible agent tells the new one nothing.
func TestSwitchingServiceBeatsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{}, "")
		first, second, third := &fakeService{}, &fakeService{}, &fakeService{}
		r.setUploader(first, "first")
		r.start()
		r.advance(time.Second)
		if len(first.got()) != 1 {
			t.Fatalf("first service got %d beats at start, want 1", len(first.got()))
		}
		r.setUploader(second, "second")
		r.advance(time.Second) // far less than the 30 s interval
		if got := states(second.got()); len(got) != 1 || got[0] != presence.Active {
			t.Fatalf("second service got %v within a second of the switch, want [active]", got)
		}
		if err := r.a.SetMode(context.Background(), Invisible, time.Time{}); err != nil {
			t.Fatal(err)
		}
		r.advance(time.Second)
		r.setUploader(third, "third")
		r.advance(time.Second)
		if got := third.got(); len(got) != 0 {
			t.Fatalf("an invisible agent told the new service %v", states(got))
		}
	})
}
