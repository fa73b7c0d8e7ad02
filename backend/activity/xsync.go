//go:build linux || freebsd || netbsd || openbsd || dragonfly

package activity

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
)

// The X SYNC extension keeps a system counter, IDLETIME, of milliseconds
// since the last input, and lets a client set an alarm on it: the server
// sends an AlarmNotify event when the counter crosses a value. A
// NegativeTransition alarm at inputWindow fires when input resets the
// counter, so the idle source waits for input without polling. xgb has no
// binding for SYNC, so the few requests used are encoded here from the
// protocol (SYNC 3.1, as in xcb-proto's sync.xml).
const (
	syncName = "SYNC"

	// Minor opcodes.
	syncInitialize         = 0
	syncListSystemCounters = 1
	syncQueryCounter       = 5
	syncCreateAlarm        = 8
	syncDestroyAlarm       = 11

	// Event and error numbers, from the extension's first event and error.
	syncAlarmNotify  = 1
	syncCounterError = 0
	syncAlarmError   = 1

	// CreateAlarm attributes (value-mask bits, values in this order).
	syncCACounter   = 1
	syncCAValueType = 2
	syncCAValue     = 4
	syncCATestType  = 8
	syncCADelta     = 16
	syncCAEvents    = 32

	syncAbsolute           = 0 // value type
	syncNegativeTransition = 1 // test type: the counter falls from above the value to it or below
	syncAlarmDestroyed     = 2 // alarm state in AlarmNotify

	idleCounterName = "IDLETIME"
)

// inputWindow is the idle counter value at or below which input counts as
// new. Input sets the counter to zero, so the alarm fires on any input to a
// machine idle for longer than this; a wait that begins within it of the
// last input returns at once.
const inputWindow = time.Second

// xsync waits for input through a SYNC alarm on IDLETIME. It shares the idle
// source's connection, whose events it alone reads (the source selects no
// other events: a reader is needed all the same, or xgb's queue would fill
// and stall every reply behind it).
type xsync struct {
	conn    *xgb.Conn
	major   byte
	counter uint32 // IDLETIME

	mu     sync.Mutex
	alarms map[uint32]chan struct{} // armed alarm → its waiter
	free   []uint32                 // destroyed alarms' IDs, reused: a client's IDs are finite
	closed bool
}

// openSync sets SYNC up on conn and starts reading its events. The error
// wraps ErrUnsupported when the server has no SYNC or no IDLETIME counter.
func openSync(conn *xgb.Conn) (*xsync, error) {
	ext, err := xproto.QueryExtension(conn, uint16(len(syncName)), syncName).Reply()
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", syncName, err)
	}
	if !ext.Present {
		return nil, unsupported("the X server has no %s extension", syncName)
	}
	// Decoders for the event and errors, or xgb would drop them: an alarm
	// that never rings, a failed request that looks successful.
	xgbInitMu.Lock()
	xgb.NewEventFuncs[int(ext.FirstEvent)+syncAlarmNotify] = newAlarmNotify
	xgb.NewErrorFuncs[int(ext.FirstError)+syncCounterError] = newSyncError("Counter")
	xgb.NewErrorFuncs[int(ext.FirstError)+syncAlarmError] = newSyncError("Alarm")
	xgbInitMu.Unlock()
	conn.ExtLock.Lock()
	conn.Extensions[syncName] = ext.MajorOpcode
	conn.ExtLock.Unlock()

	s := &xsync{conn: conn, major: ext.MajorOpcode, alarms: map[uint32]chan struct{}{}}
	if _, err := s.reply(syncInitialize, []byte{3, 1, 0, 0}); err != nil {
		return nil, fmt.Errorf("%s initialize: %w", syncName, err)
	}
	r, err := s.reply(syncListSystemCounters, nil)
	if err != nil {
		return nil, fmt.Errorf("list %s counters: %w", syncName, err)
	}
	counter, ok, err := findCounter(r, idleCounterName)
	if err != nil {
		return nil, fmt.Errorf("list %s counters: %w", syncName, err)
	}
	if !ok {
		return nil, unsupported("the X server has no %s counter", idleCounterName)
	}
	s.counter = counter
	go s.readEvents()
	return s, nil
}

// findCounter looks name up in a ListSystemCounters reply.
func findCounter(reply []byte, name string) (uint32, bool, error) {
	if len(reply) < 32 {
		return 0, false, errors.New("short reply")
	}
	n := int(xgb.Get32(reply[8:]))
	b := reply[32:]
	for range n {
		if len(b) < 14 {
			return 0, false, errors.New("truncated counter list")
		}
		id, nameLen := xgb.Get32(b), int(xgb.Get16(b[12:]))
		size := (14 + nameLen + 3) &^ 3
		if len(b) < 14+nameLen {
			return 0, false, errors.New("truncated counter name")
		}
		if string(b[14:14+nameLen]) == name {
			return id, true, nil
		}
		b = b[min(size, len(b)):]
	}
	return 0, false, nil
}

// request encodes one SYNC request; body is padded to 4 bytes.
func (s *xsync) request(minor byte, body []byte) []byte {
	buf := make([]byte, 4+(len(body)+3)&^3)
	buf[0], buf[1] = s.major, minor
	xgb.Put16(buf[2:], uint16(len(buf)/4))
	copy(buf[4:], body)
	return buf
}

func (s *xsync) reply(minor byte, body []byte) ([]byte, error) {
	c := s.conn.NewCookie(true, true)
	s.conn.NewRequest(s.request(minor, body), c)
	return c.Reply()
}

// waitInput returns nil once input comes after it began, or at once when
// the last input is at most inputWindow old.
func (s *xsync) waitInput(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: wait for input: %w", X11Name, err)
	}
	rang := make(chan struct{}, 1)
	type armed struct {
		id   uint32
		idle time.Duration
		err  error
	}
	done := make(chan armed, 1)
	go func() {
		id, idle, err := s.arm(rang)
		done <- armed{id, idle, err}
	}()
	var a armed
	select {
	case a = <-done:
	case <-ctx.Done():
		go func() { // the round trip cannot be cancelled; disarm when it lands
			if a := <-done; a.err == nil {
				s.disarm(a.id)
			}
		}()
		return fmt.Errorf("%s: wait for input: %w", X11Name, ctx.Err())
	}
	if a.err != nil {
		return fmt.Errorf("%s: wait for input: %w", X11Name, a.err)
	}
	defer s.disarm(a.id)
	if a.idle <= inputWindow {
		return nil // input came just now, perhaps before the alarm was set
	}
	select {
	case _, ok := <-rang:
		if !ok {
			return fmt.Errorf("%s: wait for input: the X connection closed", X11Name)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: wait for input: %w", X11Name, ctx.Err())
	}
}

// arm creates an alarm that rings on rang, then reads the counter: the
// server handles requests in order, so input after that read rings the
// alarm, and input before it shows in the value read.
func (s *xsync) arm(rang chan struct{}) (uint32, time.Duration, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, 0, errors.New("the X connection closed")
	}
	var id uint32
	if n := len(s.free); n > 0 {
		id, s.free = s.free[n-1], s.free[:n-1]
	}
	s.mu.Unlock()
	if id == 0 {
		var err error
		if id, err = s.conn.NewId(); err != nil {
			return 0, 0, fmt.Errorf("new alarm id: %w", err)
		}
	}
	s.mu.Lock()
	s.alarms[id] = rang
	s.mu.Unlock()

	body := make([]byte, 40)
	xgb.Put32(body[0:], id)
	xgb.Put32(body[4:], syncCACounter|syncCAValueType|syncCAValue|syncCATestType|syncCADelta|syncCAEvents)
	xgb.Put32(body[8:], s.counter)
	xgb.Put32(body[12:], syncAbsolute)
	putInt64(body[16:], inputWindow.Milliseconds())
	xgb.Put32(body[24:], syncNegativeTransition)
	putInt64(body[28:], 0) // delta 0: ring once, no re-arming
	xgb.Put32(body[36:], 1)
	create := s.conn.NewCookie(true, false)
	s.conn.NewRequest(s.request(syncCreateAlarm, body), create)
	query := make([]byte, 4)
	xgb.Put32(query, s.counter)
	r, qerr := s.reply(syncQueryCounter, query)
	// The reply to the later request has already settled the earlier one,
	// so Check costs no round trip of its own.
	if err := create.Check(); err != nil {
		s.forget(id, false)
		return 0, 0, fmt.Errorf("create alarm: %w", err)
	}
	if qerr == nil && len(r) < 16 {
		qerr = errors.New("short reply")
	}
	if qerr != nil {
		s.disarm(id)
		return 0, 0, fmt.Errorf("query %s: %w", idleCounterName, qerr)
	}
	ms := getInt64(r[8:])
	return id, time.Duration(max(ms, 0)) * time.Millisecond, nil
}

// disarm destroys the alarm and keeps its ID for the next one.
func (s *xsync) disarm(id uint32) {
	buf := make([]byte, 4)
	xgb.Put32(buf, id)
	s.conn.NewRequest(s.request(syncDestroyAlarm, buf), s.conn.NewCookie(false, false))
	s.forget(id, true)
}

func (s *xsync) forget(id uint32, reuse bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.alarms, id)
	if reuse && !s.closed {
		s.free = append(s.free, id)
	}
}

// readEvents hands AlarmNotify events to their waiters until the
// connection closes, then releases every waiter. X errors arriving here
// answer requests nobody checks (a DestroyAlarm): nothing to do.
func (s *xsync) readEvents() {
	for {
		ev, xerr := s.conn.WaitForEvent()
		if ev == nil && xerr == nil {
			s.mu.Lock()
			s.closed = true
			for id, ch := range s.alarms {
				close(ch)
				delete(s.alarms, id)
			}
			s.mu.Unlock()
			return
		}
		an, ok := ev.(alarmNotify)
		if !ok || an.state == syncAlarmDestroyed {
			continue
		}
		s.mu.Lock()
		if ch := s.alarms[an.alarm]; ch != nil {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
		s.mu.Unlock()
	}
}

// alarmNotify is SYNC's AlarmNotify event.
type alarmNotify struct {
	raw          []byte
	alarm        uint32
	counterValue int64
	state        byte
}

func newAlarmNotify(buf []byte) xgb.Event {
	e := alarmNotify{raw: append([]byte(nil), buf...)}
	if len(buf) >= 32 {
		e.alarm = xgb.Get32(buf[4:])
		e.counterValue = getInt64(buf[8:])
		e.state = buf[28]
	}
	return e
}

func (e alarmNotify) Bytes() []byte { return e.raw }
func (e alarmNotify) String() string {
	return fmt.Sprintf("SYNC AlarmNotify {alarm %#x, counter %d, state %d}", e.alarm, e.counterValue, e.state)
}

// syncError is one of SYNC's errors (a bad counter or alarm).
type syncError struct {
	name  string
	seq   uint16
	bad   uint32
	minor uint16
}

func newSyncError(name string) xgb.NewErrorFun {
	return func(buf []byte) xgb.Error {
		e := syncError{name: name}
		if len(buf) >= 10 {
			e.seq, e.bad, e.minor = xgb.Get16(buf[2:]), xgb.Get32(buf[4:]), xgb.Get16(buf[8:])
		}
		return e
	}
}

func (e syncError) SequenceId() uint16 { return e.seq }
func (e syncError) BadId() uint32      { return e.bad }
func (e syncError) Error() string {
	return fmt.Sprintf("SYNC %s error: bad id %#x (request %d)", e.name, e.bad, e.minor)
}

// SYNC's INT64 is a signed high word then an unsigned low word.
func putInt64(b []byte, v int64) {
	xgb.Put32(b, uint32(v>>32))
	xgb.Put32(b[4:], uint32(v))
}

func getInt64(b []byte) int64 {
	return int64(int32(xgb.Get32(b)))<<32 | int64(xgb.Get32(b[4:]))
}
