//go:build linux || freebsd || netbsd || openbsd || dragonfly

package activity

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/screensaver"
	"github.com/jezek/xgb/xproto"
)

// X11Name is the Name of the X11 idle source.
const X11Name = "x11-screensaver"

// x11Session reports whether the session is an X11 one whose idle counter
// means anything. Under Wayland, DISPLAY points at Xwayland, whose counter
// sees only the input that X clients receive: reading it would call a busy
// user idle. So an explicit XDG_SESSION_TYPE wins, and without one a
// WAYLAND_DISPLAY marks a Wayland session.
func x11Session(getenv func(string) string) bool {
	if getenv("DISPLAY") == "" {
		return false
	}
	switch getenv("XDG_SESSION_TYPE") {
	case "wayland":
		return false
	case "x11":
		return true
	}
	return getenv("WAYLAND_DISPLAY") == ""
}

// xgbInitMu serialises extension set-up: xgb registers extension event
// decoders in package-level maps without a lock of its own.
var xgbInitMu sync.Mutex

// x11Idle reads MsSinceUserInput from the MIT-SCREEN-SAVER extension, the
// server's own count of time since the last keyboard or pointer event.
type x11Idle struct {
	conn *xgb.Conn
	root xproto.Drawable
	// sync waits for input; nil when the server's SYNC extension or its
	// IDLETIME counter is missing (then the source cannot wait).
	sync    *xsync
	syncErr error
}

// x11InputIdle is the X11 source on a server that can also wait for input.
type x11InputIdle struct{ *x11Idle }

var _ InputWaiter = x11InputIdle{}

// WaitInput implements InputWaiter with a SYNC alarm on the server's
// IDLETIME counter: no polling, the server says when input comes.
func (x x11InputIdle) WaitInput(ctx context.Context) error { return x.sync.waitInput(ctx) }

// source is x as an IdleSource: one that can wait for input when the
// server allows it.
func (x *x11Idle) source() IdleSource {
	if x.sync != nil {
		return x11InputIdle{x}
	}
	return x
}

func openX11(ctx context.Context, display string) (*x11Idle, error) {
	type dialed struct {
		conn *xgb.Conn
		err  error
	}
	ch := make(chan dialed, 1)
	go func() {
		c, err := xgb.NewConnDisplay(display)
		ch <- dialed{c, err}
	}()
	var conn *xgb.Conn
	select {
	case d := <-ch:
		if d.err != nil {
			return nil, fmt.Errorf("connect to X display %q: %w", display, d.err)
		}
		conn = d.conn
	case <-ctx.Done():
		go func() { // the dial cannot be cancelled; close it when it lands
			if d := <-ch; d.conn != nil {
				d.conn.Close()
			}
		}()
		return nil, fmt.Errorf("connect to X display %q: %w", display, ctx.Err())
	}
	xgbInitMu.Lock()
	err := screensaver.Init(conn)
	xgbInitMu.Unlock()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("X display %q: %w", display, err)
	}
	root := xproto.Setup(conn).DefaultScreen(conn).Root
	x := &x11Idle{conn: conn, root: xproto.Drawable(root)}
	// Without SYNC the source still reads the idle time; the caller polls.
	x.sync, x.syncErr = openSync(conn)
	return x, nil
}

func (x *x11Idle) Name() string { return X11Name }

func (x *x11Idle) Idle(ctx context.Context) (time.Duration, error) {
	type answer struct {
		r   *screensaver.QueryInfoReply
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		r, err := screensaver.QueryInfo(x.conn, x.root).Reply()
		ch <- answer{r, err}
	}()
	select {
	case a := <-ch:
		if a.err != nil {
			return 0, fmt.Errorf("%s: query: %w", X11Name, a.err)
		}
		if a.r == nil {
			return 0, fmt.Errorf("%s: no reply from the X server", X11Name)
		}
		return time.Duration(a.r.MsSinceUserInput) * time.Millisecond, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("%s: %w", X11Name, ctx.Err())
	}
}

func (x *x11Idle) Close() error {
	x.conn.Close()
	return nil
}
