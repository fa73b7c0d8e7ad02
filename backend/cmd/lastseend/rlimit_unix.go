//go:build unix

package main

import "syscall"

// openFileLimit is the process's soft limit on open descriptors (which Go
// raises to the hard limit at start on Linux), false when unknown.
func openFileLimit() (uint64, bool) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur == 0 {
		return 0, false
	}
	return uint64(r.Cur), true
}
