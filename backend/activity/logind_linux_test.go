package activity

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
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
// (once the client holds its copy) and returns a channel closed when the
// client lets go of it.
func (l *loginService) handedOut(t *testing.T, n int) <-chan struct{} {
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
	released := make(chan struct{})
	go func() {
		io.Copy(io.Discard, c.r)
		c.r.Close()
		close(released)
	}()
	return released
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

func released(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestLogindWatcher(t *testing.T) {
	addr := startBus(t)
	conn, login, props := startLogind(t, addr, true)
	at := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	w, err := Config{
		Getenv:    env("DBUS_SYSTEM_BUS_ADDRESS", addr, "XDG_SESSION_ID", "1"),
		Now:       func() time.Time { return at },
		SleepHold: 300 * time.Millisecond,
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
	// Another session's signals are not ours.
	if err := conn.Emit("/org/freedesktop/login1/session/_32", sessionIface+".Unlock"); err != nil {
		t.Fatal(err)
	}
	noEventFor(t, w, 200*time.Millisecond)

	// Sleep: the delay lock is held until the event is handled.
	if err := conn.Emit(login1Path, managerIface+".PrepareForSleep", true); err != nil {
		t.Fatal(err)
	}
	sl := waitEvent(t, w)
	if sl.Kind != Sleeping {
		t.Fatalf("got %v, want sleeping", sl)
	}
	time.Sleep(50 * time.Millisecond)
	if released(firstLock) {
		t.Fatal("sleep lock released before the Sleeping event was handled")
	}
	sl.Done()
	select {
	case <-firstLock:
	case <-time.After(2 * time.Second):
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
	select {
	case <-secondLock:
	case <-time.After(3 * time.Second):
		t.Fatal("sleep lock still held after SleepHold")
	}

	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-w.Events(); ok {
		t.Fatal("Events not closed after Close")
	}
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
	select {
	case <-lock:
	case <-time.After(2 * time.Second):
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
	_, _, props := startLogind(t, addr, true)
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
	if err := saver.setActive(sconn, freedesktopSaver, true); err != nil {
		t.Fatal(err)
	}
	props.SetMust(sessionIface, "LockedHint", true)
	if ev := waitEvent(t, w); ev.Kind != Locked {
		t.Fatalf("got %v, want locked", ev)
	}
	noEventFor(t, w, 300*time.Millisecond)
}
