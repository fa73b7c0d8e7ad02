package sqlite

import (
	"database/sql"
	"io/fs"
	"math"
	"testing"
	"testing/fstest"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/sqlitedb"
	"github.com/lastseen/lastseen/backend/storetest"
)

// rawEnds reads what the spans table itself holds for each span, by id.
func rawEnds(t *testing.T, db *sql.DB) map[int64]int64 {
	t.Helper()
	rows, err := db.Query(`SELECT id, end_ns FROM spans`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var id, end int64
		if err := rows.Scan(&id, &end); err != nil {
			t.Fatal(err)
		}
		out[id] = end
	}
	return out
}

// An open tail keeps its end on the device row: a database from before
// (its tail's real end in the span row) is converted, every read sees the
// real end, extending it leaves the span row alone, closing it writes the
// real end once.
func TestOpenTailEndLivesOnTheDevice(t *testing.T) {
	path := tempDB(t)
	old := fstest.MapFS{}
	for _, name := range []string{"0001_init.sql", "0002_span_why.sql", "0003_people.sql", "0004_public_watches.sql", "0005_gap_reasons.sql"} {
		b, err := fs.ReadFile(migrations, "migrations/"+name)
		if err != nil {
			t.Fatal(err)
		}
		old["migrations/"+name] = &fstest.MapFile{Data: b}
	}
	db, err := openDB(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlitedb.Migrate(db, old, "migrations", t0); err != nil {
		t.Fatal(err)
	}
	at := func(min int) int64 { return t0.Add(time.Duration(min) * time.Minute).UnixNano() }
	for _, q := range []struct {
		query string
		args  []any
	}{
		{`INSERT INTO users (id, handle, name, created_ns) VALUES (1, 'ann', 'Ann', ?)`, []any{at(-60)}},
		{`INSERT INTO devices (id, user_id, name, created_ns, last_seq, state, last_beat_ns, last_active_ns, tail_span_id)
			VALUES (1, 1, 'tower', ?, 7, 'active', ?, ?, NULL)`, []any{at(-60), at(-1), at(-1)}},
		{`INSERT INTO spans (id, device_id, user_id, state, start_ns, end_ns, closed) VALUES
			(1, 1, 1, 'idle', ?, ?, 1), (2, 1, 1, 'active', ?, ?, 0)`, []any{at(-30), at(-20), at(-20), at(-1)}},
		{`UPDATE devices SET tail_span_id = 2 WHERE id = 1`, nil},
	} {
		if _, err := db.Exec(q.query, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	clock := storetest.NewClock(t0)
	s := openT(t, path, presence.Options{Now: clock.Now})
	ctx := t.Context()
	spans := func() []presence.Span {
		t.Helper()
		sp, err := s.Spans(ctx, presence.SpanQuery{UserID: 1, From: t0.Add(-time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return sp
	}
	if got := rawEnds(t, s.db); got[1] != at(-20) || got[2] != math.MaxInt64 {
		t.Errorf("after the upgrade the span rows hold ends %v; want the closed span's real end, the open tail's the largest", got)
	}
	if sp := spans(); len(sp) != 2 || sp[1].End.UnixNano() != at(-1) || sp[0].End.UnixNano() != at(-20) {
		t.Fatalf("spans after the upgrade = %+v, want the tail ending at its last beat", sp)
	}
	if st, err := s.DeviceStatus(ctx, 1); err != nil || st.Status != presence.Active {
		t.Errorf("device after the upgrade: %+v, %v", st, err)
	}
	// A range that starts after the tail's last beat does not hold it.
	if sp, err := s.Spans(ctx, presence.SpanQuery{UserID: 1, From: t0.Add(time.Minute)}); err != nil || len(sp) != 0 {
		t.Errorf("spans after the tail's end = %+v, %v; want none", sp, err)
	}

	// Extending the tail moves its end and leaves the span row alone.
	if _, err := s.Ingest(ctx, 1, []presence.Beat{{Seq: 8, At: t0, State: presence.Active}}, nil); err != nil {
		t.Fatal(err)
	}
	if got := rawEnds(t, s.db)[2]; got != math.MaxInt64 {
		t.Errorf("extending the tail rewrote its row: end_ns = %d", got)
	}
	if sp := spans(); len(sp) != 2 || !sp[1].End.Equal(t0) || sp[1].Closed {
		t.Errorf("after extending: %+v, want the tail open to t0", sp)
	}
	// A restart reads it back from the device row.
	s.Close()
	s = openT(t, path, presence.Options{Now: clock.Now})
	if sp := spans(); len(sp) != 2 || !sp[1].End.Equal(t0) {
		t.Errorf("after a restart: %+v, want the tail open to t0", sp)
	}
	// Closing it writes its real end into the row, once.
	clock.Advance(time.Minute)
	if _, err := s.Ingest(ctx, 1, []presence.Beat{{Seq: 9, At: t0.Add(time.Minute), State: presence.Offline, Reason: presence.EndSleep}}, nil); err != nil {
		t.Fatal(err)
	}
	if got := rawEnds(t, s.db)[2]; got != t0.Add(time.Minute).UnixNano() {
		t.Errorf("closing the tail left end_ns = %d, want its real end", got)
	}
	if sp := spans(); len(sp) != 2 || !sp[1].Closed || !sp[1].End.Equal(t0.Add(time.Minute)) || sp[1].EndReason != presence.EndSleep {
		t.Errorf("after closing: %+v", sp[1])
	}
}
