package agent

import (
	"strings"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// The agent's cadence bounds, written down once: the command line, the local
// API's settings and Config.Validate all check against them.
const (
	// MinIdleAfter is the shortest idle threshold the agent runs with. Only
	// the command line goes this low, for kiosks and end-to-end tests.
	MinIdleAfter = 5 * time.Second
	// MinSettingsIdleAfter is the shortest idle threshold the dashboard's
	// settings offer (DESIGN §2: 1–60 minutes).
	MinSettingsIdleAfter = time.Minute
	// MaxIdleAfter is the longest idle threshold, from any source.
	MaxIdleAfter = time.Hour
	// MinInterval and MaxInterval bound the beat interval, from any source.
	MinInterval = 10 * time.Second
	MaxInterval = 5 * time.Minute
)

// CheckIdleAfter checks an idle threshold given on the command line or in
// Config (MinIdleAfter to MaxIdleAfter); field names it in the error.
func CheckIdleAfter(field string, d time.Duration) error {
	return checkBetween(field, d, MinIdleAfter, MaxIdleAfter)
}

// CheckSettingsIdleAfter checks an idle threshold from the dashboard's
// settings (MinSettingsIdleAfter to MaxIdleAfter).
func CheckSettingsIdleAfter(field string, d time.Duration) error {
	return checkBetween(field, d, MinSettingsIdleAfter, MaxIdleAfter)
}

// CheckInterval checks a beat interval from any source (MinInterval to
// MaxInterval).
func CheckInterval(field string, d time.Duration) error {
	return checkBetween(field, d, MinInterval, MaxInterval)
}

func checkBetween(field string, d, lo, hi time.Duration) error {
	if d < lo || d > hi {
		return presence.Errorf(presence.EINVALID, "%s must be between %s and %s, not %s",
			field, shortDuration(lo), shortDuration(hi), shortDuration(d))
	}
	return nil
}

// shortDuration drops the zero units time.Duration.String spells out: "1h",
// "5m", "1m30s" rather than "1h0m0s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
