package main

import "runtime/debug"

// defaultGCPercent is the garbage collector's target the service runs with
// unless GOGC says otherwise: the heap may grow to three times what is
// live (Go's default is twice) before a collection.
//
// Why: a heartbeat's life is a burst of small, short-lived allocations
// (the request, its JSON, the fold, the answer), and at the default
// target the collector took a tenth of the CPU under load. Measured with
// the load command on two cores, from outside, as shipped otherwise: 32
// connections went from 0.43–0.45× the bare handler to 0.48–0.50×, 64
// from 0.53–0.55× to 0.58–0.60×. What it costs is a larger heap between
// collections; the service's live heap is small (tens of MB for
// thousands of devices and streams), so tens of MB more at most. GOGC
// and GOMEMLIMIT still win, for whoever must trade back.
const defaultGCPercent = 200

// tuneGC applies defaultGCPercent unless the environment chose.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}
