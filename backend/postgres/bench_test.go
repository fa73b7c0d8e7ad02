package postgres

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lastseen/lastseen/backend/presence"
)

// BenchmarkIngest mirrors the SQLite store's: 256 devices, 32 senders per
// CPU each being one device sending in order, 1 or 50 beats per call, every
// beat extending its device's span. The changes variant alternates active
// and idle, so every beat ends a span, starts one and makes three events:
// the write path at its most expensive. Reported as beats/s.
//
//	go test ./backend/postgres/ -run '^$' -bench Ingest -benchtime 2000x
func BenchmarkIngest(b *testing.B) {
	for _, perBatch := range []int{1, 50} {
		b.Run(fmt.Sprintf("beats=%d", perBatch), func(b *testing.B) {
			benchIngest(b, perBatch, false)
		})
	}
	b.Run("beats=1/changes", func(b *testing.B) {
		benchIngest(b, 1, true)
	})
}

func benchIngest(b *testing.B, perBatch int, changes bool) {
	const devices = 256
	ctx := context.Background()
	var commits, committed atomic.Int64
	s, err := Open(ctx, newDatabase(b), presence.Options{Observe: func(beats int, _ time.Duration) {
		commits.Add(1)
		committed.Add(int64(beats))
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	u, _, err := s.CreateUser(ctx, "bench", "")
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]int64, devices)
	for i := range ids {
		d, _, err := s.CreateDevice(ctx, u.ID, fmt.Sprintf("machine %d", i))
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = d.ID
	}
	base := time.Now().Add(-time.Hour)
	var next atomic.Int64
	b.SetParallelism(32) // many devices waiting at once: what group commit is for
	commits.Store(0)
	committed.Store(0)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := ids[int(next.Add(1)-1)%devices]
		seq := int64(0)
		for pb.Next() {
			bs := make([]presence.Beat, perBatch)
			for i := range bs {
				seq++
				st := presence.Active
				if changes && seq%2 == 0 {
					st = presence.Idle
				}
				bs[i] = presence.Beat{Seq: seq, At: base.Add(time.Duration(seq) * time.Second), State: st}
			}
			if _, err := s.Ingest(ctx, id, bs, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*perBatch)/b.Elapsed().Seconds(), "beats/s")
	if n := commits.Load(); n > 0 {
		b.ReportMetric(float64(committed.Load())/float64(n), "beats/commit")
	}
}

// BenchmarkWriterVsCopy compares the writer's span statement (one
// multi-row INSERT … SELECT FROM unnest … ON CONFLICT DO UPDATE) with COPY,
// the fastest way PostgreSQL ingests rows, on groups of 1000 rows, one
// transaction (one fsync) per group. "new" rows are spans being started,
// "extend" rows are open spans being extended, which is what almost every
// beat does; COPY cannot update, so its extend variant copies into a
// temporary staging table and updates from it. Both report beats/s (one
// beat per row) so their ratio is the writer's overhead.
//
//	go test ./backend/postgres/ -run '^$' -bench WriterVsCopy -benchtime 200x
func BenchmarkWriterVsCopy(b *testing.B) {
	const rows = 1000
	ctx := context.Background()
	dsn := newDatabase(b)
	s, err := Open(ctx, dsn, presence.Options{}) // migrates the database
	if err != nil {
		b.Fatal(err)
	}
	u, _, err := s.CreateUser(ctx, "bench", "")
	if err != nil {
		b.Fatal(err)
	}
	devs := make([]int64, rows)
	for i := range devs {
		d, _, err := s.CreateDevice(ctx, u.ID, fmt.Sprintf("machine %d", i))
		if err != nil {
			b.Fatal(err)
		}
		devs[i] = d.ID
	}
	s.Close()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()

	base := time.Now().UTC().Truncate(time.Second)
	var nextID atomic.Int64
	nextID.Store(1 << 40) // far from the sequence's ids
	group := func(newIDs bool, existing []int64, k int) spanCols {
		var c spanCols
		for i, dev := range devs {
			id := int64(0)
			if newIDs {
				id = nextID.Add(1)
			} else {
				id = existing[i]
			}
			c.id = append(c.id, id)
			c.device = append(c.device, dev)
			c.state = append(c.state, string(presence.Active))
			c.why = append(c.why, string(presence.ByInput))
			c.start = append(c.start, base)
			c.end = append(c.end, base.Add(time.Duration(k)*time.Second))
			c.closed = append(c.closed, false)
			c.reason = append(c.reason, "")
			c.replayed = append(c.replayed, false)
		}
		return c
	}
	inTx := func(b *testing.B, f func(tx pgx.Tx) error) {
		if err := pgx.BeginFunc(ctx, pool, f); err != nil {
			b.Fatal(err)
		}
	}
	statement := func(tx pgx.Tx, c spanCols) error {
		_, err := tx.Exec(ctx, upsertSpansSQL, c.id, c.device, c.state, c.why, c.start, c.end, c.closed, c.reason, c.replayed)
		return err
	}
	copyRows := func(tx pgx.Tx, table string, c spanCols) error {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{table}, []string{"id", "device_id", "state", "why", "start_at", "end_at", "closed"},
			pgx.CopyFromSlice(len(c.id), func(i int) ([]any, error) {
				return []any{c.id[i], c.device[i], c.state[i], c.why[i], c.start[i], c.end[i], c.closed[i]}, nil
			}))
		return err
	}
	report := func(b *testing.B) {
		b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "beats/s")
	}

	b.Run("new/statement", func(b *testing.B) {
		for k := 0; b.Loop(); k++ {
			c := group(true, nil, k)
			inTx(b, func(tx pgx.Tx) error { return statement(tx, c) })
		}
		report(b)
	})
	b.Run("new/copy", func(b *testing.B) {
		for k := 0; b.Loop(); k++ {
			c := group(true, nil, k)
			inTx(b, func(tx pgx.Tx) error { return copyRows(tx, "spans", c) })
		}
		report(b)
	})

	// One open span per device, extended by every group.
	existing := group(true, nil, 0).id
	inTx(b, func(tx pgx.Tx) error { return statement(tx, group(false, existing, 0)) })
	b.Run("extend/statement", func(b *testing.B) {
		for k := 1; b.Loop(); k++ {
			c := group(false, existing, k)
			inTx(b, func(tx pgx.Tx) error { return statement(tx, c) })
		}
		report(b)
	})
	b.Run("extend/copy-staging", func(b *testing.B) {
		for k := 1; b.Loop(); k++ {
			c := group(false, existing, k)
			inTx(b, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `CREATE TEMPORARY TABLE span_stage (LIKE spans) ON COMMIT DROP`); err != nil {
					return err
				}
				if err := copyRows(tx, "span_stage", c); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `UPDATE spans s SET end_at = g.end_at, closed = g.closed FROM span_stage g WHERE s.id = g.id`)
				return err
			})
		}
		report(b)
	})
}
