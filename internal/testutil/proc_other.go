//go:build !linux

package testutil

import "os/exec"

// DieWithTest would have the child die with the test process; only Linux
// offers that (Pdeathsig), so elsewhere the test's cleanups must stop it.
func DieWithTest(cmd *exec.Cmd) {}
