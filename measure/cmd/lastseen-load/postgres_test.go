package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/lastseen/lastseen/backend/postgres/pgtest"
	"github.com/lastseen/lastseen/measure/serviceload"
)

// TestPostgresPhase runs --phases p at toy sizes through the command line:
// it starts its own PostgreSQL cluster and reports both stores, the ratio
// and the verdict.
func TestPostgresPhase(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	var out, errb bytes.Buffer
	args := []string{"--json", "--phases", "p", "--devices", "4", "--concurrency", "2", "--duration", "400ms",
		"--warmup", "0s", "--rounds", "2", "--dir", t.TempDir()}
	code := run(context.Background(), args, &out, &errb)
	if code == 1 && strings.Contains(errb.String(), pgtest.ErrNotInstalled.Error()) {
		pgtest.Unavailable(t, pgtest.ErrNotInstalled)
	}
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
	var rep serviceload.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	p := rep.Postgres
	if p == nil || p.SQLite.Beats == 0 || p.Postgres.Beats == 0 || p.Ratio <= 0 || len(rep.Targets) != 1 {
		t.Fatalf("report = %s", out.String())
	}
	if p.SQLiteLost != 0 || p.PostgresLost != 0 || p.PostgresAcknowledged == 0 {
		t.Errorf("acknowledged beats missing: %+v", p)
	}
}
