//go:build !linux

package serviceload

import "os/exec"

// setChildAttrs: elsewhere a child outlives an interrupted load until its
// standard input closes (the bare server) or it is stopped by hand.
func setChildAttrs(*exec.Cmd) {}
