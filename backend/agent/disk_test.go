package agent

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lastseen/lastseen/backend/agentdb"
	"github.com/lastseen/lastseen/backend/presence"
)

var errDiskFull = errors.New("database or disk is full")

// newBrokenDiskRig is a rig whose database fails every write while broken
// is set, as a full disk or a read-only file system does.
func newBrokenDiskRig(t *testing.T) (r *rig, broken *atomic.Bool, dbLogs *logBuffer) {
	t.Helper()
	broken, dbLogs = &atomic.Bool{}, &logBuffer{}
	path := filepath.Join(t.TempDir(), "agent.db")
	db, err := agentdb.Open(path, agentdb.Options{Logger: slog.New(slog.NewTextHandler(dbLogs, nil)), FailWrites: func() error {
		if broken.Load() {
			return errDiskFull
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return buildRigOn(t, Config{}, path, db, false), broken, dbLogs
}

// TestBrokenDiskKeepsBeatingFromMemory: with the agent's database unable to
// take writes, the agent beats on into memory, sends from there, says so
// in its status and diagnostics, and writes everything to the database at
// the first beat after the disk is back. Before, every beat of the outage
// was lost and nothing was sent.
func TestBrokenDiskKeepsBeatingFromMemory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, broken, dbLogs := newBrokenDiskRig(t)
		svc := &fakeService{}
		r.setUploader(svc, "svc")
		r.start()
		r.advance(2 * time.Minute)
		before := len(svc.got())

		broken.Store(true)
		r.idle.touch()
		r.advance(2 * time.Minute)
		r.send(OSEvent{Kind: Locked})
		got := svc.got()
		if len(got) <= before || got[len(got)-1].State != presence.Away {
			t.Fatalf("service got %d beats during the outage (%d before), last %v: the agent stopped beating",
				len(got)-before, before, states(got[before:]))
		}
		st := r.a.Status()
		if !strings.Contains(st.StoreError, "cannot write the agent database") || !strings.Contains(st.StoreError, errDiskFull.Error()) {
			t.Fatalf("status store error %q", st.StoreError)
		}

		// The service goes away too: beats pile up in memory.
		svc.mu.Lock()
		svc.fail = func(int, presence.Batch) error { return errNetwork }
		svc.mu.Unlock()
		r.send(OSEvent{Kind: Unlocked})
		r.advance(3 * time.Minute)
		d, err := r.a.Diagnostics(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if d.Held < 2 || d.OutboxDepth != int64(d.Held) || d.StoreError == "" || d.StoreErrorSince.IsZero() {
			t.Fatalf("diagnostics during the outage: held %d depth %d store error %q since %v",
				d.Held, d.OutboxDepth, d.StoreError, d.StoreErrorSince)
		}
		held := d.Held

		// The service comes back: memory drains into it.
		svc.mu.Lock()
		svc.fail = nil
		svc.mu.Unlock()
		r.a.SetUploader(context.Background(), svc, "svc") // ends the backoff
		synctest.Wait()
		if d := r.db.Depth(); d != 0 {
			t.Fatalf("%d beats still queued with the service back", d)
		}
		// The disk comes back: the next beat writes everything.
		broken.Store(false)
		r.idle.touch()
		r.advance(time.Minute)
		if st := r.a.Status(); st.StoreError != "" {
			t.Fatalf("store error after the disk came back: %q", st.StoreError)
		}
		if tr := r.db.Trouble(); tr.Err != "" {
			t.Fatalf("database trouble %+v", tr)
		}
		got = svc.got()
		for i := 1; i < len(got); i++ {
			if got[i].Seq != got[i-1].Seq+1 {
				t.Fatalf("seq %d after %d: a beat went missing", got[i].Seq, got[i-1].Seq)
			}
		}
		if len(got) < before+held+3 {
			t.Fatalf("service got %d beats", len(got))
		}
		if r.db.LastSeq() != got[len(got)-1].Seq {
			t.Fatalf("agent last seq %d, service %d", r.db.LastSeq(), got[len(got)-1].Seq)
		}
		// Local history has the outage: the away span of the lock.
		var away bool
		for _, sp := range r.history() {
			away = away || sp.State == presence.Away
		}
		if !away {
			t.Fatalf("history %+v lacks the away span written during the outage", r.history())
		}
		if n, m := dbLogs.count("keeping beats in memory"), dbLogs.count("writable again"); n != 1 || m != 1 {
			t.Fatalf("trouble logged %d times, recovery %d times", n, m)
		}
	})
}

// TestUnwritableBeatDoesNotSpin: a beat the database refuses for good (not
// disk trouble, which it holds in memory: here the seq is exhausted) is
// retried a tick later, not at once. Before, a due beat that could not be
// written was due again at once and the loop spun at full speed.
func TestUnwritableBeatDoesNotSpin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{}, "")
		r.start()
		r.advance(time.Minute) // beats flow; the next is due in about 30 s
		// The queue renumbered to end at the last seq there is.
		if _, err := r.db.Resync(context.Background(), presence.MaxSeq-r.db.Depth()); err != nil {
			t.Fatal(err)
		}
		r.idle.touch()
		reads := r.idle.readCount()
		r.advance(5 * time.Minute)
		cfg := r.a.Config()
		if n, most := r.idle.readCount()-reads, int(5*time.Minute/cfg.Tick)+5; n > most {
			t.Fatalf("%d idle reads in 5 minutes, want at most %d (one a tick)", n, most)
		}
		if st := r.a.Status(); !strings.Contains(st.StoreError, "exhausted") {
			t.Fatalf("store error %q", st.StoreError)
		}
	})
}
