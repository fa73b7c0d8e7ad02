package app

import (
	"os/exec"
	"syscall"

	"golang.org/x/sys/windows"
)

// detach starts the agent without a console and outside our process group,
// so it outlives the window and never flashes a terminal.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{
		CreationFlags: windows.DETACHED_PROCESS | windows.CREATE_NEW_PROCESS_GROUP,
		HideWindow:    true,
	}
}
