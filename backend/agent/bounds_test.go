package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

func TestCadenceBounds(t *testing.T) {
	tests := []struct {
		name  string
		check func(string, time.Duration) error
		d     time.Duration
		ok    bool
		text  string // in the error
	}{
		{"flag idle at the floor", CheckIdleAfter, 5 * time.Second, true, ""},
		{"flag idle below the floor", CheckIdleAfter, 4 * time.Second, false, "between 5s and 1h, not 4s"},
		{"flag idle at the ceiling", CheckIdleAfter, time.Hour, true, ""},
		{"flag idle above the ceiling", CheckIdleAfter, time.Hour + time.Second, false, "not 1h0m1s"},
		{"settings idle at the floor", CheckSettingsIdleAfter, time.Minute, true, ""},
		{"settings idle below the floor", CheckSettingsIdleAfter, 59 * time.Second, false, "between 1m and 1h, not 59s"},
		{"settings idle at the ceiling", CheckSettingsIdleAfter, time.Hour, true, ""},
		{"settings idle above the ceiling", CheckSettingsIdleAfter, 61 * time.Minute, false, "not 1h1m"},
		{"interval at the floor", CheckInterval, 10 * time.Second, true, ""},
		{"interval below the floor", CheckInterval, 9 * time.Second, false, "between 10s and 5m, not 9s"},
		{"interval at the ceiling", CheckInterval, 5 * time.Minute, true, ""},
		{"interval above the ceiling", CheckInterval, 5*time.Minute + time.Second, false, "not 5m1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.check("the field", tt.d)
			if tt.ok {
				if err != nil {
					t.Fatalf("%s refused: %v", tt.d, err)
				}
				return
			}
			if presence.ErrorCode(err) != presence.EINVALID {
				t.Fatalf("%s: err %v, want EINVALID", tt.d, err)
			}
			if msg := presence.ErrorMessage(err); !strings.HasPrefix(msg, "the field must be") || !strings.Contains(msg, tt.text) {
				t.Fatalf("message %q, want it to name the field and say %q", msg, tt.text)
			}
		})
	}
}

// The defaults sit inside every bound, so a fresh install passes whichever
// check its settings meet first.
func TestDefaultsWithinBounds(t *testing.T) {
	d := DefaultConfig()
	for _, err := range []error{
		CheckIdleAfter("idle", d.IdleAfter), CheckSettingsIdleAfter("idle", d.IdleAfter), CheckInterval("interval", d.Interval),
	} {
		if err != nil {
			t.Error(err)
		}
	}
}
