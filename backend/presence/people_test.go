package presence

import (
	"strings"
	"testing"
	"time"
)

func TestPairingPoll(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	fresh := Pairing{State: PairingPending, Interval: PairingInterval, CreatedAt: t0, ExpiresAt: at(PairingTTL)}
	with := func(state PairingState, lastPoll time.Duration, interval time.Duration) Pairing {
		p := fresh
		p.State, p.Interval = state, interval
		if lastPoll >= 0 {
			p.LastPoll = at(lastPoll)
		}
		return p
	}
	const never = -1
	step := PairingInterval
	for _, c := range []struct {
		name         string
		p            Pairing
		now          time.Duration
		want         PollOutcome
		state        PairingState
		interval     time.Duration
		lastPollMove bool
	}{
		{"first poll, pending", with(PairingPending, never, step), 0, PollPending, PairingPending, step, true},
		{"on time, pending", with(PairingPending, 0, step), step, PollPending, PairingPending, step, true},
		{"too soon: slow down", with(PairingPending, 0, step), step - time.Nanosecond, PollSlowDown, PairingPending, 2 * step, true},
		{"too soon after a slow down", with(PairingPending, 0, 2*step), step, PollSlowDown, PairingPending, 3 * step, true},
		{"on time after a slow down", with(PairingPending, 0, 2*step), 2 * step, PollPending, PairingPending, 2 * step, true},
		{"approved: the token is issued", with(PairingApproved, 0, step), step, PollApproved, PairingDone, step, true},
		{"approved, first poll", with(PairingApproved, never, step), time.Minute, PollApproved, PairingDone, step, true},
		{"approved but too soon: slow down first", with(PairingApproved, 0, step), time.Second, PollSlowDown, PairingApproved, 2 * step, true},
		{"denied", with(PairingDenied, 0, step), step, PollDenied, PairingDenied, step, true},
		{"denied, too soon", with(PairingDenied, 0, step), time.Second, PollSlowDown, PairingDenied, 2 * step, true},
		{"done: spent", with(PairingDone, 0, step), step, PollExpired, PairingDone, step, true},
		{"expired, pending", with(PairingPending, 0, step), PairingTTL, PollExpired, PairingPending, step, false},
		{"expiry beats approval", with(PairingApproved, 0, step), PairingTTL, PollExpired, PairingApproved, step, false},
		{"expiry beats slow down", with(PairingApproved, PairingTTL-time.Second, step), PairingTTL, PollExpired, PairingApproved, step, false},
		{"a nanosecond before expiry", with(PairingApproved, never, step), PairingTTL - time.Nanosecond, PollApproved, PairingDone, step, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			now := at(c.now)
			got, next := c.p.Poll(now)
			if got != c.want || next.State != c.state || next.Interval != c.interval {
				t.Errorf("Poll = %s, state %s, interval %v; want %s, %s, %v", got, next.State, next.Interval, c.want, c.state, c.interval)
			}
			if c.lastPollMove && !next.LastPoll.Equal(now) {
				t.Errorf("last poll = %v, want %v", next.LastPoll, now)
			}
			if !c.lastPollMove && !next.LastPoll.Equal(c.p.LastPoll) {
				t.Errorf("last poll moved to %v on an expired pairing", next.LastPoll)
			}
			if next.ExpiresAt != c.p.ExpiresAt || next.CreatedAt != c.p.CreatedAt {
				t.Errorf("Poll changed the pairing's times: %+v", next)
			}
		})
	}
}

func TestNormalizeUserCode(t *testing.T) {
	for _, c := range []struct {
		in, want string
		ok       bool
	}{
		{"BCDFGHJK", "BCDFGHJK", true},
		{"BCDF-GHJK", "BCDFGHJK", true},
		{"bcdf-ghjk", "BCDFGHJK", true},
		{" bcdf ghjk ", "BCDFGHJK", true},
		{"b-c-d-f-g-h-j-k", "BCDFGHJK", true},
		{"ZXWVTSRQ", "ZXWVTSRQ", true},
		{"", "", false},
		{"BCDFGHJ", "", false},    // too short
		{"BCDFGHJKL", "", false},  // too long
		{"ABCDFGHJ", "", false},   // a vowel
		{"BCDFGHJ1", "", false},   // a digit
		{"BCDF_GHJK", "", false},  // not a separator
		{"BCDF\tGHJK", "", false}, // nor is a tab
		{"BCDFGHJÉ", "", false},
		{"ＢCDFGHJK", "", false}, // a full-width letter
	} {
		got, err := NormalizeUserCode(c.in)
		if c.ok && (err != nil || got != c.want) {
			t.Errorf("NormalizeUserCode(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
		if !c.ok && (err == nil || ErrorCode(err) != EINVALID) {
			t.Errorf("NormalizeUserCode(%q) = %q, %v; want EINVALID", c.in, got, err)
		}
	}
}

func TestNewUserCode(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		c := NewUserCode()
		if got, err := NormalizeUserCode(c); err != nil || got != c {
			t.Fatalf("NewUserCode() = %q, not canonical (%q, %v)", c, got, err)
		}
		if d := DisplayUserCode(c); len(d) != UserCodeLen+1 || d[4] != '-' || strings.ReplaceAll(d, "-", "") != c {
			t.Errorf("DisplayUserCode(%q) = %q", c, d)
		}
		seen[c] = true
	}
	if len(seen) < 199 {
		t.Errorf("200 codes drawn, only %d distinct", len(seen))
	}
}

func TestNewSecret(t *testing.T) {
	s, h := NewSecret(LinkPrefix)
	if !strings.HasPrefix(s, LinkPrefix) || len(s) != len(LinkPrefix)+43 || !HashesEqual(h, HashToken(s)) {
		t.Errorf("NewSecret = %q, hash %x", s, h)
	}
	if s2, _ := NewSecret(LinkPrefix); s2 == s {
		t.Error("two secrets are equal")
	}
}
