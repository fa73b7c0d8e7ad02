//go:build cgo

package agentdb

import (
	"errors"

	"github.com/mattn/go-sqlite3"
)

// sqliteDiskTrouble classifies SQLite's own error codes (see diskTrouble).
func sqliteDiskTrouble(err error) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case sqlite3.ErrFull, sqlite3.ErrReadonly, sqlite3.ErrIoErr, sqlite3.ErrCantOpen,
		sqlite3.ErrPerm, sqlite3.ErrBusy, sqlite3.ErrLocked, sqlite3.ErrProtocol, sqlite3.ErrNoLFS:
		return true
	}
	return false
}
