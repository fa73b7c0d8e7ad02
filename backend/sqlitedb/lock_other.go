//go:build !unix && !windows

package sqlitedb

import (
	"errors"
	"os"
)

var errWouldBlock = errors.New("lock held elsewhere")

// tryLock is a no-op where the system offers no file locks.
func tryLock(*os.File, bool) error { return nil }
