//go:build !windows

package app

import (
	"os/exec"
	"syscall"
)

// detach puts the agent in a session of its own, so closing the window (or
// the terminal that launched it) sends it no hangup.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
}
