package sqlite

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/sqlitedb"
)

// A backup taken while another goroutine ingests holds every beat that was
// acknowledged before it started, and a restore into a fresh path opens.
func TestBackupWhileIngestingThenRestore(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "live.db")
	s := openT(t, live, presence.Options{Now: func() time.Time { return t0.Add(24 * time.Hour) }})
	ctx := t.Context()
	u, _, err := s.CreateUser(ctx, "ada", "Ada")
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := s.CreateDevice(ctx, u.ID, "desk")
	if err != nil {
		t.Fatal(err)
	}

	var acked atomic.Int64 // the highest seq Ingest has answered
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for seq := int64(1); ; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			// One beat a second of device time, alternating state every
			// ten, so spans open and close while the backup runs.
			st := presence.Active
			if seq/10%2 == 1 {
				st = presence.Idle
			}
			if _, err := s.Ingest(ctx, d.ID, []presence.Beat{{Seq: seq, At: t0.Add(time.Duration(seq) * time.Second), State: st}}, nil); err != nil {
				t.Errorf("ingest %d: %v", seq, err)
				return
			}
			acked.Store(seq)
		}
	}()
	for acked.Load() < 200 { // let the writer get going
		runtime.Gosched()
	}
	before := acked.Load()
	backup := filepath.Join(dir, "backups", "nightly.db")
	if err := os.MkdirAll(filepath.Dir(backup), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Backup(ctx, live, backup); err != nil {
		t.Fatal(err)
	}
	during := acked.Load()
	close(stop)
	wg.Wait()
	if during == before {
		t.Log("no beat was acknowledged while the backup ran; the test still checks the copy")
	}
	if runtime.GOOS != "windows" {
		if fi, err := os.Stat(backup); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("backup mode: %v, %v; want 0600", fi.Mode(), err)
		}
	}
	assertOnlyFiles(t, filepath.Dir(backup), "nightly.db")

	fresh := filepath.Join(dir, "elsewhere", "restored.db")
	if err := Restore(ctx, backup, fresh); err != nil {
		t.Fatal(err)
	}
	r := openT(t, fresh, presence.Options{Now: func() time.Time { return t0.Add(24 * time.Hour) }})
	st, err := r.DeviceStatus(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Presence.LastSeq < before {
		t.Fatalf("restored last_seq %d, but beat %d was acknowledged before the backup began", st.Presence.LastSeq, before)
	}
	if st.Presence.LastSeq > during {
		t.Fatalf("restored last_seq %d is past every beat acknowledged by the end of the backup (%d)", st.Presence.LastSeq, during)
	}
	// The spans cover every second up to the last beat the copy holds,
	// with no gap: a consistent snapshot, not a torn one.
	spans, err := r.Spans(ctx, presence.SpanQuery{UserID: u.ID})
	if err != nil {
		t.Fatal(err)
	}
	covered := t0.Add(time.Second)
	for _, sp := range spans {
		if !sp.Start.Equal(covered) {
			t.Fatalf("span %s–%s does not start where the one before ended (%s)", sp.Start, sp.End, covered)
		}
		covered = sp.End
	}
	if want := t0.Add(time.Duration(st.Presence.LastSeq) * time.Second); !covered.Equal(want) {
		t.Errorf("spans end at %s, the restored last beat is at %s", covered, want)
	}
	// And the restored database takes new beats where it left off.
	next := st.Presence.LastSeq + 1
	if res, err := r.Ingest(ctx, d.ID, []presence.Beat{{Seq: next, At: t0.Add(time.Duration(next) * time.Second), State: presence.Active}}, nil); err != nil || res.Accepted != 1 {
		t.Errorf("ingest into the restored database: %+v, %v", res, err)
	}
}

func assertOnlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("%s holds %v, want exactly %v (no temporary files left)", dir, got, names)
	}
}

func TestRestoreRefusesWhileTheDatabaseIsOpen(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "live.db")
	s := openT(t, live, presence.Options{})
	if _, _, err := s.CreateUser(t.Context(), "ada", ""); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(dir, "b.db")
	if err := Backup(t.Context(), live, backup); err != nil {
		t.Fatal(err)
	}
	err := Restore(t.Context(), backup, live)
	if !errors.Is(err, sqlitedb.ErrInUse) || !strings.Contains(err.Error(), "stop the service") {
		t.Fatalf("restore over an open database: %v, want ErrInUse telling to stop the service", err)
	}
	// Untouched: the store still works.
	if _, err := s.UserByHandle(t.Context(), "ada"); err != nil {
		t.Errorf("the open store after a refused restore: %v", err)
	}
	// Once it is closed, the restore goes through.
	s.Close()
	if err := Restore(t.Context(), backup, live); err != nil {
		t.Fatal(err)
	}
}

// A restore replaces the database whole: the old -wal (of a service that
// was killed) is not replayed into the restored file.
func TestRestoreDropsTheOldWAL(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "live.db")
	s := openT(t, live, presence.Options{})
	if _, _, err := s.CreateUser(t.Context(), "old", ""); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(dir, "b.db")
	if err := Backup(t.Context(), live, backup); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateUser(t.Context(), "later", ""); err != nil {
		t.Fatal(err)
	}
	// The WAL as a killed service leaves it: frames of commits (the user
	// "later" among them) that the main file does not hold yet.
	wal, err := os.ReadFile(live + "-wal")
	if err != nil || len(wal) == 0 {
		t.Fatalf("read the live WAL: %d bytes, %v", len(wal), err)
	}
	s.Close()
	if err := os.WriteFile(live+"-wal", wal, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Restore(t.Context(), backup, live); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{live + "-wal", live + "-shm"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s survived the restore", filepath.Base(p))
		}
	}
	r := openT(t, live, presence.Options{})
	if _, err := r.UserByHandle(t.Context(), "old"); err != nil {
		t.Errorf("user in the backup: %v", err)
	}
	if _, err := r.UserByHandle(t.Context(), "later"); presence.ErrorCode(err) != presence.ENOTFOUND {
		t.Errorf("user added after the backup: %v, want not found", err)
	}
	if runtime.GOOS != "windows" {
		if fi, err := os.Stat(live); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("restored mode: %v, %v; want 0600", fi.Mode(), err)
		}
	}
	assertOnlyFiles(t, dir, "b.db", "live.db", "live.db-shm", "live.db-wal", "live.db.lock")
}

func TestRestoreRefusesWhatIsNotALastseenBackup(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target.db")
	// The target holds data that a refused restore must leave alone.
	s := openT(t, target, presence.Options{})
	if _, _, err := s.CreateUser(t.Context(), "kept", ""); err != nil {
		t.Fatal(err)
	}
	s.Close()

	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 500)), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.db")
	db, err := sqlitedb.Open(other, sqlitedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE notes (v TEXT)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	future := filepath.Join(dir, "future.db")
	if err := Backup(t.Context(), target, future); err != nil {
		t.Fatal(err)
	}
	db, err = sql.Open("sqlite3", future)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO schema_migrations VALUES (999, '0999_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	for _, tc := range []struct{ src, want string }{
		{garbage, "not a SQLite database"},
		{other, "not a Lastseen database"},
		{future, "newer than this build"},
		{filepath.Join(dir, "missing.db"), "no backup at"},
		{target, "the database itself"},
	} {
		err := Restore(t.Context(), tc.src, target)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("restore %s: %v, want an error saying %q", filepath.Base(tc.src), err, tc.want)
		}
	}
	r := openT(t, target, presence.Options{})
	if _, err := r.UserByHandle(t.Context(), "kept"); err != nil {
		t.Errorf("the target after refused restores: %v", err)
	}
	assertNoTemp(t, dir)
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestBackupRefusals(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "live.db")
	if err := Backup(t.Context(), live, filepath.Join(dir, "b.db")); err == nil || !strings.Contains(err.Error(), "no database at") {
		t.Errorf("backup of a missing database: %v", err)
	}
	if _, err := os.Stat(live); err == nil {
		t.Error("a backup of a missing database created it")
	}
	s := openT(t, live, presence.Options{})
	for _, dest := range []string{live, live + "-wal"} {
		if err := Backup(t.Context(), live, dest); err == nil || !strings.Contains(err.Error(), "database itself") {
			t.Errorf("backup onto %s: %v", filepath.Base(dest), err)
		}
	}
	// An older backup at the destination is replaced whole.
	dest := filepath.Join(dir, "b.db")
	if err := os.WriteFile(dest, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateUser(t.Context(), "ada", ""); err != nil {
		t.Fatal(err)
	}
	if err := Backup(t.Context(), live, dest); err != nil {
		t.Fatal(err)
	}
	if err := Restore(t.Context(), dest, filepath.Join(dir, "r.db")); err != nil {
		t.Errorf("restore of the replaced backup: %v", err)
	}
	assertNoTemp(t, dir)
}
