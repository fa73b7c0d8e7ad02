package traydbus

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill the bus when the test process dies, even
// by SIGKILL or a test timeout, so no daemon outlives its test.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
