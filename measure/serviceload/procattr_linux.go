package serviceload

import (
	"os/exec"
	"syscall"
)

// setChildAttrs makes the kernel kill a child server when the load dies,
// so an interrupted run leaves no service behind.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
