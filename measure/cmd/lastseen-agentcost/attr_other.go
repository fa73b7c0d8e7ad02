//go:build !linux

package main

import "syscall"

// childAttr: only Linux can tie a child's life to its parent's; elsewhere
// the deferred stops are all there is (and /proc, which the measurement
// reads, is Linux's anyway).
func childAttr() *syscall.SysProcAttr { return nil }
