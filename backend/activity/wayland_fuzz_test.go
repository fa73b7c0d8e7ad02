//go:build linux || freebsd || netbsd || openbsd || dragonfly

package activity

import (
	"bytes"
	"slices"
	"testing"
	"time"
)

// FuzzWaylandEvents feeds the client's event reader whatever a broken or
// hostile compositor could send, on a connection set up as the idle source
// sets it up (registry, seat, notifier, notification, a pending callback,
// an object destroyed but not yet released). Reading must end with an
// error and no panic, and what the client keeps must not grow with what it
// was sent: every object ID it handed out is in exactly one of its tables,
// and the registry keeps two globals at most (by its type). Reading itself
// allocates nothing per message (TestWaylandDecoderMemoryIsBounded).
func FuzzWaylandEvents(f *testing.F) {
	const (
		registry     = 2
		seat         = 3
		notifier     = 4
		notification = 5
		callback     = 6
		zombie       = 7
	)
	ev := func(object uint32, opcode uint16, args ...uint32) []byte {
		r := newWlRequest(object, opcode)
		for _, v := range args {
			r.uint(v)
		}
		return r.bytes()
	}
	global := func(name uint32, iface string, version uint32) []byte {
		return newWlRequest(registry, wlRegistryGlobal).uint(name).str(iface).uint(version).bytes()
	}
	session := slices.Concat(
		global(1, "wl_compositor", 6), global(3, "wl_seat", 9), global(7, "ext_idle_notifier_v1", 2),
		ev(callback, wlCallbackDone, 1), ev(wlDisplayID, wlDisplayDeleteID, callback),
		ev(notification, wlNotificationIdled), ev(notification, wlNotificationResumed),
		ev(notification, wlNotificationIdled),
		ev(zombie, 0, 1, 2), ev(wlDisplayID, wlDisplayDeleteID, zombie),
		ev(registry, wlRegistryGlobalRemove, 1),
	)
	f.Add(session)
	f.Add(slices.Concat(session, newWlRequest(wlDisplayID, wlDisplayError).uint(notification).uint(0).str("bye").bytes()))
	f.Add(ev(wlDisplayID, wlDisplayDeleteID, registry))             // a live object released
	f.Add(ev(wlDisplayID, wlDisplayDeleteID, zombie)[:10])          // cut short
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0xff, 0xff})                     // too large
	f.Add(append(ev(registry, wlRegistryGlobal, 1, 0xfffffff0), 1)) // string length near 2^32
	f.Add(ev(notifier, 0))                                          // an event the notifier does not have
	f.Add(slices.Concat(ev(seat, 0, 7), ev(seat, 1, 0)))

	f.Fuzz(func(t *testing.T, data []byte) {
		c := makeWlConn(fakeRW{r: bytes.NewReader(data)})
		reg := &wlRegistry{want: "ext_idle_notifier_v1"}
		clock := time.Unix(1e9, 0)
		w := &waylandIdle{name: WaylandIdleNotifyName, c: c, input: make(chan struct{}), now: func() time.Time {
			clock = clock.Add(time.Second)
			return clock
		}}
		for _, h := range []wlHandler{
			reg.handle,
			func(uint32, uint16, *wlArgs) error { return nil },
			func(_ uint32, opcode uint16, _ *wlArgs) error { return errWlProtocol },
			w.handle,
		} {
			if _, err := c.newObject(h); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := c.newCallback(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.newObject(nil); err != nil {
			t.Fatal(err)
		}
		c.destroyed(zombie)
		reg.bound = true

		c.read()

		if c.failure() == nil {
			t.Fatal("reading ended without a reason")
		}
		seen := map[uint32]int{}
		for id := range c.objects {
			seen[id]++
		}
		for id := range c.zombies {
			seen[id]++
		}
		for _, id := range c.free {
			seen[id]++
		}
		if len(seen) != int(c.next-1) {
			t.Errorf("%d IDs accounted for, %d handed out", len(seen), c.next-1)
		}
		for id, n := range seen {
			if n != 1 || id == 0 || id >= c.next {
				t.Errorf("ID %d is in %d tables (handed out: 1 to %d)", id, n, c.next-1)
			}
		}
		if w.idle && w.last.IsZero() {
			t.Error("idled without the instant of the last input")
		}
		select {
		case <-c.dead:
		default:
			t.Error("the connection is not marked dead after reading stopped")
		}
	})
}
