//go:build !linux

package traydbus

import "os/exec"

// dieWithParent is Linux-only; elsewhere Close stops the bus.
func dieWithParent(*exec.Cmd) {}
