//go:build windows

package activity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// Backend names on Windows.
const (
	LastInputName    = "getlastinputinfo"
	InputDesktopName = "inputdesktop-poll"
)

// On Windows the idle time is GetLastInputInfo's tick of the session's last
// input against GetTickCount. The lock state is polled: while the
// workstation is locked the input desktop is Winlogon's secure desktop,
// which a user process may not open (ERROR_ACCESS_DENIED) or which is not
// named "Default". A UAC prompt also switches to the secure desktop and is
// seen as a short lock.
//
// Missing here: WTSRegisterSessionNotification (WM_WTSSESSION_CHANGE) and
// WM_POWERBROADCAST need a window and its message loop, which this package
// does not own. Sleep and wake are caught by the clock-gap detector (Go's
// monotonic clock on Windows keeps counting through sleep, so the next tick
// arrives late), reported after the wake; locks within Config.LockPoll.
func idleCandidates(Config) []candidate[IdleSource] {
	return []candidate[IdleSource]{{LastInputName, func(context.Context) (IdleSource, error) {
		api := newWinAPI()
		if err := api.getLastInputInfo.Find(); err != nil {
			return nil, unsupported("%s: %v", LastInputName, err)
		}
		return winIdle{api}, nil
	}}}
}

func watcherCandidates(c Config) []candidate[Watcher] {
	return []candidate[Watcher]{{InputDesktopName, func(ctx context.Context) (Watcher, error) {
		api := newWinAPI()
		if err := api.openInputDesktop.Find(); err != nil {
			return nil, unsupported("%s: %v", InputDesktopName, err)
		}
		return newPollLock(ctx, InputDesktopName, api.locked, c.LockPoll, c.Now, c.Logger)
	}}}
}

// winAPI holds the user32 and kernel32 entry points; they are resolved on
// first use.
type winAPI struct {
	getLastInputInfo, getTickCount             *windows.LazyProc
	openInputDesktop, closeDesktop, getObjInfo *windows.LazyProc
}

func newWinAPI() *winAPI {
	user32 := windows.NewLazySystemDLL("user32.dll")
	kernel32 := windows.NewLazySystemDLL("kernel32.dll")
	return &winAPI{
		getLastInputInfo: user32.NewProc("GetLastInputInfo"),
		getTickCount:     kernel32.NewProc("GetTickCount"),
		openInputDesktop: user32.NewProc("OpenInputDesktop"),
		closeDesktop:     user32.NewProc("CloseDesktop"),
		getObjInfo:       user32.NewProc("GetUserObjectInformationW"),
	}
}

// lastInputInfo is LASTINPUTINFO.
type lastInputInfo struct {
	cbSize uint32
	dwTime uint32
}

func (a *winAPI) idle() (time.Duration, error) {
	info := lastInputInfo{cbSize: uint32(unsafe.Sizeof(lastInputInfo{}))}
	r, _, err := a.getLastInputInfo.Call(uintptr(unsafe.Pointer(&info)))
	if r == 0 {
		return 0, fmt.Errorf("%s: %w", LastInputName, err)
	}
	now, _, _ := a.getTickCount.Call()
	// Both are 32-bit millisecond ticks: the unsigned difference stays
	// right across the 49.7-day wrap-around.
	return time.Duration(uint32(now)-info.dwTime) * time.Millisecond, nil
}

func (a *winAPI) locked(ctx context.Context) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	const desktopSwitchDesktop = 0x0100
	h, _, err := a.openInputDesktop.Call(0, 0, desktopSwitchDesktop)
	if h == 0 {
		if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
			return true, nil
		}
		return false, fmt.Errorf("%s: OpenInputDesktop: %w", InputDesktopName, err)
	}
	defer a.closeDesktop.Call(h)
	const uoiName = 2
	var (
		buf    [128]uint16
		needed uint32
	)
	r, _, err := a.getObjInfo.Call(h, uoiName, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)*2), uintptr(unsafe.Pointer(&needed)))
	if r == 0 {
		return false, fmt.Errorf("%s: GetUserObjectInformation: %w", InputDesktopName, err)
	}
	return !strings.EqualFold(windows.UTF16ToString(buf[:]), "Default"), nil
}

type winIdle struct{ api *winAPI }

func (winIdle) Name() string { return LastInputName }

func (w winIdle) Idle(ctx context.Context) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return w.api.idle()
}

func (winIdle) Close() error { return nil }
