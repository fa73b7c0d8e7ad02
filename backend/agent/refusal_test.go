package agent

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/lastseen/lastseen/backend/presence"
)

func TestFitFacts(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	for _, tc := range []struct {
		name string
		in   *presence.Facts
		want *presence.Facts
	}{
		{"nil", nil, nil},
		{"as they are", &presence.Facts{Hostname: "desk", OS: "linux", Platform: "debian"},
			&presence.Facts{Hostname: "desk", OS: "linux", Platform: "debian"}},
		{"cut at a rune boundary", &presence.Facts{Hostname: "h" + long},
			&presence.Facts{Hostname: "h" + strings.Repeat("é", 63)}}, // 127 bytes: one more é would be 129
		{"exactly the limit", &presence.Facts{OS: strings.Repeat("x", MaxFactBytes)},
			&presence.Facts{OS: strings.Repeat("x", MaxFactBytes)}},
		{"not UTF-8", &presence.Facts{Platform: "win\xff\xfe11"}, &presence.Facts{Platform: "win\uFFFD11"}},
		{"the agent's version goes along", &presence.Facts{OS: "linux", Version: "1.4.0"},
			&presence.Facts{OS: "linux", Version: "1.4.0"}},
		{"empty", &presence.Facts{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fitFacts(tc.in)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("fitFacts = %+v, want %+v", got, tc.want)
			}
			if got != nil {
				for _, v := range []string{got.Hostname, got.OS, got.Platform, got.Version} {
					if len(v) > MaxFactBytes || !utf8.ValidString(v) {
						t.Fatalf("fact %q breaks the limits", v)
					}
				}
			}
		})
	}
}

// oldFactsCheck is how services before the per-fact check answered a batch
// whose facts were over 128 bytes or not UTF-8: the whole batch refused.
func oldFactsCheck(b presence.Batch) error {
	if f := b.Facts; f != nil {
		for _, v := range []string{f.Hostname, f.OS, f.Platform} {
			if len(v) > MaxFactBytes || !utf8.ValidString(v) {
				return errCode(presence.EINVALID, 0)
			}
		}
	}
	return nil
}

// TestOversizedFactsLoseNoBeat: a hostname over the service's limit and a
// platform that is not UTF-8 once made the service refuse every batch that
// carried them, and the agent quarantined every beat of it. The agent now
// fits the facts to the limits before sending.
func TestOversizedFactsLoseNoBeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{}, "")
		host := "build-" + strings.Repeat("é", 100)
		r.a.s.facts = &presence.Facts{Hostname: host, OS: "linux", Platform: "deb\xffian"}
		r.start()
		r.advance(5 * time.Minute)
		queued := r.outbox()
		svc := &fakeService{fail: func(_ int, b presence.Batch) error { return oldFactsCheck(b) }}
		r.setUploader(svc, "svc")
		r.idle.touch()
		r.advance(time.Minute)

		d, err := r.a.Diagnostics(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if d.QuarantineCount != 0 || d.OutboxDepth != 0 {
			t.Fatalf("quarantined %d, %d still queued: beats were lost to the facts", d.QuarantineCount, d.OutboxDepth)
		}
		if got := svc.got(); len(got) <= len(queued) || !reflect.DeepEqual(got[:len(queued)], queued) {
			t.Fatalf("service got %d beats, want the %d queued and more", len(got), len(queued))
		}
		calls := svc.callList()
		f := calls[0].batch.Facts
		if f == nil || calls[0].err != nil {
			t.Fatalf("first exchange: facts %+v, err %v", f, calls[0].err)
		}
		if len(f.Hostname) > MaxFactBytes || !strings.HasPrefix(host, f.Hostname) || f.Platform != "deb\uFFFDian" || f.OS != "linux" {
			t.Fatalf("facts sent %+v", f)
		}
	})
}

// TestBatchRefusalNeverQuarantines: a refusal of the whole batch (400) is
// not about any beat — the service lists the beats it refuses in a
// successful answer. With facts attached the agent sends again without
// them, at once; without, it retries later. No beat is quarantined for it.
func TestBatchRefusalNeverQuarantines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{}, "")
		r.a.s.facts = &presence.Facts{Hostname: "desk", OS: "linux"}
		r.start()
		r.advance(5 * time.Minute)
		queued := r.outbox()
		svc := &fakeService{fail: func(n int, b presence.Batch) error {
			switch {
			case b.Facts != nil:
				return errCode(presence.EINVALID, 0) // it will not take these facts, whatever they are
			case n == 2 || n == 3:
				return errCode(presence.EINVALID, 0) // and refuses two batches for reasons of its own
			}
			return nil
		}}
		r.setUploader(svc, "svc")
		r.idle.touch()
		r.advance(10 * time.Minute)

		d, err := r.a.Diagnostics(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if d.QuarantineCount != 0 || d.OutboxDepth != 0 {
			t.Fatalf("quarantined %d, %d still queued", d.QuarantineCount, d.OutboxDepth)
		}
		got := svc.got()
		if len(got) <= len(queued) || !reflect.DeepEqual(got[:len(queued)], queued) {
			t.Fatalf("service got %d beats, want the %d queued, in order, and more", len(got), len(queued))
		}
		for i := 1; i < len(got); i++ {
			if got[i].Seq != got[i-1].Seq+1 {
				t.Fatalf("beat %d has seq %d after %d: a beat went missing", i, got[i].Seq, got[i-1].Seq)
			}
		}
		calls := svc.callList()
		if calls[0].batch.Facts == nil || calls[1].batch.Facts != nil || !calls[1].at.Equal(calls[0].at) {
			t.Fatalf("facts refused: want the same beats again at once without them, got %+v then %+v", calls[0], calls[1])
		}
		if n := r.logs.count("sending without them"); n != 1 {
			t.Fatalf("facts refusal logged %d times", n)
		}
		if !strings.Contains(d.LastError, "invalid") {
			t.Fatalf("diagnostics last error %q", d.LastError)
		}
		if st := r.a.Status(); st.SyncError != "" {
			t.Fatalf("status error after later successes: %q", st.SyncError)
		}
	})
}
