package sqlite

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/groupcommit"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/sqlitedb"
	"github.com/lastseen/lastseen/backend/storetest"
)

// The writer fsyncs every group commit unless told otherwise: PRAGMA
// synchronous reads 2 (FULL) by default and 1 (NORMAL) when asked.
func TestSynchronousFollowsConfig(t *testing.T) {
	for _, tt := range []struct {
		sync string
		want int
	}{{"", 2}, {sqlitedb.SyncFull, 2}, {"normal", 1}} {
		t.Run(fmt.Sprintf("%q", tt.sync), func(t *testing.T) {
			s, err := OpenWith(tempDB(t), presence.Options{}, Config{Synchronous: tt.sync})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var got int
			if err := s.db.QueryRow(`PRAGMA synchronous`).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("PRAGMA synchronous = %d, want %d", got, tt.want)
			}
		})
	}
	if _, err := OpenWith(tempDB(t), presence.Options{}, Config{Synchronous: "sometimes"}); err == nil {
		t.Error("an unknown synchronous level was accepted")
	}
}

// With the writer stuck (another connection holds the write lock), beats
// pile up to MaxWaiting and then Ingest answers EUNAVAILABLE with a retry
// hint at once; what was admitted commits once the lock is gone.
func TestIngestRefusesPastMaxWaiting(t *testing.T) {
	path := tempDB(t)
	clock := storetest.NewClock(t0)
	s, err := OpenWith(path, presence.Options{Now: clock.Now}, Config{MaxWaiting: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	u, _, err := s.CreateUser(ctx, "ann", "Ann")
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := s.CreateDevice(ctx, u.ID, "desk")
	if err != nil {
		t.Fatal(err)
	}
	other, err := openDB(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.BeginTx(ctx, nil) // BEGIN IMMEDIATE: holds the write lock
	if err != nil {
		t.Fatal(err)
	}

	// Send beats one after another until one is refused. The first is
	// taken into a group that waits for the lock; one more may wait behind
	// it (a request alone is admitted whatever its weight); the next must
	// be refused. Each admitted one is left running.
	admitted := make(chan error, 200)
	var refused error
	for seq := int64(1); seq <= 200 && refused == nil; seq++ {
		res := make(chan error, 1)
		go func() {
			_, err := s.Ingest(ctx, d.ID, []presence.Beat{active(seq, 0)}, nil)
			res <- err
		}()
		select {
		case err := <-res:
			if err == nil {
				t.Fatalf("beat %d committed while another connection holds the write lock", seq)
			}
			refused = err
		case <-time.After(5 * time.Millisecond): // still waiting: admitted
			go func() { admitted <- <-res }()
		}
	}
	if refused == nil {
		t.Fatal("no beat was refused with the writer stuck")
	}
	var ra presence.RetryAfterer
	if presence.ErrorCode(refused) != presence.EUNAVAILABLE || !errors.As(refused, &ra) || ra.RetryAfter() <= 0 || !errors.Is(refused, groupcommit.ErrFull) {
		t.Fatalf("refusal = %v, want EUNAVAILABLE with a retry hint", refused)
	}
	if msg := presence.ErrorMessage(refused); msg == "" || msg == "internal error" {
		t.Errorf("message %q says nothing to the caller", msg)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	for range len(admitted) {
		if err := <-admitted; err != nil {
			t.Errorf("an admitted beat failed: %v", err)
		}
	}
}

func TestWriteError(t *testing.T) {
	if got := presence.ErrorCode(writeError(1, groupcommit.ErrClosed)); got != presence.EUNAVAILABLE {
		t.Errorf("closed writer: code %q", got)
	}
	full := writeError(1, &groupcommit.FullError{Waiting: 9, Max: 9, Wait: 1500 * time.Millisecond})
	var ra presence.RetryAfterer
	if presence.ErrorCode(full) != presence.EUNAVAILABLE || !errors.As(full, &ra) || ra.RetryAfter() != 1500*time.Millisecond {
		t.Errorf("full writer: %v", full)
	}
	if got := presence.ErrorCode(writeError(1, errors.New("disk I/O error"))); got != presence.EINTERNAL {
		t.Errorf("other failure: code %q, want internal", got)
	}
}

// A write the disk refuses (here: a read-only database, as a full or
// read-only file system answers) is the service's trouble, not the
// request's: 503, so the agent keeps its beats and retries, never a 500.
func TestDiskTroubleIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ro.db")
	db, err := sqlitedb.Open(path, sqlitedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE t (v); PRAGMA query_only = 1`); err != nil {
		t.Fatal(err)
	}
	_, werr := db.Exec(`INSERT INTO t VALUES (1)`)
	if werr == nil {
		t.Fatal("a write on a read-only connection succeeded")
	}
	err = writeError(7, werr)
	if code := presence.ErrorCode(err); code != presence.EUNAVAILABLE {
		t.Errorf("disk trouble %v → code %q, want unavailable (503)", werr, code)
	}
	if code := presence.ErrorCode(writeError(7, errors.New("constraint failed"))); code != presence.EINTERNAL {
		t.Errorf("another failure → code %q, want internal", code)
	}
}
