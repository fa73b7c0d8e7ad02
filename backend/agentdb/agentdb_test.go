package agentdb_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/agentdb"
	"github.com/lastseen/lastseen/backend/presence"
)

var t0 = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

func open(t *testing.T, path string, opts agentdb.Options) *agentdb.DB {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "agent.db")
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return t0 }
	}
	db, err := agentdb.Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func send(t *testing.T, db *agentdb.DB, at time.Time, s presence.State) presence.Beat {
	t.Helper()
	b, err := db.Record(context.Background(), agentdb.Entry{At: at, Send: s})
	if err != nil {
		t.Fatalf("Record(%v, %s): %v", at, s, err)
	}
	return b
}

func outbox(t *testing.T, db *agentdb.DB) []presence.Beat {
	t.Helper()
	bs, err := db.Outbox(context.Background(), 1<<30)
	if err != nil {
		t.Fatalf("Outbox: %v", err)
	}
	return bs
}

func seqs(bs []presence.Beat) []int64 {
	out := make([]int64, len(bs))
	for i, b := range bs {
		out[i] = b.Seq
	}
	return out
}

func TestOutboxOrderAndAck(t *testing.T) {
	ctx := context.Background()
	db := open(t, "", agentdb.Options{})
	states := []presence.State{presence.Active, presence.Active, presence.Idle, presence.Away, presence.Offline}
	for i, s := range states {
		b, err := db.Record(ctx, agentdb.Entry{At: t0.Add(time.Duration(i) * 30 * time.Second), IdleS: int64(i), Send: s})
		if err != nil {
			t.Fatal(err)
		}
		if b.Seq != int64(i+1) || b.State != s || b.IdleS != int64(i) {
			t.Fatalf("beat %d = %+v", i, b)
		}
	}
	got, err := db.Outbox(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(seqs(got), []int64{1, 2, 3}) {
		t.Fatalf("oldest 3 = %v", seqs(got))
	}
	if !got[2].At.Equal(t0.Add(time.Minute)) || got[2].State != presence.Idle || got[2].IdleS != 2 {
		t.Fatalf("beat 3 read back as %+v", got[2])
	}
	if err := db.Ack(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if got := seqs(outbox(t, db)); !reflect.DeepEqual(got, []int64{4, 5}) {
		t.Fatalf("after ack = %v", got)
	}
	if d := db.Depth(); d != 2 {
		t.Fatalf("Depth = %d", d)
	}
	// Acknowledging again (a re-sent batch) is harmless.
	if err := db.Ack(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if b := send(t, db, t0.Add(time.Hour), presence.Active); b.Seq != 6 {
		t.Fatalf("next seq = %d, want 6", b.Seq)
	}
}

func TestRecordRejectsBadInputAndWritesNothing(t *testing.T) {
	ctx := context.Background()
	db := open(t, "", agentdb.Options{})
	bad := []agentdb.Entry{
		{Send: presence.Active},
		{At: t0, Send: "busy"},
		{At: t0, Local: "busy"},
		{At: t0, IdleS: -1, Send: presence.Active},
	}
	for _, e := range bad {
		if _, err := db.Record(ctx, e); presence.ErrorCode(err) != presence.EINVALID {
			t.Errorf("Record(%+v) = %v, want EINVALID", e, err)
		}
	}
	before := db.Commits()
	if b, err := db.Record(ctx, agentdb.Entry{At: t0}); err != nil || b.Seq != 0 {
		t.Fatalf("empty entry = %+v, %v", b, err)
	}
	if db.Commits() != before || db.Depth() != 0 || db.LastSeq() != 0 {
		t.Fatalf("bad or empty entries wrote something: commits %d→%d depth %d", before, db.Commits(), db.Depth())
	}
}

func TestFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.db")
	db := open(t, path, agentdb.Options{})
	send(t, db, t0, presence.Active)
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s mode %v, want owner-only", filepath.Base(p), fi.Mode().Perm())
		}
	}
}

func TestResync(t *testing.T) {
	ctx := context.Background()
	db := open(t, "", agentdb.Options{})
	var want []presence.Beat
	for i := range 5 {
		want = append(want, send(t, db, t0.Add(time.Duration(i)*time.Second), presence.Active))
	}
	if err := db.Ack(ctx, 2); err != nil { // 3, 4, 5 queued
		t.Fatal(err)
	}
	n, err := db.Resync(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	got := outbox(t, db)
	if n != 3 || !reflect.DeepEqual(seqs(got), []int64{1001, 1002, 1003}) {
		t.Fatalf("after Resync(1000): n=%d seqs=%v", n, seqs(got))
	}
	for i, b := range got {
		if !b.At.Equal(want[i+2].At) {
			t.Fatalf("order changed: %d at %v, want %v", b.Seq, b.At, want[i+2].At)
		}
	}
	if db.LastSeq() != 1003 {
		t.Fatalf("LastSeq = %d", db.LastSeq())
	}
	if b := send(t, db, t0.Add(time.Minute), presence.Idle); b.Seq != 1004 {
		t.Fatalf("next seq = %d", b.Seq)
	}
	// A service behind us: renumber above our own counter, never reuse a seq.
	if _, err := db.Resync(ctx, 10); err != nil {
		t.Fatal(err)
	}
	if got := seqs(outbox(t, db)); !reflect.DeepEqual(got, []int64{1005, 1006, 1007, 1008}) {
		t.Fatalf("after Resync(10) = %v", got)
	}
	// Empty outbox: the counter still moves past the service's mark.
	if err := db.Ack(ctx, 1<<40); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Resync(ctx, 5000); err != nil {
		t.Fatal(err)
	}
	if b := send(t, db, t0.Add(2*time.Minute), presence.Idle); b.Seq != 5001 {
		t.Fatalf("seq after empty resync = %d", b.Seq)
	}
}

func TestSettleQuarantines(t *testing.T) {
	ctx := context.Background()
	now := t0.Add(time.Hour)
	db := open(t, "", agentdb.Options{Now: func() time.Time { return now }, MaxQuarantine: 3})
	var bs []presence.Beat
	for i := range 6 {
		bs = append(bs, send(t, db, t0.Add(time.Duration(i)*time.Second), presence.Active))
	}
	// Batch 1..4: 2 rejected, 1 accepted-but-resynced path not used here.
	_, err := db.Settle(ctx, agentdb.Settlement{
		Through:    4,
		Quarantine: []agentdb.Quarantined{{Beat: bs[1], Error: "at is older than 720h0m0s"}},
		SyncedAt:   now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs(outbox(t, db)); !reflect.DeepEqual(got, []int64{5, 6}) {
		t.Fatalf("outbox = %v", got)
	}
	q, err := db.Quarantined(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 1 || q[0].Beat.Seq != 2 || q[0].Error != "at is older than 720h0m0s" ||
		!q[0].QuarantinedAt.Equal(now) || !q[0].Beat.At.Equal(bs[1].At) || q[0].Beat.State != presence.Active {
		t.Fatalf("quarantine = %+v", q)
	}
	// Over the quarantine bound: the oldest leave and are counted.
	var more []agentdb.Quarantined
	for _, b := range bs[4:] {
		more = append(more, agentdb.Quarantined{Beat: b, Error: "invalid"})
	}
	more = append(more, agentdb.Quarantined{Beat: presence.Beat{Seq: 99, At: t0, State: presence.Idle}, Error: "x"})
	if _, err := db.Settle(ctx, agentdb.Settlement{Quarantine: more}); err != nil {
		t.Fatal(err)
	}
	st, err := db.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Quarantined != 3 || st.QuarantineDropped != 1 || st.OutboxDepth != 0 || !st.LastSync.Equal(now) {
		t.Fatalf("stats = %+v", st)
	}
	if db.Depth() != 0 {
		t.Fatalf("Depth = %d", db.Depth())
	}
}

func TestSettleResyncKeepsAcceptedOut(t *testing.T) {
	ctx := context.Background()
	db := open(t, "", agentdb.Options{})
	for i := range 4 {
		send(t, db, t0.Add(time.Duration(i)*time.Second), presence.Active)
	}
	// 1 and 2 came back as duplicates we never sent, 3 was accepted.
	n, err := db.Settle(ctx, agentdb.Settlement{Delete: []int64{3}, Resync: 3})
	if err != nil {
		t.Fatal(err)
	}
	got := outbox(t, db)
	if n != 3 || !reflect.DeepEqual(seqs(got), []int64{5, 6, 8}) {
		t.Fatalf("n=%d outbox=%v", n, seqs(got))
	}
	if !got[2].At.Equal(t0.Add(3 * time.Second)) {
		t.Fatalf("last beat is %v", got[2].At)
	}
}

func TestTargetAndSentMark(t *testing.T) {
	ctx := context.Background()
	db := open(t, "", agentdb.Options{})
	changed, err := db.SetTarget(ctx, "https://a.example|7")
	if err != nil || !changed {
		t.Fatalf("first SetTarget = %v, %v", changed, err)
	}
	if err := db.MarkSent(ctx, 40); err != nil {
		t.Fatal(err)
	}
	if err := db.MarkSent(ctx, 10); err != nil { // never moves back
		t.Fatal(err)
	}
	if s, _ := db.SentSeq(ctx); s != 40 {
		t.Fatalf("SentSeq = %d", s)
	}
	if changed, _ := db.SetTarget(ctx, "https://a.example|7"); changed {
		t.Fatal("same target reported as changed")
	}
	if s, _ := db.SentSeq(ctx); s != 40 {
		t.Fatalf("SentSeq after same target = %d", s)
	}
	if changed, _ := db.SetTarget(ctx, "https://b.example|9"); !changed {
		t.Fatal("new target not reported")
	}
	if s, _ := db.SentSeq(ctx); s != 0 {
		t.Fatalf("SentSeq after new target = %d", s)
	}
	if v, ok, _ := db.Setting(ctx, "send_target"); !ok || v == "https://b.example|9" {
		t.Fatalf("target stored as %q (want a hash)", v)
	}
}

func TestSettings(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agent.db")
	db := open(t, path, agentdb.Options{})
	s, err := db.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (agentdb.Settings{StartAtLogin: true, Notifications: true}); s != want {
		t.Fatalf("defaults = %+v", s)
	}
	until := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	steps := []error{
		db.SetServer(ctx, "https://presence.example", "ls_dev_x"),
		db.SetIdleAfter(ctx, 7*time.Minute),
		db.SetInterval(ctx, 45*time.Second),
		db.SetStartAtLogin(ctx, false),
		db.SetMode(ctx, "pause", until),
		db.SetLocalTokens(ctx, "ls_usr_a", "ls_dev_b"),
		db.SetCountCallsAndMedia(ctx, true),
		db.SetNotifications(ctx, false),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	db.Close()
	db = open(t, path, agentdb.Options{})
	s, err = db.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := agentdb.Settings{ServerURL: "https://presence.example", DeviceToken: "ls_dev_x", IdleAfter: 7 * time.Minute,
		Interval: 45 * time.Second, StartAtLogin: false, Mode: "pause", ModeUntil: until,
		LocalUserToken: "ls_usr_a", LocalDeviceToken: "ls_dev_b", CountCallsAndMedia: true}
	if !s.ModeUntil.Equal(want.ModeUntil) {
		t.Fatalf("ModeUntil = %v", s.ModeUntil)
	}
	s.ModeUntil = want.ModeUntil
	if s != want {
		t.Fatalf("after reopen = %+v\nwant %+v", s, want)
	}
	// Back to local mode clears the token; clearing the mode's end.
	if err := db.SetServer(ctx, "", "ls_dev_x"); err != nil {
		t.Fatal(err)
	}
	if err := db.SetMode(ctx, "auto", time.Time{}); err != nil {
		t.Fatal(err)
	}
	s, _ = db.Settings(ctx)
	if s.ServerURL != "" || s.DeviceToken != "" || s.Mode != "auto" || !s.ModeUntil.IsZero() {
		t.Fatalf("after reset = %+v", s)
	}
	// A damaged value is an error naming the key, not a silent default.
	if err := db.SetSetting(ctx, agentdb.KeyInterval, "soon"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Settings(ctx); err == nil || !strings.Contains(err.Error(), agentdb.KeyInterval) {
		t.Fatalf("bad interval: %v", err)
	}
	if err := db.DeleteSetting(ctx, agentdb.KeyInterval); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := db.Setting(ctx, agentdb.KeyInterval); ok {
		t.Fatal("setting still present after delete")
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	dir := t.TempDir()
	cases := []agentdb.Options{
		{Pulse: presence.Pulse{Interval: -1}},
		{MaxOutbox: 1},
		{MaxQuarantine: -1},
	}
	for _, o := range cases {
		if db, err := agentdb.Open(filepath.Join(dir, "x.db"), o); err == nil {
			db.Close()
			t.Errorf("Open(%+v) succeeded", o)
		}
	}
	if _, err := agentdb.Open("", agentdb.Options{}); err == nil {
		t.Error("Open(\"\") succeeded")
	}
}
