package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/postgres/pgtest"
	"github.com/lastseen/lastseen/backend/presence"
)

func TestDBKinds(t *testing.T) {
	tests := []struct {
		db       string
		postgres bool
		redacted string
	}{
		{"lastseen.db", false, "lastseen.db"},
		{"/var/lib/lastseen/host.db", false, "/var/lib/lastseen/host.db"},
		{"postgres://ls:secret@db.example:5432/ls?sslmode=require", true, "postgres://ls:xxxxx@db.example:5432/ls?sslmode=require"},
		{"postgresql://ls@/ls?host=/run/pg&password=secret", true, "postgresql://ls@/ls?host=%2Frun%2Fpg&password=xxxxx"},
		{"host=/run/pg dbname=ls user=ls password=secret", true, "host=/run/pg dbname=ls user=ls password=xxxxx"},
		{"dbname=ls password='s e c'", true, "dbname=ls password=xxxxx"},
	}
	for _, tt := range tests {
		c := Config{DB: tt.db}
		if c.IsPostgres() != tt.postgres || c.RedactedDB() != tt.redacted {
			t.Errorf("%q: postgres %v, redacted %q; want %v, %q", tt.db, c.IsPostgres(), c.RedactedDB(), tt.postgres, tt.redacted)
		}
	}
}

// TestPostgres runs the service and the admin commands on PostgreSQL
// (skipped when the server binaries are not installed; see pgtest).
func TestPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	dsn := pgtest.Start(t)
	ctx := context.Background()
	now := runningClock()
	srv := mustServe(t, dsn, now, nil)

	userTok := mustToken(t, mustCmd(t, now, "user", "add", "gina", "--db", dsn), "ls_usr_")
	devTok := mustToken(t, mustCmd(t, now, "device", "add", "gina", "tower", "--db", dsn), "ls_dev_")

	user := httpapi.NewClient(srv.URL(), userTok, nil)
	stream, err := user.Events(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	t0 := now().Add(-time.Minute).Truncate(time.Second)
	res, err := httpapi.NewClient(srv.URL(), devTok, nil).PostHeartbeats(ctx, presence.Batch{SentAt: now(), Beats: []presence.Beat{
		{Seq: 1, At: t0, State: presence.Active}, {Seq: 2, At: t0.Add(45 * time.Second), State: presence.Active},
	}})
	if err != nil || res.Accepted != 2 {
		t.Fatalf("ingest = %+v, %v", res, err)
	}
	if pe, err := nextEvent(t, stream, "presence", eventWait).Presence(); err != nil || pe.Status != presence.Active {
		t.Fatalf("event = %+v, %v", pe, err)
	}
	stream.Close()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}

	srv2 := mustServe(t, dsn, now, nil)
	ss, err := httpapi.NewClient(srv2.URL(), userTok, nil).Sessions(ctx, httpapi.SessionsQuery{From: t0.Add(-time.Hour), To: now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ss.Sessions) != 1 || ss.Sessions[0].DurationS != 45 {
		t.Fatalf("sessions after restart = %+v", ss)
	}
	if out := mustCmd(t, now, "device", "list", "gina", "--db", dsn); !strings.Contains(out, "tower") {
		t.Fatalf("device list:\n%s", out)
	}
}
