//go:build linux || freebsd || netbsd || openbsd || dragonfly

package activity

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeCompositor is the compositor side of the idle protocols, enough to
// test the client against: it advertises globals, answers syncs, records
// binds and notifications, and sends what a test tells it to. It decodes
// the client's requests with the same reader the client uses for events
// (the header and argument encodings are the same both ways), so the
// tests also check that each request the client builds decodes as meant.
type fakeCompositor struct {
	t       testing.TB
	globals []fakeGlobal
	// refuse, when set, answers the notification request with this
	// wl_display.error code instead of making the notification.
	refuse *uint32
	// mute, while set, leaves syncs unanswered: a compositor that hangs.
	mute atomic.Bool

	wmu  sync.Mutex
	conn net.Conn

	mu       sync.Mutex
	registry uint32
	bound    map[uint32]fakeGlobal // client object ID → the global bound to it
	notif    *fakeNotification
}

type fakeGlobal struct {
	name    uint32
	iface   string
	version uint32
}

// fakeNotification is a notification request as the compositor saw it.
type fakeNotification struct {
	global    string // the interface of the global asked
	opcode    uint16
	id        uint32
	seat      string // the interface of the object passed as the seat
	timeoutMs uint32
}

// sway17Globals is what a sway 1.7 (wlroots 0.15) advertises, in part;
// extGlobals is a newer compositor's.
var (
	sway17Globals = []fakeGlobal{
		{1, "wl_compositor", 4}, {2, "wl_shm", 1}, {5, "wl_seat", 7}, {9, "org_kde_kwin_idle", 1}, {10, "zwp_idle_inhibit_manager_v1", 1},
	}
	extGlobals = []fakeGlobal{
		{1, "wl_compositor", 6}, {3, "wl_seat", 9}, {4, "wl_seat", 9}, {7, "ext_idle_notifier_v1", 2}, {8, "org_kde_kwin_idle", 1},
	}
)

func newFakeCompositor(t testing.TB, conn net.Conn, globals []fakeGlobal) *fakeCompositor {
	return &fakeCompositor{t: t, conn: conn, globals: globals, bound: map[uint32]fakeGlobal{}}
}

// serve answers requests until the client goes away.
func (f *fakeCompositor) serve() {
	defer f.conn.Close()
	r := &wlReader{r: f.conn}
	for {
		m, err := r.next()
		if err != nil {
			// Anything but a malformed request is the client going away.
			if errors.Is(err, errWlProtocol) {
				f.t.Errorf("compositor: read a request: %v", err)
			}
			return
		}
		if err := f.request(m); err != nil {
			f.t.Errorf("compositor: request %d to object %d: %v", m.opcode, m.object, err)
			return
		}
	}
}

func (f *fakeCompositor) request(m wlMessage) error {
	a := &wlArgs{b: m.body}
	f.mu.Lock()
	registry := f.registry
	g, isBound := f.bound[m.object]
	f.mu.Unlock()
	switch {
	case m.object == wlDisplayID && m.opcode == wlDisplaySync:
		id := a.uint()
		if err := a.end(); err != nil {
			return err
		}
		if f.mute.Load() {
			return nil
		}
		f.event(id, wlCallbackDone, 77)
		f.event(wlDisplayID, wlDisplayDeleteID, id)
	case m.object == wlDisplayID && m.opcode == wlDisplayGetRegistry:
		id := a.uint()
		if err := a.end(); err != nil {
			return err
		}
		f.mu.Lock()
		f.registry = id
		f.mu.Unlock()
		for _, g := range f.globals {
			f.send(newWlRequest(id, wlRegistryGlobal).uint(g.name).str(g.iface).uint(g.version))
		}
	case m.object == registry && m.opcode == wlRegistryBind:
		name, iface, version, id := a.uint(), string(a.str()), a.uint(), a.uint()
		if err := a.end(); err != nil {
			return err
		}
		var found *fakeGlobal
		for _, g := range f.globals {
			if g.name == name {
				found = &g
			}
		}
		switch {
		case found == nil:
			f.t.Errorf("bind of global %d, which was never advertised", name)
		case found.iface != iface:
			f.t.Errorf("bind of global %d (%s) as %s", name, found.iface, iface)
		case version == 0 || version > found.version:
			f.t.Errorf("bind of %s version %d; %d advertised", iface, version, found.version)
		}
		f.mu.Lock()
		f.bound[id] = fakeGlobal{name, iface, version}
		f.mu.Unlock()
	case isBound && g.iface == "ext_idle_notifier_v1" && (m.opcode == 1 || m.opcode == 2):
		id, timeout, seat := a.uint(), a.uint(), a.uint()
		return f.notify(a, fakeNotification{g.iface, m.opcode, id, f.ifaceOf(seat), timeout})
	case isBound && g.iface == "org_kde_kwin_idle" && m.opcode == 0:
		id, seat, timeout := a.uint(), a.uint(), a.uint()
		return f.notify(a, fakeNotification{g.iface, m.opcode, id, f.ifaceOf(seat), timeout})
	default:
		f.t.Errorf("unexpected request %d to object %d (%s)", m.opcode, m.object, g.iface)
	}
	return nil
}

func (f *fakeCompositor) ifaceOf(id uint32) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bound[id].iface
}

func (f *fakeCompositor) notify(a *wlArgs, n fakeNotification) error {
	if err := a.end(); err != nil {
		return err
	}
	if f.refuse != nil {
		f.send(newWlRequest(wlDisplayID, wlDisplayError).uint(n.id).uint(*f.refuse).str("invalid timeout"))
		return nil
	}
	f.mu.Lock()
	f.notif = &n
	f.mu.Unlock()
	return nil
}

// send writes one event. A write fails only once the client has gone,
// which the client's side of each test checks.
func (f *fakeCompositor) send(r *wlRequest) {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	f.conn.Write(r.bytes())
}

// event sends an event whose arguments are all words.
func (f *fakeCompositor) event(object uint32, opcode uint16, args ...uint32) {
	r := newWlRequest(object, opcode)
	for _, v := range args {
		r.uint(v)
	}
	f.send(r)
}

// notification is the notification the client made.
func (f *fakeCompositor) notification() fakeNotification {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.notif == nil {
		f.t.Fatal("the client made no notification")
	}
	return *f.notif
}

func (f *fakeCompositor) idled()   { f.event(f.notification().id, wlNotificationIdled) }
func (f *fakeCompositor) resumed() { f.event(f.notification().id, wlNotificationResumed) }

// registryID is the client's registry object.
func (f *fakeCompositor) registryID() uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.registry
}

// globalNamed is the registry name of the first global of iface.
func (f *fakeCompositor) globalNamed(iface string) uint32 {
	for _, g := range f.globals {
		if g.iface == iface {
			return g.name
		}
	}
	f.t.Fatalf("no global %s", iface)
	return 0
}
