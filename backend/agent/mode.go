package agent

import (
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// Mode is the user's manual choice (the tray and dashboard menu).
type Mode string

// Modes.
const (
	Automatic Mode = "auto"      // the state follows the machine
	Online    Mode = "online"    // "appear online": active while the agent runs
	Away      Mode = "away"      // "appear away"
	Invisible Mode = "invisible" // one offline beat, then nothing sent; history keeps recording
	Pause     Mode = "pause"     // offline, nothing recorded, back to Automatic at Until
)

// MaxPause is the longest pause SetMode accepts: a pause is a break, not a
// way to forget the agent is off.
const MaxPause = 7 * 24 * time.Hour

// ParseMode returns the mode named s, or an EINVALID error.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Automatic, Online, Away, Invisible, Pause:
		return m, nil
	}
	return "", presence.Errorf(presence.EINVALID, "unknown mode %q (want auto, online, away, invisible or pause)", s)
}

// NextMidnight is the first midnight after t in t's location: the end of a
// "pause until tomorrow".
func NextMidnight(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, t.Location())
}

// decide maps the machine's real state and the mode to what local history
// records and what the service is told. Offline in either means "nothing
// more after this beat".
func decide(mode Mode, real presence.State, suspended bool) (local, send presence.State) {
	if suspended {
		// Asleep or logged out: the machine is not running, whatever the mode.
		return presence.Offline, presence.Offline
	}
	switch mode {
	case Online:
		return real, presence.Active
	case Away:
		return real, presence.Away
	case Invisible:
		return real, presence.Offline
	case Pause:
		return presence.Offline, presence.Offline
	}
	return real, real
}

// realState is the machine's own state (DESIGN §2): locked ⇒ away; input
// older than the threshold ⇒ idle; else active. idleKnown is false when the
// idle time cannot be read (see Config.IdleErrorGrace): the agent then says
// away, never active.
func realState(locked, idleKnown bool, idle, idleAfter time.Duration) presence.State {
	switch {
	case locked:
		return presence.Away
	case !idleKnown:
		return presence.Away
	case idle >= idleAfter:
		return presence.Idle
	}
	return presence.Active
}
