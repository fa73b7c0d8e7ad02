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

// Why says what makes an active device count as present. An empty Why is
// what agents that predate it send: present by input.
type Why string

// The reasons a device is active.
const (
	ByInput Why = "input" // keyboard or pointer within the idle threshold
	ByCall  Why = "call"  // the microphone is in use (a call, a meeting)
	ByMedia Why = "media" // an application holds an idle inhibitor (a video)
)

// Valid reports whether w is empty or one of the reasons.
func (w Why) Valid() bool { return w == "" || w == ByInput || w == ByCall || w == ByMedia }

// Of is the reason as a span keeps it: only active spans have one, and an
// active beat without one was present by input.
func (w Why) Of(s State) Why {
	switch {
	case s != Active:
		return ""
	case w == "":
		return ByInput
	}
	return w
}
