package testutil

import (
	"fmt"
	"testing"
	"time"
)

// Poll backs off from firstPoll to maxPoll between tries: quick for what is
// nearly there, gentle on the CPU for what takes seconds (a window to show,
// a cluster to start) and on conditions that cost a process to check.
const (
	firstPoll = 2 * time.Millisecond
	maxPoll   = 100 * time.Millisecond
)

// Poll calls try until it returns nil or timeout passes, and returns how
// long that took. On timeout the error names what was waited for and wraps
// try's last error. It suits goroutines that must not fail the test
// themselves and helpers that report through their own error.
func Poll(what string, timeout time.Duration, try func() error) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	pause := firstPoll
	for {
		err := try()
		if err == nil {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return time.Since(start), fmt.Errorf("waited %v for %s: %w", timeout, what, err)
		}
		time.Sleep(pause)
		pause = min(2*pause, maxPoll)
	}
}

// errNotYet is what a bool condition that does not hold yet reports.
var errNotYet = fmt.Errorf("condition still false")

// WaitUntil polls cond until it holds and returns how long that took; once
// timeout passes it fails t, saying what it waited for.
func WaitUntil(t testing.TB, what string, timeout time.Duration, cond func() bool) time.Duration {
	t.Helper()
	took, err := Poll(what, timeout, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
	if err != nil {
		t.Fatalf("waited %v for %s", timeout, what)
	}
	return took
}

// WaitNoError polls try until it returns nil and returns how long that
// took; once timeout passes it fails t with what it waited for and try's
// last error. Use it where the error says why it is not ready yet (a
// D-Bus object not exported, a server not listening).
func WaitNoError(t testing.TB, what string, timeout time.Duration, try func() error) time.Duration {
	t.Helper()
	took, err := Poll(what, timeout, try)
	if err != nil {
		t.Fatal(err)
	}
	return took
}
