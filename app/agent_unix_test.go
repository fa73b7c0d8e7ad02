//go:build linux || darwin

package app

import (
	"syscall"
	"testing"
)

func checkOwnSession(t *testing.T, pid int) {
	t.Helper()
	sid, _, errno := syscall.RawSyscall(syscall.SYS_GETSID, uintptr(pid), 0, 0)
	if errno != 0 {
		t.Fatalf("getsid(%d): %v", pid, errno)
	}
	if int(sid) != pid {
		t.Errorf("agent session id %d, want its own (%d)", sid, pid)
	}
}
