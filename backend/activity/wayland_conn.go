//go:build linux || freebsd || netbsd || openbsd || dragonfly

package activity

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
)

// The core protocol objects and messages used (wayland.xml).
const (
	wlDisplayID = 1 // the wl_display singleton

	wlDisplaySync        = 0 // request sync(new_id wl_callback)
	wlDisplayGetRegistry = 1 // request get_registry(new_id wl_registry)
	wlDisplayError       = 0 // event error(object, uint code, string message)
	wlDisplayDeleteID    = 1 // event delete_id(uint id)

	wlRegistryBind         = 0 // request bind(uint name, new_id: string interface, uint version, uint id)
	wlRegistryGlobal       = 0 // event global(uint name, string interface, uint version)
	wlRegistryGlobalRemove = 1 // event global_remove(uint name)

	wlCallbackDone = 0 // event done(uint data)

	// wlMaxClientID is the last ID of the client's range; the compositor's
	// own objects start above it.
	wlMaxClientID = 0xfeffffff
)

// errWlClosed is the error of a connection closed by its owner.
var errWlClosed = errors.New("wayland connection closed")

// wlHandler takes the events of one object, in the reading goroutine. An
// error ends the connection.
type wlHandler func(id uint32, opcode uint16, a *wlArgs) error

// wlConn is a client connection to a compositor: the table of the objects
// the client made, requests out, and a goroutine reading events and handing
// each to its object's handler.
type wlConn struct {
	rw  io.ReadWriteCloser
	wmu sync.Mutex // one request at a time on the socket
	// args decodes the event being dispatched; one for the connection, so
	// reading events allocates nothing per event.
	args wlArgs

	mu      sync.Mutex
	objects map[uint32]wlHandler
	// zombies are objects already destroyed whose IDs the compositor has
	// not released yet (delete_id): their late events are dropped and
	// their IDs not reused before then.
	zombies map[uint32]bool
	free    []uint32 // released IDs, reused first so the ID space is never exhausted
	next    uint32
	err     error         // why reading stopped; set before dead closes
	dead    chan struct{} // closed once the reading goroutine has returned
}

// waylandSocket is the compositor's socket: WAYLAND_DISPLAY, relative to
// XDG_RUNTIME_DIR unless it is absolute (as libwayland resolves it).
func waylandSocket(getenv func(string) string) (string, error) {
	name := getenv("WAYLAND_DISPLAY")
	if name == "" {
		return "", unsupported("WAYLAND_DISPLAY is not set")
	}
	if filepath.IsAbs(name) {
		return name, nil
	}
	dir := getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		return "", unsupported("XDG_RUNTIME_DIR is not set, so WAYLAND_DISPLAY %q names no socket", name)
	}
	return filepath.Join(dir, name), nil
}

// dialWayland connects to the compositor and starts reading its events.
func dialWayland(ctx context.Context, path string) (*wlConn, error) {
	var d net.Dialer
	sock, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("connect to the compositor: %w", err)
	}
	return newWlConn(sock), nil
}

// newWlConn takes over rw and starts reading it.
func newWlConn(rw io.ReadWriteCloser) *wlConn {
	c := makeWlConn(rw)
	go c.read()
	return c
}

// makeWlConn is newWlConn without the reading goroutine, for tests that
// run read themselves.
func makeWlConn(rw io.ReadWriteCloser) *wlConn {
	return &wlConn{
		rw:      rw,
		objects: map[uint32]wlHandler{wlDisplayID: nil}, // the display is handled by dispatch itself
		zombies: map[uint32]bool{},
		next:    wlDisplayID + 1,
		dead:    make(chan struct{}),
	}
}

// read dispatches events until the connection fails or closes.
func (c *wlConn) read() {
	r := &wlReader{r: bufio.NewReader(c.rw)}
	var err error
	for err == nil {
		var m wlMessage
		if m, err = r.next(); err == nil {
			err = c.dispatch(m)
		}
	}
	// The reason is set before the socket closes, so a request failing on
	// the closed socket reports it.
	c.mu.Lock()
	if c.err == nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("the compositor closed the connection")
		}
		c.err = err
	}
	c.mu.Unlock()
	c.rw.Close()
	close(c.dead)
}

// dispatch hands one event to its object. Events for objects the client
// has destroyed, or never knew, are dropped as libwayland drops them.
func (c *wlConn) dispatch(m wlMessage) error {
	c.args = wlArgs{b: m.body}
	a := &c.args
	if m.object == wlDisplayID {
		return c.displayEvent(m.opcode, a)
	}
	c.mu.Lock()
	h, ok := c.objects[m.object]
	c.mu.Unlock()
	if !ok {
		return nil
	}
	return h(m.object, m.opcode, a)
}

func (c *wlConn) displayEvent(opcode uint16, a *wlArgs) error {
	switch opcode {
	case wlDisplayError:
		object, code, msg := a.uint(), a.uint(), a.str()
		if err := a.end(); err != nil {
			return fmt.Errorf("wl_display.error: %w", err)
		}
		return fmt.Errorf("the compositor reported error %d on object %d: %q", code, object, msg)
	case wlDisplayDeleteID:
		id := a.uint()
		if err := a.end(); err != nil {
			return fmt.Errorf("wl_display.delete_id: %w", err)
		}
		return c.release(id)
	}
	return fmt.Errorf("wl_display event %d: %w", opcode, errWlProtocol)
}

// release takes a delete_id: the compositor is done with the ID.
func (c *wlConn) release(id uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, live := c.objects[id]; live {
		return fmt.Errorf("the compositor released object %d while it was in use: %w", id, errWlProtocol)
	}
	if c.zombies[id] {
		delete(c.zombies, id)
		c.free = append(c.free, id)
	}
	return nil
}

// newObject gives h a fresh ID for an object the next request creates.
func (c *wlConn) newObject(h wlHandler) (uint32, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var id uint32
	if n := len(c.free); n > 0 {
		id, c.free = c.free[n-1], c.free[:n-1]
	} else {
		if c.next > wlMaxClientID {
			return 0, errors.New("out of Wayland object IDs")
		}
		id = c.next
		c.next++
	}
	c.objects[id] = h
	return id, nil
}

// destroyed marks an object gone (the compositor destroyed it, as a
// callback once done, or the client asked): it takes no more events and
// its ID returns with the compositor's delete_id.
func (c *wlConn) destroyed(id uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.objects[id]; ok {
		delete(c.objects, id)
		c.zombies[id] = true
	}
}

// send writes one request.
func (c *wlConn) send(r *wlRequest) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := c.rw.Write(r.bytes()); err != nil {
		if e := c.failure(); e != nil {
			return e
		}
		return fmt.Errorf("write to the compositor: %w", err)
	}
	return nil
}

// failure is why the connection stopped, or nil while it works.
func (c *wlConn) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// roundtrip asks the compositor for a wl_callback and waits for its done:
// every event the compositor sent before it has then been dispatched.
func (c *wlConn) roundtrip(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	id, done, err := c.newCallback()
	if err != nil {
		return err
	}
	if err := c.send(newWlRequest(wlDisplayID, wlDisplaySync).uint(id)); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-c.dead:
		return c.failure()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// newCallback makes a wl_callback object; done is closed at its one event,
// after which the compositor destroys it.
func (c *wlConn) newCallback() (uint32, <-chan struct{}, error) {
	done := make(chan struct{})
	id, err := c.newObject(func(id uint32, opcode uint16, a *wlArgs) error {
		a.uint() // callback data: for a sync, the event serial
		if err := a.end(); err != nil || opcode != wlCallbackDone {
			return fmt.Errorf("wl_callback event %d: %w", opcode, errors.Join(err, errWlProtocol))
		}
		c.destroyed(id)
		close(done)
		return nil
	})
	return id, done, err
}

// Close closes the connection and waits for the reading goroutine to end.
// The compositor drops every object of a closed client.
func (c *wlConn) Close() error {
	c.mu.Lock()
	if c.err == nil {
		c.err = errWlClosed
	}
	c.mu.Unlock()
	err := c.rw.Close()
	<-c.dead
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
