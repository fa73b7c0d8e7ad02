package agentdb

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

var bt0 = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

// BenchmarkRecord is the cost of one beat: outbox row, seq counter and local
// history in one transaction.
func BenchmarkRecord(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "agent.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		at := bt0.Add(time.Duration(i) * 30 * time.Second)
		if _, err := db.Record(ctx, Entry{At: at, IdleS: 3, Local: presence.Active, Send: presence.Active}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBoundFullOutbox is the cost of the beat that finds the outbox
// full at the default bound: a scan of 200 000 rows, thinning half of them.
func BenchmarkBoundFullOutbox(b *testing.B) {
	ctx := context.Background()
	b.StopTimer()
	for range b.N {
		db, err := Open(filepath.Join(b.TempDir(), "agent.db"), Options{})
		if err != nil {
			b.Fatal(err)
		}
		fill(b, db, DefaultMaxOutbox)
		b.StartTimer()
		if _, err := db.Record(ctx, Entry{At: bt0.Add(time.Duration(DefaultMaxOutbox+1) * 30 * time.Second), Send: presence.Active}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if d := db.Depth(); d > DefaultMaxOutbox/2+2 {
			b.Fatalf("depth %d after compaction", d)
		}
		db.Close()
	}
}

// fill queues n active beats 30 s apart in one transaction.
func fill(b *testing.B, db *DB, n int) {
	tx, err := db.db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	stmt, err := tx.Prepare(`INSERT INTO outbox (seq, at_ns, state, idle_s) VALUES (?, ?, 'active', 0)`)
	if err != nil {
		b.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if _, err := stmt.Exec(i, toNS(bt0.Add(time.Duration(i)*30*time.Second))); err != nil {
			b.Fatal(err)
		}
	}
	stmt.Close()
	if _, err := tx.Exec(`UPDATE counters SET value = ? WHERE name = 'last_seq'`, n); err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	db.lastSeq, db.depth = int64(n), int64(n)
}
