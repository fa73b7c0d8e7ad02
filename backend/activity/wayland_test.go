//go:build linux

package activity

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// The unit tests run the client against fakeCompositor over an in-memory
// pipe inside a synctest bubble: time is the bubble's, so idle times are
// exact, and synctest.Wait shows a wait is blocked without sleeping.

// fakeSession connects a client to a fake compositor with these globals
// and sets proto's notification up.
func fakeSession(t *testing.T, globals []fakeGlobal, proto wlIdleProtocol) (*fakeCompositor, *waylandIdle, error) {
	t.Helper()
	client, server := net.Pipe()
	f := newFakeCompositor(t, server, globals)
	go f.serve()
	conn := newWlConn(client)
	w, err := newWaylandIdle(context.Background(), conn, proto, Config{}.withDefaults())
	if err != nil {
		conn.Close()
		return f, nil, err
	}
	t.Cleanup(func() { w.Close() })
	return f, w, nil
}

func mustFakeSession(t *testing.T, globals []fakeGlobal, proto wlIdleProtocol) (*fakeCompositor, *waylandIdle) {
	t.Helper()
	f, w, err := fakeSession(t, globals, proto)
	if err != nil {
		t.Fatal(err)
	}
	return f, w
}

func readIdle(t *testing.T, src IdleSource) time.Duration {
	t.Helper()
	d, err := src.Idle(context.Background())
	if err != nil {
		t.Fatalf("Idle: %v", err)
	}
	return d
}

// startWait runs WaitInput in the background.
func startWait(ctx context.Context, w InputWaiter) <-chan error {
	done := make(chan error, 1)
	go func() { done <- w.WaitInput(ctx) }()
	return done
}

// blocked fails unless the wait is still pending once every goroutine of
// the bubble is blocked, that is once nothing more can happen by itself.
func blocked(t *testing.T, done <-chan error, what string) {
	t.Helper()
	synctest.Wait()
	select {
	case err := <-done:
		t.Fatalf("WaitInput returned %v %s", err, what)
	default:
	}
}

func TestWaylandNotificationRequests(t *testing.T) {
	tests := []struct {
		name    string
		globals []fakeGlobal
		proto   wlIdleProtocol
		want    fakeNotification
	}{
		{"ext-idle-notify v2 counts input alone", extGlobals, extIdleNotify,
			fakeNotification{"ext_idle_notifier_v1", 2, 0, "wl_seat", 1000}},
		{"ext-idle-notify v1 has only the inhibitor-aware request", []fakeGlobal{{1, "wl_seat", 8}, {2, "ext_idle_notifier_v1", 1}}, extIdleNotify,
			fakeNotification{"ext_idle_notifier_v1", 1, 0, "wl_seat", 1000}},
		{"a later version is bound at the one spoken", []fakeGlobal{{1, "wl_seat", 8}, {2, "ext_idle_notifier_v1", 9}}, extIdleNotify,
			fakeNotification{"ext_idle_notifier_v1", 2, 0, "wl_seat", 1000}},
		{"org_kde_kwin_idle", sway17Globals, kdeIdle,
			fakeNotification{"org_kde_kwin_idle", 0, 0, "wl_seat", 1000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f, w := mustFakeSession(t, tt.globals, tt.proto)
				got := f.notification()
				got.id = 0 // whichever the client picked
				if got != tt.want {
					t.Errorf("notification request %+v, want %+v", got, tt.want)
				}
				if w.Name() != tt.proto.name {
					t.Errorf("Name = %q, want %q", w.Name(), tt.proto.name)
				}
				// The first seat is the one bound.
				f.mu.Lock()
				for id, g := range f.bound {
					if g.iface == "wl_seat" && g.name != f.globalNamed("wl_seat") {
						t.Errorf("object %d is seat global %d, not the first", id, g.name)
					}
				}
				f.mu.Unlock()
			})
		})
	}
}

func TestWaylandIdleTime(t *testing.T) {
	for _, proto := range []wlIdleProtocol{extIdleNotify, kdeIdle} {
		t.Run(proto.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f, w := mustFakeSession(t, extGlobals, proto)
				if d := readIdle(t, w); d != 0 {
					t.Fatalf("idle before any event = %v, want 0", d)
				}
				time.Sleep(700 * time.Millisecond)
				if d := readIdle(t, w); d != 0 {
					t.Fatalf("idle while not idled = %v, want 0 (input within the step)", d)
				}
				// Idled means the last input was one step before it.
				f.idled()
				if d := readIdle(t, w); d != waylandStep {
					t.Fatalf("idle right at idled = %v, want %v", d, waylandStep)
				}
				time.Sleep(5 * time.Second)
				if d := readIdle(t, w); d != waylandStep+5*time.Second {
					t.Fatalf("idle 5 s after idled = %v, want %v", d, waylandStep+5*time.Second)
				}
				// A repeated idled moves nothing.
				f.idled()
				if d := readIdle(t, w); d != waylandStep+5*time.Second {
					t.Fatalf("idle after a repeated idled = %v, want %v", d, waylandStep+5*time.Second)
				}
				f.resumed()
				if d := readIdle(t, w); d != 0 {
					t.Fatalf("idle after resumed = %v, want 0", d)
				}
				// The next pause counts from its own idled.
				time.Sleep(3 * time.Second)
				f.idled()
				time.Sleep(2 * time.Second)
				if d := readIdle(t, w); d != waylandStep+2*time.Second {
					t.Fatalf("idle in the second pause = %v, want %v", d, waylandStep+2*time.Second)
				}
			})
		})
	}
}

func TestWaylandWaitInput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, w := mustFakeSession(t, extGlobals, extIdleNotify)
		ctx := context.Background()

		// Not idled: there was input within the step, which counts.
		if err := w.WaitInput(ctx); err != nil {
			t.Fatalf("WaitInput while not idled: %v", err)
		}

		for round := range 3 {
			f.idled()
			readIdle(t, w) // the idled event is in
			done := startWait(ctx, w)
			time.Sleep(time.Minute)
			blocked(t, done, "without input")
			f.resumed()
			if err := <-done; err != nil {
				t.Fatalf("round %d: WaitInput after resumed: %v", round, err)
			}
		}

		{ // several waiters
			f.idled()
			readIdle(t, w)
			a, b := startWait(ctx, w), startWait(ctx, w)
			blocked(t, a, "without input")
			f.resumed()
			if err := errors.Join(<-a, <-b); err != nil {
				t.Fatalf("two waiters: %v", err)
			}
		}

		{ // the context ends the wait

			f.idled()
			readIdle(t, w)
			wctx, cancel := context.WithCancel(ctx)
			done := startWait(wctx, w)
			blocked(t, done, "before its context ended")
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("WaitInput after cancel = %v, want context.Canceled", err)
			}
			if err := w.WaitInput(wctx); !errors.Is(err, context.Canceled) {
				t.Fatalf("WaitInput with a done context = %v", err)
			}
			// The source still works after the abandoned wait.
			if d := readIdle(t, w); d < waylandStep {
				t.Fatalf("idle after the abandoned wait = %v", d)
			}
		}

		{ // Close ends the wait with an error

			done := startWait(ctx, w) // still idled
			blocked(t, done, "before Close")
			w.Close()
			if err := <-done; err == nil {
				t.Fatal("WaitInput reported input when the connection closed")
			}
			if err := w.WaitInput(ctx); err == nil {
				t.Fatal("WaitInput after Close succeeded")
			}
			if d, err := w.Idle(ctx); err == nil {
				t.Fatalf("Idle after Close = %v, want an error", d)
			}
		}
	})
}

// TestWaylandCompositorFailures: whatever ends the connection, Idle and a
// pending WaitInput fail, never report input or an idle time.
func TestWaylandCompositorFailures(t *testing.T) {
	tests := []struct {
		name    string
		fail    func(f *fakeCompositor)
		wantErr string
	}{
		{"protocol error", func(f *fakeCompositor) {
			f.send(newWlRequest(wlDisplayID, wlDisplayError).uint(f.notification().id).uint(3).str("the seat is gone"))
		}, `error 3 on object`},
		{"compositor exits", func(f *fakeCompositor) { f.conn.Close() }, "closed the connection"},
		{"seat removed", func(f *fakeCompositor) {
			f.event(f.registryID(), wlRegistryGlobalRemove, f.globalNamed("wl_seat"))
		}, "removed the global"},
		{"notifier removed", func(f *fakeCompositor) {
			f.event(f.registryID(), wlRegistryGlobalRemove, f.globalNamed("ext_idle_notifier_v1"))
		}, "removed the global"},
		{"unknown event", func(f *fakeCompositor) { f.event(f.notification().id, 7) }, "event 7"},
		{"event with stray arguments", func(f *fakeCompositor) { f.event(f.notification().id, wlNotificationResumed, 1) }, "after the last argument"},
		{"oversized message", func(f *fakeCompositor) {
			b := make([]byte, 8)
			wlOrder.PutUint32(b, wlDisplayID)
			wlOrder.PutUint32(b[4:], 0xffff<<16)
			f.wmu.Lock()
			f.conn.Write(b)
			f.wmu.Unlock()
		}, "claims 65535 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f, w := mustFakeSession(t, extGlobals, extIdleNotify)
				f.idled()
				readIdle(t, w)
				done := startWait(context.Background(), w)
				blocked(t, done, "before the failure")
				tt.fail(f)
				if err := <-done; err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("WaitInput = %v, want an error saying %q", err, tt.wantErr)
				}
				d, err := w.Idle(context.Background())
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), w.Name()) {
					t.Fatalf("Idle = %v, %v; want an error naming the source and saying %q", d, err, tt.wantErr)
				}
			})
		})
	}
}

// TestWaylandIdleHonoursContext: a compositor that stops answering makes
// Idle fail with its context, never return a stale value.
func TestWaylandIdleHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, w := mustFakeSession(t, extGlobals, extIdleNotify)
		f.mute.Store(true)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if d, err := w.Idle(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Idle from a hung compositor = %v, %v; want the context's deadline", d, err)
		}
		f.mute.Store(false)
		if _, err := w.Idle(context.Background()); err != nil {
			t.Fatalf("Idle once the compositor answers again: %v", err)
		}
	})
}

func TestWaylandSetupFailures(t *testing.T) {
	refused := uint32(1)
	tests := []struct {
		name        string
		globals     []fakeGlobal
		proto       wlIdleProtocol
		refuse      *uint32
		unsupported bool
		want        string
	}{
		{"no ext notifier", sway17Globals, extIdleNotify, nil, true, "does not offer ext_idle_notifier_v1"},
		{"no kde idle", []fakeGlobal{{1, "wl_seat", 1}, {2, "ext_idle_notifier_v1", 1}}, kdeIdle, nil, true, "does not offer org_kde_kwin_idle"},
		{"no seat", []fakeGlobal{{2, "ext_idle_notifier_v1", 1}}, extIdleNotify, nil, true, "no wl_seat"},
		{"no globals", nil, extIdleNotify, nil, true, "does not offer"},
		{"notification refused", extGlobals, extIdleNotify, &refused, false, "invalid timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				client, server := net.Pipe()
				f := newFakeCompositor(t, server, tt.globals)
				f.refuse = tt.refuse
				go f.serve()
				conn := newWlConn(client)
				defer conn.Close()
				_, err := newWaylandIdle(context.Background(), conn, tt.proto, Config{}.withDefaults())
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want one saying %q", err, tt.want)
				}
				if errors.Is(err, ErrUnsupported) != tt.unsupported {
					t.Errorf("errors.Is(%v, ErrUnsupported) = %v, want %v", err, !tt.unsupported, tt.unsupported)
				}
			})
		})
	}
}

// TestWaylandIDsAreReused: every Idle makes a wl_callback; the IDs the
// compositor releases are used again, so a long-running agent never runs
// out of them.
func TestWaylandIDsAreReused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, w := mustFakeSession(t, extGlobals, extIdleNotify)
		for range 1000 {
			readIdle(t, w)
		}
		w.c.mu.Lock()
		defer w.c.mu.Unlock()
		if w.c.next > 10 {
			t.Errorf("1000 reads used %d object IDs", w.c.next-1)
		}
		if len(w.c.objects) != 5 { // display, registry, seat, notifier, notification
			t.Errorf("%d live objects after the reads, want 5", len(w.c.objects))
		}
	})
}

func TestWaylandSocket(t *testing.T) {
	tests := []struct {
		name        string
		env         func(string) string
		want        string
		unsupported bool
	}{
		{"relative to the runtime dir", env("WAYLAND_DISPLAY", "wayland-1", "XDG_RUNTIME_DIR", "/run/user/1000"), "/run/user/1000/wayland-1", false},
		{"absolute", env("WAYLAND_DISPLAY", "/tmp/w/sock", "XDG_RUNTIME_DIR", "/run/user/1000"), "/tmp/w/sock", false},
		{"absolute without a runtime dir", env("WAYLAND_DISPLAY", "/tmp/w/sock"), "/tmp/w/sock", false},
		{"relative without a runtime dir", env("WAYLAND_DISPLAY", "wayland-0"), "", true},
		{"no display", env("XDG_RUNTIME_DIR", "/run/user/1000"), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := waylandSocket(tt.env)
			if got != tt.want || (err != nil) != tt.unsupported || (err != nil && !errors.Is(err, ErrUnsupported)) {
				t.Errorf("waylandSocket = %q, %v; want %q, unsupported %v", got, err, tt.want, tt.unsupported)
			}
		})
	}
}

// serveFakes listens on a unix socket in a new runtime dir and serves a
// fake compositor with globals to every client; it returns the dir and the
// socket's name in it.
func serveFakes(t *testing.T, globals []fakeGlobal) (dir, name string) {
	t.Helper()
	dir = t.TempDir()
	name = "wayland-test"
	l, err := net.Listen("unix", filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(newFakeCompositor(t, c, globals).serve)
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return dir, name
}

// TestWaylandDetect: in a Wayland session without the D-Bus sources,
// DetectIdle tries ext-idle-notify, then org_kde_kwin_idle, and names the
// one it picked; when none works the error lists every source in the order
// tried.
func TestWaylandDetect(t *testing.T) {
	ctx := context.Background()
	t.Run("ext-idle-notify first", func(t *testing.T) {
		dir, name := serveFakes(t, extGlobals)
		src, err := Config{Getenv: env("WAYLAND_DISPLAY", name, "XDG_RUNTIME_DIR", dir, "XDG_SESSION_TYPE", "wayland")}.DetectIdle(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		if src.Name() != WaylandIdleNotifyName {
			t.Errorf("Name = %q, want %q", src.Name(), WaylandIdleNotifyName)
		}
		if _, ok := src.(InputWaiter); !ok {
			t.Errorf("the Wayland source (%T) cannot wait for input", src)
		}
	})
	t.Run("org_kde_kwin_idle when that is all", func(t *testing.T) {
		dir, name := serveFakes(t, sway17Globals)
		src, err := Config{Getenv: env("WAYLAND_DISPLAY", filepath.Join(dir, name))}.DetectIdle(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		if src.Name() != WaylandKDEIdleName {
			t.Errorf("Name = %q, want %q", src.Name(), WaylandKDEIdleName)
		}
	})
	t.Run("none", func(t *testing.T) {
		dir, name := serveFakes(t, []fakeGlobal{{1, "wl_seat", 1}})
		_, err := Config{Getenv: env("WAYLAND_DISPLAY", name, "XDG_RUNTIME_DIR", dir, "DISPLAY", ":0")}.DetectIdle(ctx)
		if !errors.Is(err, ErrUnsupported) {
			t.Fatalf("err = %v, want ErrUnsupported", err)
		}
		msg, at := err.Error(), -1
		for _, n := range []string{MutterName, ScreenSaverName, WaylandIdleNotifyName, WaylandKDEIdleName} {
			i := strings.Index(msg, n)
			if i < at {
				t.Fatalf("error %q does not name %s after the sources before it", msg, n)
			}
			at = i
		}
		if strings.Contains(msg, X11Name) {
			t.Errorf("error %q: the X11 source was tried in a Wayland session", msg)
		}
	})
	t.Run("no compositor", func(t *testing.T) {
		_, err := Config{Getenv: env("WAYLAND_DISPLAY", "wayland-9", "XDG_RUNTIME_DIR", t.TempDir())}.DetectIdle(ctx)
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), WaylandIdleNotifyName+": connect") {
			t.Fatalf("err = %v, want ErrUnsupported saying the compositor could not be reached", err)
		}
	})
	t.Run("not a Wayland session", func(t *testing.T) {
		_, err := Config{Getenv: env("XDG_SESSION_TYPE", "wayland")}.DetectIdle(ctx)
		if err == nil || strings.Contains(err.Error(), "wayland ") {
			t.Fatalf("err = %v: a Wayland source was tried without WAYLAND_DISPLAY", err)
		}
	})
}
