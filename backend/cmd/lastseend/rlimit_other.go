//go:build !unix

package main

// openFileLimit is unknown here: serve falls back to a fixed cap.
func openFileLimit() (uint64, bool) { return 0, false }
