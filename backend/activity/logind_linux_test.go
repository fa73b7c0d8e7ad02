package activity

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"
)

// loginService answers the few org.freedesktop.login1.Manager calls the
// watcher makes. Signals and properties travel over a real bus daemon, so
// what is under test is our subscription, parsing and inhibitor handling.
type loginService struct {
	mu       sync.Mutex
	sessions map[string]dbus.ObjectPath // by id
	inhibits []inhibitCall
}

type inhibitCall struct {
	what, mode string
	r, w       *os.File // w is handed out; r sees EOF once every copy of w is closed
}

func (l *loginService) GetSession(id string) (dbus.ObjectPath, *dbus.Error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p, ok := l.sessions[id]; ok {
		return p, nil
	}
	return "", dbus.NewError("org.freedesktop.login1.NoSuchSession", []any{"No session '" + id + "' known"})
}

func (l *loginService) GetSessionByPID(pid uint32) (dbus.ObjectPath, *dbus.Error) {
	return "", dbus.NewError("org.freedesktop.login1.NoSessionForPID", []any{"PID does not belong to any known session"})
}

func (l *loginService) Inhibit(what, who, why, mode string) (dbus.UnixFD, *dbus.Error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, dbus.MakeFailedError(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inhibits = append(l.inhibits, inhibitCall{what: what, mode: mode, r: r, w: w})
	return dbus.UnixFD(w.Fd()), nil
}

// handedOut closes the service's own copy of the n-th inhibitor descriptor
// (once the client holds its copy) and returns the lock as the service
// sees it.
func (l *loginService) handedOut(t *testing.T, n int) *heldLock {
	t.Helper()
	l.mu.Lock()
	if len(l.inhibits) <= n {
		l.mu.Unlock()
		t.Fatalf("Inhibit called %d times, want at least %d", len(l.inhibits), n+1)
	}
	c := l.inhibits[n]
	l.mu.Unlock()
	if c.what != "sleep" || c.mode != "delay" {
		t.Errorf("Inhibit(%q, %q), want a sleep delay lock", c.what, c.mode)
	}
	c.w.Close()
	t.Cleanup(func() { c.r.Close() })
	return &heldLock{r: c.r}
}

// heldLock is the read end of an inhibitor's pipe: it reads end-of-file
// once every copy of the write end, the client's included, is closed.
type heldLock struct{ r *os.File }

// held tells, at once and without waiting, whether the client still holds
// the lock: the kernel knows the moment the last copy closes.
func (h *heldLock) held(t *testing.T) bool {
	t.Helper()
	rc, err := h.r.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var rerr error
	// os.Pipe's descriptors are non-blocking: EAGAIN means nothing to read
	// yet, a writer still open.
	if err := rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, rerr = syscall.Read(int(fd), b[:])
		return true
	}); err != nil {
		t.Fatal(err)
	}
	switch {
	case rerr == syscall.EAGAIN:
		return true
	case rerr == nil && n == 0:
		return false
	}
	t.Fatalf("read the inhibitor pipe: %d bytes, %v", n, rerr)
	return false
}

// released waits up to d for the client to let go of the lock.
func (h *heldLock) released(t *testing.T, d time.Duration) bool {
	t.Helper()
	if err := h.r.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	_, err := io.Copy(io.Discard, h.r)
	if err == nil {
		return true // end of file
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read the inhibitor pipe: %v", err)
	}
	return false
}

const testSession = dbus.ObjectPath("/org/freedesktop/login1/session/_31")

func startLogind(t *testing.T, addr string, withSession bool) (*dbus.Conn, *loginService, *prop.Properties) {
	t.Helper()
	conn := serve(t, addr, login1Dest)
	l := &loginService{sessions: map[string]dbus.ObjectPath{}}
	if err := conn.Export(l, login1Path, managerIface); err != nil {
		t.Fatal(err)
	}
	if !withSession {
		return conn, l, nil
	}
	l.sessions["1"] = testSession
	props, err := prop.Export(conn, testSession, prop.Map{
		sessionIface: {"LockedHint": {Value: false, Emit: prop.EmitTrue}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return conn, l, props
}

func TestLogindWatcher(t *testing.T) {
	addr := startBus(t)
	conn, login, props := startLogind(t, addr, true)
	at := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	w, err := Config{
		Getenv: env("DBUS_SYSTEM_BUS_ADDRESS", addr, "XDG_SESSION_ID", "1"),
		Now:    func() time.Time { return at },
		// Long enough that a loaded machine delivers the Sleeping event
		// well within it, short enough to wait out below.
		SleepHold: time.Second,
		NoGap:     true,
	}.DetectWatcher(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Name() != LogindName {
		t.Fatalf("Name = %q, want %q", w.Name(), LogindName)
	}
	firstLock := login.handedOut(t, 0)
	ctx := context.Background()
	if l, err := w.LockedNow(ctx); err != nil || l {
		t.Fatalf("LockedNow = %v, %v; want false", l, err)
	}

	// The locker sets LockedHint: PropertiesChanged.
	props.SetMust(sessionIface, "LockedHint", true)
	if ev := waitEvent(t, w); ev.Kind != Locked || ev.Source != LogindName || !ev.At.Equal(at) {
		t.Errorf("got %v, want locked from logind at %v", ev, at)
	}
	if l, err := w.LockedNow(ctx); err != nil || !l {
		t.Errorf("LockedNow = %v, %v; want true", l, err)
	}
	// logind asks the locker to unlock.
	if err := conn.Emit(testSession, sessionIface+".Unlock"); err != nil {
		t.Fatal(err)
	}
	if ev := waitEvent(t, w); ev.Kind != Unlocked {
		t.Errorf("got %v, want unlocked", ev)
	}
	// Lock request then the hint: one Locked.
	if err := conn.Emit(testSession, sessionIface+".Lock"); err != nil {
		t.Fatal(err)
	}
	props.SetMust(sessionIface, "LockedHint", false) // stale hint catching up: unlocked
	props.SetMust(sessionIface, "LockedHint", true)
	for _, want := range []EventKind{Locked, Unlocked, Locked} {
		if ev := waitEvent(t, w); ev.Kind != want {
			t.Errorf("got %v, want %v", ev, want)
		}
	}
	// Another session's signals are not ours: had its Unlock been taken,
	// the unlocked event would come before the Sleeping one below (one
	// connection's signals arrive in order).
	if err := conn.Emit("/org/freedesktop/login1/session/_32", sessionIface+".Unlock"); err != nil {
		t.Fatal(err)
	}

	// Sleep: the delay lock is held until the event is handled.
	if err := conn.Emit(login1Path, managerIface+".PrepareForSleep", true); err != nil {
		t.Fatal(err)
	}
	sl := waitEvent(t, w)
	if sl.Kind != Sleeping {
		t.Fatalf("got %v, want sleeping", sl)
	}
	if !firstLock.held(t) {
		t.Fatal("sleep lock released before the Sleeping event was handled")
	}
	sl.Done()
	if !firstLock.released(t, eventWait) {
		t.Fatal("sleep lock not released after Done")
	}
	sl.Done() // twice is harmless

	// Wake: a new lock is taken for the next sleep.
	if err := conn.Emit(login1Path, managerIface+".PrepareForSleep", false); err != nil {
		t.Fatal(err)
	}
	if ev := waitEvent(t, w); ev.Kind != Woke {
		t.Fatalf("got %v, want woke", ev)
	}
	secondLock := login.handedOut(t, 1)

	// Nobody calls Done: SleepHold lets the system go anyway.
	if err := conn.Emit(login1Path, managerIface+".PrepareForSleep", true); err != nil {
		t.Fatal(err)
	}
	if ev := waitEvent(t, w); ev.Kind != Sleeping {
		t.Fatalf("got %v, want sleeping", ev)
	}
	if !secondLock.released(t, eventWait) {
		t.Fatal("sleep lock still held after SleepHold")
	}

	closeAndDrain(t, w)
}

func TestLogindWithoutSession(t *testing.T) {
	addr := startBus(t)
	conn, login, _ := startLogind(t, addr, false)
	w, err := Config{
		Getenv: env("DBUS_SYSTEM_BUS_ADDRESS", addr, "XDG_SESSION_ID", "7"),
		NoGap:  true,
	}.DetectWatcher(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	lock := login.handedOut(t, 0)
	if _, err := w.LockedNow(context.Background()); !errors.Is(err, ErrUnsupported) {
		t.Errorf("LockedNow err = %v, want ErrUnsupported", err)
	}
	if err := conn.Emit(login1Path, managerIface+".PrepareForSleep", true); err != nil {
		t.Fatal(err)
	}
	ev := waitEvent(t, w)
	if ev.Kind != Sleeping {
		t.Fatalf("got %v, want sleeping", ev)
	}
	ev.Done()
	if !lock.released(t, eventWait) {
		t.Fatal("sleep lock not released after Done")
	}
	// Malformed signals are ignored, not fatal.
	if err := conn.Emit(login1Path, managerIface+".PrepareForSleep", "yes"); err != nil {
		t.Fatal(err)
	}
	if err := conn.Emit(login1Path, managerIface+".PrepareForSleep", false); err != nil {
		t.Fatal(err)
	}
	if ev := waitEvent(t, w); ev.Kind != Woke {
		t.Fatalf("got %v, want woke", ev)
	}
}

// TestWatcherCombinesLogindAndScreenSaver: both backends report one lock;
// the caller sees it once.
func TestWatcherCombinesLogindAndScreenSaver(t *testing.T) {
	addr := startBus(t)
	lconn, _, props := startLogind(t, addr, true)
	saver := &saverService{}
	sconn := exportSaver(t, addr, freedesktopSaver, saver)
	w, err := Config{
		Getenv: env("DBUS_SYSTEM_BUS_ADDRESS", addr, "DBUS_SESSION_BUS_ADDRESS", addr, "XDG_SESSION_ID", "1"),
	}.DetectWatcher(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if want := LogindName + "+" + ScreenSaverName + "+" + GapName; w.Name() != want {
		t.Fatalf("Name = %q, want %q", w.Name(), want)
	}
	// The screen saver reports the lock first, then logind.
	if err := saver.setActive(sconn, freedesktopSaver, true); err != nil {
		t.Fatal(err)
	}
	if ev := waitEvent(t, w); ev.Kind != Locked || ev.Source != ScreenSaverName {
		t.Fatalf("got %v, want locked from %s", ev, ScreenSaverName)
	}
	props.SetMust(sessionIface, "LockedHint", true)
	// logind's lock must be dropped: had it passed, it would come before
	// the sleep logind announces next on the same connection.
	if err := lconn.Emit(login1Path, managerIface+".PrepareForSleep", true); err != nil {
		t.Fatal(err)
	}
	ev := waitEvent(t, w)
	ev.Done()
	if ev.Kind != Sleeping {
		t.Fatalf("got %v, want sleeping: the lock was reported twice", ev)
	}
}
