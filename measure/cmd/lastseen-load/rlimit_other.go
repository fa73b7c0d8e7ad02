//go:build !unix

package main

import "math"

// raiseFileLimit has nothing to raise where there is no RLIMIT_NOFILE.
func raiseFileLimit() (soft, hard uint64, err error) { return math.MaxUint64, math.MaxUint64, nil }
