package sqlitedb

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// ErrInUse is the refusal of an exclusive Lock while something holds the
// database open (a running service, an admin command), or of a shared one
// while a restore replaces the file.
var ErrInUse = errors.New("the database is in use")

// LockSuffix names the lock file beside a database: "lastseen.db.lock".
const LockSuffix = ".lock"

// Lock is an advisory lock on the lock file beside a database. Every store
// holds it shared for as long as it has the database open, so any number of
// them (the service and the admin commands) run side by side; a restore
// takes it exclusive, so it can neither replace a file in use nor be
// opened half replaced.
//
// A lock file rather than SQLite's own locks: in WAL mode an open but
// quiet connection holds no lock a probe could see, and "BEGIN EXCLUSIVE"
// does not even keep readers out. The lock belongs to the open file, so it
// goes with the process however it ends (kill -9 included): a stale lock
// file never blocks anyone. Where the system has no such locks the lock
// is a no-op.
type Lock struct {
	f *os.File
}

// lockPoll is how often a waiting LockShared tries again.
const lockPoll = 20 * time.Millisecond

// LockShared takes the database's lock shared, waiting up to wait while a
// restore holds it exclusive.
func LockShared(dbPath string, wait time.Duration) (*Lock, error) {
	f, err := openLockFile(dbPath)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	for {
		err := tryLock(f, false)
		if err == nil {
			return &Lock{f: f}, nil
		}
		if !errors.Is(err, errWouldBlock) || time.Now().After(deadline) {
			f.Close()
			if errors.Is(err, errWouldBlock) {
				return nil, fmt.Errorf("open %s: %w: a restore is replacing it", dbPath, ErrInUse)
			}
			return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		time.Sleep(lockPoll)
	}
}

// LockExclusive takes the database's lock exclusive, or fails at once with
// ErrInUse while anybody holds it.
func LockExclusive(dbPath string) (*Lock, error) {
	f, err := openLockFile(dbPath)
	if err != nil {
		return nil, err
	}
	if err := tryLock(f, true); err != nil {
		f.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, fmt.Errorf("%s: %w: a service or command has it open", dbPath, ErrInUse)
		}
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return &Lock{f: f}, nil
}

// Unlock releases the lock. The lock file stays: removing it could let two
// processes lock two different files of the same name.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the file releases its lock
	l.f = nil
	if err != nil {
		return fmt.Errorf("release database lock: %w", err)
	}
	return nil
}

func openLockFile(dbPath string) (*os.File, error) {
	// No MkdirAll: a missing directory is the caller's mistake (Open says so).
	f, err := os.OpenFile(dbPath+LockSuffix, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dbPath, err)
	}
	return f, nil
}
