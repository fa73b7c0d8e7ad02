package serviceload

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/postgres/pgtest"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/sqlite"
)

// TestStoreComparisonSmall runs phase (p) for real at toy sizes: a
// throwaway cluster, both services, and the durability check afterwards.
func TestStoreComparisonSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	c := DefaultConfig()
	c.Phases = "p"
	c.Devices, c.Concurrencies = 8, []int{4}
	c.Duration, c.Warmup, c.Rounds = 600*time.Millisecond, 100*time.Millisecond, 2
	c.Dir = t.TempDir()
	rep, err := Run(context.Background(), c)
	if errors.Is(err, pgtest.ErrNotInstalled) {
		pgtest.Unavailable(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	p := rep.Postgres
	if p == nil || rep.Throughput != nil || rep.FanOut != nil {
		t.Fatalf("report = %+v", rep)
	}
	for name, s := range map[string]RunStats{"SQLite": p.SQLite, "PostgreSQL": p.Postgres} {
		if s.Beats == 0 || s.Failed != 0 || s.Duplicates != 0 || s.PerSecond <= 0 || s.P99Ms <= 0 {
			t.Errorf("%s: %+v", name, s)
		}
	}
	// The warm-up's beats are acknowledged too, so at least the measured
	// ones; and none of them may be missing.
	if p.SQLiteAcknowledged < p.SQLite.Beats || p.PostgresAcknowledged < p.Postgres.Beats || p.SQLiteLost != 0 || p.PostgresLost != 0 {
		t.Errorf("durability: %+v", p)
	}
	if p.Ratio <= 0 || p.PostgresVersion == "" {
		t.Errorf("ratio %v, version %q", p.Ratio, p.PostgresVersion)
	}
	if len(rep.Targets) != 1 || rep.Targets[0].Got != p.Ratio {
		t.Fatalf("targets = %+v", rep.Targets)
	}
	var out bytes.Buffer
	rep.WriteText(&out)
	for _, want := range []string{"(p) lastseend on PostgreSQL", "on SQLite", "ratio PostgreSQL/SQLite", "missing from the database"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestVerifyCommittedFindsLostBeats proves the durability check can fail:
// a device whose acknowledged seq the database does not reach counts as
// lost beats.
func TestVerifyCommittedFindsLostBeats(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v.db")
	st, err := sqlite.Open(path, presence.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := newFleet(ctx, st, 3)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i, n := range []int64{4, 2} { // device 0 holds 4 beats, device 1 two
		var bs []presence.Beat
		for s := int64(1); s <= n; s++ {
			bs = append(bs, presence.Beat{Seq: s, At: now.Add(time.Duration(s) * time.Millisecond), State: presence.Active})
		}
		if _, err := st.Ingest(ctx, f.devices[i].id, bs, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	side := &storeSide{name: "SQLite", reopen: func(context.Context) (presence.Store, error) {
		return sqlite.Open(path, presence.Options{})
	}}
	tests := []struct {
		acked       [3]int64
		wantAcked   int64
		wantLost    int64
		whatItMeans string
	}{
		{[3]int64{4, 2, 0}, 6, 0, "everything acknowledged is there"},
		{[3]int64{3, 1, 0}, 4, 0, "the database may hold more than was acknowledged (an answer lost on the way)"},
		{[3]int64{6, 2, 0}, 8, 2, "two acknowledged beats of device 0 are missing"},
		{[3]int64{4, 2, 1}, 7, 1, "device 2 has nothing, one beat was acknowledged"},
	}
	for _, tt := range tests {
		for i, a := range tt.acked {
			f.devices[i].acked = a
		}
		acked, lost, err := verifyCommitted(ctx, side, f)
		if err != nil {
			t.Fatal(err)
		}
		if acked != tt.wantAcked || lost != tt.wantLost {
			t.Errorf("%s: acked %d lost %d, want %d and %d", tt.whatItMeans, acked, lost, tt.wantAcked, tt.wantLost)
		}
	}
}

func TestJudgeStoreComparison(t *testing.T) {
	good := StoreComparison{Ratio: 0.5, SQLite: RunStats{Beats: 10}, Postgres: RunStats{Beats: 5}, SQLiteAcknowledged: 10, PostgresAcknowledged: 5}
	tests := []struct {
		name string
		mod  func(*StoreComparison)
		pass bool
	}{
		{"at the target", func(*StoreComparison) {}, true},
		{"above it", func(p *StoreComparison) { p.Ratio = 1.2 }, true},
		{"just below", func(p *StoreComparison) { p.Ratio = 0.499 }, false},
		{"a failed request on PostgreSQL", func(p *StoreComparison) { p.Postgres.Failed = 1 }, false},
		{"a failed request on SQLite", func(p *StoreComparison) { p.SQLite.Failed = 1 }, false},
		{"an acknowledged beat missing on PostgreSQL", func(p *StoreComparison) { p.PostgresLost = 1 }, false},
		{"an acknowledged beat missing on SQLite", func(p *StoreComparison) { p.SQLiteLost = 1 }, false},
		{"nothing acknowledged proves nothing", func(p *StoreComparison) { p.PostgresAcknowledged = 0 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := good
			tt.mod(&p)
			r := Report{Postgres: &p}
			r.judge()
			if len(r.Targets) != 1 || r.Targets[0].Pass != tt.pass || r.Passed() != tt.pass {
				t.Errorf("targets = %+v, want pass %v", r.Targets, tt.pass)
			}
		})
	}
}

func TestValidatePhaseP(t *testing.T) {
	for phases, ok := range map[string]bool{"p": true, "abcdp": true, "ap": true, "pq": false, "P": false} {
		c := DefaultConfig()
		c.Phases = phases
		if err := c.Validate(); (err == nil) != ok {
			t.Errorf("phases %q: err %v, want valid %v", phases, err, ok)
		}
	}
}
