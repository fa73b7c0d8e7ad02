package agent

import (
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/lastseen/lastseen/backend/presence"
)

func TestRealState(t *testing.T) {
	const th = 5 * time.Minute
	tests := []struct {
		name      string
		locked    bool
		idleKnown bool
		idle      time.Duration
		want      presence.State
	}{
		{"fresh input", false, true, 0, presence.Active},
		{"just under threshold", false, true, th - time.Second, presence.Active},
		{"at threshold", false, true, th, presence.Idle},
		{"long idle", false, true, 3 * time.Hour, presence.Idle},
		{"locked beats input", true, true, 0, presence.Away},
		{"locked and idle", true, true, time.Hour, presence.Away},
		{"idle unreadable: never active", false, false, 0, presence.Away},
	}
	for _, tt := range tests {
		if got := realState(tt.locked, tt.idleKnown, tt.idle, th); got != tt.want {
			t.Errorf("%s: realState = %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestDecide(t *testing.T) {
	A, I, W, O := presence.Active, presence.Idle, presence.Away, presence.Offline
	tests := []struct {
		mode       Mode
		real       presence.State
		suspended  bool
		local, snd presence.State
	}{
		{Automatic, A, false, A, A},
		{Automatic, I, false, I, I},
		{Automatic, W, false, W, W},
		{Automatic, A, true, O, O},
		{Online, I, false, I, A},
		{Online, W, false, W, A}, // "active while running", locked or not
		{Online, A, true, O, O},  // but not while asleep
		{Away, A, false, A, W},
		{Away, I, false, I, W},
		{Invisible, A, false, A, O},
		{Invisible, I, false, I, O},
		{Invisible, A, true, O, O},
		{Pause, A, false, O, O},
		{Pause, W, false, O, O},
	}
	for _, tt := range tests {
		local, snd := decide(tt.mode, tt.real, tt.suspended)
		if local != tt.local || snd != tt.snd {
			t.Errorf("decide(%s, %s, suspended=%v) = (%s, %s), want (%s, %s)",
				tt.mode, tt.real, tt.suspended, local, snd, tt.local, tt.snd)
		}
	}
}

func TestParseMode(t *testing.T) {
	for _, s := range []string{"auto", "online", "away", "invisible", "pause"} {
		if m, err := ParseMode(s); err != nil || string(m) != s {
			t.Errorf("ParseMode(%q) = %q, %v", s, m, err)
		}
	}
	for _, s := range []string{"", "Auto", "busy", "dnd"} {
		if _, err := ParseMode(s); presence.ErrorCode(err) != presence.EINVALID {
			t.Errorf("ParseMode(%q) err = %v", s, err)
		}
	}
}

func TestNextMidnight(t *testing.T) {
	// time/tzdata is embedded in the test binary: this runs without a zone
	// database on the machine.
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ in, want time.Time }{
		{time.Date(2026, 11, 25, 13, 0, 0, 0, paris), time.Date(2026, 11, 26, 0, 0, 0, 0, paris)},
		{time.Date(2026, 11, 25, 0, 0, 0, 0, paris), time.Date(2026, 11, 26, 0, 0, 0, 0, paris)},
		{time.Date(2026, 12, 31, 23, 59, 0, 0, paris), time.Date(2027, 1, 1, 0, 0, 0, 0, paris)},
		// The night the clocks go back is 25 hours long.
		{time.Date(2026, 10, 24, 12, 0, 0, 0, paris), time.Date(2026, 10, 25, 0, 0, 0, 0, paris)},
	}
	for _, tt := range tests {
		if got := NextMidnight(tt.in); !got.Equal(tt.want) {
			t.Errorf("NextMidnight(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if got := (Config{}).WithDefaults(); got != DefaultConfig() {
		t.Fatalf("zero WithDefaults = %+v", got)
	}
	bad := []func(*Config){
		func(c *Config) { c.IdleAfter = MinIdleAfter - time.Second },
		func(c *Config) { c.IdleAfter = 61 * time.Minute },
		func(c *Config) { c.Interval = 5 * time.Second },
		func(c *Config) { c.Interval = 6 * time.Minute },
		func(c *Config) { c.Jitter = 0.6 },
		func(c *Config) { c.Jitter = -0.1 },
		func(c *Config) { c.Tick = 500 * time.Millisecond }, // > 2 wakeups a second
		func(c *Config) { c.FinalDeadline = time.Minute },
		func(c *Config) { c.BatchSize = 1001 },
		func(c *Config) { c.BackoffMax = time.Millisecond },
		func(c *Config) { c.BackoffMin = -time.Second },
		func(c *Config) { c.IdleErrorGrace = -1 },
	}
	for i, f := range bad {
		c := DefaultConfig()
		f(&c)
		if err := c.Validate(); presence.ErrorCode(err) != presence.EINVALID {
			t.Errorf("case %d (%+v): Validate = %v", i, c, err)
		}
	}
}

func TestJitteredWithinTenPercent(t *testing.T) {
	d := 30 * time.Second
	for _, r := range []float64{0, 0.25, 0.5, 0.75, 0.999999} {
		got := jittered(d, 0.1, r)
		if got < 27*time.Second || got > 33*time.Second {
			t.Errorf("jittered(30s, r=%v) = %v", r, got)
		}
	}
	if lo, hi := jittered(d, 0.1, 0), jittered(d, 0.1, 0.999999); hi-lo < 5900*time.Millisecond {
		t.Errorf("jitter spread %v..%v too narrow", lo, hi)
	}
}

func TestBackoffDelay(t *testing.T) {
	lo, hi := time.Second, 5*time.Minute
	wantCeil := []time.Duration{1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300}
	for i, c := range wantCeil {
		n := i + 1
		if got := backoffDelay(n, lo, hi, 0); got != lo {
			t.Errorf("n=%d r=0: %v, want %v", n, got, lo)
		}
		if got := backoffDelay(n, lo, hi, 0.999999999); got < c*time.Second-time.Millisecond || got > c*time.Second {
			t.Errorf("n=%d r≈1: %v, want ≈%v", n, got, c*time.Second)
		}
	}
	if got := backoffDelay(1000, lo, hi, 0.5); got > hi || got < lo {
		t.Errorf("n=1000: %v", got)
	}
}
