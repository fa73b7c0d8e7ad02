//go:build windows

package main

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// Windows ends a session (sign-out, shutdown, restart, an update's reboot)
// by asking every top-level window WM_QUERYENDSESSION and then telling it
// WM_ENDSESSION; once a process's windows have returned from
// WM_ENDSESSION it may be terminated at any moment, with no signal.
//
// The console control events (CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT) are
// not a way in for the agent: it is a GUI-subsystem program without a
// console, and even a console process stops receiving them once it loads
// user32, which the idle reader does. Where the agent does run in a console
// (started from a terminal), Go's runtime has its own console handler: it
// turns those events and CTRL_CLOSE_EVENT into SIGTERM, which main already
// handles, and holds the handler until the process has exited.
//
// So the agent keeps one hidden top-level window for this. It must be a
// real top-level window: a message-only window (parent HWND_MESSAGE) gets
// no broadcasts. The same window takes WM_CLOSE, which is how Windows asks
// a GUI program to stop (taskkill without /F, the installer before it
// replaces or removes the agent): the agent stops as on SIGTERM.
const (
	wmClose           = 0x0010
	wmQueryEndSession = 0x0011
	wmEndSession      = 0x0016
)

// sessionEndWait bounds how long WM_ENDSESSION is held for the final beat:
// Windows shows "Lastseen is preventing shutdown" after about five seconds,
// and the final beat is a single local write and one request.
const sessionEndWait = 5 * time.Second

// sessionWindowClass names the hidden window's class (and its title), so a
// test can find it.
const sessionWindowClass = "LastseenSessionEnd"

var (
	user32               = windows.NewLazySystemDLL("user32.dll")
	procRegisterClassExW = user32.NewProc("RegisterClassExW")
	procCreateWindowExW  = user32.NewProc("CreateWindowExW")
	procDefWindowProcW   = user32.NewProc("DefWindowProcW")
	procGetMessageW      = user32.NewProc("GetMessageW")
	procTranslateMessage = user32.NewProc("TranslateMessage")
	procDispatchMessageW = user32.NewProc("DispatchMessageW")
)

// wndClassEx is WNDCLASSEXW.
type wndClassEx struct {
	size       uint32
	style      uint32
	wndProc    uintptr
	clsExtra   int32
	wndExtra   int32
	instance   windows.Handle
	icon       windows.Handle
	cursor     windows.Handle
	background windows.Handle
	menuName   *uint16
	className  *uint16
	iconSm     windows.Handle
}

// msg is MSG.
type msg struct {
	hwnd    uintptr
	message uint32
	wParam  uintptr
	lParam  uintptr
	time    uint32
	pt      struct{ x, y int32 }
	private uint32
}

// onSessionEnd returns a context that also ends when Windows ends the
// session, and stopped, which main calls once the agent has stopped (its
// final beat sent): only then does the hidden window let Windows go on.
// Without the window (it could not be created) the agent still runs; it
// just misses the final beat at sign-out, as it would on a crash.
func onSessionEnd(ctx context.Context, log *slog.Logger) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	finished := make(chan struct{})
	var once sync.Once
	stopped := func() { once.Do(func() { close(finished) }) }
	ended := func(why string) {
		log.Info("stopping with a final offline beat", "why", why)
		cancel()
	}
	ready := make(chan error, 1)
	go sessionWindow(ended, finished, ready)
	if err := <-ready; err != nil {
		log.Warn("no session-end window: signing out will not send the final offline beat", "err", err)
	}
	return ctx, func() { stopped(); cancel() }
}

// sessionWindow creates the hidden window and runs its message loop for
// the life of the process. A window's messages arrive on the thread that
// created it, so the goroutine keeps its thread.
func sessionWindow(ended func(why string), finished <-chan struct{}, ready chan<- error) {
	runtime.LockOSThread()
	proc := windows.NewCallback(func(hwnd, m, wParam, lParam uintptr) uintptr {
		switch m {
		case wmClose:
			// Not DefWindowProc, which would destroy the window: the
			// process ends once the agent has stopped.
			ended("asked to close")
			return 0
		case wmQueryEndSession:
			return 1 // nothing here objects to the session ending
		case wmEndSession:
			if wParam != 0 { // 0: another program cancelled it
				ended("the session is ending")
				select {
				case <-finished:
				case <-time.After(sessionEndWait):
				}
			}
			return 0
		}
		r, _, _ := procDefWindowProcW.Call(hwnd, m, wParam, lParam)
		return r
	})
	var instance windows.Handle
	if err := windows.GetModuleHandleEx(0, nil, &instance); err != nil {
		ready <- fmt.Errorf("GetModuleHandleEx: %w", err)
		return
	}
	name, _ := windows.UTF16PtrFromString(sessionWindowClass)
	wc := wndClassEx{wndProc: proc, instance: instance, className: name}
	wc.size = uint32(unsafe.Sizeof(wc))
	if r, _, err := procRegisterClassExW.Call(uintptr(unsafe.Pointer(&wc))); r == 0 {
		ready <- fmt.Errorf("RegisterClassEx: %w", err)
		return
	}
	// No WS_VISIBLE and never shown: the window only listens.
	hwnd, _, err := procCreateWindowExW.Call(0, uintptr(unsafe.Pointer(name)), uintptr(unsafe.Pointer(name)),
		0, 0, 0, 0, 0, 0, 0, uintptr(instance), 0)
	if hwnd == 0 {
		ready <- fmt.Errorf("CreateWindowEx: %w", err)
		return
	}
	ready <- nil
	var m msg
	for {
		r, _, _ := procGetMessageW.Call(uintptr(unsafe.Pointer(&m)), 0, 0, 0)
		if int32(r) <= 0 { // WM_QUIT or an error: nothing more will come
			return
		}
		procTranslateMessage.Call(uintptr(unsafe.Pointer(&m)))
		procDispatchMessageW.Call(uintptr(unsafe.Pointer(&m)))
	}
}
