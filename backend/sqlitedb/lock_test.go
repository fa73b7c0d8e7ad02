package sqlitedb

import (
	"errors"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func TestLock(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" && runtime.GOOS != "windows" {
		t.Skip("file locks are a no-op here")
	}
	db := filepath.Join(t.TempDir(), "x.db")
	a, err := LockShared(db, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LockShared(db, 0)
	if err != nil {
		t.Fatalf("a second shared lock (the service and an admin command): %v", err)
	}
	if l, err := LockExclusive(db); !errors.Is(err, ErrInUse) {
		l.Unlock()
		t.Fatalf("exclusive while shared is held: %v, want ErrInUse", err)
	}
	a.Unlock()
	if l, err := LockExclusive(db); !errors.Is(err, ErrInUse) {
		l.Unlock()
		t.Fatalf("exclusive while one shared lock remains: %v, want ErrInUse", err)
	}
	b.Unlock()
	x, err := LockExclusive(db)
	if err != nil {
		t.Fatalf("exclusive once every shared lock is gone: %v", err)
	}
	if l, err := LockShared(db, 0); !errors.Is(err, ErrInUse) {
		l.Unlock()
		t.Fatalf("shared while exclusive is held: %v, want ErrInUse", err)
	}
	// A shared lock waits out a restore that ends.
	done := make(chan error, 1)
	go func() {
		l, err := LockShared(db, time.Minute)
		l.Unlock()
		done <- err
	}()
	x.Unlock()
	if err := <-done; err != nil {
		t.Errorf("shared after the exclusive lock went: %v", err)
	}
	if err := x.Unlock(); err != nil {
		t.Errorf("a second Unlock: %v", err)
	}
}
