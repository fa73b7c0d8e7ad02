package main

import "syscall"

// childAttr makes the kernel stop a measured process if this one dies, so
// an interrupted run leaves no agent or X server behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
