package presence

import "fmt"

// State is what a device (or a user, over their devices) is doing.
type State string

// The states, highest precedence first (DESIGN §2).
const (
	Active  State = "active"  // input within the idle threshold
	Idle    State = "idle"    // no input for at least the threshold, screen unlocked
	Away    State = "away"    // screen locked, or the user chose "appear away"
	Offline State = "offline" // asleep, shut down, quit, invisible, or silent past the TTL
)

// States lists every state, highest precedence first.
var States = []State{Active, Idle, Away, Offline}

// Precedence orders states: a user's state over many devices is the one with
// the highest precedence. Unknown states rank below offline.
func (s State) Precedence() int {
	switch s {
	case Active:
		return 3
	case Idle:
		return 2
	case Away:
		return 1
	case Offline:
		return 0
	}
	return -1
}

// Valid reports whether s is one of the four states.
func (s State) Valid() bool { return s.Precedence() >= 0 }

// Online reports whether the state counts as "online" for the public status:
// a user who is at the machine or merely idle at it.
func (s State) Online() bool { return s == Active || s == Idle }

// ParseState returns the State named by s, or an EINVALID error.
func ParseState(s string) (State, error) {
	st := State(s)
	if !st.Valid() {
		return "", Errorf(EINVALID, "unknown state %q (want active, idle, away or offline)", s)
	}
	return st, nil
}

// Highest returns the state of highest precedence, Offline for none.
func Highest(states ...State) State {
	best := Offline
	for _, s := range states {
		if s.Precedence() > best.Precedence() {
			best = s
		}
	}
	return best
}

func (s State) String() string { return string(s) }

// GoString keeps %#v readable in test failures.
func (s State) GoString() string { return fmt.Sprintf("presence.State(%q)", string(s)) }

// Why says what makes a device count as present when active, or (for away)
// what took it away. An empty Why is what agents that predate it send:
// present by input when active, away for no told reason (idle for long,
// "appear away") otherwise.
type Why string

// The reasons a device is active, and the one reason an away state names.
const (
	ByInput Why = "input"  // keyboard or pointer within the idle threshold
	ByCall  Why = "call"   // the microphone is in use (a call, a meeting)
	ByMedia Why = "media"  // an application holds an idle inhibitor (a video)
	ByLock  Why = "locked" // away: the screen locked
)

// Valid reports whether w is empty or one of the reasons, for any state.
// ValidFor says whether it fits a given state.
func (w Why) Valid() bool {
	return w == "" || w == ByInput || w == ByCall || w == ByMedia || w == ByLock
}

// ValidFor reports whether w may come with state s: a known reason, and
// "locked" only with away. The active reasons on another state are
// accepted and ignored (Of drops them), as they always were.
func (w Why) ValidFor(s State) bool {
	return w.Valid() && (w != ByLock || s == Away)
}

// Of is the reason as a span keeps it: an active span has one (an active
// beat without one was present by input), an away span keeps "locked",
// every other state has none.
func (w Why) Of(s State) Why {
	switch {
	case s == Active && (w == "" || w == ByLock):
		return ByInput
	case s == Active:
		return w
	case s == Away && w == ByLock:
		return w
	}
	return ""
}

// EndReason says why a span ended with nothing after it: what the device's
// final (offline) beat gave as its reason, or Silence when no final beat
// came. A span ended by a change of state has none.
type EndReason string

// The reasons a device goes offline. An offline beat carries one of the
// first five; Silence is the service's own finding.
const (
	EndSleep     EndReason = "sleep"     // the machine went to sleep
	EndShutdown  EndReason = "shutdown"  // the machine shut down or the user logged off
	EndQuit      EndReason = "quit"      // the agent was quit
	EndPaused    EndReason = "paused"    // the user paused tracking
	EndInvisible EndReason = "invisible" // the user went invisible
	// EndSilence: the device fell silent with no final beat (a crash, power
	// lost, the network gone with nothing replayed): its span was closed by
	// a gap, or expired.
	EndSilence EndReason = "silence"
)

// BeatValid reports whether r may come with an offline beat: empty (an
// agent that predates reasons) or one of the five an agent can tell.
func (r EndReason) BeatValid() bool {
	switch r {
	case "", EndSleep, EndShutdown, EndQuit, EndPaused, EndInvisible:
		return true
	}
	return false
}

// Valid reports whether r may end a span: a beat's reason or Silence.
func (r EndReason) Valid() bool { return r == EndSilence || r.BeatValid() }

// Of is the reason a beat of state s carries into the fold: its own on an
// offline beat, none on any other (a reason there is ignored).
func (r EndReason) Of(s State) EndReason {
	if s != Offline {
		return ""
	}
	return r
}
