//go:build unix

package sqlitedb

import (
	"errors"
	"os"
	"syscall"
)

var errWouldBlock = errors.New("lock held elsewhere")

// tryLock takes an flock(2) lock without waiting. flock locks belong to the
// open file description, so two opens in one process exclude each other
// exactly as two processes do.
func tryLock(f *os.File, exclusive bool) error {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return errWouldBlock
		}
		return err
	}
}
