package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/sqlite"
	"github.com/lastseen/lastseen/internal/testutil"
)

// backup runs while serve runs on the database; restore refuses then, and
// puts the copy back once nothing has the file open.
func TestBackupAndRestoreCommands(t *testing.T) {
	ctx := context.Background()
	now := runningClock()
	dir := t.TempDir()
	db := filepath.Join(dir, "lastseen.db")
	srv := mustServe(t, db, now, nil)
	userTok := mustToken(t, mustCmd(t, now, "user", "add", "alice", "--db", db), "ls_usr_")
	devTok := mustToken(t, mustCmd(t, now, "device", "add", "alice", "desk", "--db", db), "ls_dev_")
	t0 := now().Add(-time.Minute).Truncate(time.Second)
	dev := httpapi.NewClient(srv.URL(), devTok, nil)
	if _, err := dev.PostHeartbeats(ctx, presence.Batch{SentAt: now(), Beats: []presence.Beat{
		{Seq: 1, At: t0, State: presence.Active}, {Seq: 2, At: t0.Add(30 * time.Second), State: presence.Active},
	}}); err != nil {
		t.Fatal(err)
	}

	backup := filepath.Join(dir, "backup.db")
	out, errs, code := runCmd(t, now, map[string]string{"LASTSEEN_DB": db}, "backup", backup)
	if code != 0 || !strings.Contains(out, "backed up") {
		t.Fatalf("backup (db from LASTSEEN_DB): exit %d\n%s%s", code, out, errs)
	}
	if runtime.GOOS != "windows" {
		if fi, err := os.Stat(backup); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("backup mode %v, %v; want 0600", fi.Mode(), err)
		}
	}
	// Beats after the backup are not in it.
	if _, err := dev.PostHeartbeats(ctx, presence.Batch{SentAt: now(), Beats: []presence.Beat{{Seq: 3, At: t0.Add(45 * time.Second), State: presence.Idle}}}); err != nil {
		t.Fatal(err)
	}

	out, errs, code = runCmd(t, now, nil, "restore", backup, "--db", db)
	if code != 1 || !strings.Contains(errs, "in use") || !strings.Contains(errs, "stop the service") {
		t.Fatalf("restore under a running service: exit %d, want 1 saying to stop it\n%s%s", code, out, errs)
	}
	user := httpapi.NewClient(srv.URL(), userTok, nil)
	if _, err := user.Me(ctx); err != nil {
		t.Errorf("the service after a refused restore: %v", err)
	}

	// Stopped, the restore goes through, and the service starts on the copy.
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	mustCmd(t, now, "restore", backup, "--db", db)
	srv2 := mustServe(t, db, now, nil)
	user = httpapi.NewClient(srv2.URL(), userTok, nil)
	devs, err := user.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs.Devices) != 1 {
		t.Fatalf("devices after restore: %+v", devs)
	}
	res, err := httpapi.NewClient(srv2.URL(), devTok, nil).PostHeartbeats(ctx, presence.Batch{SentAt: now(), Beats: []presence.Beat{{Seq: 3, At: t0.Add(50 * time.Second), State: presence.Active}}})
	if err != nil || res.Accepted != 1 || res.LastSeq != 3 {
		// The restored high-water mark is 2: seq 3 came after the backup.
		t.Errorf("beat 3 into the restored database: %+v, %v; want accepted (last_seq was 2)", res, err)
	}
}

func TestBackupAndRestoreSayPgDumpForPostgres(t *testing.T) {
	now := runningClock()
	for cmd, tool := range map[string]string{"backup": "pg_dump", "restore": "pg_restore"} {
		out, errs, code := runCmd(t, now, nil, cmd, filepath.Join(t.TempDir(), "x.dump"), "--db", "postgres://lastseen@localhost/lastseen")
		if code != 1 || !strings.Contains(errs, tool) {
			t.Errorf("%s on PostgreSQL: exit %d, want 1 naming %s\n%s%s", cmd, code, tool, out, errs)
		}
	}
	for _, args := range [][]string{{"backup"}, {"restore", "a", "b"}} {
		if _, errs, code := runCmd(t, now, nil, args...); code != 2 || !strings.Contains(errs, "takes FILE") {
			t.Errorf("%v: exit %d, want a usage error\n%s", args, code, errs)
		}
	}
	if out, _, code := runCmd(t, now, nil, "help"); code != 0 || !strings.Contains(out, "lastseend backup FILE") {
		t.Errorf("help does not list backup:\n%s", out)
	}
}

func TestRetainFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want time.Duration
		ok   bool
	}{
		{nil, nil, 0, true},
		{[]string{"--retain", "90d"}, nil, 90 * 24 * time.Hour, true},
		{[]string{"--retain", "36h"}, nil, 36 * time.Hour, true},
		{[]string{"--retain=0"}, nil, 0, true},
		{nil, map[string]string{"LASTSEEN_RETAIN": "30d"}, 30 * 24 * time.Hour, true},
		{[]string{"--retain", "7d"}, map[string]string{"LASTSEEN_RETAIN": "30d"}, 7 * 24 * time.Hour, true},
		{[]string{"--retain", "30"}, nil, 0, false},
		{[]string{"--retain", "5m"}, nil, 0, false},
		{[]string{"--retain", "-1d"}, nil, 0, false},
		{[]string{"--retain", "forever"}, nil, 0, false},
	} {
		m := NewMain()
		m.Stdout, m.Stderr = &strings.Builder{}, &strings.Builder{}
		m.LookupEnv = func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
		err := m.ParseFlags(context.Background(), append([]string{"serve"}, tc.args...))
		if (err == nil) != tc.ok || (tc.ok && m.Config.Retain != tc.want) {
			t.Errorf("serve %v (env %v): retain %s, error %v; want %s, ok %v", tc.args, tc.env, m.Config.Retain, err, tc.want, tc.ok)
		}
	}
}

// serve --retain prunes at start: spans that ended before the period go,
// later ones and every tail stay, and a log line says how many went.
func TestServeRetainPrunes(t *testing.T) {
	now := runningClock()
	db := filepath.Join(t.TempDir(), "lastseen.db")
	s, err := sqlite.Open(db, presence.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	u, _, err := s.CreateUser(ctx, "ada", "")
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := s.CreateDevice(ctx, u.ID, "desk")
	if err != nil {
		t.Fatal(err)
	}
	day, at := 24*time.Hour, now()
	old := presence.Span{State: presence.Active, Start: at.Add(-40 * day), End: at.Add(-40*day + time.Hour)}
	older := presence.Span{State: presence.Idle, Start: at.Add(-41 * day), End: at.Add(-40 * day)}
	recent := presence.Span{State: presence.Active, Start: at.Add(-10 * day), End: at.Add(-10*day + time.Hour)}
	if added, _, err := s.ImportSpans(ctx, d.ID, []presence.Span{old, older, recent}); err != nil || added != 3 {
		t.Fatalf("import: %d, %v", added, err)
	}
	s.Close()

	srv := mustServe(t, db, now, func(m *Main) { m.Config.Retain = 30 * day })
	logs := srv.Stderr.(*lockedBuffer)
	var line map[string]any
	testutil.WaitUntil(t, "the pruned spans log line", 10*time.Second, func() bool {
		for l := range strings.SplitSeq(logs.String(), "\n") {
			if strings.Contains(l, `"pruned spans"`) {
				return json.Unmarshal([]byte(l), &line) == nil
			}
		}
		return false
	})
	if line["count"] != float64(2) || line["retain"] != "30d" {
		t.Errorf("log line %v, want count 2, retain 30d", line)
	}
	spans, err := srv.Store.Spans(ctx, presence.SpanQuery{UserID: u.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != 1 || !spans[0].Start.Equal(recent.Start) {
		t.Errorf("spans after pruning: %+v, want only the recent one", spans)
	}
}
