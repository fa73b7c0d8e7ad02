package presence

import (
	"strings"
	"testing"
	"time"
)

func TestBeatValidate(t *testing.T) {
	now := t0
	tests := []struct {
		name string
		beat Beat
		want string // substring of the error, "" for valid
	}{
		{"valid", Beat{Seq: 1, At: now, State: Active}, ""},
		{"a week old is fine (replayed outbox)", Beat{Seq: 1, At: now.Add(-7 * 24 * time.Hour), State: Idle}, ""},
		{"a minute in the future is jitter", Beat{Seq: 1, At: now.Add(time.Minute), State: Active}, ""},
		{"zero seq", Beat{Seq: 0, At: now, State: Active}, "seq"},
		{"negative seq", Beat{Seq: -4, At: now, State: Active}, "seq"},
		{"seq 2^53 is the last one", Beat{Seq: MaxSeq, At: now, State: Active}, ""},
		{"seq past 2^53", Beat{Seq: MaxSeq + 1, At: now, State: Active}, "at most 2^53"},
		{"seq 2^63-1", Beat{Seq: 1<<63 - 1, At: now, State: Active}, "at most 2^53"},
		{"unknown state", Beat{Seq: 1, At: now, State: "busy"}, `unknown state "busy"`},
		{"empty state", Beat{Seq: 1, At: now}, "unknown state"},
		{"missing time", Beat{Seq: 1, State: Active}, "at is required"},
		{"negative idle", Beat{Seq: 1, At: now, State: Idle, IdleS: -1}, "idle_s"},
		{"a year old", Beat{Seq: 1, At: now.AddDate(-1, 0, 0), State: Active}, "older than"},
		{"an hour in the future", Beat{Seq: 1, At: now.Add(time.Hour), State: Active}, "1h0m0s in the future"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.beat.Validate(now, DefaultLimits)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("no error, want %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("error %q, want it to mention %q", err, tt.want)
			case err != nil && ErrorCode(err) != EINVALID:
				t.Fatalf("code %q, want %q", ErrorCode(err), EINVALID)
			}
		})
	}
}

func TestSkew(t *testing.T) {
	tol := 5 * time.Second
	tests := []struct {
		name       string
		sent, recv time.Time
		want       time.Duration
	}{
		{"in step", t0, t0, 0},
		{"network latency is not skew", t0, t0.Add(300 * time.Millisecond), 0},
		{"device ten minutes fast", t0.Add(10 * time.Minute), t0, -10 * time.Minute},
		{"device two minutes slow", t0.Add(-2 * time.Minute), t0, 2 * time.Minute},
		{"no sent_at, no shift", time.Time{}, t0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Skew(tt.sent, tt.recv, tol); got != tt.want {
				t.Fatalf("Skew = %v, want %v", got, tt.want)
			}
		})
	}
}

// A device whose clock runs ten minutes fast still yields true spans: the
// batch is shifted back by the offset its sent_at reveals.
func TestPrepareBatchFastClockYieldsTrueSpans(t *testing.T) {
	fast := 10 * time.Minute
	received := at(120)
	beats := []Beat{
		{Seq: 1, At: at(0).Add(fast), State: Active},
		{Seq: 2, At: at(30).Add(fast), State: Active},
		{Seq: 3, At: at(60).Add(fast), State: Idle},
	}
	// Unshifted, these beats are 8 minutes in the future and would be refused.
	valid, rejected := PrepareBatch(received.Add(fast), beats, received, DefaultLimits)
	if len(rejected) != 0 {
		t.Fatalf("rejected %+v", rejected)
	}
	spans := replay(valid, DefaultPulse.Window())
	if len(spans) != 2 || !spans[0].Start.Equal(at(0)) || !spans[0].End.Equal(at(60)) || !spans[1].Start.Equal(at(60)) {
		t.Fatalf("spans %+v, want active 0..60 then idle from 60", spans)
	}
	if spans[0].Duration() != time.Minute {
		t.Fatalf("duration %v, want 1m", spans[0].Duration())
	}
}

func TestPrepareBatchRejectsOneByOne(t *testing.T) {
	now := t0
	beats := []Beat{
		{Seq: 3, At: now.Add(-time.Second), State: Active},
		{Seq: 1, At: now.AddDate(-1, 0, 0), State: Active}, // a year old
		{Seq: 2, At: now.Add(time.Hour), State: Active},    // an hour ahead
		{Seq: 4, At: now, State: "nap"},
		{Seq: 5, At: now, State: Active},
		{Seq: 5, At: now, State: Active}, // repeated in the batch
		{Seq: 0, At: now, State: Idle},
	}
	valid, rejected := PrepareBatch(now, beats, now, DefaultLimits)
	if len(valid) != 2 || valid[0].Seq != 3 || valid[1].Seq != 5 {
		t.Fatalf("valid %+v, want seqs 3 and 5 in order", valid)
	}
	bySeq := map[int64]string{}
	for _, r := range rejected {
		bySeq[r.Seq] += r.Error
	}
	for seq, want := range map[int64]string{1: "older than", 2: "future", 4: "unknown state", 5: "repeated", 0: "seq"} {
		if !strings.Contains(bySeq[seq], want) {
			t.Errorf("seq %d: rejection %q, want it to mention %q", seq, bySeq[seq], want)
		}
	}
	for _, b := range valid {
		if b.At.Location() != time.UTC {
			t.Errorf("beat %d not normalised to UTC", b.Seq)
		}
	}
}
