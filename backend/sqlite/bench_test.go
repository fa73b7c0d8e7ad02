package sqlite

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// BenchmarkIngest measures committed beats per second with many devices
// sending at once, as a busy service sees them: each request is one device's
// batch, durable when Ingest returns.
//
//	go test -run '^$' -bench Ingest -benchtime 2000x ./backend/sqlite/
func BenchmarkIngest(b *testing.B) {
	for _, perBatch := range []int{1, 50} {
		b.Run(fmt.Sprintf("beats=%d", perBatch), func(b *testing.B) {
			benchIngest(b, perBatch)
		})
	}
}

func benchIngest(b *testing.B, perBatch int) {
	const devices = 256
	s, err := Open(b.TempDir()+"/bench.db", presence.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
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
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		// Each goroutine is one device sending in order, 1 s per beat, so
		// every beat extends that device's span.
		id := ids[int(next.Add(1)-1)%devices]
		seq := int64(0)
		for pb.Next() {
			bs := make([]presence.Beat, perBatch)
			for i := range bs {
				seq++
				bs[i] = presence.Beat{Seq: seq, At: base.Add(time.Duration(seq) * time.Second), State: presence.Active}
			}
			if _, err := s.Ingest(ctx, id, bs, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*perBatch)/b.Elapsed().Seconds(), "beats/s")
}

// BenchmarkAuthenticate measures a token lookup, which every API request
// makes, from many requests at once under a cancellable request context.
//
//	go test -run '^$' -bench Authenticate -benchtime 1s ./backend/sqlite/
func BenchmarkAuthenticate(b *testing.B) {
	s, err := Open(b.TempDir()+"/bench.db", presence.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	u, _, err := s.CreateUser(ctx, "bench", "")
	if err != nil {
		b.Fatal(err)
	}
	tokens := make([]string, 64)
	for i := range tokens {
		if _, tokens[i], err = s.CreateDevice(ctx, u.ID, fmt.Sprintf("machine %d", i)); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		tok := tokens[int(next.Add(1)-1)%len(tokens)]
		for pb.Next() {
			if _, err := s.Authenticate(ctx, tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
