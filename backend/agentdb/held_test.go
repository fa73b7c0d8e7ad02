package agentdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/lastseen/lastseen/backend/presence"
)

var heldT0 = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

func openHeld(t *testing.T, path string, opts Options) *DB {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return heldT0 }
	}
	db, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// readOnly makes the database's one connection refuse writes as a file on
// a read-only file system does (SQLite answers SQLITE_READONLY), or lifts it.
func readOnly(t *testing.T, db *DB, on bool) {
	t.Helper()
	v := "0"
	if on {
		v = "1"
	}
	if _, err := db.db.Exec(`PRAGMA query_only = ` + v); err != nil {
		t.Fatal(err)
	}
}

func record(t *testing.T, db *DB, i int, s presence.State) presence.Beat {
	t.Helper()
	b, err := db.Record(context.Background(), Entry{At: heldT0.Add(time.Duration(i) * 30 * time.Second), Local: s, Send: s})
	if err != nil {
		t.Fatalf("Record %d: %v", i, err)
	}
	return b
}

func allQueued(t *testing.T, db *DB) []presence.Beat {
	t.Helper()
	bs, err := db.Outbox(context.Background(), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

func seqsOf(bs []presence.Beat) []int64 {
	out := make([]int64, len(bs))
	for i, b := range bs {
		out[i] = b.Seq
	}
	return out
}

func spansOf(t *testing.T, db *DB) []presence.Span {
	t.Helper()
	sp, err := db.History(context.Background(), heldT0.Add(-time.Hour), heldT0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// script is what the agent does to its database across a stretch of disk
// trouble: beats, a send, an answer that acknowledges some beats and
// quarantines others. broken says when the file refuses writes.
func script(t *testing.T, db *DB, broken func(on bool)) {
	t.Helper()
	ctx := context.Background()
	states := []presence.State{presence.Active, presence.Active, presence.Idle, presence.Idle, presence.Away,
		presence.Away, presence.Active, presence.Active, presence.Idle, presence.Offline}
	for i, s := range states[:3] {
		record(t, db, i, s)
	}
	if _, err := db.SetTarget(ctx, "svc"); err != nil {
		t.Fatal(err)
	}
	broken(true)
	for i, s := range states[3:8] {
		record(t, db, 3+i, s)
	}
	if _, err := db.SetTarget(ctx, "svc-2"); err != nil {
		t.Fatal(err)
	}
	if err := db.MarkSent(ctx, 6); err != nil {
		t.Fatalf("MarkSent on a broken disk: %v", err)
	}
	// The service took 1–6 but refused 2 (on disk) and 5 (in memory).
	q := func(seq int64) Quarantined {
		return Quarantined{Beat: presence.Beat{Seq: seq, At: heldT0, State: presence.Active}, Error: "refused", QuarantinedAt: heldT0}
	}
	if _, err := db.Settle(ctx, Settlement{Through: 6, Quarantine: []Quarantined{q(2), q(5)}, SyncedAt: heldT0.Add(time.Hour)}); err != nil {
		t.Fatalf("Settle on a broken disk: %v", err)
	}
	record(t, db, 8, states[8])
	broken(false)
	record(t, db, 9, states[9]) // the disk is back: this write takes everything
}

// TestReadOnlyDiskHoldsEverythingInMemory: while the file refuses writes
// (SQLite's own error, as on a read-only file system) every beat is still
// handed a seq, queued and sendable, settlements apply, and the first
// write after the disk comes back leaves the file exactly as if nothing
// had happened.
func TestReadOnlyDiskHoldsEverythingInMemory(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	control := openHeld(t, filepath.Join(dir, "control.db"), Options{})
	script(t, control, func(bool) {})

	path := filepath.Join(dir, "agent.db")
	db := openHeld(t, path, Options{})
	var during []presence.Beat
	var trouble Trouble
	script(t, db, func(on bool) {
		if !on {
			// Just before the disk comes back: what the sender sees.
			during, trouble = allQueued(t, db), db.Trouble()
		}
		readOnly(t, db, on)
	})
	if !strings.Contains(trouble.Err, "readonly") || trouble.Held != 3 || trouble.Since.IsZero() {
		t.Fatalf("trouble during the outage %+v, want a read-only error and 3 beats held (7, 8, 9)", trouble)
	}
	if got := seqsOf(during); !reflect.DeepEqual(got, []int64{7, 8, 9}) {
		t.Fatalf("outbox during the outage %v, want 7 8 9 (1–6 settled)", got)
	}
	if tr := db.Trouble(); tr.Err != "" || tr.Held != 0 {
		t.Fatalf("trouble after the disk came back: %+v", tr)
	}
	if s, _ := db.SentSeq(ctx); s != 6 {
		t.Fatalf("SentSeq %d, want 6 (reset by the new target, then marked)", s)
	}

	// The file, read afresh, is the control's.
	db.Close()
	db = openHeld(t, path, Options{})
	if got, want := allQueued(t, db), allQueued(t, control); !reflect.DeepEqual(got, want) {
		t.Fatalf("outbox %v, want %v", seqsOf(got), seqsOf(want))
	}
	if got, want := spansOf(t, db), spansOf(t, control); !reflect.DeepEqual(got, want) {
		t.Fatalf("history %+v\nwant %+v", got, want)
	}
	gs, _ := db.Stats(ctx)
	ws, _ := control.Stats(ctx)
	if gs != ws {
		t.Fatalf("stats %+v, want %+v", gs, ws)
	}
	gq, _ := db.Quarantined(ctx, 10)
	wq, _ := control.Quarantined(ctx, 10)
	if !reflect.DeepEqual(gq, wq) || len(gq) != 2 {
		t.Fatalf("quarantine %+v, want %+v", gq, wq)
	}
	if changed, _ := db.SetTarget(ctx, "svc-2"); changed {
		t.Fatal("the target set during the outage was not written")
	}
}

// TestFullDiskHoldsBeats: SQLite's "database or disk is full" is held like
// any disk trouble, and the seqs stay one run without a gap.
func TestFullDiskHoldsBeats(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.db")
	db := openHeld(t, path, Options{})
	var pages int64
	if err := db.db.QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := db.db.Exec(fmt.Sprintf(`PRAGMA max_page_count = %d`, pages)); err != nil {
		t.Fatal(err)
	}
	n := 0
	for ; db.Trouble().Err == "" && n < 10_000; n++ {
		record(t, db, n, []presence.State{presence.Active, presence.Idle}[n%2])
	}
	tr := db.Trouble()
	if !strings.Contains(tr.Err, "full") || tr.Held != 1 {
		t.Fatalf("after %d beats: trouble %+v, want the disk full and the last beat held", n, tr)
	}
	for i := range 5 {
		record(t, db, n+i, presence.Away)
	}
	if _, err := db.db.Exec(`PRAGMA max_page_count = 1000000`); err != nil {
		t.Fatal(err)
	}
	record(t, db, n+5, presence.Offline)
	db.Close()
	db = openHeld(t, path, Options{})
	got := seqsOf(allQueued(t, db))
	if len(got) != n+6 {
		t.Fatalf("%d beats in the file, want %d", len(got), n+6)
	}
	for i, s := range got {
		if s != int64(i+1) {
			t.Fatalf("seq %d at %d: %v", s, i, got)
		}
	}
}

// TestHeldMemoryIsBounded: beyond MaxHeld the oldest held beats leave,
// counted.
func TestHeldMemoryIsBounded(t *testing.T) {
	db := openHeld(t, filepath.Join(t.TempDir(), "agent.db"), Options{MaxHeld: 3})
	readOnly(t, db, true)
	for i := range 5 {
		record(t, db, i, []presence.State{presence.Active, presence.Idle}[i%2])
	}
	if tr := db.Trouble(); tr.Held != 3 || tr.Dropped != 2 {
		t.Fatalf("trouble %+v, want 3 held and 2 dropped", tr)
	}
	if got := seqsOf(allQueued(t, db)); !reflect.DeepEqual(got, []int64{3, 4, 5}) || db.Depth() != 3 {
		t.Fatalf("outbox %v depth %d", got, db.Depth())
	}
	readOnly(t, db, false)
	record(t, db, 5, presence.Away)
	st, err := db.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Dropped != 2 || st.OutboxDepth != 4 || st.LastSeq != 6 {
		t.Fatalf("stats %+v", st)
	}
}

// TestInjectedWriteFailures: Options.FailWrites fails writes the way the
// disk does, reads keep working, and lifting it writes what was held.
func TestInjectedWriteFailures(t *testing.T) {
	broken := false
	db := openHeld(t, filepath.Join(t.TempDir(), "agent.db"), Options{FailWrites: func() error {
		if broken {
			return errors.New("no space left on device")
		}
		return nil
	}})
	record(t, db, 0, presence.Active)
	broken = true
	record(t, db, 1, presence.Idle)
	if tr := db.Trouble(); tr.Err != "no space left on device" || tr.Held != 1 {
		t.Fatalf("trouble %+v", tr)
	}
	// A setting is the user's to retry: it fails rather than being held.
	if err := db.SetStartAtLogin(context.Background(), false); err == nil {
		t.Fatal("a setting written on a broken disk reported success")
	}
	broken = false
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if tr := db.Trouble(); tr.Err != "" || db.Depth() != 2 {
		t.Fatalf("after Flush: trouble %+v, depth %d", tr, db.Depth())
	}
}

// TestResyncNeedsTheFile: a resync renumbers the file and is not held; the
// sender retries it.
func TestResyncNeedsTheFile(t *testing.T) {
	db := openHeld(t, filepath.Join(t.TempDir(), "agent.db"), Options{})
	record(t, db, 0, presence.Active)
	readOnly(t, db, true)
	if _, err := db.Resync(context.Background(), 100); err == nil {
		t.Fatal("a resync on a read-only disk reported success")
	}
	readOnly(t, db, false)
	if got := seqsOf(allQueued(t, db)); !reflect.DeepEqual(got, []int64{1}) {
		t.Fatalf("outbox %v", got)
	}
}

func TestDiskTroubleKinds(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{sqlite3.Error{Code: sqlite3.ErrFull}, true},
		{sqlite3.Error{Code: sqlite3.ErrReadonly}, true},
		{sqlite3.Error{Code: sqlite3.ErrIoErr}, true},
		{sqlite3.Error{Code: sqlite3.ErrBusy}, true},
		{sqlite3.Error{Code: sqlite3.ErrConstraint}, false},
		{sqlite3.Error{Code: sqlite3.ErrCorrupt}, false},
		{errSeqExhausted, false},
		{sql.ErrNoRows, false},
		{troubleError{errors.New("injected")}, true},
	} {
		if got := diskTrouble(tc.err); got != tc.want {
			t.Errorf("diskTrouble(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestSeqNeverPassesMaxSeq: the database hands out no seq above
// presence.MaxSeq, and a resync never wraps past it.
func TestSeqNeverPassesMaxSeq(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agent.db")
	db := openHeld(t, path, Options{})
	record(t, db, 0, presence.Active)
	record(t, db, 1, presence.Idle)
	for _, serviceSeq := range []int64{presence.MaxSeq - 1, presence.MaxSeq, 1<<63 - 1} {
		if _, err := db.Resync(ctx, serviceSeq); err == nil {
			t.Fatalf("resync above %d with 2 beats queued succeeded", serviceSeq)
		}
		if got := seqsOf(allQueued(t, db)); !reflect.DeepEqual(got, []int64{1, 2}) || db.LastSeq() != 2 {
			t.Fatalf("after refused resync above %d: outbox %v, last seq %d", serviceSeq, got, db.LastSeq())
		}
	}
	if _, err := db.Resync(ctx, presence.MaxSeq-2); err != nil {
		t.Fatalf("resync to the very top: %v", err)
	}
	if got := seqsOf(allQueued(t, db)); !reflect.DeepEqual(got, []int64{presence.MaxSeq - 1, presence.MaxSeq}) {
		t.Fatalf("outbox %v", got)
	}
	if _, err := db.Record(ctx, Entry{At: heldT0.Add(time.Hour), Send: presence.Active}); err == nil || !strings.Contains(err.Error(), "exhausted") {
		t.Fatalf("a beat past MaxSeq: %v", err)
	}
	// Also when the file cannot be written.
	readOnly(t, db, true)
	if _, err := db.Record(ctx, Entry{At: heldT0.Add(time.Hour), Send: presence.Active}); err == nil {
		t.Fatal("a held beat past MaxSeq was handed a seq")
	}
}
