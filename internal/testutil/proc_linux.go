package testutil

import (
	"os/exec"
	"syscall"
)

// DieWithTest has the kernel kill cmd's process when the test process dies:
// a test binary that panics on -timeout runs no cleanups, and an X server,
// a bus or an agent must not outlive it. Call it before cmd.Start.
func DieWithTest(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
